// Argument checks of the fused forms, shared by the device entry points and
// the CPU reference so both reject exactly the same calls with the same
// status. Each declares its buffers to check_buffers (call_checks.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "call_checks.h"
#include "cuact/fused.h"

namespace cuact::detail {

Status check_dropout(const Dropout& dropout);
Status check_rrelu(const Rrelu& rrelu);

// What both directions of bias + activation check first: dtypes, activation,
// dropout, shape; *bytes: the [rows, cols] tensor's size, *bias_bytes: the
// size of bias / dbias [cols] (which must fit even when rows = 0).
Status check_bias_shape(const Activation& act, DType dtype, DType bias_dtype, int64_t rows,
                        int64_t cols, const Dropout& dropout, int64_t* bytes, int64_t* bias_bytes);
// The gates of clamped and weighted GLUs (forms.h, moe_glu_gate): the message
// of a call with another.
inline constexpr const char* kMoeGluGates =
    "clamped and weighted GLUs are built for the gates identity, relu, sigmoid, silu, gelu and "
    "gelu_tanh";

// The same for GLU (its clamps included); *x_bytes: the size of x [rows, 2d].
Status check_glu_shape(const Glu& glu, DType dtype, int64_t rows, int64_t d, int64_t* x_bytes);

// A weighted GLU call's row weights: weight and dweight [rows] in dtype (f32
// or the data's); weight is required, dweight optional. Unweighted calls
// pass the default (weighted false).
struct GluWeights {
  bool weighted = false;
  const void* weight = nullptr;
  DType dtype = DType::f32;
  const void* dweight = nullptr;
};

// [rows, cols] x, y, mask; bias [cols] in bias_dtype (may be null).
Status check_bias_activation_forward(const Activation& act, DType dtype, const void* x,
                                     const void* bias, DType bias_dtype, const void* y,
                                     int64_t rows, int64_t cols, const Dropout& dropout,
                                     const uint8_t* mask);
// [rows, cols] x, dy, dx; bias and dbias [cols] in bias_dtype (may be null).
Status check_bias_activation_backward(const Activation& act, DType dtype, const void* x,
                                      const void* bias, DType bias_dtype, const void* dy,
                                      const void* dx, const void* dbias, int64_t rows,
                                      int64_t cols, const Dropout& dropout);
// x [rows, 2d], y [rows, d].
// experts: the call's expert rows (fused.h; null: every row).
Status check_glu_forward(const Glu& glu, DType dtype, const void* x, const void* y, int64_t rows,
                         int64_t d, const GluWeights& weights = {},
                         const ExpertRows* experts = nullptr);
// x, dx [rows, 2d], dy [rows, d].
Status check_glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy,
                          const void* dx, int64_t rows, int64_t d, const GluWeights& weights = {},
                          const ExpertRows* experts = nullptr);
// x, y [outer, channels, inner]; weight and dweight [channels] in weight_dtype.
Status check_prelu_forward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                           const void* y, int64_t outer, int64_t channels, int64_t inner);
Status check_prelu_backward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                            const void* dy, const void* dx, const void* dweight, int64_t outer,
                            int64_t channels, int64_t inner);
Status check_rrelu_call(const Rrelu& rrelu, DType dtype, const void* x, const void* dy,
                        const void* out, int64_t n, bool backward);

// The workspace of a reducing call: present, at least `needed` bytes, and
// apart from each of the call's other buffers.
Status check_workspace(const void* workspace, size_t workspace_bytes, int64_t needed,
                       const Buffer* others, int count);

}  // namespace cuact::detail
