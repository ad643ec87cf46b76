// The double-precision CPU reference (host/reference.cpp) against values
// computed independently (mpmath at 50+ digits, or by hand for the piecewise
// kinds), mathematical identities, edge cases, finite differences of its own
// forward, and hand-built rounding cases. CPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuact/reference.h"

namespace {

using cuact::Activation;
using cuact::ActivationKind;
using cuact::Direction;
using cuact::DType;
using cuact::StatusCode;
using K = ActivationKind;
namespace ref = cuact::reference;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kSeluAlpha = 1.6732632423543772;
constexpr double kSeluLambda = 1.0507009873554805;

std::string describe(const Activation& act, double x) {
  return std::string(cuact::activation_name(act.kind)) + " at x = " + std::to_string(x) +
         " (alpha " + std::to_string(act.alpha) + ", beta " + std::to_string(act.beta) + ")";
}

// |actual - expected| <= rel * |expected| (or <= abs_floor); NaN equals NaN only.
::testing::AssertionResult close(double actual, double expected, double rel,
                                 double abs_floor = 0) {
  if (std::isnan(expected) && std::isnan(actual)) return ::testing::AssertionSuccess();
  if (actual == expected) return ::testing::AssertionSuccess();
  const double err = std::fabs(actual - expected);
  if (err <= rel * std::fabs(expected) || err <= abs_floor) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "got " << actual << ", expected " << expected << " (error " << err << ")";
}

std::vector<Activation> all_defaults() {
  std::vector<Activation> acts;
  for (int k = 0; k < cuact::kNumActivationKinds; ++k)
    acts.push_back(Activation::with_defaults(static_cast<ActivationKind>(k)));
  return acts;
}

// Every kind with its defaults, plus the parameterized kinds with other
// parameters (all with finite outputs for finite inputs).
std::vector<Activation> all_variants() {
  std::vector<Activation> acts = all_defaults();
  for (const Activation& a :
       {Activation::hardtanh(-2.0f, 3.0f), Activation::leaky_relu(0.25f),
        Activation::leaky_relu(0.0f), Activation::elu(0.5f), Activation::elu(0.0f),
        Activation::elu(2.0f), Activation::celu(2.0f), Activation::celu(0.01f),
        Activation::silu(2.0f), Activation::silu(0.0f), Activation::silu(-1.5f),
        Activation::softplus(2.0f, 10.0f), Activation::softplus(1.0f, 1e30f),
        Activation::hardshrink(1.0f), Activation::softshrink(1.0f),
        Activation::threshold(1.0f, -5.0f)})
    acts.push_back(a);
  return acts;
}

// Points where the kind's derivative jumps (finite differences avoid them).
std::vector<double> kinks(const Activation& act) {
  switch (act.kind) {
    case K::relu: case K::leaky_relu: case K::elu: case K::selu: case K::celu:
    case K::softsign: return {0.0};
    case K::relu6: return {0.0, 6.0};
    case K::hardtanh: return {act.lower, act.upper};
    case K::softplus: return {static_cast<double>(act.cutoff) / act.beta};
    case K::hardsigmoid: case K::hardswish: return {-3.0, 3.0};
    case K::hardshrink: case K::softshrink: return {-act.lambda, act.lambda};
    case K::threshold: return {act.cutoff};
    default: return {};
  }
}

// ---------------------------------------------------------------- forward values

struct KnownValue {
  Activation act;
  double x;
  double y;
};

// Transcendental values: mpmath at 50 digits. Piecewise values: by hand.
const KnownValue kKnownForward[] = {
    {Activation::identity(), 3.7, 3.7},
    {Activation::relu(), -2, 0},
    {Activation::relu(), 3, 3},
    {Activation::relu6(), -1, 0},
    {Activation::relu6(), 2.5, 2.5},
    {Activation::relu6(), 7, 6},
    {Activation::hardtanh(), -1.5, -1},
    {Activation::hardtanh(), 0.5, 0.5},
    {Activation::hardtanh(-2.0f, 3.0f), -5, -2},
    {Activation::hardtanh(-2.0f, 3.0f), 4, 3},
    {Activation::hardtanh(-2.0f, 3.0f), 1.5, 1.5},
    {Activation::leaky_relu(), -1, -static_cast<double>(0.01f)},
    {Activation::leaky_relu(0.25f), -3, -0.75},
    {Activation::leaky_relu(0.25f), 2, 2},
    {Activation::elu(), -3, -0.95021293163213606},
    {Activation::elu(), -1, -0.63212055882855768},
    {Activation::elu(), -0.5, -0.39346934028736658},
    {Activation::elu(), 2.5, 2.5},
    {Activation::elu(0.5f), -3, -0.47510646581606803},
    {Activation::elu(0.5f), -1, -0.31606027941427884},
    {Activation::selu(), -3, -1.6705687287671119},
    {Activation::selu(), -1, -1.1113307378125627},
    {Activation::selu(), -0.5, -0.69175818780287137},
    {Activation::selu(), 0.25, 0.26267524683887012},
    {Activation::selu(), 1, 1.0507009873554805},
    {Activation::celu(2.0f), -3, -1.5537396797031403},
    {Activation::celu(2.0f), -1, -0.78693868057473315},
    {Activation::celu(2.0f), -0.5, -0.44239843385719026},
    {Activation::celu(2.0f), 2.5, 2.5},
    {Activation::gelu(), -3, -0.0040496940948902836},
    {Activation::gelu(), -1, -0.15865525393145705},
    {Activation::gelu(), -0.5, -0.15426876936299345},
    {Activation::gelu(), 0.25, 0.14967658142073093},
    {Activation::gelu(), 1, 0.84134474606854295},
    {Activation::gelu(), 2.5, 2.4844758366855597},
    {Activation::gelu(), -10, -7.6198530241605261e-23},
    {Activation::gelu_tanh(), -3, -0.0036373920817730188},
    {Activation::gelu_tanh(), -1, -0.1588080093917233},
    {Activation::gelu_tanh(), -0.5, -0.15428599017485608},
    {Activation::gelu_tanh(), 0.25, 0.149675350701685},
    {Activation::gelu_tanh(), 1, 0.8411919906082767},
    {Activation::gelu_tanh(), 2.5, 2.4849157339100014},
    {Activation::gelu_tanh(), -10, -1.2040923482098107e-37},
    {Activation::quick_gelu(), -3, -0.018071309707785967},
    {Activation::quick_gelu(), -1, -0.1542042340671787},
    {Activation::quick_gelu(), -0.5, -0.14961156339361988},
    {Activation::quick_gelu(), 0.25, 0.15119964990019418},
    {Activation::quick_gelu(), 1, 0.8457957659328213},
    {Activation::quick_gelu(), 2.5, 2.4650138349514299},
    {Activation::sigmoid(), 0, 0.5},
    {Activation::sigmoid(), -3, 0.047425873177566781},
    {Activation::sigmoid(), -1, 0.26894142136999512},
    {Activation::sigmoid(), 0.25, 0.5621765008857981},
    {Activation::sigmoid(), 2.5, 0.92414181997875645},
    {Activation::sigmoid(), -1000, 0},  // 5.08e-435 underflows
    {Activation::tanh(), -3, -0.99505475368673045},
    {Activation::tanh(), -0.5, -0.46211715726000976},
    {Activation::tanh(), 0.25, 0.24491866240370913},
    {Activation::tanh(), 2.5, 0.98661429815143029},
    {Activation::silu(), -3, -0.14227761953270034},
    {Activation::silu(), -1, -0.26894142136999512},
    {Activation::silu(), 0.25, 0.14054412522144953},
    {Activation::silu(), 1, 0.73105857863000488},
    {Activation::silu(), 2.5, 2.3103545499468911},
    {Activation::silu(), -30, -2.8072868906517897e-12},
    {Activation::silu(2.0f), -3, -0.007417869469904323},
    {Activation::silu(2.0f), -0.5, -0.13447071068499756},
    {Activation::silu(2.0f), 1, 0.88079707797788244},
    {Activation::mish(), -3, -0.14564746127562459},
    {Activation::mish(), -1, -0.30340146137410892},
    {Activation::mish(), -0.5, -0.22074377465173},
    {Activation::mish(), 0.25, 0.16957240966381759},
    {Activation::mish(), 1, 0.86509838826731035},
    {Activation::mish(), 2.5, 2.4713923045578811},
    {Activation::mish(), -30, -2.807286890651921e-12},
    {Activation::mish(), 1000, 1000},
    {Activation::softplus(), -3, 0.048587351573742059},
    {Activation::softplus(), -1, 0.31326168751822283},
    {Activation::softplus(), 0.25, 0.82593941987884356},
    {Activation::softplus(), 1, 1.3132616875182228},
    {Activation::softplus(), 2.5, 2.5788897342925496},
    {Activation::softplus(), 19, 19.000000005602796},
    {Activation::softplus(), 20, 20.000000002061154},  // not past the threshold
    {Activation::softplus(), 20.5, 20.5},              // past it: linear
    {Activation::softplus(), -1000, 0},                // 5.08e-435 underflows
    {Activation::softplus(1.0f, 1e30f), 1000, 1000},
    {Activation::softplus(2.0f, 20.0f), -3, 0.0012378425688652248},
    {Activation::softplus(2.0f, 20.0f), -0.5, 0.15663084375911142},
    {Activation::softplus(2.0f, 20.0f), 1, 1.0634640055214862},
    {Activation::softplus(2.0f, 20.0f), 2.5, 2.503357674244559},
    {Activation::log_sigmoid(), 0, -0.69314718055994531},
    {Activation::log_sigmoid(), -3, -3.0485873515737421},
    {Activation::log_sigmoid(), -0.5, -0.97407698418010668},
    {Activation::log_sigmoid(), 1, -0.31326168751822283},
    {Activation::log_sigmoid(), 2.5, -0.078889734292549623},
    {Activation::log_sigmoid(), -1000, -1000},
    {Activation::hardsigmoid(), -4, 0},
    {Activation::hardsigmoid(), 1.5, 0.75},
    {Activation::hardsigmoid(), 4, 1},
    {Activation::hardswish(), -4, 0},
    {Activation::hardswish(), -1, -1.0 / 3},
    {Activation::hardswish(), 1.5, 1.125},
    {Activation::hardswish(), 4, 4},
    {Activation::softsign(), -3, -0.75},
    {Activation::softsign(), 0.25, 0.2},
    {Activation::softsign(), 2.5, 0.71428571428571429},
    {Activation::tanhshrink(), -3, -2.0049452463132695},
    {Activation::tanhshrink(), -1, -0.23840584404423511},
    {Activation::tanhshrink(), -0.5, -0.037882842739990241},
    {Activation::tanhshrink(), 0.25, 0.0050813375962908707},
    {Activation::tanhshrink(), 0.999, 0.23782613833943005},
    {Activation::tanhshrink(), 2.5, 1.5133857018485697},
    // Small |x|: x - tanh(x) cancels; these need the series (mpmath at 400 digits).
    {Activation::tanhshrink(), 0.01, 3.3332000053966067e-7},
    {Activation::tanhshrink(), 1e-3, 3.3333320000005397e-10},
    {Activation::tanhshrink(), -1e-3, -3.3333320000005397e-10},
    {Activation::tanhshrink(), 1e-5, 3.3333333332e-16},
    {Activation::tanhshrink(), 1e-6, 3.333333333332e-19},
    {Activation::tanhshrink(), 1e-100, 3.3333333333333333e-301},
    {Activation::hardshrink(), 0.4, 0},
    {Activation::hardshrink(), -0.7, -0.7},
    {Activation::hardshrink(1.0f), 1, 0},
    {Activation::softshrink(), 0.5, 0},
    {Activation::softshrink(1.0f), 2.5, 1.5},
    {Activation::softshrink(1.0f), -2.5, -1.5},
    {Activation::threshold(1.0f, -5.0f), 0.5, -5},
    {Activation::threshold(1.0f, -5.0f), 1, -5},  // x > t is strict
    {Activation::threshold(1.0f, -5.0f), 2, 2},
};

// In the Gaussian and logistic tails a rounding of an intermediate such as x/sqrt(2)
// is amplified by ~x^2 (the condition number of e^(-x^2/2)), hence the tolerance.
double known_value_tolerance(double x) { return 4 * kEps * (1 + x * x); }

TEST(ReferenceForward, KnownValues) {
  for (const KnownValue& c : kKnownForward)
    EXPECT_TRUE(close(ref::forward(c.act, c.x), c.y, known_value_tolerance(c.x)))
        << describe(c.act, c.x);
}

// ---------------------------------------------------------------- derivative values

// f'(x) (dy = 1): smooth values from mpmath's numerical derivative at 60 digits;
// the kink values are docs/SPEC.md's choices.
const KnownValue kKnownDerivative[] = {
    {Activation::gelu(), -2, -0.085231801078196897},
    {Activation::gelu(), -0.5, 0.13250487534383716},
    {Activation::gelu(), 1.5, 1.1274691922299795},
    {Activation::gelu_tanh(), -2, -0.086099256623618382},
    {Activation::gelu_tanh(), -0.5, 0.13263009646535769},
    {Activation::gelu_tanh(), 1.5, 1.1277107931514331},
    {Activation::quick_gelu(), -2, -0.073815354308541932},
    {Activation::quick_gelu(), -0.5, 0.12077808803458573},
    {Activation::quick_gelu(), 1.5, 1.0988480646241029},
    {Activation::sigmoid(), -2, 0.10499358540350652},
    {Activation::sigmoid(), 1.5, 0.14914645207033286},
    {Activation::tanh(), -2, 0.070650824853164466},
    {Activation::tanh(), 1.5, 0.18070663892364853},
    {Activation::silu(), -2, -0.090784248784895479},
    {Activation::silu(), -0.5, 0.26003881269734819},
    {Activation::silu(), 1.5, 1.0412941542991429},
    {Activation::mish(), -2, -0.10835509242039394},
    {Activation::mish(), -0.5, 0.28951067791351219},
    {Activation::mish(), 1.5, 1.0884879850078477},
    {Activation::softplus(), -2, 0.11920292202211756},
    {Activation::softplus(), 1.5, 0.81757447619364366},
    {Activation::log_sigmoid(), -0.5, 0.62245933120185456},
    {Activation::log_sigmoid(), 1.5, 0.18242552380635634},
    {Activation::elu(), -2, 0.13533528323661269},
    {Activation::elu(), -0.5, 0.60653065971263342},
    {Activation::selu(), -2, 0.23793287225168181},
    {Activation::selu(), -0.5, 1.0663411530445054},
    {Activation::softsign(), -2, 0.11111111111111111},
    {Activation::softsign(), 1.5, 0.16},
    {Activation::tanhshrink(), -2, 0.92934917514683553},
    {Activation::tanhshrink(), -0.5, 0.21355226703407259},
    // Kinks and branch edges.
    {Activation::relu(), 0, 0},
    {Activation::relu6(), 0, 0},
    {Activation::relu6(), 3, 1},
    {Activation::relu6(), 6, 0},
    {Activation::hardtanh(), -1, 0},
    {Activation::hardtanh(), 1, 0},
    {Activation::hardtanh(), 0.5, 1},
    {Activation::leaky_relu(0.25f), 0, 0.25},
    {Activation::leaky_relu(0.25f), -2, 0.25},
    {Activation::elu(0.5f), 0, 0.5},
    {Activation::selu(), 0, kSeluLambda * kSeluAlpha},
    {Activation::selu(), 2, kSeluLambda},
    {Activation::celu(2.0f), 0, 1},
    {Activation::celu(2.0f), -2, 0.36787944117144233},  // e^(-2/2)
    {Activation::softplus(), 20, 0.99999999793884638},   // sigma(20): not past the threshold
    {Activation::softplus(), 20.5, 1},
    {Activation::hardsigmoid(), -3, 0},
    {Activation::hardsigmoid(), 0, 1.0 / 6},
    {Activation::hardsigmoid(), 3, 0},
    {Activation::hardswish(), -3.5, 0},
    {Activation::hardswish(), -3, -0.5},
    {Activation::hardswish(), 0, 0.5},
    {Activation::hardswish(), 3, 1.5},
    {Activation::hardswish(), 3.5, 1},
    {Activation::hardshrink(), 0.5, 0},
    {Activation::hardshrink(), -0.6, 1},
    {Activation::softshrink(), -0.5, 0},
    {Activation::softshrink(), 0.6, 1},
    {Activation::threshold(1.0f, -5.0f), 1, 0},
    {Activation::threshold(1.0f, -5.0f), 1.5, 1},
};

TEST(ReferenceBackward, KnownValues) {
  for (const KnownValue& c : kKnownDerivative)
    EXPECT_TRUE(close(ref::backward(c.act, c.x, 1.0), c.y, known_value_tolerance(c.x)))
        << describe(c.act, c.x);
}

// ---------------------------------------------------------------- identities

// lhs == rhs up to a few roundings of numbers of size `scale` (0: exactly).
struct Sides {
  double lhs, rhs, scale;
};

struct Identity {
  const char* name;
  Sides (*eval)(double x);
};

double f(const Activation& act, double x) { return ref::forward(act, x); }

const Identity kIdentities[] = {
    {"sigmoid(-x) = 1 - sigmoid(x)",
     [](double x) -> Sides {
       return {f(Activation::sigmoid(), -x), 1 - f(Activation::sigmoid(), x), 1};
     }},
    {"tanh is odd",
     [](double x) -> Sides {
       const double lhs = f(Activation::tanh(), -x);
       return {lhs, -f(Activation::tanh(), x), std::fabs(lhs)};
     }},
    {"softsign is odd",
     [](double x) -> Sides {
       return {f(Activation::softsign(), -x), -f(Activation::softsign(), x), 1};
     }},
    {"tanhshrink is odd",
     [](double x) -> Sides {
       const double lhs = f(Activation::tanhshrink(), -x);
       return {lhs, -f(Activation::tanhshrink(), x), std::fabs(lhs)};
     }},
    {"gelu(x) - gelu(-x) = x",
     [](double x) -> Sides {
       const double a = f(Activation::gelu(), x), b = f(Activation::gelu(), -x);
       return {a - b, x, std::fabs(a) + std::fabs(b)};
     }},
    {"gelu_tanh(x) - gelu_tanh(-x) = x",
     [](double x) -> Sides {
       const double a = f(Activation::gelu_tanh(), x), b = f(Activation::gelu_tanh(), -x);
       return {a - b, x, std::fabs(a) + std::fabs(b)};
     }},
    {"quick_gelu(x) - quick_gelu(-x) = x",
     [](double x) -> Sides {
       const double a = f(Activation::quick_gelu(), x), b = f(Activation::quick_gelu(), -x);
       return {a - b, x, std::fabs(a) + std::fabs(b)};
     }},
    {"silu(x) - silu(-x) = x",
     [](double x) -> Sides {
       const double a = f(Activation::silu(), x), b = f(Activation::silu(), -x);
       return {a - b, x, std::fabs(a) + std::fabs(b)};
     }},
    {"silu_2(x) = silu_1(2x)/2",
     [](double x) -> Sides {
       const double lhs = f(Activation::silu(2.0f), x);
       return {lhs, f(Activation::silu(), 2 * x) / 2, std::fabs(lhs)};
     }},
    {"softplus(x) - softplus(-x) = x (|x| below the threshold)",
     [](double x) -> Sides {
       const double a = f(Activation::softplus(), x), b = f(Activation::softplus(), -x);
       return {a - b, x, std::fabs(a) + std::fabs(b)};
     }},
    {"softplus_2(x) = softplus_1(2x)/2 (no threshold)",
     [](double x) -> Sides {
       const double lhs = f(Activation::softplus(2.0f, 1e30f), x);
       return {lhs, f(Activation::softplus(1.0f, 1e30f), 2 * x) / 2, std::fabs(lhs)};
     }},
    {"log_sigmoid(x) = -softplus(-x) (no threshold)",
     [](double x) -> Sides {
       const double lhs = f(Activation::log_sigmoid(), x);
       return {lhs, -f(Activation::softplus(1.0f, 1e30f), -x), std::fabs(lhs)};
     }},
    {"log_sigmoid(x) = log(sigmoid(x))",
     [](double x) -> Sides {
       // log(sigma(x)) inherits sigma's absolute (not relative) error near 0.
       const double lhs = f(Activation::log_sigmoid(), x);
       return {lhs, std::log(f(Activation::sigmoid(), x)), 1 + std::fabs(lhs)};
     }},
    {"mish(x) = x*tanh(log1p(e^x))",
     [](double x) -> Sides {
       const double lhs = f(Activation::mish(), x);
       return {lhs, x * std::tanh(std::log1p(std::exp(x))), std::fabs(lhs)};
     }},
    // elu's alpha is a float, so selu = lambda*elu(alpha) holds after rescaling
    // the negative branch by alpha/float(alpha).
    {"selu = lambda*elu(alpha)",
     [](double x) -> Sides {
       const float alpha = static_cast<float>(kSeluAlpha);
       const double rescale = x > 0 ? 1 : kSeluAlpha / alpha;
       const double lhs = f(Activation::selu(), x);
       return {lhs, kSeluLambda * rescale * f(Activation::elu(alpha), x), std::fabs(lhs)};
     }},
    {"celu(alpha=1) = elu(alpha=1)",
     [](double x) -> Sides {
       return {f(Activation::celu(1.0f), x), f(Activation::elu(1.0f), x), 0};
     }},
    {"celu_2(x) = 2*elu(x/2)",
     [](double x) -> Sides {
       const double lhs = f(Activation::celu(2.0f), x);
       return {lhs, 2 * f(Activation::elu(), x / 2), std::fabs(lhs)};
     }},
    {"hardswish(x) = x*hardsigmoid(x)",
     [](double x) -> Sides {
       const double lhs = f(Activation::hardswish(), x);
       return {lhs, x * f(Activation::hardsigmoid(), x), std::fabs(lhs)};
     }},
    {"hardsigmoid(x) = relu6(x+3)/6",
     [](double x) -> Sides {
       const double lhs = f(Activation::hardsigmoid(), x);
       return {lhs, f(Activation::relu6(), x + 3) / 6, std::fabs(lhs)};
     }},
    {"relu6 = hardtanh(0, 6)",
     [](double x) -> Sides {
       return {f(Activation::relu6(), x), f(Activation::hardtanh(0.0f, 6.0f), x), 0};
     }},
    {"relu(x) - relu(-x) = x",
     [](double x) -> Sides {
       return {f(Activation::relu(), x) - f(Activation::relu(), -x), x, 0};
     }},
    {"softshrink(x) = x - clamp(x, -l, l)",
     [](double x) -> Sides {
       return {f(Activation::softshrink(1.0f), x), x - f(Activation::hardtanh(-1.0f, 1.0f), x), 0};
     }},
};

std::vector<double> identity_grid() {
  std::vector<double> xs = {0, 1e-300, 1e-8, 1e-5, 1e-3, 0.1, 0.5, 1, 2.9, 3, 3.1, 6, 7.5, 15};
  for (double x = -12; x <= 12; x += 0.173) xs.push_back(x);
  const size_t n = xs.size();
  for (size_t i = 0; i < n; ++i) xs.push_back(-xs[i]);
  return xs;
}

TEST(ReferenceForward, Identities) {
  for (const Identity& id : kIdentities)
    for (double x : identity_grid()) {
      const Sides sides = id.eval(x);
      EXPECT_TRUE(close(sides.lhs, sides.rhs, 0, 8 * kEps * sides.scale))
          << id.name << " at x = " << x;
    }
}

// ---------------------------------------------------------------- edge cases

TEST(ReferenceEdgeCases, NaNInGivesNaNOut) {
  for (const Activation& act : all_variants()) {
    EXPECT_TRUE(std::isnan(ref::forward(act, kNaN))) << describe(act, kNaN);
    for (double dy : {1.0, 0.0, -2.0})
      EXPECT_TRUE(std::isnan(ref::backward(act, kNaN, dy))) << describe(act, kNaN) << " dy " << dy;
    if (cuact::has_backward_from_output(act)) {
      EXPECT_TRUE(std::isnan(ref::backward_from_output(act, kNaN, 1.0))) << describe(act, kNaN);
    }
  }
}

TEST(ReferenceEdgeCases, NaNGradient) {
  // dx = dy*f'(x) where the derivative is smooth; a zero branch selects 0.
  EXPECT_TRUE(std::isnan(ref::backward(Activation::gelu(), 0.5, kNaN)));
  EXPECT_TRUE(std::isnan(ref::backward(Activation::relu(), 1, kNaN)));
  EXPECT_TRUE(std::isnan(ref::backward(Activation::leaky_relu(), -1, kNaN)));
  EXPECT_EQ(ref::backward(Activation::relu(), -1, kNaN), 0.0);
  EXPECT_EQ(ref::backward(Activation::relu6(), 7, kNaN), 0.0);
  EXPECT_EQ(ref::backward(Activation::hardswish(), -4, kNaN), 0.0);
  EXPECT_EQ(ref::backward(Activation::threshold(1.0f, 2.0f), 0, kNaN), 0.0);
  EXPECT_EQ(ref::backward_from_output(Activation::relu(), 0, kNaN), 0.0);
}

struct InfLimits {
  ActivationKind kind;
  double at_minus_inf, at_plus_inf;              // f(-inf), f(+inf)
  double slope_at_minus_inf, slope_at_plus_inf;  // f'(-inf), f'(+inf)
};

// Limits for the default parameters, one row per kind in enum order.
const InfLimits kInfLimits[] = {
    {K::identity, -kInf, kInf, 1, 1},
    {K::relu, 0, kInf, 0, 1},
    {K::relu6, 0, 6, 0, 0},
    {K::hardtanh, -1, 1, 0, 0},
    {K::leaky_relu, -kInf, kInf, static_cast<double>(0.01f), 1},
    {K::elu, -1, kInf, 0, 1},
    {K::selu, -kSeluLambda * kSeluAlpha, kInf, 0, kSeluLambda},
    {K::celu, -1, kInf, 0, 1},
    {K::gelu, 0, kInf, 0, 1},
    {K::gelu_tanh, 0, kInf, 0, 1},
    {K::quick_gelu, 0, kInf, 0, 1},
    {K::sigmoid, 0, 1, 0, 0},
    {K::tanh, -1, 1, 0, 0},
    {K::silu, 0, kInf, 0, 1},
    {K::mish, 0, kInf, 0, 1},
    {K::softplus, 0, kInf, 0, 1},
    {K::log_sigmoid, -kInf, 0, 1, 0},
    {K::hardsigmoid, 0, 1, 0, 0},
    {K::hardswish, 0, kInf, 0, 1},
    {K::softsign, -1, 1, 0, 0},
    {K::tanhshrink, -kInf, kInf, 1, 1},
    {K::hardshrink, -kInf, kInf, 1, 1},
    {K::softshrink, -kInf, kInf, 1, 1},
    {K::threshold, 0, kInf, 0, 1},
};
static_assert(sizeof(kInfLimits) / sizeof(kInfLimits[0]) == cuact::kNumActivationKinds,
              "one row per activation kind");

TEST(ReferenceEdgeCases, InfinitiesGiveLimits) {
  for (int k = 0; k < cuact::kNumActivationKinds; ++k) {
    const InfLimits& row = kInfLimits[k];
    ASSERT_EQ(static_cast<int>(row.kind), k) << "kInfLimits is in enum order";
    const Activation act = Activation::with_defaults(row.kind);
    EXPECT_EQ(ref::forward(act, -kInf), row.at_minus_inf) << describe(act, -kInf);
    EXPECT_EQ(ref::forward(act, kInf), row.at_plus_inf) << describe(act, kInf);
    EXPECT_EQ(ref::backward(act, -kInf, 1), row.slope_at_minus_inf) << describe(act, -kInf);
    EXPECT_EQ(ref::backward(act, kInf, 1), row.slope_at_plus_inf) << describe(act, kInf);
  }
}

TEST(ReferenceEdgeCases, InfinitiesNeverGiveNaN) {
  for (const Activation& act : all_variants())
    for (double x : {-kInf, kInf}) {
      EXPECT_FALSE(std::isnan(ref::forward(act, x))) << describe(act, x);
      EXPECT_FALSE(std::isnan(ref::backward(act, x, 1.0))) << describe(act, x);
      EXPECT_FALSE(std::isnan(ref::backward(act, x, -3.0))) << describe(act, x);
    }
}

TEST(ReferenceEdgeCases, HugeFiniteInputsStayFinite) {
  // Up to 1e300: beyond, selu's lambda*x (> x) is itself past the double range.
  const double huge[] = {100, 1000, 1e4, 1e30, 3.4e38, 1e154, 1e200, 1e300};
  for (const Activation& act : all_variants())
    for (double magnitude : huge)
      for (double x : {-magnitude, magnitude}) {
        EXPECT_TRUE(std::isfinite(ref::forward(act, x))) << describe(act, x);
        EXPECT_TRUE(std::isfinite(ref::backward(act, x, 1.0))) << describe(act, x);
      }
}

TEST(ReferenceEdgeCases, LargeInputsAreRight) {
  EXPECT_EQ(ref::forward(Activation::elu(), -1000), -1.0);
  EXPECT_EQ(ref::forward(Activation::celu(0.01f), -1000), -static_cast<double>(0.01f));
  EXPECT_EQ(ref::forward(Activation::sigmoid(), 1000), 1.0);
  EXPECT_EQ(ref::forward(Activation::tanh(), -1000), -1.0);
  EXPECT_EQ(ref::forward(Activation::softplus(1.0f, 1e30f), 1e300), 1e300);
  EXPECT_EQ(ref::forward(Activation::gelu_tanh(), 1e200), 1e200);
  EXPECT_EQ(ref::forward(Activation::gelu(), 1e300), 1e300);
  EXPECT_EQ(ref::forward(Activation::softsign(), 1e300), 1.0);
  EXPECT_EQ(ref::backward(Activation::mish(), 1000, 1), 1.0);
  EXPECT_EQ(ref::backward(Activation::silu(), -1e300, 1), 0.0);
  EXPECT_EQ(ref::backward(Activation::tanh(), 400, 1), 0.0);
  // tanh' = 4e^-2x/(1+e^-2x)^2 keeps full relative accuracy where 1 - tanh^2 cancels.
  EXPECT_TRUE(close(ref::backward(Activation::tanh(), 20, 1), 1.6993417021166356e-17, 8 * kEps));
}

// ---------------------------------------------------------------- derivatives

// Five-point central difference of the reference's own forward.
double numerical_slope(const Activation& act, double x) {
  const double h = 1e-3 * std::fmax(1.0, std::fabs(x));
  return (8 * (f(act, x + h) - f(act, x - h)) - (f(act, x + 2 * h) - f(act, x - 2 * h))) /
         (12 * h);
}

TEST(ReferenceBackward, MatchesFiniteDifferences) {
  for (const Activation& act : all_variants())
    for (double x = -7.93; x <= 8; x += 0.29) {
      bool near_kink = false;
      for (double k : kinks(act)) near_kink |= std::fabs(x - k) < 0.02;
      if (near_kink) continue;
      const double slope = ref::backward(act, x, 1.0);
      EXPECT_TRUE(close(slope, numerical_slope(act, x), 0, 1e-9 * (1 + std::fabs(slope))))
          << describe(act, x);
      EXPECT_TRUE(close(ref::backward(act, x, -2.5), -2.5 * slope, 4 * kEps)) << describe(act, x);
    }
}

TEST(ReferenceBackward, FromOutputMatchesFromInput) {
  const Activation acts[] = {
      Activation::identity(), Activation::relu(),      Activation::sigmoid(),
      Activation::tanh(),     Activation::elu(),       Activation::elu(0.5f),
      Activation::elu(0.0f),  Activation::elu(2.0f),   Activation::selu(),
      Activation::celu(),     Activation::celu(0.5f),  Activation::celu(3.0f)};
  for (const Activation& act : acts) {
    ASSERT_TRUE(cuact::has_backward_from_output(act)) << describe(act, 0);
    for (double x = -6; x <= 6; x += 0.25)
      for (double dy : {1.0, -1.7}) {
        const double y = f(act, x);
        // From y the derivative is only as accurate as y is relative to 1.
        EXPECT_TRUE(close(ref::backward_from_output(act, y, dy), ref::backward(act, x, dy), 0,
                          16 * kEps * std::fabs(dy)))
            << describe(act, x) << " dy " << dy;
      }
  }
}

// ---------------------------------------------------------------- rounding

struct RoundCase {
  DType dtype;
  double v;
  double expected;
};

double p2(int e) { return std::ldexp(1.0, e); }

const double kHalfMax = 65504;
const double kBf16Max = std::ldexp(255.0, 120);  // (2 - 2^-7) * 2^127
const double kFloatMax = std::numeric_limits<float>::max();

const RoundCase kRoundCases[] = {
    // fp16: 11 significand bits, ulp(1) = 2^-10.
    {DType::f16, 1 + p2(-11), 1},                           // tie: to even
    {DType::f16, 1 + 3 * p2(-11), 1 + p2(-9)},              // tie: to even (up)
    {DType::f16, 1 + p2(-11) + p2(-40), 1 + p2(-10)},       // just above the tie
    {DType::f16, 1 + p2(-11) - p2(-40), 1},                 // just below
    {DType::f16, 1 + p2(-11) + p2(-30), 1 + p2(-10)},       // via float: double-rounds to 1
    {DType::f16, -(1 + 3 * p2(-11)), -(1 + p2(-9))},
    {DType::f16, 0.1, 0.0999755859375},
    {DType::f16, kHalfMax, kHalfMax},
    {DType::f16, 65519.99, kHalfMax},
    {DType::f16, 65520, kInf},                              // max + half an ulp: tie, to inf
    {DType::f16, -65520, -kInf},
    {DType::f16, 1e10, kInf},
    {DType::f16, p2(-14), p2(-14)},                         // smallest normal
    {DType::f16, p2(-14) - p2(-25), p2(-14)},               // tie between 1023*2^-24 and 2^-14
    {DType::f16, p2(-14) - 3 * p2(-25), p2(-14) - p2(-23)}, // tie between 1021 and 1022 (*2^-24)
    {DType::f16, p2(-24), p2(-24)},                         // smallest subnormal
    {DType::f16, p2(-25), 0},                               // tie between 0 and 2^-24: 0
    {DType::f16, p2(-25) + p2(-60), p2(-24)},
    {DType::f16, 3 * p2(-25), p2(-23)},                     // tie between 2^-24 and 2^-23
    {DType::f16, 5 * p2(-26), p2(-24)},                     // 1.25 * 2^-24
    {DType::f16, -p2(-26), -0.0},
    {DType::f16, 1e-30, 0},
    // bf16: 8 significand bits, float's exponent range.
    {DType::bf16, 1 + p2(-8), 1},
    {DType::bf16, 1 + 3 * p2(-8), 1 + p2(-6)},
    {DType::bf16, 1 + p2(-8) + p2(-30), 1 + p2(-7)},
    {DType::bf16, 3.14159265358979, 3.140625},
    {DType::bf16, kBf16Max, kBf16Max},
    {DType::bf16, kBf16Max + p2(119), kInf},                // max + half an ulp
    {DType::bf16, kBf16Max + p2(119) - p2(80), kBf16Max},
    {DType::bf16, kFloatMax, kInf},
    {DType::bf16, p2(-126), p2(-126)},
    {DType::bf16, p2(-133), p2(-133)},                      // smallest subnormal
    {DType::bf16, p2(-134), 0},                             // tie with 0
    {DType::bf16, 3 * p2(-134), p2(-132)},
    {DType::bf16, -p2(-140), -0.0},
    // f32.
    {DType::f32, 1 + p2(-24), 1},
    {DType::f32, 1 + 3 * p2(-24), 1 + p2(-22)},
    {DType::f32, 0.1, static_cast<double>(0.1f)},
    {DType::f32, kFloatMax, kFloatMax},
    {DType::f32, kFloatMax + p2(103), kInf},                // max + half an ulp
    {DType::f32, kFloatMax + p2(103) - p2(75), kFloatMax},
    {DType::f32, 1e300, kInf},
    {DType::f32, p2(-149), p2(-149)},
    {DType::f32, p2(-150), 0},
    {DType::f32, 3 * p2(-150), p2(-148)},
    {DType::f32, 4.9e-324, 0},
    {DType::f32, -0.0, -0.0},
    {DType::f32, -kInf, -kInf},
};

::testing::AssertionResult same_double(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return ::testing::AssertionSuccess();
  if (a == b && std::signbit(a) == std::signbit(b)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << a << " != " << b;
}

TEST(ReferenceRoundTo, HandBuiltCases) {
  for (const RoundCase& c : kRoundCases)
    EXPECT_TRUE(same_double(ref::round_to(c.dtype, c.v), c.expected))
        << cuact::dtype_name(c.dtype) << " of " << c.v;
}

TEST(ReferenceRoundTo, SpecialValues) {
  for (DType t : {DType::f32, DType::f16, DType::bf16}) {
    EXPECT_TRUE(std::isnan(ref::round_to(t, kNaN)));
    EXPECT_TRUE(same_double(ref::round_to(t, 0.0), 0.0));
    EXPECT_TRUE(same_double(ref::round_to(t, -0.0), -0.0));
    EXPECT_TRUE(same_double(ref::round_to(t, kInf), kInf));
    EXPECT_TRUE(same_double(ref::round_to(t, -kInf), -kInf));
  }
}

float float_from_bits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Against the correctly rounded conversions of the compiler (double -> float)
// and of cuda_fp16.h / cuda_bf16.h (float -> half, float -> bf16, one rounding),
// including exact ties planted in the low bits.
TEST(ReferenceRoundTo, MatchesHardwareAndCudaConversions) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = static_cast<uint32_t>(rng());
    // Half the draws get an exponent in or near half's range (2^-27 .. 2^22).
    if (i % 2) bits = (bits & 0x807FFFFFu) | (static_cast<uint32_t>(100 + rng() % 50) << 23);
    if (i % 3 == 1) bits = (bits & ~0x1FFFu) | 0x1000u;  // a tie for half (13 dropped bits)
    if (i % 3 == 2) bits = (bits & ~0xFFFFu) | 0x8000u;  // a tie for bf16 (16 dropped bits)
    const float v = float_from_bits(bits);
    if (std::isnan(v)) continue;
    ASSERT_TRUE(same_double(ref::round_to(DType::f32, v), v)) << v;
    ASSERT_TRUE(same_double(ref::round_to(DType::f16, v), __half2float(__float2half_rn(v))))
        << "f16 of " << v << " bits " << bits;
    ASSERT_TRUE(
        same_double(ref::round_to(DType::bf16, v), __bfloat162float(__float2bfloat16_rn(v))))
        << "bf16 of " << v << " bits " << bits;
    const double d = std::ldexp(std::uniform_real_distribution<double>(-1, 1)(rng),
                                static_cast<int>(rng() % 300) - 170);
    ASSERT_TRUE(same_double(ref::round_to(DType::f32, d), static_cast<float>(d))) << d;
    for (DType t : {DType::f16, DType::bf16})
      ASSERT_TRUE(same_double(ref::round_to(t, ref::round_to(t, d)), ref::round_to(t, d))) << d;
  }
}

