// The torch operators of the cuact package (namespace `cuact`): the schemas,
// and one kernel per operator registered for the CPU and CUDA dispatch keys.
//   CUDA tensors: cuact's kernels, on PyTorch's current stream and device.
//   CPU tensors: cuact's double-precision CPU reference (exact, slow); float64
//                tensors through its scalar forms, unrounded (for gradcheck).
// Fake (meta) kernels and autograd are registered in Python (cuact/_ops.py).
// Every operator takes dense tensors: the Python layer calls .contiguous()
// (softmax also takes 2-D rows with a row stride as they are).
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "cuact/cuact.h"
#include "cuact/reference.h"

namespace {

using at::Tensor;

// ------------------------------------------------------------ errors, dtypes, streams

// A failed Status as a Python exception of the type PyTorch raises for the
// same mistake: NotImplementedError for unsupported requests, RuntimeError
// otherwise (bad parameters and sizes too, as PyTorch's own checks).
void raise_if_failed(const cuact::Status& s, const char* op) {
  if (s.ok()) return;
  TORCH_CHECK_NOT_IMPLEMENTED(s.code() != cuact::StatusCode::unsupported, "cuact.", op, ": ",
                              s.message());
  TORCH_CHECK(false, "cuact.", op, ": ", s.message());
}

bool is_f64(const Tensor& t) { return t.scalar_type() == at::kDouble; }

// The cuact dtype of a tensor: float32, float16, bfloat16 (and float64 on the
// CPU, which the callers route to the scalar reference before asking). Any
// other is NotImplementedError, as PyTorch's kernels say of a dtype they lack.
cuact::DType dtype_of(const Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case at::kFloat: return cuact::DType::f32;
    case at::kHalf: return cuact::DType::f16;
    case at::kBFloat16: return cuact::DType::bf16;
    case at::kDouble:
      TORCH_CHECK_NOT_IMPLEMENTED(false, "cuact.", op,
                                  ": float64 runs on the CPU only (through the reference); "
                                  "CUDA kernels take float32, float16 and bfloat16");
    default:
      TORCH_CHECK_NOT_IMPLEMENTED(false, "cuact.", op, ": unsupported dtype ", t.scalar_type(),
                                  " (float32, float16, bfloat16; float64 on the CPU)");
  }
}

void check_same(const Tensor& a, const Tensor& b, const char* what, const char* op) {
  TORCH_CHECK(a.device() == b.device(), "cuact.", op, ": ", what, " is on ", b.device(),
              ", the input on ", a.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "cuact.", op, ": ", what, " is ",
                   b.scalar_type(), ", the input ", a.scalar_type());
  TORCH_CHECK(b.is_contiguous(), "cuact.", op, ": ", what, " must be contiguous");
}

void check_input(const Tensor& x, const char* op) {
  TORCH_CHECK(x.is_contiguous(), "cuact.", op, ": the input must be contiguous");
  if (x.is_cuda() || !is_f64(x)) (void)dtype_of(x, op);
}

// PyTorch's current stream on the tensor's device (the device is made current
// by the caller's DeviceGuard).
cudaStream_t stream_of(const Tensor& t) {
  const c10::Stream s = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(t.device());
  return static_cast<cudaStream_t>(s.native_handle());
}

// ------------------------------------------------------------ activations

// params: alpha, beta, lambda, lower, upper, cutoff, value (NaN where unused),
// the fields of cuact::Activation in order.
cuact::Activation activation_of(std::string_view kind, at::ArrayRef<double> params,
                                const char* op) {
  cuact::Activation act;
  bool found = false;
  for (int k = 0; k < cuact::kNumActivationKinds; ++k) {
    if (kind == cuact::activation_name(static_cast<cuact::ActivationKind>(k))) {
      act.kind = static_cast<cuact::ActivationKind>(k);
      found = true;
    }
  }
  TORCH_CHECK(found, "cuact.", op, ": unknown activation '", std::string(kind), "'");
  TORCH_CHECK(params.size() == 7, "cuact.", op, ": 7 activation parameters expected, got ",
                    params.size());
  float* fields[] = {&act.alpha, &act.beta, &act.lambda, &act.lower,
                     &act.upper, &act.cutoff, &act.value};
  for (int i = 0; i < 7; ++i) *fields[i] = static_cast<float>(params[i]);
  raise_if_failed(cuact::validate(act), op);
  return act;
}

const char* direction_op(cuact::Direction d) {
  switch (d) {
    case cuact::Direction::forward: return "activation";
    case cuact::Direction::backward: return "activation_backward";
    default: return "activation_backward_from_output";
  }
}

