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
#include "cuact/cross_entropy.h"
#include "cuact/fp8.h"
#include "cuact/fused.h"
#include "cuact/quantized.h"
#include "cuact/softmax.h"

namespace cuact::reference {

// The exact result, correctly rounded to double.
double forward(const Activation& act, double x);
// dy * f'(x), from the saved input.
double backward(const Activation& act, double x, double dy);
// The same rounded once to `rounded_to`: the correctly rounded dtype value of
// the exact result (rounding the double above again could miss it by one
// ulp where the double lies on a tie; for hardsigmoid and hardswish, whose
// division by 6 is carried to odd for this).
double forward(const Activation& act, double x, DType rounded_to);
double backward(const Activation& act, double x, double dy, DType rounded_to);
// dy * f'(x) expressed through y = f(x); only where has_backward_from_output(act).
double backward_from_output(const Activation& act, double y, double dy);

// Host-buffer form of cuact::activation (same argument rules and statuses).
Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, void* out, int64_t n);

// The value of dtype nearest to v (ties to even; overflow gives +-inf, NaN stays NaN).
double round_to(DType dtype, double v);

// fp8 (cuact/fp8.h; docs/SPEC.md, "fp8 formats"), written from the formats'
// definitions, not from CUDA's conversions.
// The value of `format` nearest v, ties to even; NaN stays NaN, -0 stays -0.
// Overflow is rounding past the largest finite value: |v| > 464 for e4m3
// (448 + half its ulp of 32; the tie at 464 goes to 448, the even neighbour)
// and |v| >= 61440 for e5m2 (57344 + half its ulp of 8192; the tie goes to
// the even 2^16). Overflow and +-inf give +-the largest finite value (448,
// 57344) when `saturate`, otherwise +-inf for e5m2 and NaN for e4m3, which
// has no infinity.
double round_to_fp8(Fp8 format, double v, bool saturate = true);
// The code of round_to_fp8(format, v, saturate): for a value of the format,
// its own code. Every NaN gives 0x7F, the NaN CUDA's conversions write.
uint8_t fp8_bits(Fp8 format, double v, bool saturate = true);
// The value of a code (exact in double); NaN for the NaN codes.
double fp8_value(Fp8 format, uint8_t bits);

// Quantized outputs (cuact/quantized.h; docs/SPEC.md, "Quantized outputs"),
// host buffers and host words, the same argument rules and statuses as the
// device calls (no workspace): each result in double as the plain form's
// reference computes it, times the scale, rounded to fp8 (fp8_bits); amax
// the largest |result| rounded to fp32, NaN excluded; the current recipe's
// scale from it by quantized_scale. The device rounds the fp32 result once
// more, so its codes may differ next to a rounding boundary (ACCURACY.md).
double quantized_scale(Fp8 format, double amax, int margin, bool power_of_two);
Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, const QuantizedOutput& out, int64_t n);
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const QuantizedOutput& y, int64_t rows,
                               int64_t cols, const Dropout& dropout, uint8_t* mask);
Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, const QuantizedOutput& dx,
                                void* dbias, int64_t rows, int64_t cols);
Status glu_forward(const Glu& glu, DType dtype, const void* x, const QuantizedOutput& y,
                   int64_t rows, int64_t d);
Status softmax_forward(const Softmax& op, DType dtype, const void* x, const QuantizedOutput& y,
                       const SoftmaxShape& shape);

// Block-scaled outputs (cuact/quantized.h; docs/SPEC.md, "Block-scaled
// outputs"), written from the OCP MX definitions: block_quantize takes fp32
// values [rows, cols] (host) and writes the codes [rows, cols], the scales
// (host, in out's layout) and the amax as the device calls define them
// from the same fp32 values (bit for bit). The forward forms compute each
// result in double (not rounded to fp32) and quantize it the same way.
Status block_quantize(const float* values, int64_t rows, int64_t cols, const BlockScaledOutput& out);
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const BlockScaledOutput& y, int64_t rows,
                               int64_t cols);
Status glu_forward(const Glu& glu, DType dtype, const void* x, const BlockScaledOutput& y,
                   int64_t rows, int64_t d);