// ---------------------------------------------------------------- exact ops: one rounding

// n / (6 * 2^k) rounded to nearest-even in dtype, by integer arithmetic alone
// (an oracle independent of the reference's double-double quotient).
double exact_sixth(int precision, int min_exponent, __int128 n, int k) {
  if (n == 0) return 0.0;
  const bool negative = n < 0;
  const __int128 a = negative ? -n : n;
  int bits = 0;
  while ((a >> bits) != 0) ++bits;
  // 2^e <= a / 6 < 2^(e+1) for e = bits - 3 or bits - 4 (then minus k).
  const int e = (a >= (__int128{3} << (bits - 2)) ? bits - 3 : bits - 4) - k;
  const int ulp_exponent = std::max(e, min_exponent) - (precision - 1);
  // quotient = a / (6 * 2^(k + ulp_exponent)), to an integer, halves to even.
  const int shift = k + ulp_exponent;
  const __int128 num = shift >= 0 ? a : a << -shift;
  const __int128 den = shift >= 0 ? __int128{6} << shift : 6;
  __int128 q = num / den;
  const __int128 twice_r = 2 * (num - q * den);
  if (twice_r > den || (twice_r == den && (q & 1))) ++q;
  const double v = std::ldexp(static_cast<double>(q), ulp_exponent);
  return negative ? -v : v;
}
double exact_sixth(DType dtype, __int128 n, int k) {
  return exact_sixth(dtype == DType::f16 ? 11 : dtype == DType::bf16 ? 8 : 24,
                     dtype == DType::f16 ? -14 : -126, n, k);
}

