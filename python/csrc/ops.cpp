// The torch operators of the cuact package (namespace `cuact`): the schemas,
// and one kernel per operator registered for the CPU and CUDA dispatch keys.
//   CUDA tensors: cuact's kernels, on PyTorch's current stream and device.
//   CPU tensors: cuact's double-precision CPU reference (exact, slow); float64
//                tensors through its scalar forms, unrounded (for gradcheck).
// The *_fp8 operators write their result as fp8 codes with one scale per
// tensor, the *_block_fp8 ones with one scale per block of a row: fp8 codes,
// or NVFP4's e2m1 codes with scale_type "e4m3" (cuact/quantized.h; see "fp8
// outputs" and "block-scaled outputs" below). cross_entropy is the fused
// softmax cross-entropy (cuact/cross_entropy.h; float32, float16, bfloat16).
// Fake (meta) kernels and autograd are registered in Python (cuact/_ops.py).
// Every operator takes dense tensors: the Python layer calls .contiguous()
// (softmax, softmax_fp8 and cross_entropy also take 2-D rows with a row
// stride as they are).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/accumulate.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
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

// A gradient of the input's shape (and check_same's dtype, device, layout):
// a shorter one would be read past its end.
void check_gradient(const Tensor& x, const Tensor& dy, const char* what, const char* op) {
  check_same(x, dy, what, op);
  TORCH_CHECK(dy.sizes() == x.sizes(), "cuact.", op, ": ", what, "'s shape ", dy.sizes(),
              " is not the input's ", x.sizes());
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

// The workspace of a device call: the bytes asked for, as a byte tensor.
cuact::Workspace workspace_of(const Tensor& x, size_t bytes, Tensor& scratch) {
  scratch = at::empty({static_cast<int64_t>(bytes)}, x.options().dtype(at::kByte));
  return {scratch.data_ptr(), bytes};
}

// The rows of a [..., cols] tensor: the product of its leading dimensions.
int64_t leading_rows(const Tensor& x) {
  return c10::multiply_integers(x.sizes().begin(), x.sizes().end() - 1);
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
  if (grad) check_gradient(in, *grad, "the gradient", op);
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

// A bias is 1-D with the input's last dimension.
void check_bias_size(const Tensor& x, const Tensor& bias, const char* op) {
  TORCH_CHECK(x.dim() >= 1 && bias.dim() == 1 && bias.size(0) == x.size(-1), "cuact.", op,
              ": bias must be 1-D with the input's last dimension (", x.dim() ? x.size(-1) : 0,
              ")");
}

// [rows, cols] of x: the last dimension is the bias's (cols = numel without a bias).
void bias_shape(const Tensor& x, const c10::optional<Tensor>& bias, int64_t& rows, int64_t& cols,
                const char* op) {
  if (bias) {
    check_bias_size(x, *bias, op);
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

// What bias + activation's forward (plain or fp8) checks and draws first:
// the activation, the [rows, cols] view, the dropout from `seed_offset` (the
// pair drawn from in `used`; `random` keeps the device words alive).
struct BiasForward {
  cuact::Activation act;
  int64_t rows = 0, cols = 0;
  Tensor used;
  RandomState random;
  cuact::Dropout dropout;
};
BiasForward bias_forward_args(const Tensor& x, const c10::optional<Tensor>& bias,
                              c10::string_view kind, at::ArrayRef<double> params, double p,
                              const c10::optional<Tensor>& seed_offset, const char* op) {
  BiasForward f;
  check_input(x, op);
  if (bias) check_parameter(x, *bias, "bias", op);
  f.act = activation_of(kind, params, op);
  bias_shape(x, bias, f.rows, f.cols, op);
  f.random = forward_random(seed_offset, x, f.used, op);
  f.dropout = dropout_of(p, f.random, op);
  TORCH_CHECK(p == 0.0 || seed_offset, "cuact.", op, ": dropout needs seed_offset");
  return f;
}

std::tuple<Tensor, Tensor> bias_activation_op(const Tensor& x, const c10::optional<Tensor>& bias,
                                       c10::string_view kind, at::ArrayRef<double> params,
                                       double p, const c10::optional<Tensor>& seed_offset) {
  const char* op = "bias_activation";
  const BiasForward f = bias_forward_args(x, bias, kind, params, p, seed_offset, op);
  const cuact::Activation& act = f.act;
  const int64_t rows = f.rows, cols = f.cols;
  const cuact::Dropout& d = f.dropout;
  const Tensor& used = f.used;
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
  check_gradient(x, dy, "dy", op);
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
// glu and glu_backward: the plain GLU. moe_glu and moe_glu_backward: the GLU of
// MoE experts, cuact::Glu's clamps (limit, offset) and an optional routing
// weight per row (docs/SPEC.md, "Gated activations"); one derivative only
// (cuact/_autograd.py).

cuact::Glu glu_of(c10::string_view kind, at::ArrayRef<double> params, bool gate_first,
                  const char* op) {
  return {activation_of(kind, params, op),
          gate_first ? cuact::GatedHalf::first : cuact::GatedHalf::second};
}

// glu_of with the clamps, in fp32 as cuact::Glu holds them (limit inf: no
// clamp), and the layout (interleave 0: split halves; k > 0: blocks of k
// columns of each half). Their checks are the reference's, on an empty call:
// every path (float64 too) raises the same Status (that k divides d: in
// check_glu_layout, once d is known).
cuact::Glu clamped_glu_of(c10::string_view kind, at::ArrayRef<double> params, bool gate_first,
                          double limit, double offset, int64_t interleave, const char* op) {
  cuact::Glu glu = glu_of(kind, params, gate_first, op);
  // a positive limit that rounds to 0 would read as "not > 0"
  TORCH_CHECK(!(limit > 0 && static_cast<float>(limit) == 0.0f), "cuact.", op, ": limit ", limit,
              " rounds to 0 in float32");
  glu.limit = static_cast<float>(limit);
  glu.offset = static_cast<float>(offset);
  glu.interleave = interleave;
  raise_if_failed(cuact::reference::glu_forward(glu, cuact::DType::f32, nullptr, nullptr, 0, 0),
                  op);
  return glu;
}

void glu_shape(const Tensor& x, int64_t& rows, int64_t& d, const char* op) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) % 2 == 0, "cuact.", op,
                    ": the last dimension must be even, got ", x.dim() ? x.size(-1) : 0);
  d = x.size(-1) / 2;
  rows = x.size(-1) == 0 ? 0 : x.numel() / x.size(-1);
}

// The layout's check against d (interleave divides d; any d = 0), the
// library's Status on an empty call, for every path (float64 too).
void check_glu_layout(const cuact::Glu& glu, int64_t d, const char* op) {
  raise_if_failed(cuact::reference::glu_forward(glu, cuact::DType::f32, nullptr, nullptr, 0, d),
                  op);
}

// A routing weight: one per row, the input's shape without its last
// dimension; the input's dtype or float32 (check_parameter). A weighted call
// counts every row, also where d is 0 (dweight is then zeros).
void check_row_weight(const Tensor& x, const Tensor& w, int64_t& rows, const char* op) {
  check_parameter(x, w, "weight", op);
  const auto leading = x.sizes().slice(0, x.dim() - 1);
  TORCH_CHECK(w.sizes() == leading, "cuact.", op, ": weight's shape ", w.sizes(),
              " is not the input's rows ", leading, " (one weight per row)");
  rows = leading_rows(x);
}

// float64 CPU tensors: the reference's rows (host/fused_reference.cpp) on
// doubles, unrounded. y = act(g') * u' (* w[r]); dx from dy * w[r], 0 where a
// clamp cut the half; dw[r] = sum of dy * act(g') * u' (dw may be null).
// Output column c reads the columns glu_columns names (the Glu's layout).
void glu_rows_f64(const cuact::Glu& glu, const double* x, const double* w, double* y,
                  int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = x + r * 2 * d;
    for (int64_t c = 0; c < d; ++c) {
      const cuact::reference::GluColumns at = cuact::reference::glu_columns(glu, d, c);
      const double v = cuact::reference::glu_value(glu, row[at.gated], row[at.linear]);
      y[r * d + c] = w ? v * w[r] : v;
    }
  }
}
void glu_rows_backward_f64(const cuact::Glu& glu, const double* x, const double* w,
                           const double* dy, double* dx, double* dw, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < d; ++c) {
      const cuact::reference::GluColumns at = cuact::reference::glu_columns(glu, d, c);
      const int64_t ig = r * 2 * d + at.gated, io = r * 2 * d + at.linear;
      const cuact::reference::GluHalves h = cuact::reference::glu_halves(glu, x[ig], x[io]);
      const double g = dy[r * d + c], gw = w ? g * w[r] : g;
      const double f = cuact::reference::forward(glu.act, h.gate);
      dx[ig] = h.gate_passes ? cuact::reference::backward(glu.act, h.gate, gw * h.linear) : 0.0;
      dx[io] = h.linear_passes ? gw * f : 0.0;
      sum += g * f * h.linear;
    }
    if (dw) dw[r] = sum;
  }
}

// ------------------------------------------------------------ expert rows (fused.h, ExpertRows)
// The rows of an MoE layer's expert buffers a moe_glu call computes
// (docs/SPEC.md, "Expert rows"): counts [E] (masked: x [E, C, 2d], expert
// e's valid rows e*C + [0, counts[e])) or offsets [E + 1] (grouped: x
// [..., 2d], every leading dimension a row, the valid rows [offsets[0],
// offsets[E])); int32 or int64, on the input's device. The outputs (y, dx,
// dweight) are fresh zeros outside the valid rows: the gradient of rows that
// took no part. Bad values: the CUDA kernels read them clamped and flag
// them in a device word, on which the op queues torch's asynchronous
// assertion (no host synchronization, as cross_entropy's bad targets); the
// CPU raises a RuntimeError naming the expert and the value first.

