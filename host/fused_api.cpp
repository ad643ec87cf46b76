// The fused entry points: check, map the call onto the row engine, dispatch
// once, map the CUDA result.
#include <cuda_runtime_api.h>

#include "cuda_status.h"
#include "fused_calls.h"
#include "fused_checks.h"
#include "fused_forms.h"

namespace cuact {

namespace detail {

const FusedTable& fused_table(DType dtype) {
  switch (dtype) {
    case DType::f16: return fused_table_f16();
    case DType::bf16: return fused_table_bf16();
    default: return fused_table_f32();
  }
}

namespace {

int64_t elem(DType dtype) { return static_cast<int64_t>(dtype_size(dtype)); }

const void* offset(const void* p, int64_t elements, DType dtype) {
  return static_cast<const char*>(p) + elements * elem(dtype);
}
void* offset(void* p, int64_t elements, DType dtype) {
  return static_cast<char*>(p) + elements * elem(dtype);
}

void set_dropout(FusedCall& c, const Dropout& dropout) {
  c.dropout = make_dropout_rule(dropout.p);
  c.use_random = dropout.p > 0.0f && dropout.p < 1.0f;
  c.random = {dropout.seed, dropout.offset};
}

void set_bias(FusedCall& c, const void* bias) {
  if (bias != nullptr) {
    c.param = bias;
    c.param_mode = ParamMode::by_column;
  } else {
    c.param_fill = kNoBias;
  }
}

// Where the activated half and the other half of a GLU row start.
int64_t gated_offset(const Glu& glu, int64_t d) { return glu.gated == GatedHalf::first ? 0 : d; }
int64_t linear_offset(const Glu& glu, int64_t d) { return glu.gated == GatedHalf::first ? d : 0; }

}  // namespace

FusedLaunch bias_activation_forward_launch(const Activation& act, DType, const void* x,
                                           const void* bias, void* y, int64_t rows, int64_t cols,
                                           const Dropout& dropout, uint8_t* mask) {
  FusedLaunch l;
  l.op = FusedOp::activation_forward;
  FusedCall& c = l.call;
  c.rows = rows;
  c.cols = cols;
  c.in[0] = x;
  c.in_stride[0] = cols;
  c.in_fill[1] = kNoGate;
  c.out[0] = y;
  c.out_stride[0] = cols;
  set_bias(c, bias);
  c.mask = mask;
  c.act = act;
  set_dropout(c, dropout);
  return l;
}

FusedLaunch bias_activation_backward_launch(const Activation& act, DType, const void* x,
                                            const void* bias, const void* dy, void* dx,
                                            void* dbias, int64_t rows, int64_t cols,
                                            const Dropout& dropout, void* workspace) {
  FusedLaunch l;
  l.op = FusedOp::activation_backward;
  FusedCall& c = l.call;
  c.rows = rows;
  c.cols = cols;
  c.in[0] = x;
  c.in_stride[0] = cols;
  c.in[1] = dy;
  c.in_stride[1] = cols;
  c.out[0] = dx;
  c.out_stride[0] = cols;
  set_bias(c, bias);
  c.act = act;
  set_dropout(c, dropout);
  if (dbias != nullptr) {
    c.reduce = ReduceMode::by_column;
    c.reduce_out = dbias;
    c.workspace = workspace;
  }
  return l;
}

FusedLaunch glu_forward_launch(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows,
                               int64_t d) {
  FusedLaunch l;
  l.op = FusedOp::activation_forward;
  FusedCall& c = l.call;
  c.rows = rows;
  c.cols = d;
  c.in[0] = offset(x, gated_offset(glu, d), dtype);
  c.in_stride[0] = 2 * d;
  c.in[1] = offset(x, linear_offset(glu, d), dtype);
  c.in_stride[1] = 2 * d;
  c.out[0] = y;
  c.out_stride[0] = d;
  c.param_fill = kNoBias;
  c.act = glu.act;
  set_dropout(c, Dropout{});
  return l;
}

FusedLaunch glu_backward_launch(const Glu& glu, DType dtype, const void* x, const void* dy,
                                void* dx, int64_t rows, int64_t d) {
  FusedLaunch l;
  l.op = FusedOp::gated_backward;
  FusedCall& c = l.call;
  c.rows = rows;
  c.cols = d;
  c.in[0] = offset(x, gated_offset(glu, d), dtype);
  c.in_stride[0] = 2 * d;
  c.in[1] = dy;
  c.in_stride[1] = d;
  c.in[2] = offset(x, linear_offset(glu, d), dtype);
  c.in_stride[2] = 2 * d;
  c.out[0] = offset(dx, gated_offset(glu, d), dtype);
  c.out_stride[0] = 2 * d;
  c.out[1] = offset(dx, linear_offset(glu, d), dtype);
  c.out_stride[1] = 2 * d;
  c.act = glu.act;
  return l;
}

PreluLayout prelu_layout(int64_t outer, int64_t channels, int64_t inner) {
  if (inner == 1) return {outer, channels, ParamMode::by_column, ReduceMode::by_column};
  return {outer * channels, inner, ParamMode::by_row_channel, ReduceMode::by_row_channel};
}

namespace {

FusedCall prelu_call(DType, const void* x, const void* weight, void* out, int64_t outer,
                     int64_t channels, int64_t inner) {
  const PreluLayout layout = prelu_layout(outer, channels, inner);
  FusedCall c;
  c.rows = layout.rows;
  c.cols = layout.cols;
  c.in[0] = x;
  c.in_stride[0] = layout.cols;
  c.out[0] = out;
  c.out_stride[0] = layout.cols;
  c.param = weight;
  c.param_mode = layout.param;
  c.channels = channels;
  c.slope = SlopeRule{0.0f, 0.0f, false};  // the weight itself, x > 0 linear
  return c;
}

}  // namespace

FusedLaunch prelu_forward_launch(DType dtype, const void* x, const void* weight, void* y,
                                 int64_t outer, int64_t channels, int64_t inner) {
  return {FusedOp::slope_forward, prelu_call(dtype, x, weight, y, outer, channels, inner)};
}

FusedLaunch prelu_backward_launch(DType dtype, const void* x, const void* weight, const void* dy,
                                  void* dx, void* dweight, int64_t outer, int64_t channels,
                                  int64_t inner, void* workspace) {
  FusedLaunch l{FusedOp::slope_backward, prelu_call(dtype, x, weight, dx, outer, channels, inner)};
  FusedCall& c = l.call;
  c.in[1] = dy;
  c.in_stride[1] = c.cols;
  if (dweight != nullptr) {
    c.reduce = prelu_layout(outer, channels, inner).reduce;
    c.reduce_out = dweight;
    c.workspace = workspace;
  }
  return l;
}

FusedLaunch rrelu_launch(const Rrelu& rrelu, DType, const void* x, const void* dy, void* out,
                         int64_t n, bool backward) {
  FusedLaunch l;
  l.op = backward ? FusedOp::slope_backward : FusedOp::slope_forward;
  FusedCall& c = l.call;
  c.rows = 1;
  c.cols = n;
  c.in[0] = x;
  c.in_stride[0] = n;
  c.in[1] = backward ? dy : nullptr;
  c.in_stride[1] = n;
  c.out[0] = out;
  c.out_stride[0] = n;
  if (rrelu.training) {
    // slope = lower + (upper - lower) * u, from the element's word.
    c.param_fill = rrelu.lower;
    c.slope = SlopeRule{rrelu.upper - rrelu.lower, rrelu.upper, true};
    c.use_random = true;
    c.random = {rrelu.seed, rrelu.offset};
  } else {
    c.param_fill = static_cast<float>((static_cast<double>(rrelu.lower) + rrelu.upper) / 2.0);
    c.slope = SlopeRule{0.0f, 0.0f, true};
  }
  return l;
}

int64_t bias_backward_workspace(DType dtype, int64_t rows, int64_t cols) {
  return reduction_workspace_bytes(rows, cols, static_cast<int>(elem(dtype)), ReduceMode::by_column,
                                   1);
}

int64_t prelu_backward_workspace(DType dtype, int64_t outer, int64_t channels, int64_t inner) {
  if (outer == 0 || channels == 0 || inner == 0) return 0;
  const PreluLayout layout = prelu_layout(outer, channels, inner);
  return reduction_workspace_bytes(layout.rows, layout.cols, static_cast<int>(elem(dtype)),
                                   layout.reduce, channels);
}

Status run_fused(DType dtype, const FusedLaunch& launch, cudaStream_t stream) {
  const FusedTable& table = fused_table(dtype);
  const FusedLaunchers& row =
      launch.op == FusedOp::slope_forward || launch.op == FusedOp::slope_backward
          ? table.slope
          : table.activation[static_cast<int>(launch.call.act.kind)];
  FusedLauncher launcher = nullptr;
  switch (launch.op) {
    case FusedOp::activation_forward:
    case FusedOp::slope_forward: launcher = row.forward; break;
    case FusedOp::activation_backward:
    case FusedOp::slope_backward: launcher = row.backward; break;
    case FusedOp::gated_backward: launcher = row.gated_backward; break;
  }
  if (launcher == nullptr) return {StatusCode::unsupported, "no fused kernel for this call"};
  return status_from_cuda(launcher(launch.call, stream), "launching the fused kernel failed");
}

namespace {

Status clear(void* p, int64_t bytes, cudaStream_t stream) {
  return status_from_cuda(cudaMemsetAsync(p, 0, static_cast<size_t>(bytes), stream),
                          "clearing the reduction output failed");
}

Status workspace_too_big() {
  return {StatusCode::invalid_size, "the reduction's workspace does not fit in the address space"};
}

}  // namespace

}  // namespace detail

// ---------------------------------------------------------------- bias + activation

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               void* y, int64_t rows, int64_t cols, const Dropout& dropout,
                               uint8_t* mask, cudaStream_t stream) {
  if (Status s = detail::check_bias_activation_forward(act, dtype, x, bias, y, rows, cols, dropout,
                                                       mask);
      !s.ok())
    return s;
  if (rows == 0 || cols == 0) return {};
  return detail::run_fused(dtype, detail::bias_activation_forward_launch(act, dtype, x, bias, y,
                                                                         rows, cols, dropout, mask),
                           stream);
}

Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                const void* dy, void* dx, void* dbias, int64_t rows, int64_t cols,
                                const Dropout& dropout, void* workspace, size_t workspace_bytes,
                                cudaStream_t stream) {
  if (Status s = detail::check_bias_activation_backward(act, dtype, x, bias, dy, dx, dbias, rows,
                                                        cols, dropout);
      !s.ok())
    return s;
  if (cols == 0) return {};
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
  if (rows == 0) return dbias != nullptr ? detail::clear(dbias, cols * elem, stream) : Status{};
  if (dbias != nullptr) {
    const int64_t bytes = rows * cols * elem;
    const void* buffers[] = {x, bias, dy, dx, dbias};
    const int64_t sizes[] = {bytes, cols * elem, bytes, bytes, cols * elem};
    if (Status s = detail::check_workspace(workspace, workspace_bytes,
                                           detail::bias_backward_workspace(dtype, rows, cols),
                                           buffers, sizes, 5);
        !s.ok())
      return s;
  }
  return detail::run_fused(
      dtype,
      detail::bias_activation_backward_launch(act, dtype, x, bias, dy, dx, dbias, rows, cols,
                                              dropout, workspace),
      stream);
}