// The softmax family (cuact/softmax.h) on one row, in double, not rounded.
// Forward: x[cols] and the row's mask values (null: no mask; op.mask itself
// is not read); `row` is the data row's index, which places it for the
// causal mask. Backward: from y[cols] and dy[cols], with the same row, mask
// values and op as the forward: a column is hidden (its dy read as 0) where
// the mask value is -inf or causal hides it, whatever y holds. The
// backward without row and mask hides no column (op's causal is not applied).
void softmax_forward_row(const Softmax& op, int64_t row, int64_t cols, const double* x,
                         const double* mask, double* y);
void softmax_backward_row(const Softmax& op, int64_t row, int64_t cols, const double* y,
                          const double* dy, const double* mask, double* dx);
void softmax_backward_row(const Softmax& op, int64_t cols, const double* y, const double* dy,
                          double* dx);

// Host-buffer form of cuact::softmax (same argument rules and statuses; op.mask
// is a host buffer here).
Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, int64_t rows, int64_t cols);
// Any SoftmaxShape (strided rows, the middle dimension of [outer, dim, inner]).
Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, const SoftmaxShape& shape);

// Cross-entropy (cuact/cross_entropy.h; docs/SPEC.md, "Cross-entropy") on
// host buffers: logits [rows, vocab] in `dtype` with row stride row_stride,
// targets [rows] (i32 or i64; each a class in [0, vocab) or ignore_index,
// else invalid_parameter). Each output is optional but `reduced`, which a
// sum or mean needs; fp32 words, each rounded once from double.
Status cross_entropy_forward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                             int64_t vocab, int64_t row_stride, const void* targets,
                             IndexType target_type, const CrossEntropyOutputs& out);
// dlogits [rows, vocab] (the logits' row stride and dtype) from the upstream
// gradient dloss of the reduced loss: one word (sum, mean) or [rows] (none).
Status cross_entropy_backward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                              int64_t vocab, int64_t row_stride, const void* targets,
                              IndexType target_type, const float* dloss, void* dlogits);

// The fused forms (cuact/fused.h). Scalar pieces of their contract:
// bias + activation's pre-activation x + bias, rounded to fp32;
double bias_preactivation(double x, double bias);
// dropout: whether element e is kept (its 16-bit draw >= ceil(p * 2^16)) and the scale of
// kept values, 1/(1 - p) rounded to fp32 (0 for p = 1);
bool dropout_keeps(const Dropout& dropout, uint64_t e);
double dropout_scale(float p);
// rrelu: the slope of element e (training: from the generator; eval: (lower + upper)/2 in fp32).
double rrelu_slope(const Rrelu& rrelu, uint64_t e);
// GLU: the clamped halves g' = min(g, limit) and u' = clamp(u, -limit, limit)
// + offset (an offset of 0 adds nothing), and whether each half's gradient
// passes its clamp (g <= limit, |u| <= limit; NaN passes).
struct GluHalves {
  double gate, linear;
  bool gate_passes, linear_passes;
};
GluHalves glu_halves(const Glu& glu, double gate, double linear);
// One GLU value in double: act(g') * u'.
double glu_value(const Glu& glu, double gate, double linear);
// Where output column c of a row takes its halves in that row of x [2d]
// (Glu's layout: split halves, or blocks of `interleave` columns).
struct GluColumns {
  int64_t gated, linear;
};
GluColumns glu_columns(const Glu& glu, int64_t d, int64_t c);

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
Status glu_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                   DType weight_dtype, void* y, int64_t rows, int64_t d);
Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                    DType weight_dtype, const void* dy, void* dx, void* dweight, int64_t rows,
                    int64_t d);
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

// ---------------------------------------------------------------- typed forms
// The device API's typed calls on host buffers, argument for argument
// (the dtype from the pointer type; no stream, no workspace). They call the
// untyped forms by their full names: the arguments' types would find the
// device API's too.