// The piecewise ops' division by 6 rounds once, at the dtype: against the
// integer oracle for every fp16 input (hardswish's backward: times a set of
// gradients spread over fp16's exponents), x = X 2^-24 and dy = D 2^-24.
TEST(ReferencePiecewise, DivisionBySixRoundsOnce) {
  std::vector<double> grads;
  for (int i = 0; i < 48; ++i)
    grads.push_back((i % 2 ? -1 : 1) * std::ldexp(1.0 + (i * 37 % 1024) / 1024.0, i % 16 - 8));
  for (uint32_t bits = 0; bits < (1u << 16); ++bits) {
    __half_raw raw;
    raw.x = static_cast<uint16_t>(bits);
    const double x = __half2float(__half(raw));
    if (!(std::fabs(x) < 3)) continue;
    const __int128 X = static_cast<__int128>(std::ldexp(x, 24));
    const __int128 three = __int128{3} << 24;
    EXPECT_EQ(ref::forward(Activation::hardsigmoid(), x, DType::f16),
              exact_sixth(DType::f16, X + three, 24)) << "hardsigmoid at " << x;
    EXPECT_EQ(ref::forward(Activation::hardswish(), x, DType::f16),
              exact_sixth(DType::f16, X * (X + three), 48)) << "hardswish at " << x;
    for (double dy : grads) {
      const __int128 D = static_cast<__int128>(std::ldexp(dy, 24));
      ASSERT_EQ(ref::backward(Activation::hardswish(), x, dy, DType::f16),
                exact_sixth(DType::f16, D * (2 * X + three), 48))
          << "hardswish' at " << x << " dy " << dy;
      ASSERT_EQ(ref::backward(Activation::hardsigmoid(), x, dy, DType::f16),
                exact_sixth(DType::f16, D, 24)) << "hardsigmoid' at " << x << " dy " << dy;
    }
  }
}

