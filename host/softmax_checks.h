// Argument checks of the softmax family, shared by the device entry points
// and the CPU reference so that both reject exactly the same calls.
#pragma once

#include <cstdint>

#include "cuact/softmax.h"

namespace cuact::detail {

// |causal_offset| must stay below this (row-index arithmetic in int64).
inline constexpr int64_t kMaxCausalOffset = (int64_t{1} << 62) - 1;

// Validates a softmax call: direction (forward or backward) and dtype known,
// the options valid (validate(op)), outer, dim >= 0 and inner >= 1, dim > 0
// when outer > 0, each stride 0 or >= dim*inner (the mask's 0 or >= cols),
// mask and causal only with inner == 1, every buffer's extent (and, with a
// mask, the mask's: both directions, backward reads it) fits in a pointer
// difference; unless outer == 0: the pointers the direction needs are
// non-null and element-aligned (the mask too), the output equals (address
// and stride) or avoids each input, and the output avoids the mask entirely.
Status check_softmax_call(Direction direction, const Softmax& op, DType dtype, const void* in,
                          const void* grad, const void* out, const SoftmaxShape& shape);

// What a checked call touches: the inputs' bytes, the output's elements
// (its extent at the output's stride), the mask's bytes; all 0 when outer == 0.
struct SoftmaxExtents {
  int64_t in_bytes = 0;
  int64_t grad_bytes = 0;
  int64_t out_elements = 0;
  int64_t mask_bytes = 0;
};
// check_softmax_call's checks of everything but the buffers themselves.
Status check_softmax_shape(Direction direction, const Softmax& op, DType dtype,
                           const SoftmaxShape& shape, SoftmaxExtents* extents);

// The strides of a checked shape with 0 replaced by the dense dim * inner.
SoftmaxShape resolved_strides(const SoftmaxShape& shape);
// The mask's row stride with 0 replaced by cols.
inline int64_t resolved_mask_stride(const Softmax& op, int64_t cols) {
  return op.mask_stride == 0 ? cols : op.mask_stride;
}

}  // namespace cuact::detail