template <class T>
Status activation_forward(const Activation& act, const T* x, T* y, int64_t n) {
  return cuact::reference::activation(Direction::forward, act, DTypeOf<T>::value, x, nullptr, y, n);
}
template <class T>
Status activation_backward(const Activation& act, const T* x, const T* dy, T* dx, int64_t n) {
  return cuact::reference::activation(Direction::backward, act, DTypeOf<T>::value, x, dy, dx, n);
}
template <class T>
Status activation_backward_from_output(const Activation& act, const T* y, const T* dy, T* dx,
                                       int64_t n) {
  return cuact::reference::activation(Direction::backward_from_output, act, DTypeOf<T>::value, y,
                                      dy, dx, n);
}

template <class T>
Status softmax_forward(const Softmax& op, const T* x, T* y, int64_t rows, int64_t cols) {
  return cuact::reference::softmax(Direction::forward, op, DTypeOf<T>::value, x, nullptr, y, rows,
                                   cols);
}
template <class T>
Status softmax_backward(const Softmax& op, const T* y, const T* dy, T* dx, int64_t rows,
                        int64_t cols) {
  return cuact::reference::softmax(Direction::backward, op, DTypeOf<T>::value, y, dy, dx, rows,
                                   cols);
}
template <class T>
Status softmax_forward(const Softmax& op, const T* x, T* y, const SoftmaxShape& shape) {
  return cuact::reference::softmax(Direction::forward, op, DTypeOf<T>::value, x, nullptr, y, shape);
}
template <class T>
Status softmax_backward(const Softmax& op, const T* y, const T* dy, T* dx,
                        const SoftmaxShape& shape) {
  return cuact::reference::softmax(Direction::backward, op, DTypeOf<T>::value, y, dy, dx, shape);
}

template <class T>
Status bias_activation_forward(const Activation& act, const T* x,
                               const cuact::detail::NonDeduced<T>* bias, T* y, int64_t rows,
                               int64_t cols, const Dropout& dropout = {}, uint8_t* mask = nullptr) {
  return cuact::reference::bias_activation_forward(act, DTypeOf<T>::value, x, bias, y, rows, cols,
                                                   dropout, mask);
}
template <class T>
Status bias_activation_backward(const Activation& act, const T* x,
                                const cuact::detail::NonDeduced<T>* bias, const T* dy, T* dx,
                                cuact::detail::NonDeduced<T>* dbias, int64_t rows, int64_t cols,
                                const Dropout& dropout = {}) {
  return cuact::reference::bias_activation_backward(act, DTypeOf<T>::value, x, bias, dy, dx, dbias,
                                                    rows, cols,
                                  dropout);
}
template <class T>
Status glu_forward(const Glu& glu, const T* x, T* y, int64_t rows, int64_t d) {
  return cuact::reference::glu_forward(glu, DTypeOf<T>::value, x, y, rows, d);
}
template <class T>
Status glu_backward(const Glu& glu, const T* x, const T* dy, T* dx, int64_t rows, int64_t d) {
  return cuact::reference::glu_backward(glu, DTypeOf<T>::value, x, dy, dx, rows, d);
}
template <class T>
Status prelu_forward(const T* x, const T* weight, T* y, int64_t outer, int64_t channels,
                     int64_t inner) {
  return cuact::reference::prelu_forward(DTypeOf<T>::value, x, weight, y, outer, channels, inner);
}
template <class T>
Status prelu_backward(const T* x, const T* weight, const T* dy, T* dx,
                      cuact::detail::NonDeduced<T>* dweight, int64_t outer, int64_t channels,
                      int64_t inner) {
  return cuact::reference::prelu_backward(DTypeOf<T>::value, x, weight, dy, dx, dweight, outer,
                                          channels, inner);
}
template <class T>
Status rrelu_forward(const Rrelu& rrelu, const T* x, T* y, int64_t n) {
  return cuact::reference::rrelu_forward(rrelu, DTypeOf<T>::value, x, y, n);
}
template <class T>
Status rrelu_backward(const Rrelu& rrelu, const T* x, const T* dy, T* dx, int64_t n) {
  return cuact::reference::rrelu_backward(rrelu, DTypeOf<T>::value, x, dy, dx, n);
}

}  // namespace cuact::reference
