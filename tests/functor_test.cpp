// The device functors, run on the host exactly as the kernels run them
// (widen to fp32, functor, round once to the dtype), against the double
// reference: every activation x dtype x direction over the full input grid
// (fp16/bf16 backward: every input times every gradient of the dense set),
// and fp16/bf16 results from inputs that are any fp32 value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "accuracy.h"

namespace cuact::test {
namespace {

void expect_within(const ActivationCase& c, const SweepReport& r, const Tolerance& tol,
                   const char* inputs) {
  for (const std::string& failure : r.first_failures) ADD_FAILURE() << failure;
  EXPECT_EQ(r.outside, 0) << "results outside the tolerance (first 5 above)";
  testing::Test::RecordProperty("worst_ulps", std::to_string(r.worst_ulps));
  std::printf("accuracy %s %s %s (%s): worst %lld ulp (bound %d); %lld by the subnormal floor, "
              "%lld by the root allowance, %lld outside; of %lld results\n",
              describe(c.act).c_str(), dtype_name(c.dtype), direction_name(c.direction), inputs,
              static_cast<long long>(r.worst_ulps), tol.ulps,
              static_cast<long long>(r.subnormal_floor), static_cast<long long>(r.root_allowance),
              static_cast<long long>(r.outside), static_cast<long long>(r.inputs));
}

Evaluator functors(const ActivationCase& c) {
  return [c](const std::vector<double>& in, const std::vector<double>& dy) {
    return evaluate_functors_on_host(c.act, c.dtype, c.direction, in, dy);
  };
}

class FunctorVsReference : public testing::TestWithParam<ActivationCase> {};

TEST_P(FunctorVsReference, WithinTheDtypesTolerance) {
  const ActivationCase c = GetParam();
  const std::vector<double>& grid = test_inputs(c.dtype);
  const bool dense = c.dtype != DType::f32 && c.direction != Direction::forward;
  const SweepReport r = dense ? sweep_dense_gradients(c.act, c.dtype, c.direction, grid, functors(c))
                              : sweep(c.act, c.dtype, c.direction, grid, functors(c));
  expect_within(c, r, tolerance_for(c.act.kind, c.dtype, c.direction),
                dense ? "every input x dense dy" : "every input");
}

INSTANTIATE_TEST_SUITE_P(AllActivations, FunctorVsReference,
                         testing::ValuesIn(activation_cases()),
                         [](const auto& info) { return case_name(info.param, info.index); });

// fp16/bf16 results of functors applied to any fp32 value (the fused
// kernels' fp32(x + bias)), forward and backward, on the fp32 grid.
class HalfResultsOfFp32Inputs : public testing::TestWithParam<ActivationCase> {};

TEST_P(HalfResultsOfFp32Inputs, WithinTheDtypesTolerance) {
  const ActivationCase c = GetParam();
  const Tolerance tol = tolerance_for_fp32_inputs(c.act.kind, c.dtype, c.direction);
  expect_within(c, sweep(c.act, c.dtype, c.direction, test_inputs(DType::f32), functors(c), tol),
                tol, "fp32 inputs");
}

std::vector<ActivationCase> half_cases_of_fp32_inputs() {
  std::vector<ActivationCase> cases;
  for (const ActivationCase& c : activation_cases())
    if (c.dtype != DType::f32 && c.direction != Direction::backward_from_output)
      cases.push_back(c);
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllActivations, HalfResultsOfFp32Inputs,
                         testing::ValuesIn(half_cases_of_fp32_inputs()),
                         [](const auto& info) { return case_name(info.param, info.index); });

}  // namespace
}  // namespace cuact::test

namespace cuact::test {
namespace {

// hardswish's zero results are +0 (SPEC), in every dtype, as the
// reference's (reference_test: HardswishZerosArePositive).
TEST(FunctorSigns, HardswishZerosArePositive) {
  const std::vector<double> in = {-0.0, -3.0, -5.0, -static_cast<double>(INFINITY), 0.0};
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    const std::vector<double> y = evaluate_functors_on_host(
        Activation::hardswish(), dtype, Direction::forward, in, std::vector<double>(in.size(), 1.0));
    for (size_t i = 0; i < in.size(); ++i) {
      EXPECT_EQ(y[i], 0.0) << dtype_name(dtype) << " x " << in[i];
      EXPECT_FALSE(std::signbit(y[i])) << dtype_name(dtype) << " x " << in[i];
    }
  }
}

}  // namespace
}  // namespace cuact::test
