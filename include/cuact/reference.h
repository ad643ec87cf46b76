// The CPU reference: every cuact operation in double precision, written from
// docs/SPEC.md independently of the device code. Tests and cuact-bench judge the
// kernels against it; applications may use it to check their own results.
//
// Scalar forms compute in double. Buffer forms read host buffers of any
// dtype, compute in double and round once, correctly (to nearest, ties to
// even), to the dtype; they take the same arguments and return the same
// statuses as the device entry points, minus the stream.
#pragma once

#include <cstdint>

#include "cuact/activation.h"
#include "cuact/fused.h"
#include "cuact/softmax.h"

namespace cuact::reference {

double forward(const Activation& act, double x);
// dy * f'(x), from the saved input.
double backward(const Activation& act, double x, double dy);
// dy * f'(x) expressed through y = f(x); only where has_backward_from_output(act).
double backward_from_output(const Activation& act, double y, double dy);

// Host-buffer form of cuact::activation (same argument rules and statuses).
Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, void* out, int64_t n);

// The value of dtype nearest to v (ties to even; overflow gives +-inf, NaN stays NaN).
double round_to(DType dtype, double v);

// The softmax family (cuact/softmax.h) on one row, in double, not rounded.
// Forward: x[cols] and the row's mask values (null: no mask; op.mask itself
// is not read); `row` is the data row's index, which places it for the
// causal mask. Backward: from y[cols] and dy[cols]; mask and causal ignored.
void softmax_forward_row(const Softmax& op, int64_t row, int64_t cols, const double* x,
                         const double* mask, double* y);
void softmax_backward_row(const Softmax& op, int64_t cols, const double* y, const double* dy,
                          double* dx);

// Host-buffer form of cuact::softmax (same argument rules and statuses; op.mask
// is a host buffer here).
Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, int64_t rows, int64_t cols);
// Any SoftmaxShape (strided rows, the middle dimension of [outer, dim, inner]).
Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, const SoftmaxShape& shape);

// The fused forms (cuact/fused.h). Scalar pieces of their contract:
// bias + activation's pre-activation x + bias, rounded to fp32;
double bias_preactivation(double x, double bias);
// dropout: whether element e is kept (its 16-bit draw >= ceil(p * 2^16)) and the scale of
// kept values, 1/(1 - p) rounded to fp32 (0 for p = 1);
bool dropout_keeps(const Dropout& dropout, uint64_t e);
double dropout_scale(float p);
// rrelu: the slope of element e (training: from the generator; eval: (lower + upper)/2 in fp32).
double rrelu_slope(const Rrelu& rrelu, uint64_t e);

// Host-buffer forms of the fused entry points (same argument rules and
// statuses, minus the stream and workspace). Reductions (dbias, dweight) sum
// the exact per-element terms in double and round once.
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               void* y, int64_t rows, int64_t cols, const Dropout& dropout = {},
                               uint8_t* mask = nullptr);
Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                const void* dy, void* dx, void* dbias, int64_t rows, int64_t cols,
                                const Dropout& dropout = {});
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, void* y, int64_t rows, int64_t cols,
                               const Dropout& dropout = {}, uint8_t* mask = nullptr);
Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, void* dx, void* dbias,
                                int64_t rows, int64_t cols, const Dropout& dropout = {});
Status glu_forward(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows, int64_t d);
Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy, void* dx,
                    int64_t rows, int64_t d);
Status prelu_forward(DType dtype, const void* x, const void* weight, void* y, int64_t outer,
                     int64_t channels, int64_t inner);
Status prelu_backward(DType dtype, const void* x, const void* weight, const void* dy, void* dx,
                      void* dweight, int64_t outer, int64_t channels, int64_t inner);
Status prelu_forward(DType dtype, const void* x, const void* weight, DType weight_dtype, void* y,
                     int64_t outer, int64_t channels, int64_t inner);
Status prelu_backward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                      const void* dy, void* dx, void* dweight, int64_t outer, int64_t channels,
                      int64_t inner);
Status rrelu_forward(const Rrelu& rrelu, DType dtype, const void* x, void* y, int64_t n);
Status rrelu_backward(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* dx,
                      int64_t n);

}  // namespace cuact::reference
