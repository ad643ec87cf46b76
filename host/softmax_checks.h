// Argument checks of the softmax family, shared by the device entry points
// and the CPU reference so that both reject exactly the same calls.
#pragma once

#include <cstdint>

#include "cuact/softmax.h"

namespace cuact::detail {

// |causal_offset| must stay below this (row-index arithmetic in int64).
inline constexpr int64_t kMaxCausalOffset = (int64_t{1} << 62) - 1;

// Validates a softmax call: direction (forward or backward) and dtype known,
// the options valid (validate(op)), rows and cols >= 0, cols > 0 when rows >
// 0, rows*cols (and, forward with a mask, mask_rows*cols) elements fit in a
// pointer difference; unless rows == 0: the pointers the direction needs are
// non-null and element-aligned (the mask too), the output equals or avoids
// each input, and the output avoids the mask entirely.
Status check_softmax_call(Direction direction, const Softmax& op, DType dtype, const void* in,
                          const void* grad, const void* out, int64_t rows, int64_t cols);

}  // namespace cuact::detail