Status bias_activation_backward_workspace_size(DType dtype, int64_t rows, int64_t cols,
                                               size_t* workspace_bytes) {
  if (workspace_bytes == nullptr) return {StatusCode::null_pointer, "workspace_bytes is null"};
  if (dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16)
    return {StatusCode::invalid_parameter, "unknown dtype"};
  if (rows < 0) return {StatusCode::invalid_size, "rows is negative"};
  if (cols < 0) return {StatusCode::invalid_size, "cols is negative"};
  int64_t bytes = 0;  // x [rows, cols] and dbias [cols] must fit, whatever rows
  if (Status s = detail::checked_bytes(dtype, rows, cols, &bytes); !s.ok()) return s;
  if (Status s = detail::checked_bytes(dtype, cols, 1, &bytes); !s.ok()) return s;
  const int64_t needed = detail::bias_backward_workspace(dtype, rows, cols);
  if (needed < 0) return detail::workspace_too_big();
  *workspace_bytes = static_cast<size_t>(needed);
  return {};
}

Status activation_dropout_forward(const Activation& act, DType dtype, const void* x, void* y,
                                  int64_t n, const Dropout& dropout, uint8_t* mask,
                                  cudaStream_t stream) {
  if (n < 0) return {StatusCode::invalid_size, "n is negative"};
  return bias_activation_forward(act, dtype, x, nullptr, y, n == 0 ? 0 : 1, n, dropout, mask,
                                 stream);
}