// One elementwise call: out = f(in) / grad * f'(in) in the given direction.
Tensor run_activation(cuact::Direction dir, const Tensor& in, const c10::optional<Tensor>& grad,
                      std::string_view kind, at::ArrayRef<double> params) {
  const char* op = direction_op(dir);
  check_input(in, op);
  if (grad) check_same(in, *grad, "the gradient", op);
  const cuact::Activation act = activation_of(kind, params, op);
  if (dir == cuact::Direction::backward_from_output)
    TORCH_CHECK_NOT_IMPLEMENTED(cuact::has_backward_from_output(act), "cuact.", op, ": ",
                                std::string(kind), " has no backward from the output");
  Tensor out = at::empty_like(in);
  const int64_t n = in.numel();
  const void* g = grad ? grad->data_ptr() : nullptr;
  if (in.is_cuda()) {
    c10::DeviceGuard guard(in.device());
    raise_if_failed(cuact::activation(dir, act, dtype_of(in, op), in.data_ptr(), g,
                                      out.data_ptr(), n, stream_of(in)),
                    op);
  } else if (is_f64(in)) {
    const double* x = in.data_ptr<double>();
    const double* dy = grad ? grad->data_ptr<double>() : nullptr;
    double* y = out.data_ptr<double>();
    for (int64_t i = 0; i < n; ++i) {
      y[i] = dir == cuact::Direction::forward    ? cuact::reference::forward(act, x[i])
             : dir == cuact::Direction::backward ? cuact::reference::backward(act, x[i], dy[i])
                                                 : cuact::reference::backward_from_output(
                                                       act, x[i], dy[i]);
    }
  } else {
    raise_if_failed(cuact::reference::activation(dir, act, dtype_of(in, op), in.data_ptr(), g,
                                                 out.data_ptr(), n),
                    op);
  }
  return out;
}

Tensor activation_op(const Tensor& x, c10::string_view kind, at::ArrayRef<double> params) {
  return run_activation(cuact::Direction::forward, x, c10::nullopt, kind, params);
}
Tensor activation_backward_op(const Tensor& x, const Tensor& dy, c10::string_view kind,
                              at::ArrayRef<double> params) {
  return run_activation(cuact::Direction::backward, x, dy, kind, params);
}
Tensor activation_backward_from_output_op(const Tensor& y, const Tensor& dy,
                                          c10::string_view kind, at::ArrayRef<double> params) {
  return run_activation(cuact::Direction::backward_from_output, y, dy, kind, params);
}

// ------------------------------------------------------------ random state

// Dropout and RReLU take their {seed, offset} as an int64[2] tensor on the
// data's device, drawn from PyTorch's generator by the Python layer.
// CPU: read by value. CUDA: the graph-safe device form (cuact/fused.h): the
// forward copies the pair into `used` when it runs, and the backward draws
// from `used` (the forward's second output) — a captured CUDA graph replays
// with the fresh pair its capture-safe generator writes each time.
struct RandomState {
  uint64_t seed = 0, offset = 0;
  uint64_t* device_state = nullptr;
  uint64_t* device_used = nullptr;
  Tensor keep_alive;  // scratch for device_state
};

void check_seed_offset(const Tensor& t, const Tensor& x, const char* what, const char* op) {
  TORCH_CHECK(t.device() == x.device(), "cuact.", op, ": ", what, " is on ", t.device(),
              ", the input on ", x.device());
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong && t.numel() == 2 && t.is_contiguous(), "cuact.",
                   op, ": ", what, " must be a contiguous int64 tensor of 2 elements");
}

// The forward's state from `seed_offset`; `used` receives the pair drawn from.
RandomState forward_random(const c10::optional<Tensor>& seed_offset, const Tensor& x,
                           Tensor& used, const char* op) {
  RandomState r;
  used = at::zeros({2}, x.options().dtype(at::kLong));
  if (!seed_offset) return r;
  check_seed_offset(*seed_offset, x, "seed_offset", op);
  if (x.is_cuda()) {
    r.keep_alive = seed_offset->clone();
    r.device_state = reinterpret_cast<uint64_t*>(r.keep_alive.data_ptr<int64_t>());
    r.device_used = reinterpret_cast<uint64_t*>(used.data_ptr<int64_t>());
  } else {
    used.copy_(*seed_offset);
    r.seed = static_cast<uint64_t>(seed_offset->data_ptr<int64_t>()[0]);
    r.offset = static_cast<uint64_t>(seed_offset->data_ptr<int64_t>()[1]);
  }
  return r;
}

