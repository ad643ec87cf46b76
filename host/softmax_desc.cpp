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
         a == SoftmaxAlgorithm::cluster_per_row || a == SoftmaxAlgorithm::middle_dim;
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
    case SoftmaxAlgorithm::middle_dim: return "middle_dim";
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
    if (op.mask_stride < 0) return bad("mask_stride must be >= 0 (0: cols, dense)");
  }
  if (op.causal) {
    if (op.causal_rows < 1) return bad("causal_rows (the query length) must be >= 1 when causal");
    if (op.causal_offset > detail::kMaxCausalOffset || op.causal_offset < -detail::kMaxCausalOffset)
      return bad("|causal_offset| must be below 2^62");
  }
  return {};
}

namespace detail {

SoftmaxShape resolved_strides(const SoftmaxShape& shape) {
  SoftmaxShape s = shape;
  const int64_t dense = shape.dim * shape.inner;
  if (s.in_stride == 0) s.in_stride = dense;
  if (s.grad_stride == 0) s.grad_stride = dense;
  if (s.out_stride == 0) s.out_stride = dense;
  return s;
}

namespace {

// Bytes from a buffer's first element to just past its last: `count` runs
// of `run` elements, `stride` apart (stride >= run, checked), or invalid_size
// when that does not fit in a pointer difference.
Status extent_bytes(int64_t elem, int64_t count, int64_t run, int64_t stride, int64_t* bytes) {
  *bytes = 0;
  if (count == 0 || run == 0) return {};
  int64_t span = 0;
  if (Status s = checked_bytes(elem, count - 1, stride, 1, &span); !s.ok()) return s;
  int64_t last = 0;
  if (Status s = checked_bytes(elem, run, 1, 1, &last); !s.ok()) return s;
  if (span > std::numeric_limits<std::ptrdiff_t>::max() - last)
    return {StatusCode::invalid_size, "the tensor does not fit in the address space"};
  *bytes = span + last;
  return {};
}

Status check_stride(int64_t stride, int64_t dense, const char* negative, const char* short_stride) {
  if (stride < 0) return {StatusCode::invalid_size, negative};
  if (stride != 0 && stride < dense) return {StatusCode::invalid_size, short_stride};
  return {};
}

}  // namespace

Status check_softmax_shape(Direction direction, const Softmax& op, DType dtype,
                           const SoftmaxShape& shape, SoftmaxExtents* extents) {
  *extents = {};
  if (direction == Direction::backward_from_output)
    return {StatusCode::unsupported,
            "softmax backward always takes the output y: use Direction::backward"};
  if (direction != Direction::forward && direction != Direction::backward)
    return bad("unknown direction");
  if (Status s = check_dtype(dtype); !s.ok()) return s;
  if (Status s = validate(op); !s.ok()) return s;
  if (shape.outer < 0) return {StatusCode::invalid_size, "rows (outer) is negative"};
  if (shape.dim < 0) return {StatusCode::invalid_size, "cols (dim) is negative"};
  if (shape.inner < 1) return {StatusCode::invalid_size, "inner must be >= 1 (1: rows)"};
  const bool forward = direction == Direction::forward;
  if (shape.inner > 1 && (op.mask != nullptr || op.causal))
    return {StatusCode::unsupported,
            "mask and causal apply to rows: a middle-dimension softmax (inner > 1) takes neither"};
  const auto elem = static_cast<int64_t>(dtype_size(dtype));
  int64_t dense = 0;  // dim * inner elements
  if (Status s = checked_bytes(elem, shape.dim, shape.inner, 1, &dense); !s.ok()) return s;
  dense /= elem;
  if (Status s = check_stride(shape.in_stride, dense, "in_stride is negative",
                              "in_stride is below dim * inner (rows would overlap)");
      !s.ok())
    return s;
  if (Status s = check_stride(shape.grad_stride, dense, "grad_stride is negative",
                              "grad_stride is below dim * inner (rows would overlap)");
      !s.ok())
    return s;
  if (Status s = check_stride(shape.out_stride, dense, "out_stride is negative",
                              "out_stride is below dim * inner (rows would overlap)");
      !s.ok())
    return s;
  const bool masked = op.mask != nullptr;  // backward reads it too (the hidden columns)
  if (masked && op.mask_dtype != dtype)
    return bad("the mask's dtype (mask_dtype) is not the data's");
  if (masked && op.mask_stride != 0 && op.mask_stride < shape.dim)
    return {StatusCode::invalid_size, "mask_stride is below cols (mask rows would overlap)"};
  if (shape.outer == 0) return {};
  if (shape.dim == 0)
    return {StatusCode::invalid_size, "cols is 0 with rows > 0 (a softmax row needs a column)"};
  const SoftmaxShape r = resolved_strides(shape);
  int64_t in_bytes = 0, grad_bytes = 0, out_bytes = 0, mask_bytes = 0;
  if (Status s = extent_bytes(elem, r.outer, dense, r.in_stride, &in_bytes); !s.ok()) return s;
  if (!forward) {
    if (Status s = extent_bytes(elem, r.outer, dense, r.grad_stride, &grad_bytes); !s.ok())
      return s;
  }
  if (Status s = extent_bytes(elem, r.outer, dense, r.out_stride, &out_bytes); !s.ok()) return s;
  if (masked) {
    if (Status s = extent_bytes(elem, op.mask_rows, shape.dim, resolved_mask_stride(op, shape.dim),
                                &mask_bytes);
        !s.ok())
      return s;
  }
  *extents = {in_bytes, grad_bytes, out_bytes / elem, mask_bytes};
  return {};
}

Status check_softmax_call(Direction direction, const Softmax& op, DType dtype, const void* in,
                          const void* grad, const void* out, const SoftmaxShape& shape) {
  SoftmaxExtents e;
  if (Status s = check_softmax_shape(direction, op, dtype, shape, &e); !s.ok()) return s;
  if (shape.outer == 0) return {};
  const auto elem = static_cast<int64_t>(dtype_size(dtype));
  const bool forward = direction == Direction::forward;
  // The output may be exactly either input (in place): the same address and
  // extent, so the same stride (or a single row).
  constexpr int kData = 1;
  const Buffer buffers[] = {
      {forward ? buffer::x : buffer::y, in, e.in_bytes, elem, false, true, kData},
      {buffer::dy, grad, e.grad_bytes, elem, false, !forward, kData},
      {forward ? buffer::y : buffer::dx, out, e.out_elements * elem, elem, true, true, kData},
      {buffer::mask, op.mask, e.mask_bytes, elem, false, false},
  };
  return check_buffers(buffers, 4);
}

}  // namespace detail
}  // namespace cuact