Status activation_dropout_backward(const Activation& act, DType dtype, const void* x,
                                   const void* dy, void* dx, int64_t n, const Dropout& dropout,
                                   cudaStream_t stream) {
  if (n < 0) return {StatusCode::invalid_size, "n is negative"};
  return bias_activation_backward(act, dtype, x, nullptr, dy, dx, nullptr, n == 0 ? 0 : 1, n,
                                  dropout, nullptr, 0, stream);
}

// ---------------------------------------------------------------- GLU

Status glu_forward(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows, int64_t d,
                   cudaStream_t stream) {
  if (Status s = detail::check_glu_forward(glu, dtype, x, y, rows, d); !s.ok()) return s;
  if (rows == 0 || d == 0) return {};
  return detail::run_fused(dtype, detail::glu_forward_launch(glu, dtype, x, y, rows, d), stream);
}

Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy, void* dx,
                    int64_t rows, int64_t d, cudaStream_t stream) {
  if (Status s = detail::check_glu_backward(glu, dtype, x, dy, dx, rows, d); !s.ok()) return s;
  if (rows == 0 || d == 0) return {};
  return detail::run_fused(dtype, detail::glu_backward_launch(glu, dtype, x, dy, dx, rows, d),
                           stream);
}

// ---------------------------------------------------------------- PReLU