struct Experts {
  const Tensor* ids = nullptr;  // counts or offsets; null: no expert rows (every row)
  bool masked = false;
  int64_t experts = 0;
  int64_t bound = 0;  // the largest valid entry: the capacity C, or the rows
  explicit operator bool() const { return ids != nullptr; }
};

// The checks of the arguments, and the library's own of an expert-rows
// call (the gate, experts > 0, at most 1024 masked ones) on an empty call,
// for every path (the CPU and float64 too).
Experts experts_of(const Tensor& x, const c10::optional<Tensor>& counts,
                   const c10::optional<Tensor>& offsets, const cuact::Glu& glu, int64_t d,
                   const char* op) {
  if (!counts && !offsets) return {};
  TORCH_CHECK(!(counts && offsets), "cuact.", op,
              ": counts and offsets are both given; a call takes one (counts: masked, offsets: "
              "grouped)");
  Experts e;
  e.masked = counts.has_value();
  e.ids = e.masked ? &*counts : &*offsets;
  const Tensor& t = *e.ids;
  const char* what = e.masked ? "counts" : "offsets";
  TORCH_CHECK_TYPE(t.scalar_type() == at::kInt || t.scalar_type() == at::kLong, "cuact.", op,
                   ": ", what, " is ", t.scalar_type(), "; it takes int32 or int64");
  TORCH_CHECK(t.device() == x.device(), "cuact.", op, ": ", what, " is on ", t.device(),
              ", the input on ", x.device());
  TORCH_CHECK(t.dim() == 1, "cuact.", op, ": ", what, " must be 1-D (",
              e.masked ? "[experts]" : "[experts + 1]", "), got shape ", t.sizes());
  if (e.masked) {
    e.experts = t.size(0);
    TORCH_CHECK(x.dim() == 3 && x.size(0) == e.experts, "cuact.", op, ": counts of ", e.experts,
                " experts take an input [", e.experts, ", capacity, 2d], got shape ", x.sizes());
    e.bound = x.size(1);
  } else {
    TORCH_CHECK(t.size(0) >= 2, "cuact.", op,
                ": offsets must hold experts + 1 >= 2 entries, got ", t.size(0));
    e.experts = t.size(0) - 1;
    e.bound = leading_rows(x);
  }
  const int32_t any = 0;  // read by no empty call
  const cuact::ExpertRows empty{e.masked ? &any : nullptr, e.masked ? nullptr : &any, e.experts};
  raise_if_failed(cuact::glu_forward(glu, cuact::DType::f32, nullptr, nullptr, cuact::DType::f32,
                                     nullptr, 0, d, empty),
                  op);
  return e;
}

// The device's form: int32 entries (int64 ones clamped to [-1, bound + 1]
// first, so that a value out of range stays out of range, flagged, instead
// of wrapping) and a zeroed error word; check() queues the assertion on it.
struct DeviceExperts {
  Tensor ids, error;
  cuact::ExpertRows rows;

  DeviceExperts(const Experts& e, const char* op) {
    ids = *e.ids;
    if (ids.scalar_type() == at::kLong) {
      TORCH_CHECK(e.bound < std::numeric_limits<int32_t>::max(), "cuact.", op, ": int64 ",
                  e.masked ? "counts take a capacity" : "offsets take rows",
                  " below 2^31 - 1 (int32 on the device), got ", e.bound);
      ids = ids.clamp(-1, e.bound + 1).to(at::kInt);
    }
    ids = ids.contiguous();
    error = at::zeros({1}, ids.options());
    int32_t* p = ids.data_ptr<int32_t>();
    rows = {e.masked ? p : nullptr, e.masked ? nullptr : p, e.experts, error.data_ptr<int32_t>()};
  }

  void check(const char* op) const {
    at::_assert_async(error.eq(0), std::string("cuact.") + op +
                                       ": a bad count or offset (a count outside [0, capacity], "
                                       "an offset outside [0, rows] or below the one before)");
  }
};

// The CPU's valid rows, as ranges [start, start + n) (no expert rows: every
// row), after checking the entries on the host.
template <typename I>
std::vector<std::pair<int64_t, int64_t>> host_ranges(const Experts& e, const char* op) {
  const Tensor t = e.ids->contiguous();
  const I* v = t.data_ptr<I>();
  std::vector<std::pair<int64_t, int64_t>> ranges;
  if (e.masked) {
    for (int64_t k = 0; k < e.experts; ++k) {
      const int64_t c = v[k];
      TORCH_CHECK(c >= 0 && c <= e.bound, "cuact.", op, ": counts[", k, "] = ", c,
                  " is outside [0, ", e.bound, "] (expert ", k, "'s rows in a capacity of ",
                  e.bound, ")");
      if (c > 0) ranges.emplace_back(k * e.bound, c);
    }
    return ranges;
  }
  const int64_t first = v[0], last = v[e.experts];
  TORCH_CHECK(first >= 0 && first <= e.bound, "cuact.", op, ": offsets[0] = ", first,
              " is outside [0, ", e.bound, "] (the rows)");
  for (int64_t k = 0; k < e.experts; ++k)
    TORCH_CHECK(v[k + 1] >= v[k], "cuact.", op, ": offsets[", k + 1, "] = ", int64_t{v[k + 1]},
                " is below offsets[", k, "] = ", int64_t{v[k]}, " (expert ", k,
                "'s rows would be negative)");
  TORCH_CHECK(last <= e.bound, "cuact.", op, ": offsets[", e.experts, "] = ", last,
              " is past the ", e.bound, " rows");
  if (last > first) ranges.emplace_back(first, last - first);
  return ranges;
}

std::vector<std::pair<int64_t, int64_t>> cpu_ranges(const Experts& e, int64_t rows,
                                                    const char* op) {
  if (!e) return {{0, rows}};
  return e.ids->scalar_type() == at::kInt ? host_ranges<int32_t>(e, op)
                                          : host_ranges<int64_t>(e, op);
}

// The CPU's GLU of the rows x [n, 2d] -> y [n, d] (w [n] or null): the
// reference, float64 through glu_rows_f64.
void glu_rows_cpu(const cuact::Glu& glu, const Tensor& x, const Tensor* w, const Tensor& y,
                  int64_t n, int64_t d, const char* op) {
  if (is_f64(x)) {
    glu_rows_f64(glu, x.data_ptr<double>(), w ? w->data_ptr<double>() : nullptr,
                 y.data_ptr<double>(), n, d);
    return;
  }
  const cuact::DType dt = dtype_of(x, op);
  raise_if_failed(w ? cuact::reference::glu_forward(glu, dt, x.data_ptr(), w->data_ptr(),
                                                    dtype_of(*w, op), y.data_ptr(), n, d)
                    : cuact::reference::glu_forward(glu, dt, x.data_ptr(), y.data_ptr(), n, d),
                  op);
}

// Its gradient: dx [n, 2d] from dy [n, d]; dw [n] or null (with w only).
void glu_rows_backward_cpu(const cuact::Glu& glu, const Tensor& x, const Tensor* w,
                           const Tensor& dy, const Tensor& dx, const Tensor* dw, int64_t n,
                           int64_t d, const char* op) {
  if (is_f64(x)) {
    glu_rows_backward_f64(glu, x.data_ptr<double>(), w ? w->data_ptr<double>() : nullptr,
                          dy.data_ptr<double>(), dx.data_ptr<double>(),
                          dw ? dw->data_ptr<double>() : nullptr, n, d);
    return;
  }
  const cuact::DType dt = dtype_of(x, op);
  raise_if_failed(w ? cuact::reference::glu_backward(glu, dt, x.data_ptr(), w->data_ptr(),
                                                     dtype_of(*w, op), dy.data_ptr(),
                                                     dx.data_ptr(), dw ? dw->data_ptr() : nullptr,
                                                     n, d)
                    : cuact::reference::glu_backward(glu, dt, x.data_ptr(), dy.data_ptr(),
                                                     dx.data_ptr(), n, d),
                  op);
}

// Rows [start, start + n) of t viewed as [rows, cols] (the CPU's ranges).
Tensor row_range(const Tensor& t, int64_t rows, int64_t cols, int64_t start, int64_t n) {
  return t.view({rows, cols}).narrow(0, start, n);
}

// What both directions check first: the input, the layout, the weight and
// the expert rows; rows: every leading dimension (0 for d = 0 unless a
// weight or expert rows count them).
Experts check_glu_call(const Tensor& x, const c10::optional<Tensor>& weight,
                       const c10::optional<Tensor>& counts, const c10::optional<Tensor>& offsets,
                       const cuact::Glu& glu, int64_t& rows, int64_t& d, const char* op) {
  check_input(x, op);
  glu_shape(x, rows, d, op);
  check_glu_layout(glu, d, op);
  if (weight) check_row_weight(x, *weight, rows, op);
  const Experts e = experts_of(x, counts, offsets, glu, d, op);
  if (e) rows = leading_rows(x);
  return e;
}

