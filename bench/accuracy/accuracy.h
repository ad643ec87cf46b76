// The accuracy contract as code: one tolerance rule per dtype, the per-op
// bounds of docs/ACCURACY.md's table, and the input grids every activation
// test sweeps. Shared by the CPU tests (functors run on the host) and the GPU
// tests (kernels), so both are judged by the same rule.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "cuact/activation.h"

namespace cuact::test {

// What an activation's results may differ from the correctly rounded value
// of the exact result (the double reference, rounded once to the dtype).
struct Tolerance {
  int ulps = 0;                   // representable steps from the correctly rounded value
  bool fp32_subnormal_floor = false;  // fp32: |got - exact| <= FLT_MIN also passes
  double root_allowance = 0.0;    // backward near a zero of f' (where the terms of f'
                                  // cancel): |got - exact| <= root_allowance * 2^-24 * |dy|
                                  // also passes
};

// The rule for one activation, dtype and direction (README "Accuracy contract"):
// - piecewise-linear kinds: exact (ulps = 0) in every dtype and direction;
// - fp16/bf16: 1 ulp;
// - fp32: the per-kind bound below, plus the subnormal floor;
// - backward of kinds whose f' has a zero inside the domain: the root allowance.
Tolerance tolerance_for(ActivationKind kind, DType dtype, Direction direction);
bool is_piecewise_linear(ActivationKind kind);
// The same rule for fp16/bf16 results from inputs that are any fp32 value
// (the fused kernels apply the functor to fp32(x + bias)): hardsigmoid and
// hardswish, exact only for inputs that are values of the dtype, get 1 ulp.
Tolerance tolerance_for_fp32_inputs(ActivationKind kind, DType dtype, Direction direction);

// Distance in representable steps of `dtype` between two values of that
// dtype (NaN vs NaN is 0, NaN vs number is huge, +-0 are one value).
int64_t ulp_distance(DType dtype, double a, double b);

struct Verdict {
  enum Rule { within_ulps, subnormal_floor, root_allowance, outside };
  Rule rule;     // which part of the tolerance accepted the result, or outside
  int64_t ulps;  // distance from the correctly rounded value
  bool ok() const { return rule != outside; }
};
// Judges a result `got` (a value of dtype) against the exact result.
// near_root: the input lies near a zero of f' (see near_derivative_zero).
Verdict judge(DType dtype, double got, double exact, double dy, const Tolerance& tol,
              bool near_root = false);

// True when the reference f' changes sign within 1/2 of x: the window in
// which the root allowance applies.
bool near_derivative_zero(const Activation& act, double x);

// Inputs every activation test sweeps, as doubles exactly representable in
// dtype: every finite and special value of fp16/bf16 (all 2^16 bit patterns);
// for fp32 a dense grid over [-40, 40], log-spaced magnitudes from the
// smallest subnormal to FLT_MAX, random bit patterns, and the specials
// (+-0, +-inf, NaN, kinks of every kind).
const std::vector<double>& test_inputs(DType dtype);
// The incoming gradient for element i: a few representable values, cycled.
double test_gradient(int64_t i);
// The incoming gradients of the dense backward sweeps of fp16/bf16: 64
// values of dtype, every one paired with every input (see accuracy.cpp).
const std::vector<double>& dense_gradients(DType dtype);

// The activations the tests sweep: every kind with its defaults, plus
// non-default parameters for every kind that has parameters.
std::vector<Activation> test_activations();
std::string describe(const Activation& act);  // "leaky_relu(alpha=0.2)"

// What a direction reads for grid point x: x itself, or for
// backward_from_output the saved output y = f(x) rounded to dtype.
double direction_input(const Activation& act, DType dtype, Direction direction, double x);
// The exact (double reference) result of a direction for its input and dy,
// as judge() takes it for a result of dtype: the piecewise-linear ops' exact
// result already rounded once to dtype (their error allowance is 0 ulp, and
// rounding the nearest double again could miss a tie broken below double's
// precision), the others' as the double.
double exact_result(const Activation& act, DType dtype, Direction direction, double in, double dy);

// Computes a direction for every (in, dy) and returns the results as values
// of dtype (the kernels on a GPU, or the functors on the host).
using Evaluator = std::function<std::vector<double>(const std::vector<double>& in,
                                                    const std::vector<double>& dy)>;

// The device functors run on the host exactly as a kernel runs them: widen
// to fp32, apply, round once to dtype.
std::vector<double> evaluate_functors_on_host(const Activation& act, DType dtype,
                                              Direction direction, const std::vector<double>& in,
                                              const std::vector<double>& dy);

// One direction judged over a grid of x (see test_inputs), by the rule above.
struct SweepReport {
  int64_t inputs = 0;
  int64_t worst_ulps = 0;       // within the bound, outside the allowances' reach
  int64_t subnormal_floor = 0;  // results accepted by the fp32 subnormal floor
  int64_t root_allowance = 0;   // results accepted near a zero of f'
  int64_t outside = 0;          // results outside the tolerance
  double max_rel_err = 0;       // over results whose exact value is a normal number of dtype
  std::vector<std::string> first_failures;  // up to 5, readable
};
SweepReport sweep(const Activation& act, DType dtype, Direction direction,
                  const std::vector<double>& grid, const Evaluator& evaluate);
// The same with a given tolerance (e.g. tolerance_for_fp32_inputs).
SweepReport sweep(const Activation& act, DType dtype, Direction direction,
                  const std::vector<double>& grid, const Evaluator& evaluate,
                  const Tolerance& tol);
// A backward direction of fp16/bf16 judged on every input of the grid times
// every gradient of dense_gradients(dtype); the reference f' is computed once
// per input and multiplied by dy in double (it rounds once, to the dtype).
SweepReport sweep_dense_gradients(const Activation& act, DType dtype, Direction direction,
                                  const std::vector<double>& grid, const Evaluator& evaluate);

// One row of the activation test tables: every activation of
// test_activations() x dtype x direction it offers.
struct ActivationCase {
  Activation act;
  DType dtype;
  Direction direction;
};
std::vector<ActivationCase> activation_cases();
// gtest prints a case by this, and names it by case_name (letters, digits, _).
void PrintTo(const ActivationCase& c, std::ostream* os);
std::string case_name(const ActivationCase& c, size_t index);

// Host buffers in dtype <-> doubles (exact both ways for values of dtype).
std::vector<unsigned char> to_buffer(DType dtype, const std::vector<double>& values);
std::vector<double> from_buffer(DType dtype, const std::vector<unsigned char>& bytes);

}  // namespace cuact::test
