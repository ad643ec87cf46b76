// Test support for the fused forms, shared by the CPU suites and the GPU
// suite: the accuracy rule of the fused forms (built on accuracy.h's), the
// tolerance of reductions, a CPU emulator of the fused kernels, and the
// tables of shapes and activations the suites sweep.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "accuracy.h"
#include "cuact/fused.h"
#include "fused_calls.h"

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
Tolerance fused_tolerance(ActivationKind kind, DType dtype, Direction direction,
                          bool product_after);

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
// e_i of a term of bias + activation backward: the fp32 rule of act's backward
// at pre-activation z with incoming gradient dy (the product forms' + 1 ulp when scaled).
double backward_term_error(const Activation& act, double z, double dy, double exact_term,
                           bool product_after);
// e_i of a term rounded once in fp32 (PReLU's dy * x).
double rounded_term_error(double exact_term);
bool reduction_within(DType dtype, double got, double exact, const ReductionBound& b);
std::string reduction_report(DType dtype, double got, double exact, const ReductionBound& b);

// ---------------------------------------------------------------- judging whole calls

// Each judges the outputs of one call (values of dtype, as doubles, row-major
// as the API lays them out) against the reference with the rules above,
// reports the first few failures with ADD_FAILURE and returns how many
// values failed. Shared by the CPU emulation suite and the GPU suite.
int64_t judge_bias_forward(const Activation& act, DType dtype, int64_t rows, int64_t cols,
                           const std::vector<double>& x, const std::vector<double>& bias,
                           const Dropout& dropout, const std::vector<double>& y,
                           const std::vector<uint8_t>* mask);
// dbias may be empty (not asked for).
int64_t judge_bias_backward(const Activation& act, DType dtype, int64_t rows, int64_t cols,
                            const std::vector<double>& x, const std::vector<double>& bias,
                            const std::vector<double>& dy, const Dropout& dropout,
                            const std::vector<double>& dx, const std::vector<double>& dbias);
int64_t judge_glu_forward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                          const std::vector<double>& x, const std::vector<double>& y);
int64_t judge_glu_backward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                           const std::vector<double>& x, const std::vector<double>& dy,
                           const std::vector<double>& dx);
// PReLU is exact; dweight (may be empty) within the reduction bound.
int64_t judge_prelu(DType dtype, int64_t outer, int64_t channels, int64_t inner,
                    const std::vector<double>& x, const std::vector<double>& weight,
                    const std::vector<double>& dy, const std::vector<double>& y,
                    const std::vector<double>& dx, const std::vector<double>& dweight);
// RReLU is exact (slopes from the generator).
int64_t judge_rrelu(const Rrelu& rrelu, DType dtype, const std::vector<double>& x,
                    const std::vector<double>& dy, const std::vector<double>& y,
                    const std::vector<double>& dx);

// ---------------------------------------------------------------- CPU emulation of the kernels

// Runs a launch on host buffers exactly as the fused kernels would: every
// block and thread of the launch's grid (device_blocks: the block budget a
// device would give a launch that does not reduce), through the kernels'
// process_chunk and block-partial code; each segment of partials is then summed
// in fp32 (the GPU's warp-tree order differs; the tolerance covers it).
// A reducing call's workspace must be a host buffer of the queried size.
// Emulated functors: identity, relu, leaky_relu, hardswish, gelu, gelu_tanh,
// silu, sigmoid, threshold (emulated_activations()); the engine is the same
// for every functor, and fused_functor_test runs every functor's forms.
void emulate_fused(DType dtype, const detail::FusedLaunch& launch, int64_t device_blocks);
std::vector<Activation> emulated_activations();

// ---------------------------------------------------------------- tables

// Activations the fused suites sweep: every kind with its defaults plus a few
// non-default parameters (the same list as the elementwise suites).
std::vector<Activation> fused_activations();

// Shapes [rows, cols]: odd widths (not multiples of any vector width), one
// row, one column, widths around the pack and warp sizes.
struct Shape {
  int64_t rows, cols;
};
std::vector<Shape> fused_shapes();

// Values for the grids of the fused suites, as doubles exact in dtype:
// element i of a [rows, cols] input, cycling through test_inputs(dtype)
// (every value for fp16/bf16, a subsample for fp32) with a per-call phase.
double fused_input(DType dtype, int64_t i, int64_t phase = 0);
// Moderate finite values for parameters and second operands (bias, linear
// half, weights): a few exact values of every dtype, cycled.
double fused_operand(int64_t i);

std::string shape_name(const Shape& s);

}  // namespace cuact::test
