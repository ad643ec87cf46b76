// The accuracy rule of the fused forms and the judges of whole calls, built
// on accuracy.h's rule; free of GoogleTest so cuact-bench can check a fused
// kernel before timing it.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "accuracy.h"
#include "cuact/fused.h"

namespace cuact::test {

// ---------------------------------------------------------------- accuracy rule

// The rule of the elementwise activation (tolerance_for), plus what a fused
// form adds after the activation:
// - bias + activation: nothing; the reference applies the activation to the
//   fp32 sum x + bias (the contract), so the elementwise rule applies as is.
// - a product after the activation (GLU's linear half, dropout's scale, GLU
//   backward's dy * linear): one more fp32 rounding: fp32 bounds + 1 ulp,
//   fp16/bf16 stay at 1 ulp, and piecewise-linear kinds get 1 ulp instead of
//   exact (their double product is rounded twice where it is not exact).
// - hardsigmoid and hardswish divide by 6 in double: exact for inputs of the
//   data's precision, but the fp32 pre-activation of a fused form has more
//   bits, and the double quotient can round twice: 1 ulp.
// `roundings_after` counts the fp32 roundings after the activation (a
// product, an offset's sum); each adds 1 ulp to fp32 bounds.
Tolerance fused_tolerance(ActivationKind kind, DType dtype, Direction direction,
                          int roundings_after);

// Where the activation's own value overflows fp32 (|f(x)| > FLT_MAX, e.g.
// selu near FLT_MAX) a product after it may still be finite in exact
// arithmetic; the fused forms compute f(x) in fp32, so there the result is
// f's fp32 value, +-inf, times the other factor (inf, or NaN for a 0 factor).
bool fp32_activation_overflows(const Activation& act, double x);
double overflowed_product(const Activation& act, double x, double factor);

// Reductions (dbias, dweight) sum fp32 terms t_i (each within its own fp32
// bound e_i: the activation's fp32 backward rule, root allowance included,
// or one rounding for PReLU's dy * x) in fp32, in an order fixed by the
// shape, and round once to the dtype:
//   |got - exact| <= ulp_dtype(exact) + sum e_i + (n + 2) * 2^-24 * sum |t_i|
// (n terms: the classic bound of recursive fp32 summation).
struct ReductionBound {
  double abs_sum = 0;     // sum |t_i| of the exact terms
  double term_error = 0;  // sum e_i
  int64_t terms = 0;
  void add(double exact_term, double error) {
    abs_sum += std::fabs(exact_term);
    term_error += error;
    ++terms;
  }
};
// e_i of a term of bias + activation backward: the rule of act's backward for
// dtype, the data's (its terms are computed as precisely as its dx needs), at
// pre-activation z with incoming gradient dy (the product forms' + 1 ulp when
// scaled); for fp16/bf16 one fp32 rounding more, the term's own.
double backward_term_error(const Activation& act, DType dtype, double z, double dy,
                           double exact_term, bool product_after);
// e_i of a term rounded once in fp32 (PReLU's dy * x).
double rounded_term_error(double exact_term);
// e_i of a weighted GLU's d weight term dy * act(g') * u': act from the
// data's functor (the dtype's forward rule), then the term's fp32 roundings
// (the products, the offset's sum).
double glu_term_error(const Glu& glu, DType dtype, double exact_term);
bool reduction_within(DType dtype, double got, double exact, const ReductionBound& b);
std::string reduction_report(DType dtype, double got, double exact, const ReductionBound& b);

// ---------------------------------------------------------------- judging whole calls

// Each judges the outputs of one call (values of dtype, as doubles, row-major
// as the API lays them out) against the reference with the rules above,
// describes the first few failures on stderr and returns how many values
// failed. Shared by the CPU emulation suite, the GPU suite and cuact-bench.
int64_t judge_bias_forward(const Activation& act, DType dtype, int64_t rows, int64_t cols,
                           const std::vector<double>& x, const std::vector<double>& bias,
                           const Dropout& dropout, const std::vector<double>& y,
                           const std::vector<uint8_t>* mask);
// dbias (in param_dtype, the bias's dtype) may be empty (not asked for).
int64_t judge_bias_backward(const Activation& act, DType dtype, DType param_dtype, int64_t rows,
                            int64_t cols,
                            const std::vector<double>& x, const std::vector<double>& bias,
                            const std::vector<double>& dy, const Dropout& dropout,
                            const std::vector<double>& dx, const std::vector<double>& dbias);
// GLU with its clamps; weight [rows] (empty: unweighted) and dweight [rows]
// in weight_dtype (empty: not asked for).
int64_t judge_glu_forward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                          const std::vector<double>& x, const std::vector<double>& y,
                          const std::vector<double>& weight = {});
int64_t judge_glu_backward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                           const std::vector<double>& x, const std::vector<double>& dy,
                           const std::vector<double>& dx, const std::vector<double>& weight = {},
                           DType weight_dtype = DType::f32,
                           const std::vector<double>& dweight = {});
// PReLU is exact; dweight (in param_dtype, may be empty) within the reduction bound.
int64_t judge_prelu(DType dtype, DType param_dtype, int64_t outer, int64_t channels, int64_t inner,
                    const std::vector<double>& x, const std::vector<double>& weight,
                    const std::vector<double>& dy, const std::vector<double>& y,
                    const std::vector<double>& dx, const std::vector<double>& dweight);
// RReLU is exact (slopes from the generator).
int64_t judge_rrelu(const Rrelu& rrelu, DType dtype, const std::vector<double>& x,
                    const std::vector<double>& dy, const std::vector<double>& y,
                    const std::vector<double>& dx);

// ---------------------------------------------------------------- inputs

// Values for the grids of the fused suites, as doubles exact in dtype:
// element i of a [rows, cols] input, cycling through test_inputs(dtype)
// (every value for fp16/bf16, a subsample for fp32) with a per-call phase.
double fused_input(DType dtype, int64_t i, int64_t phase = 0);
// Smooth finite values in [-4, 4], exact in dtype: inputs of calls whose
// reductions (dbias, dweight) are judged, where the grid's infinities and
// NaNs would make every sum non-finite.
double fused_moderate(DType dtype, int64_t i, int64_t phase);
// The inputs of a PReLU call over n elements and `channels` channels: x
// and dy smooth (phases 3 and 4, so dweight's sums stay finite), weights a
// quarter of fused_operand.
struct PreluInputs {
  std::vector<double> x, dy, weight;
};
PreluInputs prelu_inputs(DType dtype, int64_t n, int64_t channels);

// Moderate finite values for parameters and second operands (bias, linear
// half, weights): a few exact values of every dtype, cycled.
double fused_operand(int64_t i);

}  // namespace cuact::test
