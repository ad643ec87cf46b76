// Softmax descriptors: names, option checks, and the argument checks shared
// by the device entry points and the CPU reference.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "argument_checks.h"
#include "cuact/softmax.h"
#include "softmax_checks.h"

namespace cuact {

namespace {

bool known_kind(SoftmaxKind k) {
  return k == SoftmaxKind::softmax || k == SoftmaxKind::log_softmax || k == SoftmaxKind::softmin;
}

bool known_algorithm(SoftmaxAlgorithm a) {
  return a == SoftmaxAlgorithm::automatic || a == SoftmaxAlgorithm::warp_per_row ||
         a == SoftmaxAlgorithm::block_per_row || a == SoftmaxAlgorithm::streaming ||
         a == SoftmaxAlgorithm::cluster_per_row;
}

Status bad(const char* detail) { return {StatusCode::invalid_parameter, detail}; }

}  // namespace

const char* softmax_kind_name(SoftmaxKind kind) {
  switch (kind) {
    case SoftmaxKind::softmax: return "softmax";
    case SoftmaxKind::log_softmax: return "log_softmax";
    case SoftmaxKind::softmin: return "softmin";
  }
  return "unknown";
}

const char* softmax_algorithm_name(SoftmaxAlgorithm algorithm) {
  switch (algorithm) {
    case SoftmaxAlgorithm::automatic: return "automatic";
    case SoftmaxAlgorithm::warp_per_row: return "warp_per_row";
    case SoftmaxAlgorithm::block_per_row: return "block_per_row";
    case SoftmaxAlgorithm::streaming: return "streaming";
    case SoftmaxAlgorithm::cluster_per_row: return "cluster_per_row";
  }
  return "unknown";
}

Status validate(const Softmax& op) {
  if (!known_kind(op.kind)) return bad("unknown softmax kind");
  if (!known_algorithm(op.algorithm)) return bad("unknown softmax algorithm");
  if (!std::isfinite(op.scale)) return bad("softmax scale must be finite");
  if (op.mask != nullptr) {
    if (op.mask_rows < 1) return bad("mask_rows must be >= 1 when a mask is given");
    if (op.mask_row_repeat < 1) return bad("mask_row_repeat must be >= 1 when a mask is given");
  }
  if (op.causal) {
    if (op.causal_rows < 1) return bad("causal_rows (the query length) must be >= 1 when causal");
    if (op.causal_offset > detail::kMaxCausalOffset || op.causal_offset < -detail::kMaxCausalOffset)
      return bad("|causal_offset| must be below 2^62");
  }
  return {};
}

namespace detail {

bool ranges_overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  if (a_bytes <= 0 || b_bytes <= 0) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a);
  const auto pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb ? pb - pa < static_cast<std::uintptr_t>(a_bytes)
                 : pa - pb < static_cast<std::uintptr_t>(b_bytes);
}

namespace {

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

}  // namespace

Status check_softmax_call(Direction direction, const Softmax& op, DType dtype, const void* in,
                          const void* grad, const void* out, int64_t rows, int64_t cols) {
  if (direction == Direction::backward_from_output)
    return {StatusCode::unsupported,
            "softmax backward always takes the output y: use Direction::backward"};
  if (direction != Direction::forward && direction != Direction::backward)
    return bad("unknown direction");
  if (dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16)
    return bad("unknown dtype");
  if (Status s = validate(op); !s.ok()) return s;
  if (rows < 0) return {StatusCode::invalid_size, "rows is negative"};
  if (cols < 0) return {StatusCode::invalid_size, "cols is negative"};
  if (rows == 0) return {};
  if (cols == 0)
    return {StatusCode::invalid_size, "cols is 0 with rows > 0 (a softmax row needs a column)"};
  const auto elem = static_cast<int64_t>(dtype_size(dtype));
  const int64_t max_elements = std::numeric_limits<std::ptrdiff_t>::max() / elem;
  if (rows > max_elements / cols)
    return {StatusCode::invalid_size, "rows * cols elements do not fit in the address space"};
  const bool forward = direction == Direction::forward;
  const bool masked = forward && op.mask != nullptr;
  if (masked && op.mask_rows > max_elements / cols)
    return {StatusCode::invalid_size, "mask_rows * cols elements do not fit in the address space"};

  if (in == nullptr) return {StatusCode::null_pointer, forward ? "x is null" : "y is null"};
  if (!forward && grad == nullptr) return {StatusCode::null_pointer, "dy is null"};
  if (out == nullptr) return {StatusCode::null_pointer, forward ? "y is null" : "dx is null"};

  const auto alignment = static_cast<std::size_t>(elem);
  if (!aligned(in, alignment) || (!forward && !aligned(grad, alignment)) ||
      !aligned(out, alignment) || (masked && !aligned(op.mask, alignment)))
    return {StatusCode::misaligned_pointer, "a pointer is not aligned to its element size"};

  const int64_t bytes = rows * cols * elem;
  if (partially_overlaps(out, in, bytes) || (!forward && partially_overlaps(out, grad, bytes)))
    return {StatusCode::overlapping_buffers,
            "the output partially overlaps an input (only exact aliasing is allowed)"};
  if (masked && ranges_overlap(out, bytes, op.mask, op.mask_rows * cols * elem))
    return {StatusCode::overlapping_buffers, "the output overlaps the mask"};
  return {};
}

}  // namespace detail
}  // namespace cuact
