// The fused entry points: check, map the call onto the row engine
// (host/row_calls.h), which dispatches once and maps the CUDA result.
#include <cuda_runtime_api.h>

#include "cuda_status.h"
#include "fused_checks.h"
#include "row_calls.h"

namespace cuact {

namespace detail {

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
                               DType bias_dtype, void* y, int64_t rows, int64_t cols,
                               const Dropout& dropout, uint8_t* mask, cudaStream_t stream) {
  if (Status s = detail::check_bias_activation_forward(act, dtype, x, bias, bias_dtype, y, rows,
                                                       cols, dropout, mask);
      !s.ok())
    return s;
  if (rows == 0 || cols == 0) return {};
  return detail::run_rows(detail::bias_activation_forward_request(act, dtype, x, bias, bias_dtype,
                                                                  y, rows, cols, dropout, mask),
                          stream);
}

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               void* y, int64_t rows, int64_t cols, const Dropout& dropout,
                               uint8_t* mask, cudaStream_t stream) {
  return bias_activation_forward(act, dtype, x, bias, dtype, y, rows, cols, dropout, mask, stream);
}

Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, void* dx, void* dbias,
                                int64_t rows, int64_t cols, const Dropout& dropout,
                                Workspace workspace, cudaStream_t stream) {
  if (Status s = detail::check_bias_activation_backward(act, dtype, x, bias, bias_dtype, dy, dx,
                                                        dbias, rows, cols, dropout);
      !s.ok())
    return s;
  if (cols == 0) return {};
  const int64_t bias_bytes = cols * static_cast<int64_t>(dtype_size(bias_dtype));
  if (rows == 0) return dbias != nullptr ? detail::clear(dbias, bias_bytes, stream) : Status{};
  if (dbias != nullptr) {
    const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
    const int64_t bytes = rows * cols * elem;
    namespace buffer = detail::buffer;
    const detail::Buffer others[] = {
        {buffer::x, x, bytes, elem},        {buffer::bias, bias, bias_bytes, 1, false, false},
        {buffer::dy, dy, bytes, elem},      {buffer::dx, dx, bytes, elem, true},
        {buffer::dbias, dbias, bias_bytes, 1, true},
    };
    if (Status s = detail::check_workspace(workspace.data, workspace.bytes,
                                           detail::bias_backward_workspace(dtype, rows, cols),
                                           others, 5);
        !s.ok())
      return s;
  }
  return detail::run_rows(
      detail::bias_activation_backward_request(act, dtype, x, bias, bias_dtype, dy, dx, dbias,
                                               rows, cols, dropout, workspace.data),
      stream);
}

Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                const void* dy, void* dx, void* dbias, int64_t rows, int64_t cols,
                                const Dropout& dropout, Workspace workspace,
                                cudaStream_t stream) {
  return bias_activation_backward(act, dtype, x, bias, dtype, dy, dx, dbias, rows, cols, dropout,
                                  workspace, stream);
}

Status bias_activation_backward_workspace_size(DType dtype, int64_t rows, int64_t cols,
                                               size_t* workspace_bytes) {
  if (workspace_bytes == nullptr) return {StatusCode::null_pointer, "workspace_bytes is null"};
  if (Status s = detail::check_dtype(dtype); !s.ok()) return s;
  if (rows < 0) return {StatusCode::invalid_size, "rows is negative"};
  if (cols < 0) return {StatusCode::invalid_size, "cols is negative"};
  int64_t bytes = 0;  // x [rows, cols] and an f32 dbias [cols] must fit, whatever rows
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
  if (Status s = detail::checked_bytes(elem, rows, cols, 1, &bytes); !s.ok()) return s;
  if (Status s = detail::checked_bytes(4, cols, 1, 1, &bytes); !s.ok()) return s;
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
                                  dropout, Workspace{}, stream);
}

// ---------------------------------------------------------------- GLU

Status glu_forward(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows, int64_t d,
                   cudaStream_t stream) {
  if (Status s = detail::check_glu_forward(glu, dtype, x, y, rows, d); !s.ok()) return s;
  if (rows == 0 || d == 0) return {};
  return detail::run_rows(detail::glu_forward_request(glu, dtype, x, y, rows, d), stream);
}

Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy, void* dx,
                    int64_t rows, int64_t d, cudaStream_t stream) {
  if (Status s = detail::check_glu_backward(glu, dtype, x, dy, dx, rows, d); !s.ok()) return s;
  if (rows == 0 || d == 0) return {};
  return detail::run_rows(detail::glu_backward_request(glu, dtype, x, dy, dx, rows, d),
                           stream);
}