// The backward's state: the pair its forward drew from.
RandomState backward_random(const c10::optional<Tensor>& used, const Tensor& x, const char* op) {
  RandomState r;
  if (!used) return r;
  check_seed_offset(*used, x, "used", op);
  if (x.is_cuda()) {
    r.keep_alive = at::empty({2}, used->options());  // not read: the backward takes no state
    r.device_state = reinterpret_cast<uint64_t*>(r.keep_alive.data_ptr<int64_t>());
    r.device_used = reinterpret_cast<uint64_t*>(used->data_ptr<int64_t>());
  } else {
    r.seed = static_cast<uint64_t>(used->data_ptr<int64_t>()[0]);
    r.offset = static_cast<uint64_t>(used->data_ptr<int64_t>()[1]);
  }
  return r;
}

cuact::Dropout dropout_of(double p, const RandomState& r, const char* op) {
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "cuact.", op, ": dropout p must be in [0, 1], got ", p);
  return {static_cast<float>(p), r.seed, r.offset, r.device_state, r.device_used};
}

// ------------------------------------------------------------ bias + activation (+ dropout)

// [rows, cols] of x: the last dimension is the bias's (cols = numel without a bias).
void bias_shape(const Tensor& x, const c10::optional<Tensor>& bias, int64_t& rows, int64_t& cols,
                const char* op) {
  if (bias) {
    TORCH_CHECK(x.dim() >= 1 && bias->dim() == 1 && bias->size(0) == x.size(-1), "cuact.", op,
                ": bias must be 1-D with the input's last dimension (", x.dim() ? x.size(-1) : 0,
                ")");
    cols = x.size(-1);
    rows = cols == 0 ? 0 : x.numel() / cols;
  } else {
    rows = 1;
    cols = x.numel();
  }
}

// A parameter (bias, PReLU weight): the data's dtype, or float32 with 16-bit data.
void check_parameter(const Tensor& x, const Tensor& w, const char* what, const char* op) {
  TORCH_CHECK(w.device() == x.device(), "cuact.", op, ": ", what, " is on ", w.device(),
              ", the input on ", x.device());
  TORCH_CHECK(w.is_contiguous(), "cuact.", op, ": ", what, " must be contiguous");
  TORCH_CHECK_TYPE(w.scalar_type() == x.scalar_type() ||
                       (w.scalar_type() == at::kFloat && !is_f64(x)),
                   "cuact.", op, ": ", what, " is ", w.scalar_type(), "; it takes the input's dtype (",
                   x.scalar_type(), ") or float32");
}

// Scalar pieces for float64 CPU tensors, from the reference's contract.
double dropped_or_scaled(const cuact::Dropout& d, uint64_t e, double v) {
  if (d.p == 0.0f) return v;
  return cuact::reference::dropout_keeps(d, e) ? v * cuact::reference::dropout_scale(d.p) : 0.0;
}

