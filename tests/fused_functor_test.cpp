// The fused forms' per-element math (cuda/forms.h), run on the host
// exactly as the row engine runs it (widen to fp32, form, round once to the
// dtype), against the double reference, for every activation x dtype: bias +
// activation, GLU (both outputs of the backward), dropout (kept values scaled,
// dropped values exactly 0), forward and backward. The accuracy rule is
// accuracy.h's, plus fused_tolerance's allowance for a product after the
// activation. Inputs: all fp16/bf16 values, ~130K of the fp32 grid and its specials.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <vector>

#include "activation_params.h"
#include "cuact/device/convert.cuh"
#include "cuact/reference.h"
#include "forms.h"
#include "dtype_list.h"
#include "fused_testing.h"

namespace cuact::test {
namespace {

struct FusedCase {
  Activation act;
  DType dtype;
};

std::vector<FusedCase> fused_cases() {
  std::vector<FusedCase> cases;
  for (const Activation& act : fused_activations())
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) cases.push_back({act, dtype});
  return cases;
}

// The grid of x values a case sweeps.
std::vector<double> sweep_inputs(DType dtype) {
  if (dtype != DType::f32) return test_inputs(dtype);
  std::vector<double> v;
  for (int64_t i = 0; i < (int64_t{1} << 17); ++i) v.push_back(fused_input(dtype, i));
  const std::vector<double>& grid = test_inputs(dtype);
  for (size_t i = grid.size() - 120; i < grid.size(); ++i) v.push_back(grid[i]);  // the specials
  return v;
}

// Bit for bit, except that every NaN equals every NaN (which NaN an
// operation returns depends on its operand order, not on the math).
template <class T>
bool same_bits(const T& a, const T& b) {
  const float fa = device::to_float(a), fb = device::to_float(b);
  if (fa != fa || fb != fb) return fa != fa && fb != fb;
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// A value of the form's output type, rounded to dtype as the engine's store does.
template <class T, class V>
double stored(V v) {
  return device::to_float(device::narrow<T>(v));
}

struct Tally {
  explicit Tally(const char* name) : what(name) {}
  const char* what;
  int64_t worst = 0, outside = 0, count = 0;
  std::vector<std::string> failures;
  void add(DType dtype, double got, double exact, double dy, const Tolerance& tol, bool near_root,
           double x) {
    ++count;
    const Verdict v = judge(dtype, got, exact, dy, tol, near_root);
    if (v.rule == Verdict::within_ulps) worst = std::max(worst, v.ulps);
    if (!v.ok() && ++outside <= 3) {
      std::ostringstream s;
      s << what << ": x=" << x << " dy=" << dy << ": got " << got << ", exact " << exact << " ("
        << v.ulps << " ulp, bound " << tol.ulps << ")";
      failures.push_back(s.str());
    }
  }
  // A result that must be exactly `want` (rounded to dtype).
  void add_exact(DType dtype, double got, double want, double x) {
    ++count;
    if (ulp_distance(dtype, got, reference::round_to(dtype, want)) != 0 && ++outside <= 3) {
      std::ostringstream s;
      s << what << ": x=" << x << ": got " << got << ", want " << want;
      failures.push_back(s.str());
    }
  }
  void report(const FusedCase& c, int bound) const {
    for (const std::string& f : failures) ADD_FAILURE() << f;
    EXPECT_EQ(outside, 0) << what << ": results outside the tolerance";
    std::printf("fused accuracy %s %s %s: worst %lld ulp (bound %d), %lld outside, of %lld\n",
                describe(c.act).c_str(), dtype_name(c.dtype), what, static_cast<long long>(worst),
                bound, static_cast<long long>(outside), static_cast<long long>(count));
  }
};

template <class T, class F>
void check_forms(const FusedCase& c, const F& op) {
  using namespace detail;
  const DType dtype = c.dtype;
  const ActivationKind kind = c.act.kind;
  const std::vector<double> xs = sweep_inputs(dtype);
  const Dropout dropout{0.3f, 2024, 11};
  const float scale = static_cast<float>(reference::dropout_scale(dropout.p));
  const bool roots_backward =
      tolerance_for(kind, dtype, Direction::backward).root_allowance > 0;
  auto inputs = [](double a, double b, double cc, double param, bool kept) {
    return ElementIn{{static_cast<float>(a), static_cast<float>(b), static_cast<float>(cc)},
                     static_cast<float>(param), 0u, kept};
  };
  auto near_root = [&](double x) { return roots_backward && near_derivative_zero(c.act, x); };

  // Without bias, gate and dropout (their neutral values), the forms are the
  // plain activation, bit for bit (p = 0 is the plain activation).
  {
    const ActivationForward<F, T, false> forward{op, 1.0f};
    const ActivationBackward<F, T, false> backward{op, 1.0f, false};
    int64_t differ = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const float x = static_cast<float>(xs[i]);
      const float dy = static_cast<float>(test_gradient(static_cast<int64_t>(i)));
      const T y1 = device::narrow<T>(forward(inputs(x, kNoGate, 0, kNoBias, true)).out[0]);
      const T y0 = device::narrow<T>(op.forward(x));
      const T d1 = device::narrow<T>(backward(inputs(x, dy, 0, kNoBias, true)).out[0]);
      const T d0 = device::narrow<T>(op.backward(x, dy));
      differ += !same_bits(y1, y0) || !same_bits(d1, d0);
    }
    EXPECT_EQ(differ, 0) << "neutral bias / gate / dropout changed the plain activation";
  }
  // bias + activation: the activation of the fp32 sum x + bias.
  {
    Tally fwd{"bias forward"}, bwd{"bias backward"};
    const Tolerance tf = fused_tolerance(kind, dtype, Direction::forward, 0);
    const Tolerance tb = fused_tolerance(kind, dtype, Direction::backward, 0);
    const ActivationForward<F, T, false> forward{op, 1.0f};
    const ActivationBackward<F, T, false> backward{op, 1.0f, false};
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x = xs[i], b = fused_operand(static_cast<int64_t>(i)), dy = test_gradient(static_cast<int64_t>(i));
      const double z = reference::bias_preactivation(x, b);
      fwd.add(dtype, stored<T>(forward(inputs(x, kNoGate, 0, b, true)).out[0]),
              reference::forward(c.act, z), dy, tf, false, x);
      bwd.add(dtype, stored<T>(backward(inputs(x, dy, 0, b, true)).out[0]),
              reference::backward(c.act, z, dy), dy, tb, near_root(z), x);
    }
    fwd.report(c, tf.ulps);
    bwd.report(c, tb.ulps);
  }
  // GLU: act(a) * b, and both halves of its gradient.
  {
    Tally fwd{"glu forward"}, da{"glu backward d(gated)"}, db{"glu backward d(linear)"};
    const Tolerance tf = fused_tolerance(kind, dtype, Direction::forward, 1);
    const Tolerance tb = fused_tolerance(kind, dtype, Direction::backward, 1);
    const ActivationForward<F, T, false> forward{op, 1.0f};
    const GatedBackward<F, T> backward{op};
    for (size_t i = 0; i < xs.size(); ++i) {
      const double a = xs[i], lin = fused_operand(static_cast<int64_t>(i) + 3),
                   dy = test_gradient(static_cast<int64_t>(i));
      const auto r = backward(inputs(a, dy, lin, 0, true));
      da.add(dtype, stored<T>(r.out[0]), reference::backward(c.act, a, dy * lin), dy * lin, tb,
             near_root(a), a);
      const double y = stored<T>(forward(inputs(a, lin, 0, kNoBias, true)).out[0]);
      if (fp32_activation_overflows(c.act, a)) {  // f(a) is +-inf in fp32
        fwd.add_exact(dtype, y, overflowed_product(c.act, a, lin), a);
        db.add_exact(dtype, stored<T>(r.out[1]), overflowed_product(c.act, a, dy), a);
        continue;
      }
      fwd.add(dtype, y, reference::forward(c.act, a) * lin, dy, tf, false, a);
      db.add(dtype, stored<T>(r.out[1]), dy * reference::forward(c.act, a), dy, tf, false, a);
    }
    fwd.report(c, tf.ulps);
    da.report(c, tb.ulps);
    db.report(c, tf.ulps);
  }
  // Dropout: kept values scaled by the fp32 1/(1-p), dropped ones exactly +0.
  {
    Tally fwd{"dropout forward"}, bwd{"dropout backward"};
    const Tolerance tf = fused_tolerance(kind, dtype, Direction::forward, 1);
    const Tolerance tb = fused_tolerance(kind, dtype, Direction::backward, 1);
    const ActivationForward<F, T, true> forward{op, scale};
    const ActivationBackward<F, T, true> backward{op, scale, false};
    int64_t dropped_not_zero = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x = xs[i], dy = test_gradient(static_cast<int64_t>(i));
      const bool kept = reference::dropout_keeps(dropout, i);
      const double y = stored<T>(forward(inputs(x, kNoGate, 0, kNoBias, kept)).out[0]);
      const double dx = stored<T>(backward(inputs(x, dy, 0, kNoBias, kept)).out[0]);
      if (!kept) {
        dropped_not_zero += !(y == 0 && !std::signbit(y)) + !(dx == 0 && !std::signbit(dx));
        continue;
      }
      fwd.add(dtype, y, reference::forward(c.act, x) * scale, dy, tf, false, x);
      bwd.add(dtype, dx, reference::backward(c.act, x, dy * scale), dy * scale, tb, near_root(x), x);
    }
    EXPECT_EQ(dropped_not_zero, 0) << "dropped elements must be exactly +0";
    fwd.report(c, tf.ulps);
    bwd.report(c, tb.ulps);
  }
}