// y [..., d] = the GLU of x [..., 2d] (weight: times weight[r]); with
// expert rows, over the valid rows only, zeros elsewhere.
Tensor run_glu(const Tensor& x, const c10::optional<Tensor>& weight, const cuact::Glu& glu,
               const c10::optional<Tensor>& counts, const c10::optional<Tensor>& offsets,
               const char* op) {
  int64_t rows = 0, d = 0;
  const Experts experts = check_glu_call(x, weight, counts, offsets, glu, rows, d, op);
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = d;
  Tensor y = experts ? at::zeros(sizes, x.options()) : at::empty(sizes, x.options());
  if (!x.is_cuda()) {
    for (const auto& [start, n] : cpu_ranges(experts, rows, op)) {
      const Tensor w = weight ? row_range(*weight, rows, 1, start, n) : Tensor();
      glu_rows_cpu(glu, row_range(x, rows, 2 * d, start, n), weight ? &w : nullptr,
                   row_range(y, rows, d, start, n), n, d, op);
    }
    return y;
  }
  const cuact::DType dt = dtype_of(x, op);
  const cuact::DType wt = weight ? dtype_of(*weight, op) : dt;
  const void* w = weight ? weight->data_ptr() : nullptr;
  c10::DeviceGuard guard(x.device());
  if (experts) {
    const DeviceExperts on_device(experts, op);
    raise_if_failed(cuact::glu_forward(glu, dt, x.data_ptr(), w, wt, y.data_ptr(), rows, d,
                                       on_device.rows, stream_of(x)),
                    op);
    on_device.check(op);
  } else {
    raise_if_failed(weight ? cuact::glu_forward(glu, dt, x.data_ptr(), w, wt, y.data_ptr(), rows,
                                                d, stream_of(x))
                           : cuact::glu_forward(glu, dt, x.data_ptr(), y.data_ptr(), rows, d,
                                                stream_of(x)),
                    op);
  }
  return y;
}

// (dx, dweight): dx [..., 2d] from dy [..., d]; dweight in the weight's shape
// and dtype where asked for (need_dweight, with a weight), else an empty
// tensor (the weight's dtype, or the input's without a weight). With expert
// rows, over the valid rows only, zeros elsewhere.
std::tuple<Tensor, Tensor> run_glu_backward(const Tensor& x, const c10::optional<Tensor>& weight,
                                            const Tensor& dy, const cuact::Glu& glu,
                                            bool need_dweight,
                                            const c10::optional<Tensor>& counts,
                                            const c10::optional<Tensor>& offsets,
                                            const char* op) {
  int64_t rows = 0, d = 0;
  const Experts experts = check_glu_call(x, weight, counts, offsets, glu, rows, d, op);
  check_same(x, dy, "dy", op);
  TORCH_CHECK(dy.numel() == rows * d, "cuact.", op, ": dy has ", dy.numel(),
              " elements, the output ", rows * d);
  const bool want_dw = weight && need_dweight;
  auto fresh = [&](const Tensor& t) { return experts ? at::zeros_like(t) : at::empty_like(t); };
  Tensor dx = fresh(x);
  Tensor dweight = want_dw ? fresh(*weight) : at::empty({0}, (weight ? *weight : x).options());
  if (!x.is_cuda()) {
    for (const auto& [start, n] : cpu_ranges(experts, rows, op)) {
      const Tensor w = weight ? row_range(*weight, rows, 1, start, n) : Tensor();
      const Tensor dw = want_dw ? row_range(dweight, rows, 1, start, n) : Tensor();
      glu_rows_backward_cpu(glu, row_range(x, rows, 2 * d, start, n), weight ? &w : nullptr,
                            row_range(dy, rows, d, start, n), row_range(dx, rows, 2 * d, start, n),
                            want_dw ? &dw : nullptr, n, d, op);
    }
    return {dx, dweight};
  }
  const cuact::DType dt = dtype_of(x, op);
  const cuact::DType wt = weight ? dtype_of(*weight, op) : dt;
  const void* w = weight ? weight->data_ptr() : nullptr;
  void* dw = want_dw ? dweight.data_ptr() : nullptr;
  c10::DeviceGuard guard(x.device());
  if (!weight && !experts) {
    raise_if_failed(cuact::glu_backward(glu, dt, x.data_ptr(), dy.data_ptr(), dx.data_ptr(), rows,
                                        d, stream_of(x)),
                    op);
    return {dx, dweight};
  }
  Tensor scratch;
  cuact::Workspace ws;  // dweight's reduction only
  if (want_dw) {
    size_t bytes = 0;
    raise_if_failed(cuact::glu_backward_workspace_size(glu, dt, rows, d, &bytes), op);
    ws = workspace_of(x, bytes, scratch);
  }
  if (experts) {
    const DeviceExperts on_device(experts, op);
    raise_if_failed(cuact::glu_backward(glu, dt, x.data_ptr(), w, wt, dy.data_ptr(),
                                        dx.data_ptr(), dw, rows, d, on_device.rows, ws,
                                        stream_of(x)),
                    op);
    on_device.check(op);
  } else {
    raise_if_failed(cuact::glu_backward(glu, dt, x.data_ptr(), w, wt, dy.data_ptr(),
                                        dx.data_ptr(), dw, rows, d, ws, stream_of(x)),
                    op);
  }
  return {dx, dweight};
}

Tensor glu_op(const Tensor& x, c10::string_view kind, at::ArrayRef<double> params,
              bool gate_first) {
  const char* op = "glu";
  return run_glu(x, c10::nullopt, glu_of(kind, params, gate_first, op), c10::nullopt,
                 c10::nullopt, op);
}

Tensor glu_backward_op(const Tensor& x, const Tensor& dy, c10::string_view kind,
                       at::ArrayRef<double> params, bool gate_first) {
  const char* op = "glu_backward";
  return std::get<0>(run_glu_backward(x, c10::nullopt, dy, glu_of(kind, params, gate_first, op),
                                      false, c10::nullopt, c10::nullopt, op));
}

Tensor moe_glu_op(const Tensor& x, const c10::optional<Tensor>& weight, c10::string_view kind,
                  at::ArrayRef<double> params, bool gate_first, double limit, double offset,
                  int64_t interleave, const c10::optional<Tensor>& counts,
                  const c10::optional<Tensor>& offsets) {
  const char* op = "moe_glu";
  return run_glu(x, weight,
                 clamped_glu_of(kind, params, gate_first, limit, offset, interleave, op), counts,
                 offsets, op);
}

