// The activation math: one small functor per activation, nothing about memory.
//
// Contract of every functor F:
//   F(const Activation&)               takes its parameters from the descriptor
//   float forward(float x)             y = f(x)
//   float backward(float x, float dy)  dx = dy * f'(x), from the saved input
//   float backward_from_output(float y, float dy)
//                                      the same dx through y = f(x); only the
//                                      functors SPEC.md gives that form for
// All math is fp32 (half types are widened before and rounded after).
// Edge cases (SPEC.md): NaN in gives NaN out; +-inf gives the limit; no
// overflow inside a formula for finite input; at a kink the table's branch.
// Where f'(x) is a hard zero branch, dx is 0 whatever dy is (PyTorch's choice).
// The exact ops whose result is a product or sum with a parameter return
// double: one fp32 rounding before the fp16/bf16 store would be a second
// rounding; the engine rounds the double once (see numeric.cuh).
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "cuact/activation.h"
#include "float_math.cuh"

namespace cuact::detail {

// ---------------------------------------------------------------- piecewise linear

struct IdentityOp {
  static constexpr ActivationKind kind = ActivationKind::identity;
  CUACT_HD explicit IdentityOp(const Activation&) {}
  CUACT_HD float forward(float x) const { return x; }
  CUACT_HD float backward(float x, float dy) const { return is_nan(x) ? x : dy; }
  CUACT_HD float backward_from_output(float y, float dy) const { return backward(y, dy); }
};

struct ReluOp {
  static constexpr ActivationKind kind = ActivationKind::relu;
  CUACT_HD explicit ReluOp(const Activation&) {}
  CUACT_HD float forward(float x) const { return x < 0.0f ? 0.0f : x; }
  CUACT_HD float backward(float x, float dy) const { return x > 0.0f ? dy : nan_or(x, 0.0f); }
  // y > 0 exactly where x > 0.
  CUACT_HD float backward_from_output(float y, float dy) const { return backward(y, dy); }
};

// clamp(x, lower, upper); relu6 is clamp(x, 0, 6).
struct HardtanhOp {
  static constexpr ActivationKind kind = ActivationKind::hardtanh;
  float lower, upper;
  CUACT_HD explicit HardtanhOp(const Activation& a) : lower(a.lower), upper(a.upper) {}
  CUACT_HD HardtanhOp(float lo, float hi) : lower(lo), upper(hi) {}
  CUACT_HD float forward(float x) const { return x < lower ? lower : (x > upper ? upper : x); }
  CUACT_HD float backward(float x, float dy) const {
    return (x > lower && x < upper) ? dy : nan_or(x, 0.0f);
  }
};

struct Relu6Op : HardtanhOp {
  static constexpr ActivationKind kind = ActivationKind::relu6;
  CUACT_HD explicit Relu6Op(const Activation&) : HardtanhOp(0.0f, 6.0f) {}
};

struct LeakyReluOp {
  static constexpr ActivationKind kind = ActivationKind::leaky_relu;
  float slope;
  CUACT_HD explicit LeakyReluOp(const Activation& a) : slope(a.alpha) {}
  // slope * -inf is NaN when slope == 0; the limit is 0. Products are exact in double.
  CUACT_HD double forward(float x) const {
    return x > 0.0f ? x : (slope == 0.0f ? nan_or(x, 0.0f) : static_cast<double>(slope) * x);
  }
  CUACT_HD double backward(float x, float dy) const {
    return x > 0.0f ? dy : (is_nan(x) ? x : static_cast<double>(slope) * dy);
  }
};

struct HardshrinkOp {
  static constexpr ActivationKind kind = ActivationKind::hardshrink;
  float lambda;
  CUACT_HD explicit HardshrinkOp(const Activation& a) : lambda(a.lambda) {}
  CUACT_HD float forward(float x) const { return fabsf(x) > lambda ? x : nan_or(x, 0.0f); }
  CUACT_HD float backward(float x, float dy) const {
    return fabsf(x) > lambda ? dy : nan_or(x, 0.0f);
  }
};

struct SoftshrinkOp {
  static constexpr ActivationKind kind = ActivationKind::softshrink;
  float lambda;
  CUACT_HD explicit SoftshrinkOp(const Activation& a) : lambda(a.lambda) {}
  CUACT_HD double forward(float x) const {
    const double xd = x;
    return x > lambda ? xd - lambda : (x < -lambda ? xd + lambda : nan_or(x, 0.0f));
  }
  CUACT_HD float backward(float x, float dy) const {
    return fabsf(x) > lambda ? dy : nan_or(x, 0.0f);
  }
};

struct ThresholdOp {
  static constexpr ActivationKind kind = ActivationKind::threshold;
  float t, v;
  CUACT_HD explicit ThresholdOp(const Activation& a) : t(a.cutoff), v(a.value) {}
  CUACT_HD float forward(float x) const { return x > t ? x : nan_or(x, v); }
  CUACT_HD float backward(float x, float dy) const { return x > t ? dy : nan_or(x, 0.0f); }
};

// relu6(x + 3) / 6. The division by 6 is the one inexact step: x + 3 is exact
// in double and the quotient is rounded once more, to the dtype, by the store.
struct HardsigmoidOp {
  static constexpr ActivationKind kind = ActivationKind::hardsigmoid;
  CUACT_HD explicit HardsigmoidOp(const Activation&) {}
  CUACT_HD double forward(float x) const {
    if (x <= -3.0f) return 0.0;
    if (x >= 3.0f) return 1.0;
    return (static_cast<double>(x) + 3.0) / 6.0;  // NaN passes through
  }
  CUACT_HD double backward(float x, float dy) const {
    return (x > -3.0f && x < 3.0f) ? static_cast<double>(dy) / 6.0 : nan_or(x, 0.0f);
  }
};

// x * relu6(x + 3) / 6; f' = (2x + 3) / 6 inside (-3, 3). Double inside, as above.
struct HardswishOp {
  static constexpr ActivationKind kind = ActivationKind::hardswish;
  CUACT_HD explicit HardswishOp(const Activation&) {}
  CUACT_HD double forward(float x) const {
    if (x <= -3.0f) return 0.0;
    if (x >= 3.0f) return x;
    const double xd = x;
    return xd * (xd + 3.0) / 6.0;  // the product is exact in double
  }
  CUACT_HD double backward(float x, float dy) const {
    if (x < -3.0f) return 0.0;
    if (x > 3.0f) return dy;
    const double xd = x;
    return static_cast<double>(dy) * (2.0 * xd + 3.0) / 6.0;
  }
};

// ---------------------------------------------------------------- exponential family

// alpha * expm1(x) for x <= 0 (scaled by lambda for selu): the shared ELU shape.
struct EluOp {
  static constexpr ActivationKind kind = ActivationKind::elu;
  float alpha;
  CUACT_HD explicit EluOp(const Activation& a) : alpha(a.alpha) {}
  CUACT_HD float forward(float x) const { return x > 0.0f ? x : alpha * expm1f(x); }
  CUACT_HD float backward(float x, float dy) const {
    return x > 0.0f ? dy : dy * (alpha * expf(x));
  }
  // f' = y + alpha for x <= 0; y + alpha is exact (Sterbenz) where it cancels.
  CUACT_HD float backward_from_output(float y, float dy) const {
    return y > 0.0f ? dy : dy * (y + alpha);
  }
};

struct SeluOp {
  static constexpr ActivationKind kind = ActivationKind::selu;
  // lambda and lambda*alpha as float pairs (hi + lo) so the constants cost no accuracy.
  static constexpr float kLambdaHi = 1.0507010221481323f, kLambdaLo = -3.479265231476347e-08f;
  static constexpr float kLambdaAlphaHi = 1.7580993175506592f;
  static constexpr float kLambdaAlphaLo = 2.3296717444054593e-08f;
  CUACT_HD explicit SeluOp(const Activation&) {}
  CUACT_HD static float times_lambda(float v) { return mul_by_pair(kLambdaHi, kLambdaLo, v); }
  CUACT_HD static float times_lambda_alpha(float v) {
    return mul_by_pair(kLambdaAlphaHi, kLambdaAlphaLo, v);
  }
  CUACT_HD float forward(float x) const {
    return x > 0.0f ? times_lambda(x) : times_lambda_alpha(expm1f(x));
  }
  CUACT_HD float backward(float x, float dy) const {
    return x > 0.0f ? times_lambda(dy) : dy * times_lambda_alpha(expf(x));
  }
  // f' = y + lambda*alpha for x <= 0.
  CUACT_HD float backward_from_output(float y, float dy) const {
    return y > 0.0f ? times_lambda(dy) : dy * ((y + kLambdaAlphaHi) + kLambdaAlphaLo);
  }
};

struct CeluOp {
  static constexpr ActivationKind kind = ActivationKind::celu;
  float alpha;
  CUACT_HD explicit CeluOp(const Activation& a) : alpha(a.alpha) {}
  CUACT_HD float forward(float x) const { return x > 0.0f ? x : alpha * expm1f(x / alpha); }
  CUACT_HD float backward(float x, float dy) const {
    return x > 0.0f ? dy : dy * exp_of_quotient(x, alpha);
  }
  // f' = y/alpha + 1 = (y + alpha)/alpha, the sum exact where it cancels.
  CUACT_HD float backward_from_output(float y, float dy) const {
    return y > 0.0f ? dy : dy * ((y + alpha) / alpha);
  }
};

// ---------------------------------------------------------------- sigmoid family

// sigma(z) and 1 - sigma(z) for z = z_hi + z_lo, both without cancellation.
struct SigmoidPair {
  float s, one_minus_s;
};
CUACT_HD SigmoidPair sigmoid_pair(float z_hi, float z_lo = 0.0f) {
  const float q = expf(-fabsf(z_hi));
  const float r = reciprocal_at_least_1(1.0f + q);
  SigmoidPair p = z_hi >= 0.0f ? SigmoidPair{r, q * r} : SigmoidPair{q * r, r};
  // d sigma = sigma (1 - sigma) dz: carry the low part of z (none once sigma
  // saturates, where z_lo may be the NaN of an overflowed product).
  const float d = p.s * p.one_minus_s * (fabsf(z_hi) < 100.0f ? z_lo : 0.0f);
  return {p.s + d, p.one_minus_s - d};
}

struct SigmoidOp {
  static constexpr ActivationKind kind = ActivationKind::sigmoid;
  CUACT_HD explicit SigmoidOp(const Activation&) {}
  CUACT_HD float forward(float x) const { return sigmoid(x); }
  CUACT_HD float backward(float x, float dy) const {
    const SigmoidPair p = sigmoid_pair(x);
    return dy * (p.s * p.one_minus_s);
  }
  CUACT_HD float backward_from_output(float y, float dy) const { return dy * (y * (1.0f - y)); }
};

struct TanhOp {
  static constexpr ActivationKind kind = ActivationKind::tanh;
  CUACT_HD explicit TanhOp(const Activation&) {}
  CUACT_HD float forward(float x) const { return tanhf(x); }
  // 1 - tanh^2 = 4 e^-2|x| / (1 + e^-2|x|)^2, which keeps its accuracy in the tails.
  CUACT_HD float backward(float x, float dy) const {
    const float q = expf(-2.0f * fabsf(x));
    const float r = reciprocal_at_least_1(1.0f + q);
    return dy * (4.0f * q * r * r);
  }
  CUACT_HD float backward_from_output(float y, float dy) const {
    return dy * ((1.0f - y) * (1.0f + y));
  }
};

// x * sigma(beta x)
struct SiluOp {
  static constexpr ActivationKind kind = ActivationKind::silu;
  float beta;
  CUACT_HD explicit SiluOp(const Activation& a) : beta(a.beta) {}
  // Where beta x overflows (x = +-inf included) the gate is 0 or 1 and so is f'.
  CUACT_HD float forward(float x) const {
    if (beta == 0.0f) return 0.5f * x;
    const float z = beta * x;
    if (is_inf(z)) return z > 0.0f ? x : 0.0f;
    return x * sigmoid_pair(z, fmaf(beta, x, -z)).s;
  }
  // sigma (1 + beta x (1 - sigma))
  CUACT_HD float backward(float x, float dy) const {
    if (beta == 0.0f) return 0.5f * dy;
    const float z = beta * x;
    if (is_inf(z)) return z > 0.0f ? dy : 0.0f;
    const SigmoidPair p = sigmoid_pair(z, fmaf(beta, x, -z));
    return dy * (p.s * fmaf(z, p.one_minus_s, 1.0f));
  }
};

// x * sigma(z(x)) for a fixed gate z (quick_gelu, gelu_tanh): the forward,
// the backward d/dx = sigma (1 + x z'(x) (1 - sigma)), and saturation beyond
// |x| > Gate::kSaturation, where the result is x (x > 0) or below fp32's
// smallest subnormal (x < 0). Gate gives sigma(z) with z carried in two
// floats (gate(x)) and z'(x) (slope(x)).
template <class Gate, ActivationKind Kind>
struct SigmoidGatedOp {
  static constexpr ActivationKind kind = Kind;
  CUACT_HD explicit SigmoidGatedOp(const Activation&) {}
  CUACT_HD float forward(float x) const {
    if (fabsf(x) > Gate::kSaturation) return x > 0.0f ? x : 0.0f;
    return x * Gate::gate(x).s;
  }
  CUACT_HD float backward(float x, float dy) const {
    if (fabsf(x) > Gate::kSaturation) return x > 0.0f ? dy : 0.0f;
    const SigmoidPair p = Gate::gate(x);
    return dy * (p.s * fmaf(x * Gate::slope(x), p.one_minus_s, 1.0f));
  }
};

// quick_gelu: z = 1.702 x.
struct QuickGeluGate {
  static constexpr float kHi = 1.7020000219345093f, kLo = -2.1934509319976314e-08f;
  static constexpr float kSaturation = 64.0f;
  CUACT_HD static SigmoidPair gate(float x) {
    const float z = kHi * x;
    return sigmoid_pair(z, fmaf(kHi, x, -z) + kLo * x);
  }
  CUACT_HD static float slope(float) { return kHi; }
};
using QuickGeluOp = SigmoidGatedOp<QuickGeluGate, ActivationKind::quick_gelu>;

// gelu_tanh: 0.5 x (1 + tanh(u)) = x * sigma(2u), z = 2u = k1 x + k3 x^3. The
// sigmoid form avoids the cancellation of 1 + tanh(u) for x < 0.
struct GeluTanhGate {
  static constexpr float kK1Hi = 1.5957691669464111f, kK1Lo = -4.534068054340423e-08f;
  static constexpr float kK3Hi = 0.07135481387376785f, kK3Lo = 2.3988324659995897e-09f;
  static constexpr float kSaturation = 16.0f;
  CUACT_HD static SigmoidPair gate(float x) {
    const float x2 = x * x;
    const float x2_lo = fmaf(x, x, -x2);
    const float x3 = x2 * x;
    const float x3_lo = fmaf(x2, x, -x3) + x2_lo * x;
    const float t1 = kK1Hi * x;
    const float t1_lo = fmaf(kK1Hi, x, -t1) + kK1Lo * x;
    const float t3 = kK3Hi * x3;
    const float t3_lo = fmaf(kK3Hi, x3, -t3) + (kK3Hi * x3_lo + kK3Lo * x3);
    const float z = t1 + t3;  // two-sum: z + z_err == t1 + t3 exactly
    const float t3_part = z - t1;
    const float z_err = (t1 - (z - t3_part)) + (t3 - t3_part);
    return sigmoid_pair(z, z_err + t1_lo + t3_lo);
  }
  CUACT_HD static float slope(float x) { return fmaf(3.0f * kK3Hi, x * x, kK1Hi); }
};
using GeluTanhOp = SigmoidGatedOp<GeluTanhGate, ActivationKind::gelu_tanh>;

// ---------------------------------------------------------------- gelu (erf)

// Phi(x) = erfc(-x / sqrt 2) / 2 (erfc, not 1 + erf, so x < 0 keeps its digits),
// with the rounding of -x/sqrt2 carried through erfc's derivative.
CUACT_HD float gaussian_cdf(float x) {
  constexpr float kInvSqrt2Hi = 0.7071067690849304f, kInvSqrt2Lo = 1.2101617485882343e-08f;
  constexpr float kTwoOverSqrtPi = 1.128379225730896f;
  const float z = -x * kInvSqrt2Hi;
  const float z_lo = fmaf(-x, kInvSqrt2Hi, -z) - x * kInvSqrt2Lo;
  const float e = expf(-z * z);
  return 0.5f * fmaf(-z_lo * kTwoOverSqrtPi, e, erfcf(z));
}

// phi(x) = e^(-x^2/2) / sqrt(2 pi), with the rounding of x^2 carried.
CUACT_HD float gaussian_pdf(float x) {
  constexpr float kInvSqrt2PiHi = 0.3989422917366028f, kInvSqrt2PiLo = -1.1335170135851058e-08f;
  const float x2 = x * x;
  if (x2 > 300.0f) return 0.0f;  // e^-150 is below fp32's smallest subnormal
  const float x2_lo = fmaf(x, x, -x2);
  const float e = expf(-0.5f * x2);
  const float g = fmaf(e, -0.5f * x2_lo, e);
  return fmaf(g, kInvSqrt2PiHi, g * kInvSqrt2PiLo);
}

struct GeluOp {
  static constexpr ActivationKind kind = ActivationKind::gelu;
  CUACT_HD explicit GeluOp(const Activation&) {}
  CUACT_HD float forward(float x) const {
    if (is_inf(x)) return x > 0.0f ? x : 0.0f;
    return x * gaussian_cdf(x);
  }
  // Phi(x) + x phi(x)
  CUACT_HD float backward(float x, float dy) const {
    if (is_inf(x)) return x > 0.0f ? dy : 0.0f;
    return dy * fmaf(x, gaussian_pdf(x), gaussian_cdf(x));
  }
};

// ---------------------------------------------------------------- softplus family

// log1p(e^z) for any z, never overflowing: max(z, 0) + log1p(e^-|z|).
CUACT_HD float log1p_exp(float z) {
  return (z > 0.0f ? z : 0.0f) + log1pf(expf(-fabsf(z)));
}

struct SoftplusOp {
  static constexpr ActivationKind kind = ActivationKind::softplus;
  float beta, cutoff;
  CUACT_HD explicit SoftplusOp(const Activation& a) : beta(a.beta), cutoff(a.cutoff) {}
  // beta > 0 (validate() rejects the rest).
  CUACT_HD float forward(float x) const {
    const float z = beta * x;
    if (z > cutoff) return x;
    if (is_inf(x)) return x > 0.0f ? x : 0.0f;
    // log1p(e^z) = e^z (1 - e^z/2 ...) is e^z to fp32 precision below -17.
    if (z < -17.0f) return exp_of_product(beta, 0.0f, x) / beta;
    return log1p_exp(z) / beta;
  }
  CUACT_HD float backward(float x, float dy) const {
    const float z = beta * x;
    if (z > cutoff) return dy;
    if (is_inf(x)) return x > 0.0f ? dy : 0.0f;
    return dy * sigmoid_pair(z, fmaf(beta, x, -z)).s;
  }
};

struct LogSigmoidOp {
  static constexpr ActivationKind kind = ActivationKind::log_sigmoid;
  CUACT_HD explicit LogSigmoidOp(const Activation&) {}
  // -softplus(-x) = min(x, 0) - log1p(e^-|x|)
  CUACT_HD float forward(float x) const {
    return (x < 0.0f ? x : 0.0f) - log1pf(expf(-fabsf(x)));
  }
  CUACT_HD float backward(float x, float dy) const { return dy * sigmoid(-x); }
};

// x * tanh(softplus(x)). With e = e^x and n = e (e + 2): tanh(softplus(x)) = n / (n + 2)
// and 1 - tanh^2 = 4 (e + 1)^2 / (n + 2)^2, one exponential for both.
struct MishOp {
  static constexpr ActivationKind kind = ActivationKind::mish;
  static constexpr float kLinear = 20.0f;  // tanh(softplus(x)) rounds to 1 beyond this
  CUACT_HD explicit MishOp(const Activation&) {}
  CUACT_HD float forward(float x) const {
    if (x > kLinear) return x;
    if (is_inf(x)) return 0.0f;
    const float e = expf(x);
    const float n = e * (e + 2.0f);
    return x * (n / (n + 2.0f));
  }
  // f' = tanh(sp) + x sigma(x) (1 - tanh^2(sp)) = n/(n+2) + 4 x e (e + 1) / (n + 2)^2
  CUACT_HD float backward(float x, float dy) const {
    if (x > kLinear) return dy;
    if (is_inf(x)) return 0.0f;
    const float e = expf(x);
    const float n = e * (e + 2.0f);
    const float d = 1.0f / (n + 2.0f);
    return dy * fmaf(x * e * 4.0f * (e + 1.0f), d * d, n * d);  // x * e first: no inf * 0
  }
};

// ---------------------------------------------------------------- rational and shrink

struct SoftsignOp {
  static constexpr ActivationKind kind = ActivationKind::softsign;
  CUACT_HD explicit SoftsignOp(const Activation&) {}
  CUACT_HD float forward(float x) const {
    if (is_inf(x)) return x > 0.0f ? 1.0f : -1.0f;
    return x / (1.0f + fabsf(x));
  }
  CUACT_HD float backward(float x, float dy) const {
    const float r = 1.0f / (1.0f + fabsf(x));
    return dy * r * r;
  }
};

// x - tanh(x). Near 0 the difference cancels, so |x| < 1 uses a fitted
// polynomial: x - tanh x = x^3 P(x^2), relative error < 5e-10 on [-1, 1].
struct TanhshrinkOp {
  static constexpr ActivationKind kind = ActivationKind::tanhshrink;
  CUACT_HD explicit TanhshrinkOp(const Activation&) {}
  CUACT_HD static float small_x(float x) {
    const float t = x * x;
    float p = 4.812848960537505e-05f;
    p = fmaf(p, t, -0.0003363209772650963f);
    p = fmaf(p, t, 0.001239905792172133f);
    p = fmaf(p, t, -0.0034764536567084767f);
    p = fmaf(p, t, 0.008825328696096438f);
    p = fmaf(p, t, -0.021862335860820106f);
    p = fmaf(p, t, 0.053967565970779986f);
    p = fmaf(p, t, -0.13333330748289887f);
    p = fmaf(p, t, 0.3333333331711337f);
    return x * t * p;
  }
  CUACT_HD float forward(float x) const {
    if (fabsf(x) < 1.0f) return small_x(x);
    return is_inf(x) ? x : x - tanhf(x);
  }
  // f' = tanh^2(x)
  CUACT_HD float backward(float x, float dy) const {
    const float t = tanhf(x);
    return dy * (t * t);
  }
};

// ---------------------------------------------------------------- the list

// Every functor, in ActivationKind order (checked below). Adding an
// activation: its functor here, its reference function, its test row.
using AllActivationOps =
    std::tuple<IdentityOp, ReluOp, Relu6Op, HardtanhOp, LeakyReluOp, EluOp, SeluOp, CeluOp,
               GeluOp, GeluTanhOp, QuickGeluOp, SigmoidOp, TanhOp, SiluOp, MishOp, SoftplusOp,
               LogSigmoidOp, HardsigmoidOp, HardswishOp, SoftsignOp, TanhshrinkOp,
               HardshrinkOp, SoftshrinkOp, ThresholdOp>;

template <size_t K>
using ActivationOpAt = std::tuple_element_t<K, AllActivationOps>;

template <size_t... K>
constexpr bool kinds_in_order(std::index_sequence<K...>) {
  return ((ActivationOpAt<K>::kind == static_cast<ActivationKind>(K)) && ...);
}
static_assert(std::tuple_size_v<AllActivationOps> == kNumActivationKinds &&
                  kinds_in_order(std::make_index_sequence<kNumActivationKinds>{}),
              "AllActivationOps must list one functor per ActivationKind, in order");

template <class F, class = void>
struct HasBackwardFromOutput : std::false_type {};
template <class F>
struct HasBackwardFromOutput<
    F, std::void_t<decltype(std::declval<const F&>().backward_from_output(0.0f, 0.0f))>>
    : std::true_type {};

// Calls fn(functor) with the functor of act.kind built from act (host code:
// CPU tests and tools; kernels get their functor through the dispatch table).
template <class Fn, size_t... K>
void visit_activation_op(const Activation& act, Fn&& fn, std::index_sequence<K...>) {
  ((static_cast<int>(act.kind) == static_cast<int>(K) ? (fn(ActivationOpAt<K>(act)), 0) : 0), ...);
}
template <class Fn>
void visit_activation_op(const Activation& act, Fn&& fn) {
  visit_activation_op(act, fn, std::make_index_sequence<kNumActivationKinds>{});
}

}  // namespace cuact::detail