// A double result (the scalar forms, float64 data) is the correctly rounded
// double, checked against the integer oracle at double's precision for
// random x in +-[2^-8, 3) (and dy of 24 bits in +-[2^-4, 2^4)); tiny x gives
// the nearest double too (hardsigmoid(1e-40) is 0.5, not its odd neighbour).
TEST(ReferencePiecewise, DoubleResultsAreCorrectlyRounded) {
  std::mt19937_64 rng(23);
  auto scaled = [](double v, int k) { return static_cast<__int128>(std::ldexp(v, k)); };
  for (int i = 0; i < 200000; ++i) {
    const double x = std::copysign(std::ldexp(std::uniform_real_distribution<double>(0.5, 1)(rng),
                                              static_cast<int>(rng() % 8) - 7),
                                   rng() % 2 ? 1.0 : -1.0) * (rng() % 4 == 0 ? 2.9 : 1.0);
    const double dy = std::ldexp(std::round(std::ldexp(
                          std::uniform_real_distribution<double>(-1, 1)(rng), 24)), -24 +
                          static_cast<int>(rng() % 8) - 3);
    const int k = 62, kd = 31;  // x = X 2^-k, dy = D 2^-kd exactly
    const __int128 X = scaled(x, k), D = scaled(dy, kd), three = __int128{3} << k;
    ASSERT_EQ(ref::forward(Activation::hardsigmoid(), x), exact_sixth(53, -1022, X + three, k))
        << "hardsigmoid at " << x;
    ASSERT_EQ(ref::backward(Activation::hardsigmoid(), x, dy), exact_sixth(53, -1022, D, kd))
        << "hardsigmoid' at " << x << " dy " << dy;
    // x (x + 3) as (X/4)(X/4 + 3 2^(k-2)) 2^-2(k-2), below 2^127 (X/4 exact for x >= 2^-8)
    const __int128 Xq = X / 4, three_q = three / 4;
    if (Xq * 4 == X) {
      ASSERT_EQ(ref::forward(Activation::hardswish(), x),
                exact_sixth(53, -1022, Xq * (Xq + three_q), 2 * (k - 2)))
          << "hardswish at " << x;
    }
    ASSERT_EQ(ref::backward(Activation::hardswish(), x, dy),
              exact_sixth(53, -1022, D * (2 * X + three), kd + k))
        << "hardswish' at " << x << " dy " << dy;
  }
  EXPECT_EQ(ref::forward(Activation::hardsigmoid(), 1e-40), 0.5);
  EXPECT_EQ(ref::forward(Activation::hardsigmoid(), -1e-40), 0.5);
  EXPECT_EQ(ref::backward(Activation::hardsigmoid(), 1.0, 3.0), 0.5);
}