namespace {

// The weighted glu_forward, over expert rows where `experts` is set (there
// the weight is optional).
Status weighted_glu_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                            DType weight_dtype, void* y, int64_t rows, int64_t d,
                            const ExpertRows* experts, cudaStream_t stream) {
  const detail::GluWeights weights{experts == nullptr || weight != nullptr, weight, weight_dtype};
  if (Status s = detail::check_glu_forward(glu, dtype, x, y, rows, d, weights, experts); !s.ok())
    return s;
  if (rows == 0 || d == 0) return {};
  detail::RowRequest r = detail::glu_forward_request(glu, dtype, x, y, rows, d);
  if (weights.weighted) r = detail::weighted_glu_request(r, rows, weight, weight_dtype);
  if (experts != nullptr) r = detail::expert_rows_request(r, rows, *experts);
  return detail::run_rows(r, stream);
}

// The weighted glu_backward, over expert rows where `experts` is set
// (weighted: weight or dweight given; the plain weighted call always is).
Status weighted_glu_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                             DType weight_dtype, const void* dy, void* dx, void* dweight,
                             int64_t rows, int64_t d, const ExpertRows* experts,
                             Workspace workspace, cudaStream_t stream) {
  const bool weighted = experts == nullptr || weight != nullptr || dweight != nullptr;
  const detail::GluWeights weights{weighted, weight, weight_dtype, dweight};
  if (Status s = detail::check_glu_backward(glu, dtype, x, dy, dx, rows, d, weights, experts);
      !s.ok())
    return s;
  if (rows == 0) return {};
  const int64_t weight_bytes = rows * static_cast<int64_t>(dtype_size(weight_dtype));
  detail::RowRequest r = detail::glu_backward_request(glu, dtype, x, dy, dx, rows, d);
  if (d > 0 && dweight != nullptr) {
    const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
    const int64_t bytes = rows * 2 * d * elem;
    const bool masked = experts != nullptr && experts->counts != nullptr;
    namespace buffer = detail::buffer;
    const detail::Buffer others[] = {
        {buffer::x, x, bytes, elem},     {buffer::weight, weight, weight_bytes, 1},
        {buffer::dy, dy, bytes / 2, elem}, {buffer::dx, dx, bytes, elem, true},
        {buffer::dweight, dweight, weight_bytes, 1, true},
        {masked ? buffer::counts : buffer::offsets,
         experts == nullptr ? nullptr
         : masked           ? static_cast<const void*>(experts->counts)
                            : experts->offsets,
         experts == nullptr ? 0 : (experts->experts + (masked ? 0 : 1)) * 4, 4},
        {buffer::error_flag, experts == nullptr ? nullptr : experts->error, 4, 4, true, false},
    };
    if (Status s = detail::check_workspace(workspace.data, workspace.bytes,
                                           detail::glu_backward_workspace(glu, dtype, rows, d),
                                           others, 7);
        !s.ok())
      return s;
  }
  if (weighted)
    r = detail::weighted_glu_request(r, rows, weight, weight_dtype, dweight, workspace.data);
  if (experts != nullptr) r = detail::expert_rows_request(r, rows, *experts);
  if (d == 0) {
    if (dweight == nullptr) return {};
    return experts != nullptr ? detail::clear_expert_sums(r, rows, stream)
                              : detail::clear(dweight, weight_bytes, stream);
  }
  return detail::run_rows(r, stream);
}

}  // namespace

Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                    DType weight_dtype, const void* dy, void* dx, void* dweight, int64_t rows,
                    int64_t d, Workspace workspace, cudaStream_t stream) {
  return weighted_glu_backward(glu, dtype, x, weight, weight_dtype, dy, dx, dweight, rows, d,
                               nullptr, workspace, stream);
}

Status glu_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                   DType weight_dtype, void* y, int64_t rows, int64_t d, cudaStream_t stream) {
  return weighted_glu_forward(glu, dtype, x, weight, weight_dtype, y, rows, d, nullptr, stream);
}

Status glu_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                   DType weight_dtype, void* y, int64_t rows, int64_t d,
                   const ExpertRows& experts, cudaStream_t stream) {
  return weighted_glu_forward(glu, dtype, x, weight, weight_dtype, y, rows, d, &experts, stream);
}

Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                    DType weight_dtype, const void* dy, void* dx, void* dweight, int64_t rows,
                    int64_t d, const ExpertRows& experts, Workspace workspace,
                    cudaStream_t stream) {
  return weighted_glu_backward(glu, dtype, x, weight, weight_dtype, dy, dx, dweight, rows, d,
                               &experts, workspace, stream);
}

Status glu_backward_workspace_size(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                                   size_t* workspace_bytes) {
  if (workspace_bytes == nullptr) return {StatusCode::null_pointer, "workspace_bytes is null"};
  int64_t bytes = 0;  // x [rows, 2d] (the GLU's own checks) and an f32 dweight [rows] must fit
  if (Status s = detail::check_glu_shape(glu, dtype, rows, d, &bytes); !s.ok()) return s;
  if (Status s = detail::checked_bytes(4, rows, 1, 1, &bytes); !s.ok()) return s;
  const int64_t needed = detail::glu_backward_workspace(glu, dtype, rows, d);
  if (needed < 0) return detail::workspace_too_big();
  *workspace_bytes = static_cast<size_t>(needed);
  return {};
}