std::tuple<Tensor, Tensor> bias_activation_op(const Tensor& x, const c10::optional<Tensor>& bias,
                                       c10::string_view kind, at::ArrayRef<double> params,
                                       double p, const c10::optional<Tensor>& seed_offset) {
  const char* op = "bias_activation";
  check_input(x, op);
  if (bias) check_parameter(x, *bias, "bias", op);
  const cuact::Activation act = activation_of(kind, params, op);
  int64_t rows = 0, cols = 0;
  bias_shape(x, bias, rows, cols, op);
  Tensor used;
  const RandomState r = forward_random(seed_offset, x, used, op);
  const cuact::Dropout d = dropout_of(p, r, op);
  TORCH_CHECK(p == 0.0 || seed_offset, "cuact.", op, ": dropout needs seed_offset");
  Tensor y = at::empty_like(x);
  const void* b = bias ? bias->data_ptr() : nullptr;
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    raise_if_failed(cuact::bias_activation_forward(act, dt, x.data_ptr(), b, bt, y.data_ptr(), rows,
                                                   cols, d, nullptr, stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    const double* xs = x.data_ptr<double>();
    const double* bs = bias ? bias->data_ptr<double>() : nullptr;
    double* ys = y.data_ptr<double>();
    for (int64_t e = 0; e < rows * cols; ++e) {
      const double v = xs[e] + (bs ? bs[e % cols] : 0.0);
      ys[e] = dropped_or_scaled(d, static_cast<uint64_t>(e), cuact::reference::forward(act, v));
    }
  } else {
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    raise_if_failed(cuact::reference::bias_activation_forward(act, dt, x.data_ptr(), b, bt,
                                                              y.data_ptr(), rows, cols, d),
                    op);
  }
  return {y, used};
}

std::tuple<Tensor, Tensor> bias_activation_backward_op(const Tensor& x, const c10::optional<Tensor>& bias,
                                                const Tensor& dy, c10::string_view kind,
                                                at::ArrayRef<double> params, double p,
                                                const c10::optional<Tensor>& used) {
  const char* op = "bias_activation_backward";
  check_input(x, op);
  check_same(x, dy, "dy", op);
  if (bias) check_parameter(x, *bias, "bias", op);
  const cuact::Activation act = activation_of(kind, params, op);
  int64_t rows = 0, cols = 0;
  bias_shape(x, bias, rows, cols, op);
  TORCH_CHECK(p == 0.0 || used, "cuact.", op, ": dropout needs the forward's `used` pair");
  const RandomState r = backward_random(used, x, op);
  const cuact::Dropout d = dropout_of(p, r, op);
  Tensor dx = at::empty_like(x);
  Tensor dbias = bias ? at::empty_like(*bias) : at::empty({0}, x.options());
  void* db = bias ? dbias.data_ptr() : nullptr;
  const void* b = bias ? bias->data_ptr() : nullptr;
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    size_t bytes = 0;
    Tensor scratch;
    cuact::Workspace ws;
    if (bias) {
      raise_if_failed(cuact::bias_activation_backward_workspace_size(dt, rows, cols, &bytes), op);
      scratch = at::empty({static_cast<int64_t>(bytes)}, x.options().dtype(at::kByte));
      ws = {scratch.data_ptr(), bytes};
    }
    raise_if_failed(cuact::bias_activation_backward(act, dt, x.data_ptr(), b, bt, dy.data_ptr(),
                                                    dx.data_ptr(), db, rows, cols, d, ws,
                                                    stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    const double* xs = x.data_ptr<double>();
    const double* bs = bias ? bias->data_ptr<double>() : nullptr;
    const double* g = dy.data_ptr<double>();
    double* out = dx.data_ptr<double>();
    double* dbs = bias ? dbias.data_ptr<double>() : nullptr;
    if (dbs) std::fill(dbs, dbs + cols, 0.0);
    for (int64_t e = 0; e < rows * cols; ++e) {
      const double v = xs[e] + (bs ? bs[e % cols] : 0.0);
      out[e] = cuact::reference::backward(act, v, dropped_or_scaled(d, e, g[e]));
      if (dbs) dbs[e % cols] += out[e];
    }
  } else {
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    raise_if_failed(cuact::reference::bias_activation_backward(act, dt, x.data_ptr(), b, bt,
                                                               dy.data_ptr(), dx.data_ptr(), db,
                                                               rows, cols, d),
                    op);
  }
  return {dx, dbias};
}

// ------------------------------------------------------------ GLU family (over the last dimension)

cuact::Glu glu_of(c10::string_view kind, at::ArrayRef<double> params, bool gate_first,
                  const char* op) {
  return {activation_of(kind, params, op),
          gate_first ? cuact::GatedHalf::first : cuact::GatedHalf::second};
}

void glu_shape(const Tensor& x, int64_t& rows, int64_t& d, const char* op) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) % 2 == 0, "cuact.", op,
                    ": the last dimension must be even, got ", x.dim() ? x.size(-1) : 0);
  d = x.size(-1) / 2;
  rows = x.size(-1) == 0 ? 0 : x.numel() / x.size(-1);
}

Tensor glu_op(const Tensor& x, c10::string_view kind, at::ArrayRef<double> params,
              bool gate_first) {
  const char* op = "glu";
  check_input(x, op);
  const cuact::Glu glu = glu_of(kind, params, gate_first, op);
  int64_t rows = 0, d = 0;
  glu_shape(x, rows, d, op);
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = d;
  Tensor y = at::empty(sizes, x.options());
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(cuact::glu_forward(glu, dtype_of(x, op), x.data_ptr(), y.data_ptr(), rows, d,
                                       stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    const double* xs = x.data_ptr<double>();
    double* ys = y.data_ptr<double>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < d; ++j) {
        const double a = xs[r * 2 * d + j], b = xs[r * 2 * d + d + j];
        ys[r * d + j] = gate_first ? cuact::reference::forward(glu.act, a) * b
                                   : a * cuact::reference::forward(glu.act, b);
      }
    }
  } else {
    raise_if_failed(
        cuact::reference::glu_forward(glu, dtype_of(x, op), x.data_ptr(), y.data_ptr(), rows, d),
        op);
  }
  return y;
}