// An infinite gradient inside the slope's range gives an infinite dx (SPEC:
// no NaN from non-NaN inputs), in the scalar and buffer forms.
TEST(ReferencePiecewise, InfiniteGradientsGiveInfinities) {
  for (double dy : {static_cast<double>(INFINITY), -static_cast<double>(INFINITY)}) {
    EXPECT_EQ(ref::backward(Activation::hardsigmoid(), 0.0, dy), dy);
    EXPECT_EQ(ref::backward(Activation::hardswish(), 0.5, dy), dy);
    EXPECT_EQ(ref::backward(Activation::hardswish(), -2.0, dy), -dy);
    EXPECT_EQ(ref::backward(Activation::hardsigmoid(), 0.0, dy, DType::f16), dy);
  }
  const __half x = __float2half_rn(0.5f), dy = __float2half_rn(INFINITY);
  __half dx;
  ASSERT_TRUE(ref::activation(Direction::backward, Activation::hardsigmoid(), DType::f16, &x, &dy,
                              &dx, 1).ok());
  EXPECT_EQ(__half2float(dx), INFINITY);
  ASSERT_TRUE(ref::activation(Direction::backward, Activation::hardswish(), DType::f16, &x, &dy,
                              &dx, 1).ok());
  EXPECT_EQ(__half2float(dx), INFINITY);
}