class FusedFormsVsReference : public testing::TestWithParam<FusedCase> {};

TEST_P(FusedFormsVsReference, WithinTheFusedTolerance) {
  const FusedCase c = GetParam();
  detail::visit_dtype(c.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    detail::visit_activation<T>(c.act, [&](const auto& op) {
      check_forms<T, std::decay_t<decltype(op)>>(c, op);
    });
  });
}

INSTANTIATE_TEST_SUITE_P(AllActivations, FusedFormsVsReference, testing::ValuesIn(fused_cases()),
                         [](const auto& info) {
                           std::string name = describe(info.param.act) + "_" +
                                              dtype_name(info.param.dtype) + "_" +
                                              std::to_string(info.index);
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// ---------------------------------------------------------------- slope forms

// PReLU and RReLU: exact in every dtype (one rounding of a product that is
// exact in double), NaN in gives NaN out, a zero slope at -inf gives 0.
TEST(SlopeForms, ExactAgainstTheReference) {
  using namespace detail;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    const std::vector<double> xs = sweep_inputs(dtype);
    const float weights[] = {0.25f, -0.5f, 0.0f, 1.5f, 0.1f};
    int64_t wrong = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x = xs[i], dy = test_gradient(static_cast<int64_t>(i));
      const float w = weights[i % 5];
      const ElementIn e{{static_cast<float>(x), static_cast<float>(dy), 0.0f}, w, 0u, true};
      const SlopeRule rule{0.0f, 0.0f, false};
      const double want_y = std::isnan(x) || x > 0 ? x : (w == 0 ? 0.0 : w * x);
      const double want_dx = std::isnan(x) ? x : (x > 0 ? dy : w * dy);
      auto same = [&](double got, double want) {
        return ulp_distance(dtype, got, reference::round_to(dtype, want)) == 0;
      };
      double got_y = 0, got_dx = 0;
      float term = 0;
      visit_dtype(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        got_y = stored<T>(SlopeForward<T, false>{rule}(e).out[0]);
        const ElementOut b = SlopeBackward<T, false>{rule}(e);
        got_dx = stored<T>(b.out[0]);
        term = b.term;
      });
      if (!same(got_y, want_y) || !same(got_dx, want_dx)) {
        if (++wrong <= 3)
          ADD_FAILURE() << dtype_name(dtype) << " x=" << x << " w=" << w << ": y " << got_y
                        << " vs " << want_y << ", dx " << got_dx << " vs " << want_dx;
      }
      // The d weight term: dy * x off the linear side (NaN x included).
      if (!(x > 0)) {
        const double want = static_cast<double>(static_cast<float>(dy * x));
        EXPECT_TRUE(term == want || (std::isnan(term) && std::isnan(want))) << x;
      } else {
        EXPECT_EQ(term, 0.0f);
      }
    }
    EXPECT_EQ(wrong, 0) << dtype_name(dtype);
  }
}