Tensor glu_backward_op(const Tensor& x, const Tensor& dy, c10::string_view kind,
                       at::ArrayRef<double> params, bool gate_first) {
  const char* op = "glu_backward";
  check_input(x, op);
  check_same(x, dy, "dy", op);
  const cuact::Glu glu = glu_of(kind, params, gate_first, op);
  int64_t rows = 0, d = 0;
  glu_shape(x, rows, d, op);
  TORCH_CHECK(dy.numel() == rows * d, "cuact.", op, ": dy has ", dy.numel(),
                    " elements, the output ", rows * d);
  Tensor dx = at::empty_like(x);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(cuact::glu_backward(glu, dtype_of(x, op), x.data_ptr(), dy.data_ptr(),
                                        dx.data_ptr(), rows, d, stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    const double* xs = x.data_ptr<double>();
    const double* g = dy.data_ptr<double>();
    double* out = dx.data_ptr<double>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < d; ++j) {
        const int64_t ia = r * 2 * d + j, ib = ia + d;
        const int64_t gated = gate_first ? ia : ib, other = gate_first ? ib : ia;
        const double dyj = g[r * d + j];
        out[gated] = cuact::reference::backward(glu.act, xs[gated], dyj * xs[other]);
        out[other] = dyj * cuact::reference::forward(glu.act, xs[gated]);
      }
    }
  } else {
    raise_if_failed(cuact::reference::glu_backward(glu, dtype_of(x, op), x.data_ptr(),
                                                   dy.data_ptr(), dx.data_ptr(), rows, d),
                    op);
  }
  return dx;
}

// ------------------------------------------------------------ PReLU

// PyTorch's layout: the channels are dimension 1 (1 for a 1-D input); a
// single weight applies to every element.
void prelu_shape(const Tensor& x, const Tensor& w, int64_t& outer, int64_t& channels,
                 int64_t& inner, const char* op) {
  const int64_t c = x.dim() >= 2 ? x.size(1) : 1;
  TORCH_CHECK(w.numel() == 1 || w.numel() == c, "cuact.", op, ": weight has ", w.numel(),
                    " elements; it takes 1 or the input's channels (", c, ")");
  if (w.numel() == 1) {
    outer = 1;
    channels = 1;
    inner = x.numel();
  } else {
    outer = x.size(0);
    channels = c;
    inner = c == 0 || outer == 0 ? 0 : x.numel() / (outer * c);
  }
}