std::tuple<Tensor, Tensor> moe_glu_backward_op(
    const Tensor& x, const c10::optional<Tensor>& weight, const Tensor& dy, c10::string_view kind,
    at::ArrayRef<double> params, bool gate_first, double limit, double offset, bool need_dweight,
    int64_t interleave, const c10::optional<Tensor>& counts,
    const c10::optional<Tensor>& offsets) {
  const char* op = "moe_glu_backward";
  return run_glu_backward(x, weight, dy,
                          clamped_glu_of(kind, params, gate_first, limit, offset, interleave, op),
                          need_dweight, counts, offsets, op);
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
  check_gradient(x, dy, "dy", op);
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
  check_gradient(x, dy, "dy", op);
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

// sm with the call's additive mask and causal settings (softmax's operator
// arguments): the forward applies them; the backward takes the same ones,
// which decide its hidden columns (cuact/softmax.h).
cuact::Softmax with_hidden_columns(cuact::Softmax sm, const Tensor& data,
                                   const cuact::SoftmaxShape& shape,
                                   const c10::optional<Tensor>& mask, int64_t mask_rows,
                                   int64_t mask_row_repeat, int64_t causal_rows,
                                   int64_t causal_offset, const char* op) {
  if (mask) {
    check_same(data, *mask, "mask", op);
    TORCH_CHECK(mask_rows >= 1 && mask->numel() == mask_rows * shape.dim, "cuact.", op,
                      ": the mask holds ", mask->numel(), " elements, not mask_rows (", mask_rows,
                      ") rows of ", shape.dim);
    sm = sm.with_mask(mask->data_ptr(), is_f64(data) ? cuact::DType::f32 : dtype_of(data, op),
                      mask_rows, mask_row_repeat);
  }
  if (causal_rows > 0) sm = sm.with_causal(causal_rows, causal_offset);
  return sm;
}

// What softmax's forward (plain or fp8) checks and builds first: the op
// (kind and scale; the mask and causal settings when there is a row to
// compute: an empty input is no call, as PyTorch's) and the call's shape,
// its output dense whatever x's row stride.
struct SoftmaxForward {
  cuact::Softmax sm;
  cuact::SoftmaxShape shape;
};
SoftmaxForward softmax_forward_args(const Tensor& x, int64_t dim, c10::string_view kind,
                                    double scale, const c10::optional<Tensor>& mask,
                                    int64_t mask_rows, int64_t mask_row_repeat,
                                    int64_t causal_rows, int64_t causal_offset, const char* op) {
  SoftmaxForward f;
  if (x.is_cuda() || !is_f64(x)) (void)dtype_of(x, op);
  f.sm.kind = softmax_kind_of(kind, op);
  f.sm.scale = static_cast<float>(scale);
  f.shape = softmax_shape(x, dim, op);
  f.shape.out_stride = 0;
  if (x.numel() > 0)
    f.sm = with_hidden_columns(f.sm, x, f.shape, mask, mask_rows, mask_row_repeat, causal_rows,
                               causal_offset, op);
  return f;
}

Tensor softmax_op(const Tensor& x, int64_t dim, c10::string_view kind, double scale,
                  const c10::optional<Tensor>& mask, int64_t mask_rows, int64_t mask_row_repeat,
                  int64_t causal_rows, int64_t causal_offset) {
  const char* op = "softmax";
  const SoftmaxForward f = softmax_forward_args(x, dim, kind, scale, mask, mask_rows,
                                                mask_row_repeat, causal_rows, causal_offset, op);
  const cuact::Softmax& sm = f.sm;
  const cuact::SoftmaxShape& shape = f.shape;
  Tensor y = at::empty(x.sizes(), x.options());  // dense, whatever x's row stride
  if (x.numel() == 0) return y;                  // no row to compute, as PyTorch
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
                           double scale, const c10::optional<Tensor>& mask, int64_t mask_rows,
                           int64_t mask_row_repeat, int64_t causal_rows, int64_t causal_offset) {
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
  // The forward's mask and causal settings: they decide the hidden columns.
  sm = with_hidden_columns(sm, y, shape, mask, mask_rows, mask_row_repeat, causal_rows,
                           causal_offset, op);
  if (y.is_cuda()) {
    c10::DeviceGuard guard(y.device());
    raise_if_failed(cuact::softmax(cuact::Direction::backward, sm, dtype_of(y, op), y.data_ptr(),
                                   dy.data_ptr(), dx.data_ptr(), shape, stream_of(y)),
                    op);
  } else if (is_f64(y)) {
    raise_if_failed(cuact::validate(sm), op);  // its rows are read here, not op.mask
    TORCH_CHECK_NOT_IMPLEMENTED(shape.inner == 1 || (!mask && causal_rows == 0), "cuact.", op,
                                ": mask and causal apply to the last dimension only");
    const double* ys = y.data_ptr<double>();
    const double* g = dy.data_ptr<double>();
    const double* ms = mask ? mask->data_ptr<double>() : nullptr;
    double* out = dx.data_ptr<double>();
    std::vector<double> yr(shape.dim), gr(shape.dim), dr(shape.dim);
    for (int64_t o = 0; o < shape.outer; ++o) {
      for (int64_t j = 0; j < shape.inner; ++j) {
        const int64_t base = o * shape.dim * shape.inner + j;
        for (int64_t c = 0; c < shape.dim; ++c) {
          yr[c] = ys[base + c * shape.inner];
          gr[c] = g[base + c * shape.inner];
        }
        const double* mrow =
            ms ? ms + ((o / mask_row_repeat) % mask_rows) * shape.dim : nullptr;
        cuact::reference::softmax_backward_row(sm, o, shape.dim, yr.data(), gr.data(), mrow,
                                               dr.data());
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

// ------------------------------------------------------------ fp8 outputs (cuact/quantized.h)

// The *_fp8 operators compute what their plain forms compute and write it as
// fp8 codes with one scale per tensor (docs/SPEC.md, "Quantized outputs").
// They return (data, scale, amax, scale_inv): the codes, a float8_e4m3fn or
// float8_e5m2 tensor of the result's shape, and three float32 tensors of
// shape [1] on the input's device, as Transformer Engine keeps them: scale
// multiplies (code = fp8(result * scale)), amax = max |result| before
// scaling (NaN excluded), scale_inv = 1 / scale divides (result ~ code *
// scale_inv, the factor torch._scaled_mm takes). Recipe: a `scale` given
// (one float32 element on the input's device) is the delayed recipe, read
// when the kernel runs and returned as a copy; none is the current recipe
// (scale = max_fp8 / amax / 2^margin, optionally a power of two).
// CUDA: cuact's kernels; CPU: the reference's quantized calls; float64 CPU
// tensors: the plain operator's float64 result (unrounded), quantized as the
// reference quantizes (one rounding from double).

cuact::Fp8 fp8_of(at::ScalarType t, const char* op) {
  if (t == at::kFloat8_e4m3fn) return cuact::Fp8::e4m3;
  if (t == at::kFloat8_e5m2) return cuact::Fp8::e5m2;
  TORCH_CHECK_NOT_IMPLEMENTED(false, "cuact.", op, ": unsupported output dtype ", t,
                              " (float8_e4m3fn, float8_e5m2)");
  return cuact::Fp8::e4m3;  // not reached
}

// A scale given per tensor (an fp8 output's, NVFP4's tensor scale): one
// float32 element on the input's device.
void check_scale_word(const Tensor& word, const Tensor& x, const char* what, const char* op) {
  TORCH_CHECK(word.device() == x.device(), "cuact.", op, ": ", what, " is on ", word.device(),
              ", the input on ", x.device());
  TORCH_CHECK_TYPE(word.scalar_type() == at::kFloat, "cuact.", op, ": ", what, " is ",
                   word.scalar_type(), "; it must be float32");
  TORCH_CHECK(word.numel() == 1, "cuact.", op, ": ", what,
              " must hold one element (one scale per tensor), not ", word.numel());
}

struct Quantized {
  Tensor data, scale, amax, scale_inv;
  cuact::QuantizedOutput q;

  std::tuple<Tensor, Tensor, Tensor, Tensor> outputs() const {
    return {data, scale, amax, scale_inv};
  }
};

// The outputs of a call whose result has `sizes`, and the descriptor over them.
Quantized quantized_outputs(const Tensor& x, at::IntArrayRef sizes, at::ScalarType dtype,
                            const c10::optional<Tensor>& scale, int64_t margin,
                            bool power_of_two, const char* op) {
  Quantized r;
  r.q.dtype = fp8_of(dtype, op);
  const auto words = x.options().dtype(at::kFloat);
  r.scale = at::empty({1}, words);
  if (scale) {
    check_scale_word(*scale, x, "scale", op);
    TORCH_CHECK(margin == 0 && !power_of_two, "cuact.", op,
                ": margin and power_of_two belong to the current recipe (no scale given)");
    r.scale.copy_(scale->reshape({1}));
    r.q.scaling = cuact::Scaling::delayed;
  } else {
    r.q.scaling = cuact::Scaling::current;
  }
  r.amax = at::empty({1}, words);
  r.scale_inv = at::empty({1}, words);
  r.data = at::empty(sizes, x.options().dtype(dtype));
  r.q.data = r.data.data_ptr();
  r.q.scale = r.scale.data_ptr<float>();
  r.q.amax = r.amax.data_ptr<float>();
  r.q.scale_inv = r.scale_inv.data_ptr<float>();
  // out of int's range stays out of [0, 64]: cuact refuses it with its message
  r.q.margin = static_cast<int>(std::clamp<int64_t>(margin, -1, 65));
  r.q.power_of_two = power_of_two;
  return r;
}

// An empty call with a given scale writes amax only (cuact's contract); the
// operator returns its scale_inv all the same.
void finish_quantized(Quantized& r, int64_t elements) {
  if (elements == 0 && r.q.scaling == cuact::Scaling::delayed)
    r.scale_inv.copy_(r.scale.reciprocal());
}

// float64 CPU tensors: r (the plain operator's float64 result) quantized as
// the reference quantizes (host/quantized_reference.cpp): amax the largest
// |r| rounded to fp32, NaN excluded; the current recipe's scale by
// reference::quantized_scale; codes fp8_bits(r * scale); scale_inv 1/scale
// in fp32. `checked`, raised first: the status of an empty call of the
// reference with the call's op and descriptor (it takes the same rules).
void quantize_f64(const cuact::Status& checked, const Tensor& r, Quantized& out, const char* op) {
  const cuact::QuantizedOutput& q = out.q;
  raise_if_failed(checked, op);
  const double* v = r.data_ptr<double>();
  const int64_t n = r.numel();
  double amax = 0;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isnan(v[i])) amax = std::fmax(amax, std::fabs(v[i]));
  amax = cuact::reference::round_to(cuact::DType::f32, amax);
  const double scale =
      q.scaling == cuact::Scaling::current
          ? cuact::reference::quantized_scale(q.dtype, amax, q.margin, q.power_of_two)
          : static_cast<double>(*q.scale);
  auto* codes = static_cast<uint8_t*>(q.data);
  for (int64_t i = 0; i < n; ++i) codes[i] = cuact::reference::fp8_bits(q.dtype, v[i] * scale);
  *q.amax = static_cast<float>(amax);
  *q.scale = static_cast<float>(scale);
  *q.scale_inv = static_cast<float>(cuact::reference::round_to(cuact::DType::f32, 1.0 / scale));
}

// The activation forms: `act` and the descriptor checked by an empty call.
void quantize_f64(const cuact::Activation& act, const Tensor& r, Quantized& out, const char* op) {
  quantize_f64(cuact::reference::activation(cuact::Direction::forward, act, cuact::DType::f32,
                                            nullptr, nullptr, out.q, 0),
               r, out, op);
}

const char* direction_op_fp8(cuact::Direction d) {
  switch (d) {
    case cuact::Direction::forward: return "activation_fp8";
    case cuact::Direction::backward: return "activation_backward_fp8";
    default: return "activation_backward_from_output_fp8";
  }
}

std::tuple<Tensor, Tensor, Tensor, Tensor> run_activation_fp8(
    cuact::Direction dir, const Tensor& in, const c10::optional<Tensor>& grad,
    c10::string_view kind, at::ArrayRef<double> params, at::ScalarType dtype,
    const c10::optional<Tensor>& scale, int64_t margin, bool power_of_two) {
  const char* op = direction_op_fp8(dir);
  check_input(in, op);
  if (grad) check_gradient(in, *grad, "the gradient", op);
  const cuact::Activation act = activation_of(kind, params, op);
  if (dir == cuact::Direction::backward_from_output)
    TORCH_CHECK_NOT_IMPLEMENTED(cuact::has_backward_from_output(act), "cuact.", op, ": ",
                                std::string(kind), " has no backward from the output");
  Quantized r = quantized_outputs(in, in.sizes(), dtype, scale, margin, power_of_two, op);
  const int64_t n = in.numel();
  const void* g = grad ? grad->data_ptr() : nullptr;
  if (in.is_cuda()) {
    c10::DeviceGuard guard(in.device());
    size_t bytes = 0;
    raise_if_failed(cuact::quantized_workspace_size(r.q, &bytes), op);
    Tensor scratch;
    const cuact::Workspace ws = workspace_of(in, bytes, scratch);
    raise_if_failed(cuact::activation(dir, act, dtype_of(in, op), in.data_ptr(), g, r.q, n, ws,
                                      stream_of(in)),
                    op);
  } else if (is_f64(in)) {
    quantize_f64(act, run_activation(dir, in, grad, kind, params), r, op);
  } else {
    raise_if_failed(
        cuact::reference::activation(dir, act, dtype_of(in, op), in.data_ptr(), g, r.q, n), op);
  }
  finish_quantized(r, n);
  return r.outputs();
}

std::tuple<Tensor, Tensor, Tensor, Tensor> activation_fp8_op(
    const Tensor& x, c10::string_view kind, at::ArrayRef<double> params, at::ScalarType dtype,
    const c10::optional<Tensor>& scale, int64_t margin, bool power_of_two) {
  return run_activation_fp8(cuact::Direction::forward, x, c10::nullopt, kind, params, dtype,
                            scale, margin, power_of_two);
}
std::tuple<Tensor, Tensor, Tensor, Tensor> activation_backward_fp8_op(
    const Tensor& x, const Tensor& dy, c10::string_view kind, at::ArrayRef<double> params,
    at::ScalarType dtype, const c10::optional<Tensor>& scale, int64_t margin, bool power_of_two) {
  return run_activation_fp8(cuact::Direction::backward, x, dy, kind, params, dtype, scale, margin,
                            power_of_two);
}
std::tuple<Tensor, Tensor, Tensor, Tensor> activation_backward_from_output_fp8_op(
    const Tensor& y, const Tensor& dy, c10::string_view kind, at::ArrayRef<double> params,
    at::ScalarType dtype, const c10::optional<Tensor>& scale, int64_t margin, bool power_of_two) {
  return run_activation_fp8(cuact::Direction::backward_from_output, y, dy, kind, params, dtype,
                            scale, margin, power_of_two);
}

// bias + activation (+ dropout); the fifth output is the {seed, offset} pair
// drawn from, as bias_activation's second (bias_activation_backward with the
// same p and pair regenerates the mask).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> bias_activation_fp8_op(
    const Tensor& x, const c10::optional<Tensor>& bias, c10::string_view kind,
    at::ArrayRef<double> params, double p, const c10::optional<Tensor>& seed_offset,
    at::ScalarType dtype, const c10::optional<Tensor>& scale, int64_t margin, bool power_of_two) {
  const char* op = "bias_activation_fp8";
  const BiasForward f = bias_forward_args(x, bias, kind, params, p, seed_offset, op);
  const cuact::Activation& act = f.act;
  const int64_t rows = f.rows, cols = f.cols;
  const cuact::Dropout& d = f.dropout;
  const Tensor& used = f.used;
  Quantized r = quantized_outputs(x, x.sizes(), dtype, scale, margin, power_of_two, op);
  const void* b = bias ? bias->data_ptr() : nullptr;
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    size_t bytes = 0;
    raise_if_failed(cuact::quantized_workspace_size(r.q, &bytes), op);
    Tensor scratch;
    const cuact::Workspace ws = workspace_of(x, bytes, scratch);
    raise_if_failed(cuact::bias_activation_forward(act, dt, x.data_ptr(), b, bt, r.q, rows, cols,
                                                   d, nullptr, ws, stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    quantize_f64(act, std::get<0>(bias_activation_op(x, bias, kind, params, p, seed_offset)), r,
                 op);
  } else {
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    raise_if_failed(cuact::reference::bias_activation_forward(act, dt, x.data_ptr(), b, bt, r.q,
                                                              rows, cols, d, nullptr),
                    op);
  }
  finish_quantized(r, x.numel());
  return {r.data, r.scale, r.amax, r.scale_inv, used};
}

// dact (+ dbias): dx = dy * act'(x + bias) quantized; the fifth output is
// dbias (the bias's dtype; the sums of the unquantized products) when a bias
// is given, else an empty tensor, as bias_activation_backward's. No dropout.
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> bias_activation_backward_fp8_op(
    const Tensor& x, const c10::optional<Tensor>& bias, const Tensor& dy, c10::string_view kind,
    at::ArrayRef<double> params, at::ScalarType dtype, const c10::optional<Tensor>& scale,
    int64_t margin, bool power_of_two) {
  const char* op = "bias_activation_backward_fp8";
  check_input(x, op);
  check_gradient(x, dy, "dy", op);
  if (bias) check_parameter(x, *bias, "bias", op);
  const cuact::Activation act = activation_of(kind, params, op);
  int64_t rows = 0, cols = 0;
  bias_shape(x, bias, rows, cols, op);
  Quantized r = quantized_outputs(x, x.sizes(), dtype, scale, margin, power_of_two, op);
  Tensor dbias = bias ? at::empty_like(*bias) : at::empty({0}, x.options());
  void* db = bias ? dbias.data_ptr() : nullptr;
  const void* b = bias ? bias->data_ptr() : nullptr;
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    size_t bytes = 0;
    raise_if_failed(cuact::bias_activation_backward_workspace_size(dt, rows, cols, r.q, &bytes),
                    op);
    Tensor scratch;
    const cuact::Workspace ws = workspace_of(x, bytes, scratch);
    raise_if_failed(cuact::bias_activation_backward(act, dt, x.data_ptr(), b, bt, dy.data_ptr(),
                                                    r.q, db, rows, cols, ws, stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    auto [dx, sums] = bias_activation_backward_op(x, bias, dy, kind, params, 0.0, c10::nullopt);
    quantize_f64(act, dx, r, op);
    dbias = sums;
  } else {
    const cuact::DType dt = dtype_of(x, op);
    const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
    raise_if_failed(cuact::reference::bias_activation_backward(act, dt, x.data_ptr(), b, bt,
                                                               dy.data_ptr(), r.q, db, rows, cols),
                    op);
  }
  finish_quantized(r, x.numel());
  return {r.data, r.scale, r.amax, r.scale_inv, dbias};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> glu_fp8_op(
    const Tensor& x, c10::string_view kind, at::ArrayRef<double> params, bool gate_first,
    at::ScalarType dtype, const c10::optional<Tensor>& scale, int64_t margin, bool power_of_two) {
  const char* op = "glu_fp8";
  check_input(x, op);
  const cuact::Glu glu = glu_of(kind, params, gate_first, op);
  int64_t rows = 0, d = 0;
  glu_shape(x, rows, d, op);
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = d;
  Quantized r = quantized_outputs(x, sizes, dtype, scale, margin, power_of_two, op);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    size_t bytes = 0;
    raise_if_failed(cuact::quantized_workspace_size(r.q, &bytes), op);
    Tensor scratch;
    const cuact::Workspace ws = workspace_of(x, bytes, scratch);
    raise_if_failed(
        cuact::glu_forward(glu, dtype_of(x, op), x.data_ptr(), r.q, rows, d, ws, stream_of(x)),
        op);
  } else if (is_f64(x)) {
    quantize_f64(glu.act, glu_op(x, kind, params, gate_first), r, op);
  } else {
    raise_if_failed(
        cuact::reference::glu_forward(glu, dtype_of(x, op), x.data_ptr(), r.q, rows, d), op);
  }
  finish_quantized(r, rows * d);
  return r.outputs();
}

// softmax, log_softmax or softmin along dim (softmax's arguments: its
// `scale` here softmax_scale, the fp8 recipe's scale being `scale`), forward
// only. The codes are dense in x's shape whatever x's row stride.
std::tuple<Tensor, Tensor, Tensor, Tensor> softmax_fp8_op(
    const Tensor& x, int64_t dim, c10::string_view kind, double softmax_scale,
    const c10::optional<Tensor>& mask, int64_t mask_rows, int64_t mask_row_repeat,
    int64_t causal_rows, int64_t causal_offset, at::ScalarType dtype,
    const c10::optional<Tensor>& scale, int64_t margin, bool power_of_two) {
  const char* op = "softmax_fp8";
  const SoftmaxForward f = softmax_forward_args(x, dim, kind, softmax_scale, mask, mask_rows,
                                                mask_row_repeat, causal_rows, causal_offset, op);
  Quantized r = quantized_outputs(x, x.sizes(), dtype, scale, margin, power_of_two, op);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    size_t bytes = 0;
    raise_if_failed(cuact::quantized_workspace_size(r.q, &bytes), op);
    Tensor scratch;
    const cuact::Workspace ws = workspace_of(x, bytes, scratch);
    raise_if_failed(cuact::softmax_forward(f.sm, dtype_of(x, op), x.data_ptr(), r.q, f.shape, ws,
                                           stream_of(x)),
                    op);
  } else if (is_f64(x)) {
    const Tensor plain = softmax_op(x, dim, kind, softmax_scale, mask, mask_rows,
                                    mask_row_repeat, causal_rows, causal_offset);
    // An empty call checks f.sm and the descriptor; it reads no mask row (f.sm's
    // mask is the float64 mask, named f32 by with_hidden_columns).
    quantize_f64(cuact::reference::softmax_forward(f.sm, cuact::DType::f32, nullptr, r.q,
                                                   cuact::SoftmaxShape{}),
                 plain, r, op);
  } else {
    raise_if_failed(cuact::reference::softmax_forward(f.sm, dtype_of(x, op), x.data_ptr(), r.q,
                                                      f.shape),
                    op);
  }
  finish_quantized(r, x.numel());
  return r.outputs();
}

// ------------------------------------------------------------ block-scaled outputs

// The *_block_fp8 operators compute bias + activation or a GLU over the last
// dimension and write it as low-precision codes with one scale per block of
// `block` consecutive results of a row (docs/SPEC.md, "Block-scaled
// outputs"): x is [rows, cols] with cols its last dimension and rows the
// product of the others. The block sizes and the combinations of block,
// format and scale type cuact takes are its own to say (block_scales_size's
// Status, raised with its message). They return (codes, scales, amax):
//   - the codes in x's shape with the last dimension cols (GLU: d):
//     float8_e4m3fn or float8_e5m2; with scale_type "e4m3" (NVFP4: blocks
//     of 16, the fp32 `tensor_scale` given, required) float4_e2m1fn_x2, two
//     e2m1 codes a byte (the first in the low nibble), the last dimension
//     cols / 2 (cols must be even: cuact's Status says so);
//   - the scale matrix [rows, groups = ceil(cols / block)] in its layout:
//     row_major [rows, groups], column_major [groups, rows], swizzled_128x4
//     the 1-D padded buffer of block_scales_size's entries (the padding
//     zero); float8_e8m0fnu entries (the biased exponent byte) for the E8M0
//     types, float32 for f32, float8_e4m3fn for e4m3. column_major_packed
//     (1-byte scales: cuact refuses f32 with its Status) is DeepGEMM's
//     packed UE8M0 tensor: int32 words of four consecutive blocks of a row
//     (block 4k in the low byte), [rows, ceil(groups / 4)] with strides
//     (1, R4), R4 = rows rounded up to 4: a transposed view over an int32
//     buffer [ceil(groups / 4), R4] of block_scales_size's bytes (the
//     padding zero);
//   - amax, a float32 0-d tensor, max |result| over the call (NaN excluded).
// CUDA: cuact's kernels; CPU: the reference's block-scaled calls (the result
// in double, quantized). float64 inputs are refused: the reference quantizes
// the results it computes from the input dtypes cuact takes.

// A string argument's enum value by its table of names; an unknown name is
// a RuntimeError that lists them.
template <typename E>
struct Named {
  const char* name;
  E value;
};

template <typename E, size_t N>
E named(c10::string_view name, const Named<E> (&table)[N], const char* what, const char* op) {
  std::string names;
  for (const Named<E>& entry : table) {
    if (name == entry.name) return entry.value;
    names += (names.empty() ? "" : ", ") + std::string(entry.name);
  }
  TORCH_CHECK(false, "cuact.", op, ": unknown ", what, " '", std::string(name), "' (", names, ")");
  return table[0].value;  // not reached
}

// e4m3: NVFP4 (float4_e2m1fn_x2 codes, blocks of 16, a tensor scale)
constexpr Named<cuact::BlockScale> kBlockScales[] = {{"e8m0", cuact::BlockScale::e8m0},
                                                     {"e8m0_floor", cuact::BlockScale::e8m0_floor},
                                                     {"f32", cuact::BlockScale::f32},
                                                     {"e4m3", cuact::BlockScale::e4m3}};
constexpr Named<cuact::ScaleLayout> kScaleLayouts[] = {
    {"row_major", cuact::ScaleLayout::row_major},
    {"column_major", cuact::ScaleLayout::column_major},
    {"swizzled_128x4", cuact::ScaleLayout::swizzled_128x4},
    {"column_major_packed", cuact::ScaleLayout::column_major_packed}};

// The input of a block-scaled call: dense, float32, float16 or bfloat16.
void check_block_input(const Tensor& x, const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(!is_f64(x), "cuact.", op,
                              ": float64 inputs are not supported (block-scaled outputs take "
                              "float32, float16 and bfloat16)");
  check_input(x, op);
  TORCH_CHECK(x.dim() >= 1, "cuact.", op, ": the input must have a dimension");
}

struct BlockScaled {
  Tensor data, scales, amax;
  cuact::BlockScaledOutput b;

  std::tuple<Tensor, Tensor, Tensor> outputs() const { return {data, scales, amax}; }
};

// The outputs of a call whose [rows, cols] result has `sizes`, and the descriptor over them.
BlockScaled block_scaled_outputs(const Tensor& x, at::IntArrayRef sizes, int64_t rows,
                                 int64_t cols, at::ScalarType dtype, int64_t block,
                                 c10::string_view scale_type, c10::string_view scale_layout,
                                 const c10::optional<Tensor>& tensor_scale, const char* op) {
  BlockScaled r;
  r.b.scale_type = named(scale_type, kBlockScales, "scale_type", op);
  r.b.scale_layout = named(scale_layout, kScaleLayouts, "scale_layout", op);
  const bool fp4 = r.b.scale_type == cuact::BlockScale::e4m3;
  if (fp4) {  // NVFP4: the descriptor's dtype is unused
    TORCH_CHECK(dtype == at::kFloat4_e2m1fn_x2, "cuact.", op,
                ": scale_type e4m3 (NVFP4) writes float4_e2m1fn_x2 codes, not ", dtype);
    TORCH_CHECK(tensor_scale, "cuact.", op,
                ": scale_type e4m3 (NVFP4) needs tensor_scale (one float32 element)");
    check_scale_word(*tensor_scale, x, "tensor_scale", op);
    r.b.tensor_scale = tensor_scale->data_ptr<float>();
  } else {
    TORCH_CHECK(dtype != at::kFloat4_e2m1fn_x2, "cuact.", op,
                ": float4_e2m1fn_x2 codes take scale_type e4m3 (NVFP4)");
    r.b.dtype = fp8_of(dtype, op);
    TORCH_CHECK(!tensor_scale, "cuact.", op,
                ": tensor_scale belongs to scale_type e4m3 (NVFP4)");
  }
  // out of int's range stays out of cuact's block sizes: it refuses it with its message
  r.b.block = static_cast<int>(std::clamp<int64_t>(block, std::numeric_limits<int>::min(),
                                                   std::numeric_limits<int>::max()));
  size_t bytes = 0;
  raise_if_failed(cuact::block_scales_size(r.b, rows, cols, &bytes), op);
  const bool f32 = r.b.scale_type == cuact::BlockScale::f32;
  const at::ScalarType scale_dtype = f32 ? at::kFloat
                                     : fp4 ? at::kFloat8_e4m3fn
                                           : at::kFloat8_e8m0fnu;
  const int64_t groups = (cols + r.b.block - 1) / r.b.block;
  const int64_t entries = static_cast<int64_t>(bytes / (f32 ? 4 : 1));
  switch (r.b.scale_layout) {
    case cuact::ScaleLayout::row_major:
      r.scales = at::empty({rows, groups}, x.options().dtype(scale_dtype));
      break;
    case cuact::ScaleLayout::column_major:
      r.scales = at::empty({groups, rows}, x.options().dtype(scale_dtype));
      break;
    case cuact::ScaleLayout::column_major_packed: {  // words [groups / 4][R4], shown transposed
      const int64_t words = (groups + 3) / 4, padded_rows = (rows + 3) / 4 * 4;
      TORCH_INTERNAL_ASSERT(static_cast<int64_t>(bytes) == words * padded_rows * 4);
      r.scales = at::zeros({words * padded_rows}, x.options().dtype(at::kInt))
                     .as_strided({rows, words}, {1, padded_rows});
      break;
    }
    default:  // cuact writes no padding: zeros (as bytes), so the result is deterministic
      r.scales = at::zeros({entries}, x.options().dtype(f32 ? at::kFloat : at::kByte))
                     .view(scale_dtype);
  }
  // NVFP4: two codes a byte (an odd cols is refused by the call, before it writes)
  std::vector<int64_t> code_sizes = sizes.vec();
  if (fp4 && !code_sizes.empty()) code_sizes.back() /= 2;
  r.data = at::empty(code_sizes, x.options().dtype(dtype));
  r.amax = at::empty({}, x.options().dtype(at::kFloat));
  r.b.data = r.data.data_ptr();
  r.b.scales = r.scales.data_ptr();
  r.b.amax = r.amax.data_ptr<float>();
  return r;
}

std::tuple<Tensor, Tensor, Tensor> bias_activation_block_fp8_op(
    const Tensor& x, c10::string_view kind, at::ArrayRef<double> params,
    const c10::optional<Tensor>& bias, at::ScalarType dtype, int64_t block,
    c10::string_view scale_type, c10::string_view scale_layout,
    const c10::optional<Tensor>& tensor_scale) {
  const char* op = "bias_activation_block_fp8";
  check_block_input(x, op);
  if (bias) {
    check_parameter(x, *bias, "bias", op);
    check_bias_size(x, *bias, op);
  }
  const cuact::Activation act = activation_of(kind, params, op);
  const int64_t rows = leading_rows(x), cols = x.size(-1);
  BlockScaled r = block_scaled_outputs(x, x.sizes(), rows, cols, dtype, block, scale_type,
                                       scale_layout, tensor_scale, op);
  const cuact::DType dt = dtype_of(x, op);
  const cuact::DType bt = bias ? dtype_of(*bias, op) : dt;
  const void* b = bias ? bias->data_ptr() : nullptr;
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(cuact::bias_activation_forward(act, dt, x.data_ptr(), b, bt, r.b, rows, cols,
                                                   stream_of(x)),
                    op);
  } else {
    raise_if_failed(
        cuact::reference::bias_activation_forward(act, dt, x.data_ptr(), b, bt, r.b, rows, cols),
        op);
  }
  return r.outputs();
}

std::tuple<Tensor, Tensor, Tensor> glu_block_fp8_op(
    const Tensor& x, c10::string_view kind, at::ArrayRef<double> params, bool gate_first,
    at::ScalarType dtype, int64_t block, c10::string_view scale_type,
    c10::string_view scale_layout, const c10::optional<Tensor>& tensor_scale) {
  const char* op = "glu_block_fp8";
  check_block_input(x, op);
  const cuact::Glu glu = glu_of(kind, params, gate_first, op);
  int64_t rows = 0, d = 0;
  glu_shape(x, rows, d, op);
  rows = leading_rows(x);  // the scale matrix's rows, also where d is 0
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = d;
  BlockScaled r = block_scaled_outputs(x, sizes, rows, d, dtype, block, scale_type, scale_layout,
                                       tensor_scale, op);
  if (x.is_cuda()) {
    c10::DeviceGuard guard(x.device());
    raise_if_failed(
        cuact::glu_forward(glu, dtype_of(x, op), x.data_ptr(), r.b, rows, d, stream_of(x)), op);
  } else {
    raise_if_failed(
        cuact::reference::glu_forward(glu, dtype_of(x, op), x.data_ptr(), r.b, rows, d), op);
  }
  return r.outputs();
}

// ------------------------------------------------------------ cross-entropy (cross_entropy.h)

// The softmax cross-entropy of logits [rows, classes] (float32, float16,
// bfloat16) against class indices [rows] (int32 or int64) with
// cuact::CrossEntropy's options (docs/SPEC.md, "Cross-entropy"). Returns
// (loss, lse, z_loss, dlogits): loss float32 [rows] (reduction "none") or
// 0-d (the sum or the mean); lse and z_loss float32 [rows]; dlogits, the
// gradient of the reduced loss (none: of the rows' sum), in the logits'
// dtype and row stride, written in the same pass (the fused mode).
// cross_entropy_inplace writes dlogits over the logits themselves (the
// device call and the reference both take dlogits == logits) and returns
// (loss, lse, z_loss).
// A target that is neither a class nor ignore_index: on CUDA the device call
// flags it in its bad_targets word, and the op queues torch's asynchronous
// assertion on that word (at::_assert_async, no host synchronization, CUDA
// graph capturable): a device-side assert, as torch's own cross_entropy
// raises for such a target (its row's loss and dlogits are NaN, and the CUDA
// context is lost, as there). CPU: a RuntimeError naming the target and its
// row, before anything is written. float64 is refused (the reference takes
// the dtypes the kernels take).

constexpr Named<cuact::Reduction> kReductions[] = {{"none", cuact::Reduction::none},
                                                   {"sum", cuact::Reduction::sum},
                                                   {"mean", cuact::Reduction::mean}};
constexpr Named<cuact::LabelSmoothing> kSmoothingForms[] = {
    {"pytorch", cuact::LabelSmoothing::pytorch}, {"megatron", cuact::LabelSmoothing::megatron}};

// The logits' row stride: 2-D rows whose last dimension is dense keep theirs
// (dlogits takes it too); any other layout must be contiguous. The fake
// kernel (cuact/_ops.py, cross_entropy_row_stride) decides the same way.
int64_t logits_row_stride(const Tensor& x, const char* op) {
  TORCH_CHECK(x.dim() == 2, "cuact.", op, ": logits must be 2-D [rows, classes], got ", x.dim(),
              " dimensions");
  if (x.stride(1) == 1 && x.stride(0) >= x.size(1)) return x.stride(0);
  TORCH_CHECK(x.is_contiguous(), "cuact.", op,
              ": logits must have a dense last dimension, rows at least a row apart");
  return x.size(1);
}

// A 1-D tensor of `n` elements on the logits' device, contiguous.
void check_vector(const Tensor& v, const Tensor& logits, int64_t n, const char* what,
                  const char* of, const char* op) {
  TORCH_CHECK(v.device() == logits.device(), "cuact.", op, ": ", what, " is on ", v.device(),
              ", the logits on ", logits.device());
  TORCH_CHECK(v.dim() == 1 && v.size(0) == n && v.is_contiguous(), "cuact.", op, ": ", what,
              " must be a contiguous 1-D tensor of the logits' ", n, " ", of, ", got shape ",
              v.sizes());
}

// The CPU path's target check, with the message torch's kernels give for
// the same mistake ("out of bounds") and the row it is in.
template <typename I>
void check_targets_on_host(const Tensor& targets, int64_t classes, int64_t ignore_index,
                           const char* op) {
  const I* t = targets.data_ptr<I>();
  for (int64_t r = 0; r < targets.numel(); ++r) {
    const int64_t v = t[r];
    TORCH_CHECK(v == ignore_index || (v >= 0 && v < classes), "cuact.", op, ": target ", v,
                " (row ", r, ") is out of bounds: neither a class in [0, ", classes,
                ") nor ignore_index (", ignore_index, ")");
  }
}

// The shared body of cross_entropy and cross_entropy_inplace: dlogits is a
// new tensor, or (in_place) the logits themselves. Returns (loss, lse,
// z_loss, dlogits).
std::tuple<Tensor, Tensor, Tensor, Tensor> run_cross_entropy(
    const Tensor& logits, const Tensor& targets, const c10::optional<Tensor>& weight,
    int64_t ignore_index, c10::string_view reduction, double label_smoothing,
    c10::string_view smoothing, double z_loss, double softcap, double logit_scale,
    bool empty_mean_is_zero, bool in_place, const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(!is_f64(logits), "cuact.", op,
                              ": float64 logits are not supported (float32, float16, bfloat16)");
  const cuact::DType dt = dtype_of(logits, op);
  const int64_t row_stride = logits_row_stride(logits, op);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  TORCH_CHECK_TYPE(targets.scalar_type() == at::kInt || targets.scalar_type() == at::kLong,
                   "cuact.", op, ": targets are ", targets.scalar_type(),
                   "; they must be int32 or int64 class indices");
  check_vector(targets, logits, rows, "targets", "rows", op);
  cuact::CrossEntropy ce;
  ce.ignore_index = ignore_index;
  if (weight) {
    const at::ScalarType w = weight->scalar_type();
    TORCH_CHECK_TYPE(w == at::kFloat || w == at::kHalf || w == at::kBFloat16, "cuact.", op,
                     ": weight is ", w, "; it takes float32, float16 or bfloat16");
    check_vector(*weight, logits, classes, "weight", "classes", op);
    ce.weight = weight->data_ptr();
    ce.weight_dtype = dtype_of(*weight, op);
  }
  ce.reduction = named(reduction, kReductions, "reduction", op);
  ce.smoothing_form = named(smoothing, kSmoothingForms, "label smoothing form", op);
  // cuact's options are fp32 (the others' ranges are cuact's to check); a
  // softcap that rounds to 0 would silently mean "no cap"
  TORCH_CHECK(!(softcap > 0 && static_cast<float>(softcap) == 0.0f), "cuact.", op, ": softcap ",
              softcap, " rounds to 0 in float32 (0 means no cap)");
  ce.label_smoothing = static_cast<float>(label_smoothing);
  ce.z_loss = static_cast<float>(z_loss);
  ce.softcap = static_cast<float>(softcap);
  ce.logit_scale = static_cast<float>(logit_scale);
  ce.empty_mean_is_zero = empty_mean_is_zero;

  const auto words = logits.options().dtype(at::kFloat);
  const bool none = ce.reduction == cuact::Reduction::none;
  Tensor loss = none ? at::empty({rows}, words) : at::empty({}, words);
  Tensor lse = at::empty({rows}, words), zl = at::empty({rows}, words);
  Tensor dlogits =
      in_place ? logits : at::empty_strided({rows, classes}, {row_stride, 1}, logits.options());
  cuact::CrossEntropyOutputs out;
  (none ? out.loss : out.reduced) = loss.data_ptr<float>();  // a sum or mean: the reduced word
  out.lse = lse.data_ptr<float>();
  out.z_loss = zl.data_ptr<float>();
  out.dlogits = dlogits.data_ptr();
  const cuact::IndexType index =
      targets.scalar_type() == at::kInt ? cuact::IndexType::i32 : cuact::IndexType::i64;
  if (logits.is_cuda()) {
    c10::DeviceGuard guard(logits.device());
    // the bad-target word (written by the count step; no row, no bad target)
    Tensor bad;
    if (rows > 0) {
      bad = at::empty({1}, logits.options().dtype(at::kInt));
      out.bad_targets = bad.data_ptr<int32_t>();
    }
    size_t bytes = 0;
    raise_if_failed(cuact::cross_entropy_forward_workspace_size(ce, rows, out, &bytes), op);
    Tensor scratch;
    const cuact::Workspace ws = workspace_of(logits, bytes, scratch);
    raise_if_failed(cuact::cross_entropy_forward(ce, dt, logits.data_ptr(), rows, classes,
                                                 row_stride, targets.data_ptr(), index, out, ws,
                                                 stream_of(logits)),
                    op);
    if (rows > 0)  // queued on the stream: no host synchronization
      at::_assert_async(bad.eq(0),
                        "cuact.cross_entropy: a target is out of bounds (neither a class in "
                        "[0, classes) nor ignore_index)");
  } else {
    if (index == cuact::IndexType::i32)
      check_targets_on_host<int32_t>(targets, classes, ignore_index, op);
    else
      check_targets_on_host<int64_t>(targets, classes, ignore_index, op);
    raise_if_failed(cuact::reference::cross_entropy_forward(ce, dt, logits.data_ptr(), rows,
                                                            classes, row_stride,
                                                            targets.data_ptr(), index, out),
                    op);
  }
  return {loss, lse, zl, dlogits};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> cross_entropy_op(
    const Tensor& logits, const Tensor& targets, const c10::optional<Tensor>& weight,
    int64_t ignore_index, c10::string_view reduction, double label_smoothing,
    c10::string_view smoothing, double z_loss, double softcap, double logit_scale,
    bool empty_mean_is_zero) {
  return run_cross_entropy(logits, targets, weight, ignore_index, reduction, label_smoothing,
                           smoothing, z_loss, softcap, logit_scale, empty_mean_is_zero, false,
                           "cross_entropy");
}

// The in-place form: dlogits over the logits (their row stride, as the
// functional form would give them); (loss, lse, z_loss).
std::tuple<Tensor, Tensor, Tensor> cross_entropy_inplace_op(
    const Tensor& logits, const Tensor& targets, const c10::optional<Tensor>& weight,
    int64_t ignore_index, c10::string_view reduction, double label_smoothing,
    c10::string_view smoothing, double z_loss, double softcap, double logit_scale,
    bool empty_mean_is_zero) {
  auto [loss, lse, zl, dlogits] = run_cross_entropy(
      logits, targets, weight, ignore_index, reduction, label_smoothing, smoothing, z_loss,
      softcap, logit_scale, empty_mean_is_zero, true, "cross_entropy_inplace");
  return {loss, lse, zl};
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
  // the GLU of MoE experts: clamps (limit inf: none), a routing weight per row
  // (optional) and the layout (interleave 0: split halves; k: blocks of k
  // columns of each half, gpt-oss's k = 1), and the expert rows (counts:
  // masked, offsets: grouped; none: every row). The backward's interleave
  // follows need_dweight: defaulted arguments must come last.
  m.def(
      "moe_glu(Tensor x, Tensor? weight, str kind, float[] params, bool gate_first, float limit, "
      "float offset, int interleave=0, Tensor? counts=None, Tensor? offsets=None) -> Tensor");
  m.def(
      "moe_glu_backward(Tensor x, Tensor? weight, Tensor dy, str kind, float[] params, "
      "bool gate_first, float limit, float offset, bool need_dweight, int interleave=0, "
      "Tensor? counts=None, Tensor? offsets=None) -> (Tensor, Tensor)");
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
  m.def(
      "softmax_backward(Tensor y, Tensor dy, int dim, str kind, float scale, Tensor? mask, "
      "int mask_rows, int mask_row_repeat, int causal_rows, int causal_offset) -> Tensor");
  // fp8 outputs: (data, scale, amax, scale_inv[, used | dbias]); no scale: the current recipe.
  m.def(
      "activation_fp8(Tensor x, str kind, float[] params, ScalarType dtype, Tensor? scale, "
      "int margin, bool power_of_two) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "activation_backward_fp8(Tensor x, Tensor dy, str kind, float[] params, ScalarType dtype, "
      "Tensor? scale, int margin, bool power_of_two) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "activation_backward_from_output_fp8(Tensor y, Tensor dy, str kind, float[] params, "
      "ScalarType dtype, Tensor? scale, int margin, bool power_of_two) -> "
      "(Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "bias_activation_fp8(Tensor x, Tensor? bias, str kind, float[] params, float p, "
      "Tensor? seed_offset, ScalarType dtype, Tensor? scale, int margin, bool power_of_two) -> "
      "(Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "bias_activation_backward_fp8(Tensor x, Tensor? bias, Tensor dy, str kind, float[] params, "
      "ScalarType dtype, Tensor? scale, int margin, bool power_of_two) -> "
      "(Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "glu_fp8(Tensor x, str kind, float[] params, bool gate_first, ScalarType dtype, "
      "Tensor? scale, int margin, bool power_of_two) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "softmax_fp8(Tensor x, int dim, str kind, float softmax_scale, Tensor? mask, "
      "int mask_rows, int mask_row_repeat, int causal_rows, int causal_offset, "
      "ScalarType dtype, Tensor? scale, int margin, bool power_of_two) -> "
      "(Tensor, Tensor, Tensor, Tensor)");
  // block-scaled outputs (fp8; NVFP4 with scale_type e4m3 and its tensor_scale):
  // (codes, scales, amax)
  m.def(
      "bias_activation_block_fp8(Tensor x, str kind, float[] params, Tensor? bias, "
      "ScalarType dtype, int block, str scale_type, str scale_layout, "
      "Tensor? tensor_scale=None) -> (Tensor, Tensor, Tensor)");
  m.def(
      "glu_block_fp8(Tensor x, str kind, float[] params, bool gate_first, ScalarType dtype, "
      "int block, str scale_type, str scale_layout, Tensor? tensor_scale=None) -> "
      "(Tensor, Tensor, Tensor)");
  // softmax cross-entropy (fused: dlogits in the same pass): (loss, lse, z_loss, dlogits)
  m.def(
      "cross_entropy(Tensor logits, Tensor targets, Tensor? weight, int ignore_index, "
      "str reduction, float label_smoothing, str smoothing, float z_loss, float softcap, "
      "float logit_scale, bool empty_mean_is_zero) -> (Tensor, Tensor, Tensor, Tensor)");
  // the same with dlogits written over the logits (in place): (loss, lse, z_loss)
  m.def(
      "cross_entropy_inplace(Tensor(a!) logits, Tensor targets, Tensor? weight, "
      "int ignore_index, str reduction, float label_smoothing, str smoothing, float z_loss, "
      "float softcap, float logit_scale, bool empty_mean_is_zero) -> (Tensor, Tensor, Tensor)");
}

#define CUACT_REGISTER_KERNELS(m)                                                  \
  m.impl("activation", &activation_op);                                            \
  m.impl("activation_backward", &activation_backward_op);                          \
  m.impl("activation_backward_from_output", &activation_backward_from_output_op);  \
  m.impl("bias_activation", &bias_activation_op);                                  \
  m.impl("bias_activation_backward", &bias_activation_backward_op);                \
  m.impl("glu", &glu_op);                                                          \
  m.impl("glu_backward", &glu_backward_op);                                        \
  m.impl("moe_glu", &moe_glu_op);                                                  \
  m.impl("moe_glu_backward", &moe_glu_backward_op);                                \
  m.impl("prelu", &prelu_op);                                                      \
  m.impl("prelu_backward", &prelu_backward_op);                                    \
  m.impl("rrelu", &rrelu_op);                                                      \
  m.impl("rrelu_backward", &rrelu_backward_op);                                    \
  m.impl("softmax", &softmax_op);                                                  \
  m.impl("softmax_backward", &softmax_backward_op);                                \
  m.impl("activation_fp8", &activation_fp8_op);                                    \
  m.impl("activation_backward_fp8", &activation_backward_fp8_op);                  \
  m.impl("activation_backward_from_output_fp8",                                   \
         &activation_backward_from_output_fp8_op);                                 \
  m.impl("bias_activation_fp8", &bias_activation_fp8_op);                          \
  m.impl("bias_activation_backward_fp8", &bias_activation_backward_fp8_op);        \
  m.impl("glu_fp8", &glu_fp8_op);                                                  \
  m.impl("softmax_fp8", &softmax_fp8_op);                                          \
  m.impl("bias_activation_block_fp8", &bias_activation_block_fp8_op);              \
  m.impl("glu_block_fp8", &glu_block_fp8_op);                                      \
  m.impl("cross_entropy", &cross_entropy_op);                                      \
  m.impl("cross_entropy_inplace", &cross_entropy_inplace_op)

// One kernel per operator serves both keys: it branches on the tensors' device.
TORCH_LIBRARY_IMPL(cuact, CPU, m) { CUACT_REGISTER_KERNELS(m); }
TORCH_LIBRARY_IMPL(cuact, CUDA, m) { CUACT_REGISTER_KERNELS(m); }

// cross_entropy_inplace has no derivative of its own: cuact.functional's
// inplace_backward wraps it in an autograd.Function (cuact/_autograd.py,
// CrossEntropyInplace) whose forward runs it with grad mode off. Its Autograd
// kernel refuses a call that would be recorded (grad mode on, an argument
// that requires grad), as nothing would carry the gradient; its
// ADInplaceOrView kernel bumps the logits' version counter (the op does not
// return them, so torch's fallbacks would not): a backward that saved the
// old logits raises "modified by an inplace operation" instead of computing
// with the gradient written over them.
namespace {

void cross_entropy_inplace_autograd(const c10::OperatorHandle& op, c10::DispatchKeySet keys,
                                    torch::jit::Stack* stack) {
  const size_t n = op.schema().arguments().size();
  bool requires_grad = false;
  for (const c10::IValue& v : torch::jit::last(*stack, n))
    requires_grad = requires_grad || (v.isTensor() && v.toTensor().requires_grad());
  TORCH_CHECK(!(requires_grad && at::GradMode::is_enabled()),
              "cuact.cross_entropy_inplace has no derivative (it writes dlogits over the "
              "logits): call it under torch.no_grad() or on tensors that do not require grad, "
              "or use cuact.functional.cross_entropy(..., inplace_backward=True)");
  at::AutoDispatchBelowAutograd guard;
  op.redispatchBoxed(keys & c10::after_autograd_keyset, stack);
}

void cross_entropy_inplace_version(const c10::OperatorHandle& op, c10::DispatchKeySet keys,
                                   torch::jit::Stack* stack) {
  const Tensor logits = torch::jit::peek(*stack, 0, op.schema().arguments().size()).toTensor();
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.redispatchBoxed(keys & c10::after_ADInplaceOrView_keyset, stack);
  }
  logits.unsafeGetTensorImpl()->bump_version();
}

}  // namespace

TORCH_LIBRARY_IMPL(cuact, Autograd, m) {
  m.impl("cross_entropy_inplace",
         torch::CppFunction::makeFromBoxedFunction<&cross_entropy_inplace_autograd>());
}
TORCH_LIBRARY_IMPL(cuact, ADInplaceOrView, m) {
  m.impl("cross_entropy_inplace",
         torch::CppFunction::makeFromBoxedFunction<&cross_entropy_inplace_version>());
}
