// The activation entry points: check, then the row engine (host/row_calls.h):
// a flat buffer is one row view.
#include "argument_checks.h"
#include "cuact/activation.h"
#include "row_calls.h"

namespace cuact {

Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, void* out, int64_t n, cudaStream_t stream) {
  if (Status s = detail::check_activation_call(direction, act, dtype, in, grad, out, n); !s.ok())
    return s;
  if (n == 0) return {};
  return detail::run_rows(detail::activation_request(direction, act, dtype, in, grad, out, n),
                          stream);
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