Status prelu_forward(DType dtype, const void* x, const void* weight, void* y, int64_t outer,
                     int64_t channels, int64_t inner, cudaStream_t stream) {
  if (Status s = detail::check_prelu_forward(dtype, x, weight, y, outer, channels, inner); !s.ok())
    return s;
  if (outer == 0 || channels == 0 || inner == 0) return {};
  return detail::run_fused(
      dtype, detail::prelu_forward_launch(dtype, x, weight, y, outer, channels, inner), stream);
}

Status prelu_backward(DType dtype, const void* x, const void* weight, const void* dy, void* dx,
                      void* dweight, int64_t outer, int64_t channels, int64_t inner,
                      void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (Status s = detail::check_prelu_backward(dtype, x, weight, dy, dx, dweight, outer, channels,
                                              inner);
      !s.ok())
    return s;
  if (channels == 0) return {};
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
  if (outer == 0 || inner == 0)
    return dweight != nullptr ? detail::clear(dweight, channels * elem, stream) : Status{};
  if (dweight != nullptr) {
    const int64_t bytes = outer * channels * inner * elem;
    const void* buffers[] = {x, weight, dy, dx, dweight};
    const int64_t sizes[] = {bytes, channels * elem, bytes, bytes, channels * elem};
    if (Status s = detail::check_workspace(
            workspace, workspace_bytes,
            detail::prelu_backward_workspace(dtype, outer, channels, inner), buffers, sizes, 5);
        !s.ok())
      return s;
  }
  return detail::run_fused(dtype,
                           detail::prelu_backward_launch(dtype, x, weight, dy, dx, dweight, outer,
                                                         channels, inner, workspace),
                           stream);
}

Status prelu_backward_workspace_size(DType dtype, int64_t outer, int64_t channels, int64_t inner,
                                     size_t* workspace_bytes) {
  if (workspace_bytes == nullptr) return {StatusCode::null_pointer, "workspace_bytes is null"};
  if (dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16)
    return {StatusCode::invalid_parameter, "unknown dtype"};
  if (outer < 0) return {StatusCode::invalid_size, "outer is negative"};
  if (channels < 0) return {StatusCode::invalid_size, "channels is negative"};
  if (inner < 0) return {StatusCode::invalid_size, "inner is negative"};
  int64_t bytes = 0;  // x [outer, channels, inner] and dweight [channels] must fit
  if (Status s = detail::checked_bytes(dtype, channels, 1, &bytes); !s.ok()) return s;
  if (Status s = detail::checked_bytes(dtype, outer, channels, &bytes); !s.ok()) return s;
  if (Status s = detail::checked_bytes(dtype, outer * channels, inner, &bytes); !s.ok()) return s;
  const int64_t needed = detail::prelu_backward_workspace(dtype, outer, channels, inner);
  if (needed < 0) return detail::workspace_too_big();
  *workspace_bytes = static_cast<size_t>(needed);
  return {};
}

// ---------------------------------------------------------------- RReLU

Status rrelu_forward(const Rrelu& rrelu, DType dtype, const void* x, void* y, int64_t n,
                     cudaStream_t stream) {
  if (Status s = detail::check_rrelu_call(rrelu, dtype, x, nullptr, y, n, false); !s.ok()) return s;
  if (n == 0) return {};
  return detail::run_fused(dtype, detail::rrelu_launch(rrelu, dtype, x, nullptr, y, n, false),
                           stream);
}

Status rrelu_backward(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* dx,
                      int64_t n, cudaStream_t stream) {
  if (Status s = detail::check_rrelu_call(rrelu, dtype, x, dy, dx, n, true); !s.ok()) return s;
  if (n == 0) return {};
  return detail::run_fused(dtype, detail::rrelu_launch(rrelu, dtype, x, dy, dx, n, true), stream);
}

}  // namespace cuact