Tensor prelu_op(const Tensor& x, const Tensor& weight) {
  const char* op = "prelu";
  check_input(x, op);
  check_parameter(x, weight, "weight", op);
  int64_t outer = 0, channels = 0, inner = 0;
  prelu_shape(x, weight, outer, channels, inner, op);
  Tensor y = at::empty_like(x);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(cuact::prelu_forward(dtype_of(x, op), x.data_ptr(), weight.data_ptr(),
                                         dtype_of(weight, op), y.data_ptr(), outer, channels,
                                         inner, stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    const double* xs = x.data_ptr<double>();
    const double* w = weight.data_ptr<double>();
    double* ys = y.data_ptr<double>();
    for (int64_t e = 0; e < x.numel(); ++e) {
      const double a = w[(e / inner) % channels];
      ys[e] = xs[e] > 0 ? xs[e] : a * xs[e];
    }
  } else {
    raise_if_failed(cuact::reference::prelu_forward(dtype_of(x, op), x.data_ptr(),
                                                    weight.data_ptr(), dtype_of(weight, op),
                                                    y.data_ptr(), outer, channels, inner),
                    op);
  }
  return y;
}

std::tuple<Tensor, Tensor> prelu_backward_op(const Tensor& x, const Tensor& weight, const Tensor& dy) {
  const char* op = "prelu_backward";
  check_input(x, op);
  check_same(x, dy, "dy", op);
  check_parameter(x, weight, "weight", op);
  int64_t outer = 0, channels = 0, inner = 0;
  prelu_shape(x, weight, outer, channels, inner, op);
  Tensor dx = at::empty_like(x);
  Tensor dweight = at::empty_like(weight);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    const cuact::DType dt = dtype_of(x, op);
    size_t bytes = 0;
    raise_if_failed(cuact::prelu_backward_workspace_size(dt, outer, channels, inner, &bytes), op);
    Tensor scratch = at::empty({static_cast<int64_t>(bytes)}, x.options().dtype(at::kByte));
    raise_if_failed(cuact::prelu_backward(dt, x.data_ptr(), weight.data_ptr(), dtype_of(weight, op),
                                          dy.data_ptr(), dx.data_ptr(), dweight.data_ptr(), outer,
                                          channels, inner, {scratch.data_ptr(), bytes},
                                          stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    const double* xs = x.data_ptr<double>();
    const double* w = weight.data_ptr<double>();
    const double* g = dy.data_ptr<double>();
    double* out = dx.data_ptr<double>();
    double* dw = dweight.data_ptr<double>();
    std::fill(dw, dw + weight.numel(), 0.0);
    for (int64_t e = 0; e < x.numel(); ++e) {
      const int64_t c = (e / inner) % channels;
      if (xs[e] > 0) {
        out[e] = g[e];
      } else {
        out[e] = w[c] * g[e];
        dw[c] += g[e] * xs[e];
      }
    }
  } else {
    raise_if_failed(cuact::reference::prelu_backward(
                        dtype_of(x, op), x.data_ptr(), weight.data_ptr(), dtype_of(weight, op),
                        dy.data_ptr(), dx.data_ptr(), dweight.data_ptr(), outer, channels, inner),
                    op);
  }
  return {dx, dweight};
}

// ------------------------------------------------------------ RReLU

cuact::Rrelu rrelu_of(double lower, double upper, bool training, const RandomState& r) {
  return {static_cast<float>(lower), static_cast<float>(upper), training, r.seed, r.offset,
          r.device_state, r.device_used};
}

std::tuple<Tensor, Tensor> rrelu_op(const Tensor& x, double lower, double upper, bool training,
                             const c10::optional<Tensor>& seed_offset) {
  const char* op = "rrelu";
  check_input(x, op);
  TORCH_CHECK(!training || seed_offset, "cuact.", op, ": training needs seed_offset");
  Tensor used;
  const RandomState r = forward_random(training ? seed_offset : c10::nullopt, x, used, op);
  const cuact::Rrelu rr = rrelu_of(lower, upper, training, r);
  Tensor y = at::empty_like(x);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(cuact::rrelu_forward(rr, dtype_of(x, op), x.data_ptr(), y.data_ptr(),
                                         x.numel(), stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    // The parameters' checks are the reference's: run it on an empty call first.
    raise_if_failed(cuact::reference::rrelu_forward(rr, cuact::DType::f32, nullptr, nullptr, 0), op);
    const double* xs = x.data_ptr<double>();
    double* ys = y.data_ptr<double>();
    for (int64_t e = 0; e < x.numel(); ++e)
      ys[e] = xs[e] >= 0 ? xs[e] : cuact::reference::rrelu_slope(rr, e) * xs[e];
  } else {
    raise_if_failed(cuact::reference::rrelu_forward(rr, dtype_of(x, op), x.data_ptr(),
                                                    y.data_ptr(), x.numel()),
                    op);
  }
  return {y, used};
}

Tensor rrelu_backward_op(const Tensor& x, const Tensor& dy, double lower, double upper,
                         bool training, const c10::optional<Tensor>& used) {
  const char* op = "rrelu_backward";
  check_input(x, op);
  check_same(x, dy, "dy", op);
  TORCH_CHECK(!training || used, "cuact.", op, ": training needs the forward's `used` pair");
  const RandomState r = backward_random(training ? used : c10::nullopt, x, op);
  const cuact::Rrelu rr = rrelu_of(lower, upper, training, r);
  Tensor dx = at::empty_like(x);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(cuact::rrelu_backward(rr, dtype_of(x, op), x.data_ptr(), dy.data_ptr(),
                                          dx.data_ptr(), x.numel(), stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    raise_if_failed(cuact::reference::rrelu_backward(rr, cuact::DType::f32, nullptr, nullptr,
                                                     nullptr, 0),
                    op);
    const double* xs = x.data_ptr<double>();
    const double* g = dy.data_ptr<double>();
    double* out = dx.data_ptr<double>();
    for (int64_t e = 0; e < x.numel(); ++e)
      out[e] = xs[e] >= 0 ? g[e] : cuact::reference::rrelu_slope(rr, e) * g[e];
  } else {
    raise_if_failed(cuact::reference::rrelu_backward(rr, dtype_of(x, op), x.data_ptr(),
                                                     dy.data_ptr(), dx.data_ptr(), x.numel()),
                    op);
  }
  return dx;
}

// ------------------------------------------------------------ softmax family

cuact::SoftmaxKind softmax_kind_of(c10::string_view kind, const char* op) {
  for (auto k : {cuact::SoftmaxKind::softmax, cuact::SoftmaxKind::log_softmax,
                 cuact::SoftmaxKind::softmin}) {
    if (kind == cuact::softmax_kind_name(k)) return k;
  }
  TORCH_CHECK(false, "cuact.", op, ": unknown softmax kind '", std::string(kind), "'");
  return cuact::SoftmaxKind::softmax;  // not reached
}

// The call's SoftmaxShape: dim of a dense tensor ([outer, dim, inner]), or the
// rows of a 2-D tensor whose last dimension is dense (a row stride as given).
cuact::SoftmaxShape softmax_shape(const Tensor& t, int64_t dim, const char* op) {
  TORCH_CHECK(t.dim() >= 1, "cuact.", op, ": the input must have a dimension");
  dim = c10::maybe_wrap_dim(dim, t.dim());
  cuact::SoftmaxShape s;
  s.dim = t.size(dim);
  s.inner = 1;
  for (int64_t i = dim + 1; i < t.dim(); ++i) s.inner *= t.size(i);
  s.outer = s.dim * s.inner == 0 ? 0 : t.numel() / (s.dim * s.inner);
  if (t.dim() == 2 && dim == 1 && t.stride(1) == 1 && t.stride(0) >= t.size(1)) {
    s.in_stride = t.stride(0);
    return s;
  }
  TORCH_CHECK(t.is_contiguous(), "cuact.", op,
              ": the input must be contiguous (or 2-D rows with a dense last dimension)");
  return s;
}

Tensor softmax_op(const Tensor& x, int64_t dim, c10::string_view kind, double scale,
                  const c10::optional<Tensor>& mask, int64_t mask_rows, int64_t mask_row_repeat,
                  int64_t causal_rows, int64_t causal_offset) {
  const char* op = "softmax";
  if (x.is_cuda() || !is_f64(x)) (void)dtype_of(x, op);
  cuact::Softmax sm;
  sm.kind = softmax_kind_of(kind, op);
  sm.scale = static_cast<float>(scale);
  cuact::SoftmaxShape shape = softmax_shape(x, dim, op);
  Tensor y = at::empty(x.sizes(), x.options());  // dense, whatever x's row stride
  if (x.numel() == 0) return y;                  // no row to compute, as PyTorch
  if (mask) {
    check_same(x, *mask, "mask", op);
    TORCH_CHECK(mask_rows >= 1 && mask->numel() == mask_rows * shape.dim, "cuact.", op,
                      ": the mask holds ", mask->numel(), " elements, not mask_rows (", mask_rows,
                      ") rows of ", shape.dim);
    sm = sm.with_mask(mask->data_ptr(), is_f64(x) ? cuact::DType::f32 : dtype_of(x, op),
                      mask_rows, mask_row_repeat);
  }
  if (causal_rows > 0) sm = sm.with_causal(causal_rows, causal_offset);
  shape.out_stride = 0;
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(cuact::softmax(cuact::Direction::forward, sm, dtype_of(x, op), x.data_ptr(),
                                   nullptr, y.data_ptr(), shape, stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    raise_if_failed(cuact::validate(sm), op);  // its rows are read here, not op.mask
    TORCH_CHECK_NOT_IMPLEMENTED(shape.inner == 1 || (!mask && causal_rows == 0), "cuact.", op,
                                ": mask and causal apply to the last dimension only");
    const int64_t stride_in = shape.in_stride ? shape.in_stride : shape.dim * shape.inner;
    const double* xs = x.data_ptr<double>();
    const double* ms = mask ? mask->data_ptr<double>() : nullptr;
    double* ys = y.data_ptr<double>();
    std::vector<double> row_in(shape.dim), row_out(shape.dim);
    for (int64_t o = 0; o < shape.outer; ++o) {
      for (int64_t j = 0; j < shape.inner; ++j) {
        for (int64_t c = 0; c < shape.dim; ++c) row_in[c] = xs[o * stride_in + c * shape.inner + j];
        const double* mrow =
            ms ? ms + ((o / mask_row_repeat) % mask_rows) * shape.dim : nullptr;
        cuact::reference::softmax_forward_row(sm, o, shape.dim, row_in.data(), mrow,
                                              row_out.data());
        for (int64_t c = 0; c < shape.dim; ++c)
          ys[o * shape.dim * shape.inner + c * shape.inner + j] = row_out[c];
      }
    }
  } else {
    raise_if_failed(cuact::reference::softmax(cuact::Direction::forward, sm, dtype_of(x, op),
                                              x.data_ptr(), nullptr, y.data_ptr(), shape),
                    op);
  }
  return y;
}

Tensor softmax_backward_op(const Tensor& y, const Tensor& dy, int64_t dim, c10::string_view kind,
                           double scale) {
  const char* op = "softmax_backward";
  check_input(y, op);
  check_same(y, dy, "dy", op);
  TORCH_CHECK(dy.sizes() == y.sizes(), "cuact.", op, ": dy's shape ", dy.sizes(),
                    " is not the output's ", y.sizes());
  cuact::Softmax sm;
  sm.kind = softmax_kind_of(kind, op);
  sm.scale = static_cast<float>(scale);
  const cuact::SoftmaxShape shape = softmax_shape(y, dim, op);
  Tensor dx = at::empty_like(y);
  if (y.numel() == 0) return dx;
  if (y.is_cuda()) {
    c10::DeviceGuard guard(y.device());
    raise_if_failed(cuact::softmax(cuact::Direction::backward, sm, dtype_of(y, op), y.data_ptr(),
                                   dy.data_ptr(), dx.data_ptr(), shape, stream_of(y)),
                    op);
  } else if (is_f64(y)) {
    raise_if_failed(cuact::validate(sm), op);
    const double* ys = y.data_ptr<double>();
    const double* g = dy.data_ptr<double>();
    double* out = dx.data_ptr<double>();
    std::vector<double> yr(shape.dim), gr(shape.dim), dr(shape.dim);
    for (int64_t o = 0; o < shape.outer; ++o) {
      for (int64_t j = 0; j < shape.inner; ++j) {
        const int64_t base = o * shape.dim * shape.inner + j;
        for (int64_t c = 0; c < shape.dim; ++c) {
          yr[c] = ys[base + c * shape.inner];
          gr[c] = g[base + c * shape.inner];
        }
        cuact::reference::softmax_backward_row(sm, shape.dim, yr.data(), gr.data(), dr.data());
        for (int64_t c = 0; c < shape.dim; ++c) out[base + c * shape.inner] = dr[c];
      }
    }
  } else {
    raise_if_failed(cuact::reference::softmax(cuact::Direction::backward, sm, dtype_of(y, op),
                                              y.data_ptr(), dy.data_ptr(), dx.data_ptr(), shape),
                    op);
  }
  return dx;
}

}  // namespace

TORCH_LIBRARY(cuact, m) {
  m.def("activation(Tensor x, str kind, float[] params) -> Tensor");
  m.def("activation_backward(Tensor x, Tensor dy, str kind, float[] params) -> Tensor");
  m.def("activation_backward_from_output(Tensor y, Tensor dy, str kind, float[] params) -> Tensor");
  m.def(
      "bias_activation(Tensor x, Tensor? bias, str kind, float[] params, float p, "
      "Tensor? seed_offset) -> (Tensor, Tensor)");
  m.def(
      "bias_activation_backward(Tensor x, Tensor? bias, Tensor dy, str kind, float[] params, "
      "float p, Tensor? used) -> (Tensor, Tensor)");
  m.def("glu(Tensor x, str kind, float[] params, bool gate_first) -> Tensor");
  m.def("glu_backward(Tensor x, Tensor dy, str kind, float[] params, bool gate_first) -> Tensor");
  m.def("prelu(Tensor x, Tensor weight) -> Tensor");
  m.def("prelu_backward(Tensor x, Tensor weight, Tensor dy) -> (Tensor, Tensor)");
  m.def(
      "rrelu(Tensor x, float lower, float upper, bool training, Tensor? seed_offset) -> "
      "(Tensor, Tensor)");
  m.def(
      "rrelu_backward(Tensor x, Tensor dy, float lower, float upper, bool training, "
      "Tensor? used) -> Tensor");
  m.def(
      "softmax(Tensor x, int dim, str kind, float scale, Tensor? mask, int mask_rows, "
      "int mask_row_repeat, int causal_rows, int causal_offset) -> Tensor");
  m.def("softmax_backward(Tensor y, Tensor dy, int dim, str kind, float scale) -> Tensor");
}

#define CUACT_REGISTER_KERNELS(m)                                                  \
  m.impl("activation", &activation_op);                                            \
  m.impl("activation_backward", &activation_backward_op);                          \
  m.impl("activation_backward_from_output", &activation_backward_from_output_op);  \
  m.impl("bias_activation", &bias_activation_op);                                  \
  m.impl("bias_activation_backward", &bias_activation_backward_op);                \
  m.impl("glu", &glu_op);                                                          \
  m.impl("glu_backward", &glu_backward_op);                                        \
  m.impl("prelu", &prelu_op);                                                      \
  m.impl("prelu_backward", &prelu_backward_op);                                    \
  m.impl("rrelu", &rrelu_op);                                                      \
  m.impl("rrelu_backward", &rrelu_backward_op);                                    \
  m.impl("softmax", &softmax_op);                                                  \
  m.impl("softmax_backward", &softmax_backward_op)

// One kernel per operator serves both keys: it branches on the tensors' device.
TORCH_LIBRARY_IMPL(cuact, CPU, m) { CUACT_REGISTER_KERNELS(m); }
TORCH_LIBRARY_IMPL(cuact, CUDA, m) { CUACT_REGISTER_KERNELS(m); }
