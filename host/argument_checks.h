// Argument checks of the plain activations, shared by the device entry point
// and the CPU reference so both reject exactly the same calls with the same
// status (through check_buffers, call_checks.h).
#pragma once

#include <cstdint>

#include "cuact/activation.h"

namespace cuact::detail {

// Validates an activation call: the direction and dtype are known, the
// activation's parameters are valid (and backward_from_output is offered),
// n >= 0 and n * element size fits in a pointer difference, the pointers the
// direction needs are non-null and aligned to the element (unless n == 0),
// and the output equals or avoids each input.
Status check_activation_call(Direction direction, const Activation& act, DType dtype,
                             const void* in, const void* grad, const void* out, int64_t n);
// Its first part: everything but the buffers; *bytes: n elements' size.
Status check_activation_shape(Direction direction, const Activation& act, DType dtype, int64_t n,
                              int64_t* bytes);

}  // namespace cuact::detail
