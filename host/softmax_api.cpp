// The softmax entry points: check, hand the call to the one dispatch
// (softmax_dispatch.cpp), map the CUDA result.
#include "cuact/softmax.h"
#include "cuda_status.h"
#include "softmax_checks.h"
#include "softmax_dispatch.h"

namespace cuact {

Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, const SoftmaxShape& shape, cudaStream_t stream) {
  if (Status s = detail::check_softmax_call(direction, op, dtype, in, grad, out, shape); !s.ok())
    return s;
  if (shape.outer == 0) return {};
  return detail::softmax_status(detail::launch_softmax(
      dtype, detail::make_softmax_call(direction, op, dtype, in, grad, out, shape), stream));
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
  const detail::SoftmaxCall call = detail::make_softmax_call(
      direction, unmasked, dtype, kDummy, kDummy, const_cast<char*>(kDummy), one);
  const detail::SoftmaxEngine& engine = detail::softmax_engine_for(dtype, false);
  const detail::SoftmaxLaunchResult r =
      detail::plan_softmax(call, call.backward ? engine.backward : engine.forward).result;
  if (Status s = detail::softmax_status(r); !s.ok()) return s;
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
