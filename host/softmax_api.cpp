// The softmax entry points: check, hand the call to its dtype's one
// dispatch (cuda/softmax_kernels.cuh), map the CUDA result.
#include "cuact/softmax.h"
#include "cuda_status.h"
#include "softmax_checks.h"
#include "softmax_launch.h"

namespace cuact {

namespace detail {

SoftmaxCall make_softmax_call(Direction direction, const Softmax& op, const void* in,
                              const void* grad, void* out, const SoftmaxShape& shape) {
  SoftmaxCall c;
  c.backward = direction == Direction::backward;
  c.log = op.kind == SoftmaxKind::log_softmax;
  c.scale = op.kind == SoftmaxKind::softmin ? -op.scale : op.scale;
  c.in = in;
  c.grad = grad;
  c.out = out;
  // Both directions: backward finds the columns the forward hid from them.
  const bool masked = op.mask != nullptr;
  c.mask = op.mask;
  c.layout = make_softmax_layout(shape.outer, shape.dim, masked ? op.mask_rows : 0,
                                 op.mask_row_repeat, op.causal ? op.causal_rows : 0,
                                 op.causal_offset);
  const SoftmaxShape r = resolved_strides(shape);
  c.layout.inner = r.inner;
  c.layout.in_stride = r.in_stride;
  c.layout.grad_stride = r.grad_stride;
  c.layout.out_stride = r.out_stride;
  c.layout.mask_stride = resolved_mask_stride(op, shape.dim);
  c.requested = op.algorithm;
  return c;
}

}  // namespace detail

namespace {

detail::SoftmaxLaunchResult launch(DType dtype, const detail::SoftmaxCall& call,
                                   cudaStream_t stream) {
  switch (dtype) {
    case DType::f16: return detail::launch_softmax_f16(call, stream);
    case DType::bf16: return detail::launch_softmax_bf16(call, stream);
    default: return detail::launch_softmax_f32(call, stream);
  }
}

detail::SoftmaxLaunchResult plan(DType dtype, const detail::SoftmaxCall& call) {
  switch (dtype) {
    case DType::f16: return detail::plan_softmax_f16(call);
    case DType::bf16: return detail::plan_softmax_bf16(call);
    default: return detail::plan_softmax_f32(call);
  }
}

Status status_of(const detail::SoftmaxLaunchResult& r) {
  if (r.error != cudaSuccess)
    return detail::status_from_cuda(r.error, "launching the softmax kernel failed");
  if (r.refusal != nullptr) return {StatusCode::unsupported, r.refusal};
  return {};
}

}  // namespace

Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, const SoftmaxShape& shape, cudaStream_t stream) {
  if (Status s = detail::check_softmax_call(direction, op, dtype, in, grad, out, shape); !s.ok())
    return s;
  if (shape.outer == 0) return {};
  return status_of(
      launch(dtype, detail::make_softmax_call(direction, op, in, grad, out, shape), stream));
}

Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, int64_t rows, int64_t cols, cudaStream_t stream) {
  return softmax(direction, op, dtype, in, grad, out, SoftmaxShape::rows(rows, cols), stream);
}

Status softmax_selected_algorithm(Direction direction, const Softmax& op, DType dtype,
                                  const SoftmaxShape& shape, SoftmaxAlgorithm* chosen) {
  if (chosen == nullptr) return {StatusCode::null_pointer, "chosen is null"};
  // The checks of a one-row (one-o) call with dense strides; the plan reads
  // no pointer.
  alignas(16) static const char kDummy[16] = {};
  const Softmax unmasked = op.without_mask();
  const SoftmaxShape one = SoftmaxShape::middle(1, shape.dim, shape.inner);
  if (Status s = detail::check_softmax_call(direction, unmasked, dtype, kDummy, kDummy,
                                            const_cast<char*>(kDummy), one);
      !s.ok())
    return s;
  const detail::SoftmaxCall call = detail::make_softmax_call(direction, unmasked, kDummy, kDummy,
                                                             const_cast<char*>(kDummy), one);
  const detail::SoftmaxLaunchResult r = plan(dtype, call);
  if (Status s = status_of(r); !s.ok()) return s;
  *chosen = r.algorithm;
  return {};
}

Status softmax_selected_algorithm(Direction direction, const Softmax& op, DType dtype, int64_t cols,
                                  SoftmaxAlgorithm* chosen) {
  return softmax_selected_algorithm(direction, op, dtype, SoftmaxShape::rows(1, cols), chosen);
}

// The typed overloads: name the dtype, nothing else.
#define CUACT_TYPED_SOFTMAX_ENTRY_POINTS(T)                                                       \
  Status softmax_forward(const Softmax& op, const T* x, T* y, int64_t rows, int64_t cols,         \
                         cudaStream_t stream) {                                                   \
    return softmax(Direction::forward, op, DTypeOf<T>::value, x, nullptr, y, rows, cols, stream); \
  }                                                                                               \
  Status softmax_backward(const Softmax& op, const T* y, const T* dy, T* dx, int64_t rows,        \
                          int64_t cols, cudaStream_t stream) {                                    \
    return softmax(Direction::backward, op, DTypeOf<T>::value, y, dy, dx, rows, cols, stream);    \
  }                                                                                               \
  Status softmax_forward(const Softmax& op, const T* x, T* y, const SoftmaxShape& shape,          \
                         cudaStream_t stream) {                                                   \
    return softmax(Direction::forward, op, DTypeOf<T>::value, x, nullptr, y, shape, stream);      \
  }                                                                                               \
  Status softmax_backward(const Softmax& op, const T* y, const T* dy, T* dx,                      \
                          const SoftmaxShape& shape, cudaStream_t stream) {                       \
    return softmax(Direction::backward, op, DTypeOf<T>::value, y, dy, dx, shape, stream);         \
  }
CUACT_TYPED_SOFTMAX_ENTRY_POINTS(float)
CUACT_TYPED_SOFTMAX_ENTRY_POINTS(__half)
CUACT_TYPED_SOFTMAX_ENTRY_POINTS(__nv_bfloat16)
#undef CUACT_TYPED_SOFTMAX_ENTRY_POINTS

}  // namespace cuact