// hardswish's zero results are +0 (SPEC), as the functors' (functor_test:
// FunctorSigns).
TEST(ReferencePiecewise, HardswishZerosArePositive) {
  for (double x : {-0.0, 0.0, -3.0, -5.0, -static_cast<double>(INFINITY)}) {
    for (double y : {ref::forward(Activation::hardswish(), x),
                     ref::forward(Activation::hardswish(), x, DType::bf16)})
      EXPECT_TRUE(y == 0 && !std::signbit(y)) << x;
  }
}

// Quotients below the smallest double (from float64 inputs near 0, as the
// Python package's float64 path passes them) stay numbers: +-0 or the
// smallest denormal, never NaN.
TEST(ReferencePiecewise, QuotientsBelowTheSmallestDoubleAreNotNaN) {
  const double tiny = std::numeric_limits<double>::denorm_min();
  for (double x : {tiny, -tiny, 2 * tiny, -3 * tiny}) {
    const double y = ref::forward(Activation::hardswish(), x);
    EXPECT_FALSE(std::isnan(y)) << "hardswish at " << x;
    EXPECT_LE(std::fabs(y - x / 2), tiny) << "hardswish at " << x;
    EXPECT_FALSE(std::isnan(ref::backward(Activation::hardswish(), -1.5, tiny)));
  }
}

