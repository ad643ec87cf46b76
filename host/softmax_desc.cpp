// Softmax descriptors: names, option checks, and the argument checks shared
// by the device entry points and the CPU reference.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "call_checks.h"
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

Status check_softmax_call(Direction direction, const Softmax& op, DType dtype, const void* in,
                          const void* grad, const void* out, int64_t rows, int64_t cols) {
  if (direction == Direction::backward_from_output)
    return {StatusCode::unsupported,
            "softmax backward always takes the output y: use Direction::backward"};
  if (direction != Direction::forward && direction != Direction::backward)
    return bad("unknown direction");
  if (Status s = check_dtype(dtype); !s.ok()) return s;
  if (Status s = validate(op); !s.ok()) return s;
  if (rows < 0) return {StatusCode::invalid_size, "rows is negative"};
  if (cols < 0) return {StatusCode::invalid_size, "cols is negative"};
  if (rows == 0) return {};
  if (cols == 0)
    return {StatusCode::invalid_size, "cols is 0 with rows > 0 (a softmax row needs a column)"};
  const auto elem = static_cast<int64_t>(dtype_size(dtype));
  int64_t bytes = 0, mask_bytes = 0;
  if (Status s = checked_bytes(elem, rows, cols, 1, &bytes); !s.ok()) return s;
  const bool forward = direction == Direction::forward;
  const bool masked = forward && op.mask != nullptr;
  if (masked) {
    if (Status s = checked_bytes(elem, op.mask_rows, cols, 1, &mask_bytes); !s.ok()) return s;
  }
  constexpr int kData = 1;  // the output may be exactly either input (in place)
  const Buffer buffers[] = {
      {forward ? buffer::x : buffer::y, in, bytes, elem, false, true, kData},
      {buffer::dy, grad, forward ? 0 : bytes, elem, false, !forward, kData},
      {forward ? buffer::y : buffer::dx, out, bytes, elem, true, true, kData},
      {buffer::mask, masked ? op.mask : nullptr, mask_bytes, elem, false, false},
  };
  return check_buffers(buffers, 4);
}

}  // namespace detail
}  // namespace cuact
