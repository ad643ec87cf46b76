#include "argument_checks.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace cuact::detail {

bool partially_overlaps(const void* a, const void* b, int64_t bytes) {
  const auto pa = reinterpret_cast<std::uintptr_t>(a);
  const auto pb = reinterpret_cast<std::uintptr_t>(b);
  if (pa == pb || bytes == 0) return false;
  const auto size = static_cast<std::uintptr_t>(bytes);
  return pa < pb ? pb - pa < size : pa - pb < size;
}

namespace {

bool known_direction(Direction d) {
  return d == Direction::forward || d == Direction::backward ||
         d == Direction::backward_from_output;
}

bool known_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

}  // namespace

Status check_activation_call(Direction direction, const Activation& act, DType dtype,
                             const void* in, const void* grad, const void* out, int64_t n) {
  if (!known_direction(direction)) return {StatusCode::invalid_parameter, "unknown direction"};
  if (!known_dtype(dtype)) return {StatusCode::invalid_parameter, "unknown dtype"};
  if (Status s = validate(act); !s.ok()) return s;
  if (direction == Direction::backward_from_output && !has_backward_from_output(act))
    return {StatusCode::unsupported,
            "backward from the output is not defined for this activation (use backward from x)"};
  if (n < 0) return {StatusCode::invalid_size, "n is negative"};
  const auto elem = static_cast<int64_t>(dtype_size(dtype));
  if (n > std::numeric_limits<std::ptrdiff_t>::max() / elem)
    return {StatusCode::invalid_size, "n elements do not fit in the address space"};
  if (n == 0) return {};

  const bool needs_grad = direction != Direction::forward;
  if (in == nullptr)
    return {StatusCode::null_pointer, direction == Direction::backward_from_output ? "y is null"
                                                                                 : "x is null"};
  if (needs_grad && grad == nullptr) return {StatusCode::null_pointer, "dy is null"};
  if (out == nullptr)
    return {StatusCode::null_pointer, needs_grad ? "dx is null" : "y is null"};

  const auto alignment = static_cast<std::size_t>(elem);
  if (!aligned(in, alignment) || (needs_grad && !aligned(grad, alignment)) ||
      !aligned(out, alignment))
    return {StatusCode::misaligned_pointer, "a pointer is not aligned to its element size"};

  const int64_t bytes = n * elem;
  if (partially_overlaps(out, in, bytes) || (needs_grad && partially_overlaps(out, grad, bytes)))
    return {StatusCode::overlapping_buffers,
            "the output partially overlaps an input (only exact aliasing is allowed)"};
  return {};
}

}  // namespace cuact::detail