// Hand-built cases where rounding the quotient and then the product (or
// dropping the x^2/6 term) lands one ulp off.
TEST(ReferencePiecewise, HandBuiltCases) {
  const double p2_133 = std::ldexp(1.0, -133), p2_149 = std::ldexp(1.0, -149);
  // dy (2x + 3) / 6 at x = -0.625, dy = -1.6142578125 (2x + 3 = 1.75) is
  // -0.4708251953125, halfway between fp16's -0.470703125 (even, the answer)
  // and -0.470947265625, where dy * ((2x + 3) / 6) rounded in double lands.
  EXPECT_EQ(ref::backward(Activation::hardswish(), -0.625, -1.6142578125, DType::f16),
            -0.470703125);
  // x/2 + x^2/6: x/2 is a tie in bf16 (and in fp32 at 2^-149); x^2/6 > 0 breaks it upward.
  EXPECT_EQ(ref::forward(Activation::hardswish(), p2_133, DType::bf16), p2_133);
  EXPECT_EQ(ref::forward(Activation::hardswish(), -p2_133, DType::bf16), 0.0);
  EXPECT_EQ(ref::forward(Activation::hardswish(), p2_149, DType::f32), p2_149);
  EXPECT_EQ(ref::forward(Activation::hardswish(), 3 * p2_149, DType::f32),
            2 * p2_149);
  // dy / 6 halfway between two fp32 subnormals goes to the even one.
  EXPECT_EQ(ref::backward(Activation::hardsigmoid(), 0, 9 * p2_149, DType::f32),
            2 * p2_149);
  EXPECT_EQ(ref::backward(Activation::hardsigmoid(), 0, 21 * p2_149, DType::f32),
            4 * p2_149);
}