TEST(SlopeForms, RreluKinkAndSlopeSources) {
  using namespace detail;
  const SlopeRule rrelu{0.0f, 0.0f, true};  // eval: the slope is the parameter
  const SlopeRule prelu{0.0f, 0.0f, false};
  const ElementIn zero{{0.0f, 2.0f, 0.0f}, 0.25f, 0u, true};
  // x = 0: on RReLU's linear side (x >= 0, derivative 1), not on PReLU's (x > 0).
  using Slope = SlopeBackward<float, false>;
  EXPECT_EQ(Slope{rrelu}(zero).out[0], 2.0f);
  EXPECT_EQ(Slope{prelu}(zero).out[0], 0.5f);
  // Training: base lower, span upper - lower, u from the draw.
  const SlopeRule train{0.5f - 0.125f, 0.5f, true};
  const ElementIn neg{{-4.0f, 1.0f, 0.0f}, 0.125f, 0x8000u, true};
  EXPECT_EQ(train.slope(neg), rrelu_slope(0.125f, 0.5f, 0x8000u));
  EXPECT_EQ(train.slope(neg), 0.125f + 0.375f * 0.5f);
  using Drawn = SlopeForward<float, true>;
  using Fixed = SlopeForward<float, false>;
  EXPECT_EQ(Drawn{train}(neg).out[0], -4.0f * rrelu_slope(0.125f, 0.5f, 0x8000u));
  EXPECT_TRUE(std::isnan(Drawn{train}(ElementIn{{NAN, 0, 0}, 0.125f, 7u, true}).out[0]));
  EXPECT_EQ(Fixed{SlopeRule{}}(ElementIn{{-INFINITY, 0, 0}, 0.0f, 0u, true}).out[0], 0.0f);
}

}  // namespace
}  // namespace cuact::test
