#include "argument_checks.h"

#include <cstdint>

#include "call_checks.h"

namespace cuact::detail {

namespace {

bool known_direction(Direction d) {
  return d == Direction::forward || d == Direction::backward ||
         d == Direction::backward_from_output;
}

}  // namespace

Status check_activation_shape(Direction direction, const Activation& act, DType dtype, int64_t n,
                              int64_t* bytes) {
  if (!known_direction(direction)) return {StatusCode::invalid_parameter, "unknown direction"};
  if (Status s = check_dtype(dtype); !s.ok()) return s;
  if (Status s = validate(act); !s.ok()) return s;
  if (direction == Direction::backward_from_output && !has_backward_from_output(act))
    return {StatusCode::unsupported,
            "backward from the output is not defined for this activation (use backward from x)"};
  if (n < 0) return {StatusCode::invalid_size, "n is negative"};
  return checked_bytes(static_cast<int64_t>(dtype_size(dtype)), n, 1, 1, bytes);
}

Status check_activation_call(Direction direction, const Activation& act, DType dtype,
                             const void* in, const void* grad, const void* out, int64_t n) {
  int64_t bytes = 0;
  if (Status s = check_activation_shape(direction, act, dtype, n, &bytes); !s.ok()) return s;
  if (bytes == 0) return {};
  const auto elem = static_cast<int64_t>(dtype_size(dtype));
  const bool forward = direction == Direction::forward;
  const bool from_output = direction == Direction::backward_from_output;
  constexpr int kData = 1;  // the output may be exactly either input (in place)
  const Buffer buffers[] = {
      {from_output ? buffer::y : buffer::x, in, bytes, elem, false, true, kData},
      {buffer::dy, grad, forward ? 0 : bytes, elem, false, !forward, kData},
      {forward ? buffer::y : buffer::dx, out, bytes, elem, true, true, kData},
  };
  return check_buffers(buffers, 3);
}

}  // namespace cuact::detail