Status glu_backward_workspace_size(DType dtype, int64_t rows, int64_t d, size_t* workspace_bytes) {
  return glu_backward_workspace_size(Glu::swiglu(), dtype, rows, d, workspace_bytes);
}

// ---------------------------------------------------------------- PReLU

Status prelu_forward(DType dtype, const void* x, const void* weight, DType weight_dtype, void* y,
                     int64_t outer, int64_t channels, int64_t inner, cudaStream_t stream) {
  if (Status s = detail::check_prelu_forward(dtype, x, weight, weight_dtype, y, outer, channels,
                                             inner);
      !s.ok())
    return s;
  if (outer == 0 || channels == 0 || inner == 0) return {};
  return detail::run_rows(detail::prelu_forward_request(dtype, x, weight, weight_dtype, y, outer,
                                                        channels, inner),
                          stream);
}

Status prelu_forward(DType dtype, const void* x, const void* weight, void* y, int64_t outer,
                     int64_t channels, int64_t inner, cudaStream_t stream) {
  return prelu_forward(dtype, x, weight, dtype, y, outer, channels, inner, stream);
}

Status prelu_backward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                      const void* dy, void* dx, void* dweight, int64_t outer, int64_t channels,
                      int64_t inner, Workspace workspace, cudaStream_t stream) {
  if (Status s = detail::check_prelu_backward(dtype, x, weight, weight_dtype, dy, dx, dweight,
                                              outer, channels, inner);
      !s.ok())
    return s;
  if (channels == 0) return {};
  const int64_t weight_bytes = channels * static_cast<int64_t>(dtype_size(weight_dtype));
  if (outer == 0 || inner == 0)
    return dweight != nullptr ? detail::clear(dweight, weight_bytes, stream) : Status{};
  if (dweight != nullptr) {
    const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
    const int64_t bytes = outer * channels * inner * elem;
    namespace buffer = detail::buffer;
    const detail::Buffer others[] = {
        {buffer::x, x, bytes, elem},     {buffer::weight, weight, weight_bytes, 1},
        {buffer::dy, dy, bytes, elem},   {buffer::dx, dx, bytes, elem, true},
        {buffer::dweight, dweight, weight_bytes, 1, true},
    };
    if (Status s = detail::check_workspace(
            workspace.data, workspace.bytes,
            detail::prelu_backward_workspace(dtype, outer, channels, inner), others, 5);
        !s.ok())
      return s;
  }
  return detail::run_rows(detail::prelu_backward_request(dtype, x, weight, weight_dtype, dy, dx,
                                                         dweight, outer, channels, inner,
                                                         workspace.data),
                          stream);
}

Status prelu_backward(DType dtype, const void* x, const void* weight, const void* dy, void* dx,
                      void* dweight, int64_t outer, int64_t channels, int64_t inner,
                      Workspace workspace, cudaStream_t stream) {
  return prelu_backward(dtype, x, weight, dtype, dy, dx, dweight, outer, channels, inner,
                        workspace, stream);
}

Status prelu_backward_workspace_size(DType dtype, int64_t outer, int64_t channels, int64_t inner,
                                     size_t* workspace_bytes) {
  if (workspace_bytes == nullptr) return {StatusCode::null_pointer, "workspace_bytes is null"};
  if (Status s = detail::check_dtype(dtype); !s.ok()) return s;
  if (outer < 0) return {StatusCode::invalid_size, "outer is negative"};
  if (channels < 0) return {StatusCode::invalid_size, "channels is negative"};
  if (inner < 0) return {StatusCode::invalid_size, "inner is negative"};
  int64_t bytes = 0;  // x [outer, channels, inner] and an f32 dweight [channels] must fit
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
  if (Status s = detail::checked_bytes(4, channels, 1, 1, &bytes); !s.ok()) return s;
  if (Status s = detail::checked_bytes(elem, outer, channels, inner, &bytes); !s.ok()) return s;
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
  return detail::run_rows(detail::rrelu_request(rrelu, dtype, x, nullptr, y, n, false),
                           stream);
}

Status rrelu_backward(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* dx,
                      int64_t n, cudaStream_t stream) {
  if (Status s = detail::check_rrelu_call(rrelu, dtype, x, dy, dx, n, true); !s.ok()) return s;
  if (n == 0) return {};
  return detail::run_rows(detail::rrelu_request(rrelu, dtype, x, dy, dx, n, true), stream);
}

}  // namespace cuact
