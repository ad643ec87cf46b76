// Argument checks of the calls with a quantized output (cuact/quantized.h),
// shared by the device entry points and the CPU reference so both reject
// the same calls with the same status. The output is declared to
// check_buffers as one-byte codes apart from every input, with its scale,
// amax and scale_inv words; `ws` is the device call's workspace (null: the
// reference, which needs none).
#pragma once

#include <cstdint>

#include "call_checks.h"
#include "cuact/quantized.h"

namespace cuact::detail {

// A known format and recipe; for the current recipe a margin in [0, 64].
Status check_quantized_descriptor(const QuantizedOutput& q);

Status check_quantized_activation(Direction direction, const Activation& act, DType dtype,
                                  const void* in, const void* grad, const QuantizedOutput& out,
                                  int64_t n, const Workspace* ws);
Status check_quantized_bias_forward(const Activation& act, DType dtype, const void* x,
                                    const void* bias, DType bias_dtype, const QuantizedOutput& y,
                                    int64_t rows, int64_t cols, const Dropout& dropout,
                                    const uint8_t* mask, const Workspace* ws);
Status check_quantized_bias_backward(const Activation& act, DType dtype, const void* x,
                                     const void* bias, DType bias_dtype, const void* dy,
                                     const QuantizedOutput& dx, const void* dbias, int64_t rows,
                                     int64_t cols, const Workspace* ws);
// A known format, block (16, 32), scale type and layout.
Status check_block_descriptor(const BlockScaledOutput& b);
Status check_block_bias_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const BlockScaledOutput& y, int64_t rows,
                                int64_t cols);
Status check_block_glu_forward(const Glu& glu, DType dtype, const void* x,
                               const BlockScaledOutput& y, int64_t rows, int64_t d);
// The bytes the scales of a [rows, cols] result take (the descriptor checked).
int64_t block_scale_bytes(const BlockScaledOutput& b, int64_t rows, int64_t cols);
Status check_quantized_softmax(const Softmax& op, DType dtype, const void* x,
                               const QuantizedOutput& y, const SoftmaxShape& shape,
                               const Workspace* ws);
Status check_quantized_glu_forward(const Glu& glu, DType dtype, const void* x,
                                   const QuantizedOutput& y, int64_t rows, int64_t d,
                                   const Workspace* ws);

}  // namespace cuact::detail