// ---------------------------------------------------------------- buffer form

template <class T> T to_elem(double v);
template <> float to_elem<float>(double v) { return static_cast<float>(v); }
template <> __half to_elem<__half>(double v) { return __float2half_rn(static_cast<float>(v)); }
template <> __nv_bfloat16 to_elem<__nv_bfloat16>(double v) {
  return __float2bfloat16_rn(static_cast<float>(v));
}
double from_elem(float v) { return v; }
double from_elem(__half v) { return __half2float(v); }
double from_elem(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
std::vector<T> elems(const std::vector<double>& values) {
  std::vector<T> out;
  for (double v : values) out.push_back(to_elem<T>(v));
  return out;
}

const std::vector<double> kBufferInputs = {-kInf, -100, -3.5, -1, -0.3, -0.0, 0,   1e-3, 0.7,
                                           1,     2.25, 3,    6.5, 90, kInf, kNaN, -1e-6};
const std::vector<double> kBufferGrads = {1, -2, 0.5, 3, -0.25, 1, 1, 7, -1,
                                          2, 1, 0.1, 1, -3, 2, 1, kNaN};

template <class T>
void check_buffer_form(Direction direction, const Activation& act) {
  const DType dtype = cuact::DTypeOf<T>::value;
  const std::string what = std::string(cuact::direction_name(direction)) + " " +
                           cuact::activation_name(act.kind) + " " + cuact::dtype_name(dtype);
  const std::vector<T> in = elems<T>(kBufferInputs);
  const std::vector<T> grad = elems<T>(kBufferGrads);
  ASSERT_EQ(in.size(), grad.size());
  const int64_t n = static_cast<int64_t>(in.size());

  std::vector<T> out(in.size());
  ASSERT_TRUE(ref::activation(direction, act, dtype, in.data(), grad.data(), out.data(), n).ok());
  for (int64_t i = 0; i < n; ++i) {
    const double x = from_elem(in[i]), dy = from_elem(grad[i]);
    const double exact = direction == Direction::forward    ? ref::forward(act, x)
                         : direction == Direction::backward ? ref::backward(act, x, dy)
                                                            : ref::backward_from_output(act, x, dy);
    EXPECT_TRUE(same_double(from_elem(out[i]), ref::round_to(dtype, exact))) << what << " i " << i;
  }

  // In place over either input gives the same bits.
  std::vector<T> over_in = in;
  ASSERT_TRUE(ref::activation(direction, act, dtype, over_in.data(), grad.data(), over_in.data(), n)
                  .ok());
  EXPECT_EQ(std::memcmp(over_in.data(), out.data(), n * sizeof(T)), 0) << what << " out == in";
  if (direction != Direction::forward) {
    std::vector<T> over_grad = grad;
    ASSERT_TRUE(ref::activation(direction, act, dtype, in.data(), over_grad.data(),
                                over_grad.data(), n)
                    .ok());
    EXPECT_EQ(std::memcmp(over_grad.data(), out.data(), n * sizeof(T)), 0) << what << " out == dy";
  }
}

TEST(ReferenceBufferForm, RoundsOnceAndWorksInPlace) {
  for (const Activation& act : {Activation::gelu(), Activation::mish(), Activation::relu6(),
                                Activation::softplus(2.0f, 10.0f)})
    for (Direction d : {Direction::forward, Direction::backward}) {
      check_buffer_form<float>(d, act);
      check_buffer_form<__half>(d, act);
      check_buffer_form<__nv_bfloat16>(d, act);
    }
  for (const Activation& act : {Activation::sigmoid(), Activation::elu(0.5f)}) {
    check_buffer_form<float>(Direction::backward_from_output, act);
    check_buffer_form<__half>(Direction::backward_from_output, act);
    check_buffer_form<__nv_bfloat16>(Direction::backward_from_output, act);
  }
}

TEST(ReferenceBufferForm, HalfResultsOverflowToInfinity) {
  // leaky_relu(2) doubles negative inputs: -65504 is half's most negative finite value.
  const std::vector<__half> in = elems<__half>({-32752, -32768, 30000});
  std::vector<__half> out(in.size());
  ASSERT_TRUE(ref::activation(Direction::forward, Activation::leaky_relu(2.0f), DType::f16,
                              in.data(), nullptr, out.data(), 3)
                  .ok());
  EXPECT_EQ(from_elem(out[0]), -65504.0);
  EXPECT_EQ(from_elem(out[1]), -kInf);
  EXPECT_EQ(from_elem(out[2]), 30000.0);
}

struct StatusCase {
  const char* name;
  Direction direction;
  Activation act;
  bool null_in, null_grad, null_out;
  int64_t n;
  StatusCode expected;
};

const StatusCase kStatusCases[] = {
    {"ok", Direction::backward, Activation::gelu(), false, false, false, 4, StatusCode::success},
    {"forward ignores dy", Direction::forward, Activation::gelu(), false, true, false, 4,
     StatusCode::success},
    {"n == 0 takes null", Direction::backward, Activation::gelu(), true, true, true, 0,
     StatusCode::success},
    {"null x", Direction::forward, Activation::gelu(), true, false, false, 4,
     StatusCode::null_pointer},
    {"null dy", Direction::backward, Activation::gelu(), false, true, false, 4,
     StatusCode::null_pointer},
    {"null y", Direction::forward, Activation::gelu(), false, false, true, 4,
     StatusCode::null_pointer},
    {"null dx", Direction::backward_from_output, Activation::tanh(), false, false, true, 4,
     StatusCode::null_pointer},
    {"negative n", Direction::forward, Activation::gelu(), false, false, false, -1,
     StatusCode::invalid_size},
    {"huge n", Direction::forward, Activation::gelu(), false, false, false,
     std::numeric_limits<int64_t>::max(), StatusCode::invalid_size},
    {"no from-output form", Direction::backward_from_output, Activation::gelu(), false, false,
     false, 4, StatusCode::unsupported},
    {"celu alpha 0", Direction::forward, Activation::celu(0.0f), false, false, false, 4,
     StatusCode::invalid_parameter},
    {"softplus beta 0", Direction::forward, Activation::softplus(0.0f), false, false, false, 4,
     StatusCode::invalid_parameter},
};

TEST(ReferenceBufferForm, ArgumentChecks) {
  std::vector<float> in(4, 1.0f), grad(4, 1.0f), out(4, 0.0f);
  for (const StatusCase& c : kStatusCases)
    for (DType t : {DType::f32, DType::f16, DType::bf16}) {
      const cuact::Status s =
          ref::activation(c.direction, c.act, t, c.null_in ? nullptr : in.data(),
                          c.null_grad ? nullptr : grad.data(), c.null_out ? nullptr : out.data(),
                          c.n);
      EXPECT_EQ(s.code(), c.expected) << c.name << " " << cuact::dtype_name(t) << ": "
                                      << s.message();
    }
}

}  // namespace
