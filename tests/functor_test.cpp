// The device functors, run on the host exactly as the kernels run them
// (widen to fp32, functor, round once to the dtype), against the double
// reference: every activation x dtype x direction over the full input grid.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "accuracy.h"
#include "activation_functors.cuh"
#include "cuact/reference.h"
#include "numeric.cuh"

namespace cuact::test {
namespace {

// Rounds a functor's result (float or double) to dtype as the engine's store does.
template <class V>
double store_as(DType dtype, V v) {
  switch (dtype) {
    case DType::f16: return detail::to_float(detail::narrow<__half>(v));
    case DType::bf16: return detail::to_float(detail::narrow<__nv_bfloat16>(v));
    default: return detail::narrow<float>(v);
  }
}

struct FunctorCase {
  Activation act;
  DType dtype;
  Direction direction;
};

// gtest prints the case by this (ctest shows it beside the test's name).
void PrintTo(const FunctorCase& c, std::ostream* os) {
  *os << describe(c.act) << " " << dtype_name(c.dtype) << " " << direction_name(c.direction);
}

std::string case_name(const testing::TestParamInfo<FunctorCase>& info) {
  std::string name = describe(info.param.act) + "_" + dtype_name(info.param.dtype) + "_" +
                     direction_name(info.param.direction) + "_" + std::to_string(info.index);
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

std::vector<FunctorCase> all_cases() {
  std::vector<FunctorCase> cases;
  for (const Activation& act : test_activations())
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      cases.push_back({act, dtype, Direction::forward});
      cases.push_back({act, dtype, Direction::backward});
      if (has_backward_from_output(act))
        cases.push_back({act, dtype, Direction::backward_from_output});
    }
  return cases;
}

class FunctorVsReference : public testing::TestWithParam<FunctorCase> {};

TEST_P(FunctorVsReference, WithinTheDtypesTolerance) {
  const auto [act, dtype, direction] = GetParam();
  const Tolerance tol = tolerance_for(act.kind, dtype, direction);
  const std::vector<double>& xs = test_inputs(dtype);
  int64_t worst_ulps = 0, failures = 0, by_floor = 0, by_root = 0, worst_outside = 0;
  detail::visit_activation_op(act, [&](const auto& op) {
    using Op = std::decay_t<decltype(op)>;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x = xs[i];
      const double dy = test_gradient(static_cast<int64_t>(i));
      const double in = direction_input(act, dtype, direction, x);
      const double exact = exact_result(act, direction, in, dy);
      const float in_f = static_cast<float>(in), dy_f = static_cast<float>(dy);
      double got = 0;  // the functor's result, rounded to dtype as the kernel stores it
      if (direction == Direction::forward) {
        got = store_as(dtype, op.forward(in_f));
      } else if (direction == Direction::backward) {
        got = store_as(dtype, op.backward(in_f, dy_f));
      } else if constexpr (detail::HasBackwardFromOutput<Op>::value) {
        got = store_as(dtype, op.backward_from_output(in_f, dy_f));
      }
      const bool near_root =
          direction != Direction::forward && tol.root_allowance > 0 && near_derivative_zero(act, x);
      const Verdict v = judge(dtype, got, exact, dy, tol, near_root);
      if (v.rule == Verdict::within_ulps && v.ulps > worst_ulps) worst_ulps = v.ulps;
      by_floor += v.rule == Verdict::subnormal_floor;
      by_root += v.rule == Verdict::root_allowance;
      if (!v.ok() && v.ulps > worst_outside) worst_outside = v.ulps;
      if (!v.ok() && ++failures <= 5)
        ADD_FAILURE() << describe(act) << " " << dtype_name(dtype) << " "
                      << direction_name(direction) << " in=" << in << " dy=" << dy
                      << ": got " << got << ", exact " << exact << " ("
                      << v.ulps << " ulp, bound " << tol.ulps << ")";
    }
  });
  RecordProperty("worst_ulps", std::to_string(worst_ulps));
  EXPECT_EQ(failures, 0) << "points outside the tolerance (first 5 shown above)";
  std::printf("accuracy %s %s %s: worst %lld ulp (bound %d), %lld subnormal-floor, %lld "
              "root-allowance, %lld outside (worst %lld ulp) of %zu inputs\n",
              describe(act).c_str(), dtype_name(dtype), direction_name(direction),
              static_cast<long long>(worst_ulps), tol.ulps, static_cast<long long>(by_floor),
              static_cast<long long>(by_root), static_cast<long long>(failures),
              static_cast<long long>(worst_outside), xs.size());
}

INSTANTIATE_TEST_SUITE_P(AllActivations, FunctorVsReference, testing::ValuesIn(all_cases()),
                         case_name);

}  // namespace
}  // namespace cuact::test
