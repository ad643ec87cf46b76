// The activation entry points: check, dispatch once, map the CUDA result.
#include "activation_table.h"
#include "argument_checks.h"
#include "cuda_status.h"
#include "cuact/activation.h"

namespace cuact {

namespace detail {

const ActivationTable& activation_table(DType dtype) {
  switch (dtype) {
    case DType::f16: return activation_table_f16();
    case DType::bf16: return activation_table_bf16();
    default: return activation_table_f32();
  }
}

}  // namespace detail

Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, void* out, int64_t n, cudaStream_t stream) {
  if (Status s = detail::check_activation_call(direction, act, dtype, in, grad, out, n); !s.ok())
    return s;
  if (n == 0) return {};
  const detail::ActivationLaunchers& row =
      detail::activation_table(dtype)[static_cast<int>(act.kind)];
  const detail::ActivationLauncher launch = direction == Direction::forward    ? row.forward
                                            : direction == Direction::backward ? row.backward
                                                                               : row.backward_from_output;
  if (launch == nullptr)  // has_backward_from_output() and the functors disagree: a cuact bug
    return {StatusCode::unsupported, "no kernel for this activation and direction"};
  return detail::status_from_cuda(launch(act, in, grad, out, n, stream),
                                  "launching the activation kernel failed");
}

// The typed overloads: name the dtype, nothing else.
#define CUACT_TYPED_ENTRY_POINTS(T)                                                             \
  Status activation_forward(const Activation& act, const T* x, T* y, int64_t n,                \
                            cudaStream_t stream) {                                              \
    return activation(Direction::forward, act, DTypeOf<T>::value, x, nullptr, y, n, stream);   \
  }                                                                                             \
  Status activation_backward(const Activation& act, const T* x, const T* dy, T* dx, int64_t n, \
                             cudaStream_t stream) {                                             \
    return activation(Direction::backward, act, DTypeOf<T>::value, x, dy, dx, n, stream);      \
  }                                                                                             \
  Status activation_backward_from_output(const Activation& act, const T* y, const T* dy,       \
                                         T* dx, int64_t n, cudaStream_t stream) {               \
    return activation(Direction::backward_from_output, act, DTypeOf<T>::value, y, dy, dx, n,   \
                      stream);                                                                  \
  }
CUACT_TYPED_ENTRY_POINTS(float)
CUACT_TYPED_ENTRY_POINTS(__half)
CUACT_TYPED_ENTRY_POINTS(__nv_bfloat16)
#undef CUACT_TYPED_ENTRY_POINTS

}  // namespace cuact
