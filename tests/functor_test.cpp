// The device functors, run on the host exactly as the kernels run them
// (widen to fp32, functor, round once to the dtype), against the double
// reference: every activation x dtype x direction over the full input grid.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "accuracy.h"

namespace cuact::test {
namespace {

class FunctorVsReference : public testing::TestWithParam<ActivationCase> {};

TEST_P(FunctorVsReference, WithinTheDtypesTolerance) {
  const ActivationCase c = GetParam();
  const Activation act = c.act;
  const DType dtype = c.dtype;
  const Direction direction = c.direction;
  const SweepReport r = sweep(
      act, dtype, direction, test_inputs(dtype),
      [&](const std::vector<double>& in, const std::vector<double>& dy) {
        return evaluate_functors_on_host(act, dtype, direction, in, dy);
      });
  for (const std::string& failure : r.first_failures) ADD_FAILURE() << failure;
  EXPECT_EQ(r.outside, 0) << "results outside the tolerance (first 5 above)";
  RecordProperty("worst_ulps", std::to_string(r.worst_ulps));
  std::printf("accuracy %s %s %s: worst %lld ulp (bound %d); %lld by the subnormal floor, "
              "%lld by the root allowance, %lld outside; of %lld inputs\n",
              describe(act).c_str(), dtype_name(dtype), direction_name(direction),
              static_cast<long long>(r.worst_ulps),
              tolerance_for(act.kind, dtype, direction).ulps,
              static_cast<long long>(r.subnormal_floor), static_cast<long long>(r.root_allowance),
              static_cast<long long>(r.outside), static_cast<long long>(r.inputs));
}

INSTANTIATE_TEST_SUITE_P(AllActivations, FunctorVsReference,
                         testing::ValuesIn(activation_cases()),
                         [](const auto& info) { return case_name(info.param, info.index); });

}  // namespace
}  // namespace cuact::test
