// The softmax reference's lines, for the reference's output forms (plain:
// softmax_reference.cpp; quantized: quantized_reference.cpp).
#pragma once

#include <cstdint>
#include <functional>

#include "cuact/softmax.h"

namespace cuact::reference {

// Every result of a checked call, in double and not rounded, as
// emit(output element index, value), line by line (a line is read whole
// before its results are emitted).
void softmax_lines(Direction direction, const Softmax& op, DType dtype, const void* in,
                   const void* grad, const SoftmaxShape& shape,
                   const std::function<void(int64_t, double)>& emit);

}  // namespace cuact::reference
