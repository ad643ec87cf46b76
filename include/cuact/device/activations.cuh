// cuact's activation math as device functors: the exact functions the
// library's kernels apply, header-only, for use inside your own kernel (a
// GEMM epilogue, cub::DeviceTransform, ...). Nothing here touches memory.
//
// Every functor is a template on Out, the type its result will be rounded
// to (float, __half or __nv_bfloat16), and takes its parameters as a small
// struct of its own (Params):
//
//   using Params = ...;                      e.g. LeakyReluParams{negative_slope}
//   explicit F(const Params& p);
//   float forward(float x) const;            y = f(x)
//   float backward(float x, float dy) const; dx = dy * f'(x), from the saved input
//   float backward_from_output(float y, float dy) const;
//                                            the same dx through y = f(x), where
//   static constexpr bool kBackwardFromOutput = true;
//   static constexpr const char* kName;      "gelu", ...
//
// The math is fp32 for every Out, but only as precise as Out needs: round
// the result with narrow<Out>() (convert.cuh) exactly once. Accuracy
// (README.md, "Accuracy contract"), for any fp32 input (the fused kernels
// apply a functor to x + bias): for Out = __half / __nv_bfloat16 within 1 ulp
// of Out of the exact result, computed with the hardware approximations
// (MUFU ex2/rcp/lg2) and short fitted polynomials; the piecewise-linear
// functors exact (their fp32 result is rounded to odd, so that the one
// rounding to Out is the correct one; hardsigmoid and hardswish are exact for
// inputs that are values of Out, within 1 ulp for other fp32 inputs). For
// Out = float within each functor's stated fp32 bound, piecewise-linear ones
// correctly rounded. No FP64.
// Edge cases (docs: the math contract): NaN in gives NaN out; +-inf gives the
// limit; no overflow inside a formula for finite input; at a kink the
// table's branch. Where f'(x) is a hard zero branch, dx is 0 whatever dy is.
//
// Example (bias + GELU in your own kernel, bf16 data):
//   cuact::device::Gelu<__nv_bfloat16> gelu{{}};
//   y[i] = cuact::device::narrow<__nv_bfloat16>(gelu.forward(to_float(x[i]) + b));
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "cuact/device/convert.cuh"
#include "cuact/device/float_math.cuh"

namespace cuact::device {

struct NoParams {};


// The product s * x of an exact op: one fp32 rounding, or rounded to odd.
template <class Out>
CUACT_HD float exact_product(float s, float x) {
  if constexpr (is_half_v<Out>) return product_to_odd(s, x);
  return s * x;
}

// The sum a + b of an exact op: one fp32 rounding, or rounded to odd.
template <class Out>
CUACT_HD float exact_sum(float a, float b) {
  if constexpr (is_half_v<Out>) return sum_to_odd(a, b);
  return a + b;
}

// fp16/bf16 results take e^z from MUFU.EX2 (2^(z log2 e)), whose ftz form
// flushes below 2^-126. bf16 keeps fp32's exponent range: its results reach
// 2^-133, and f' = e^z (1 + ...) can exceed e^z by 2^9 (gelu_tanh's tail)
// and dy by 2^11 more, so for bf16 the exponential is carried scaled by
// kExpScale = 2^48: exp2_scaled(x) = 2^x kExpScale, down to 2^-174.
template <class Out>
inline constexpr float kExpScale = std::is_same_v<Out, __nv_bfloat16> ? 0x1p48f : 1.0f;
template <class Out>
CUACT_HD float exp2_scaled(float x) {
  return exp2_ftz(kExpScale<Out> == 1.0f ? x : x + 48.0f);
}
// dy * f' from f' kExpScale, losing the digits of neither to fp32's
// subnormals, and overflowing only where dy * f' does.
template <class Out>
CUACT_HD float times_unscaled(float dy, float f_scaled) {
  constexpr float kDown = 1.0f / kExpScale<Out>;
  if constexpr (kExpScale<Out> == 1.0f) return dy * f_scaled;
  return fabsf(dy) > 1.0f ? (dy * kDown) * f_scaled : (dy * f_scaled) * kDown;
}

// 2^x down to fp32's smallest subnormal for bf16 results (exp2f: ex2 with a
// subnormal fixup, 4 instructions), flushed below 2^-126 for fp16 ones.
template <class Out>
CUACT_HD float exp2_for(float x) {
  if constexpr (std::is_same_v<Out, __nv_bfloat16>) return exp2f(x);
  return exp2_ftz(x);
}

// c0 + c1 t + c2 t^2 + ..., by Horner's rule (one fma per coefficient).
CUACT_HD float horner(float, float c) { return c; }
template <class... C>
CUACT_HD float horner(float t, float c0, C... c) {
  return fmaf(horner(t, c...), t, c0);
}

// ---------------------------------------------------------------- piecewise linear

template <class Out>
struct Identity {
  using Params = NoParams;
  static constexpr const char* kName = "identity";
  static constexpr bool kBackwardFromOutput = true;
  CUACT_HD explicit Identity(const Params&) {}
  CUACT_HD float forward(float x) const { return x; }
  CUACT_HD float backward(float x, float dy) const { return is_nan(x) ? x : dy; }
  CUACT_HD float backward_from_output(float y, float dy) const { return backward(y, dy); }
};

template <class Out>
struct Relu {
  using Params = NoParams;
  static constexpr const char* kName = "relu";
  static constexpr bool kBackwardFromOutput = true;
  CUACT_HD explicit Relu(const Params&) {}
  CUACT_HD float forward(float x) const { return x < 0.0f ? 0.0f : x; }
  CUACT_HD float backward(float x, float dy) const { return x > 0.0f ? dy : nan_or(x, 0.0f); }
  // y > 0 exactly where x > 0.
  CUACT_HD float backward_from_output(float y, float dy) const { return backward(y, dy); }
};

struct HardtanhParams {
  float lower = -1.0f, upper = 1.0f;
};

// clamp(x, lower, upper); relu6 is clamp(x, 0, 6).
template <class Out>
struct Hardtanh {
  using Params = HardtanhParams;
  static constexpr const char* kName = "hardtanh";
  static constexpr bool kBackwardFromOutput = false;
  Params p;
  CUACT_HD explicit Hardtanh(const Params& params) : p(params) {}
  CUACT_HD float forward(float x) const { return x < p.lower ? p.lower : (x > p.upper ? p.upper : x); }
  CUACT_HD float backward(float x, float dy) const {
    return (x > p.lower && x < p.upper) ? dy : nan_or(x, 0.0f);
  }
};

template <class Out>
struct Relu6 : Hardtanh<Out> {
  using Params = NoParams;
  static constexpr const char* kName = "relu6";
  CUACT_HD explicit Relu6(const Params&) : Hardtanh<Out>(HardtanhParams{0.0f, 6.0f}) {}
};

struct LeakyReluParams {
  float negative_slope = 0.01f;
};

template <class Out>
struct LeakyRelu {
  using Params = LeakyReluParams;
  static constexpr const char* kName = "leaky_relu";
  static constexpr bool kBackwardFromOutput = false;
  float slope;
  CUACT_HD explicit LeakyRelu(const Params& p) : slope(p.negative_slope) {}
  // slope * -inf is NaN when slope == 0; the limit is 0.
  CUACT_HD float forward(float x) const {
    return x > 0.0f ? x : (slope == 0.0f ? nan_or(x, 0.0f) : exact_product<Out>(slope, x));
  }
  CUACT_HD float backward(float x, float dy) const {
    return x > 0.0f ? dy : (is_nan(x) ? x : exact_product<Out>(slope, dy));
  }
};

struct ShrinkParams {
  float lambda = 0.5f;
};

template <class Out>
struct Hardshrink {
  using Params = ShrinkParams;
  static constexpr const char* kName = "hardshrink";
  static constexpr bool kBackwardFromOutput = false;
  float lambda;
  CUACT_HD explicit Hardshrink(const Params& p) : lambda(p.lambda) {}
  CUACT_HD float forward(float x) const { return fabsf(x) > lambda ? x : nan_or(x, 0.0f); }
  CUACT_HD float backward(float x, float dy) const {
    return fabsf(x) > lambda ? dy : nan_or(x, 0.0f);
  }
};

// x - lambda sign(x) outside [-lambda, lambda]: one sum either side.
template <class Out>
struct Softshrink {
  using Params = ShrinkParams;
  static constexpr const char* kName = "softshrink";
  static constexpr bool kBackwardFromOutput = false;
  float lambda;
  CUACT_HD explicit Softshrink(const Params& p) : lambda(p.lambda) {}
  CUACT_HD float forward(float x) const {
    return fabsf(x) > lambda ? exact_sum<Out>(x, copysignf(lambda, -x)) : nan_or(x, 0.0f);
  }
  CUACT_HD float backward(float x, float dy) const {
    return fabsf(x) > lambda ? dy : nan_or(x, 0.0f);
  }
};

struct ThresholdParams {
  float threshold = 0.0f, value = 0.0f;
};

template <class Out>
struct Threshold {
  using Params = ThresholdParams;
  static constexpr const char* kName = "threshold";
  static constexpr bool kBackwardFromOutput = false;
  Params p;
  CUACT_HD explicit Threshold(const Params& params) : p(params) {}
  CUACT_HD float forward(float x) const { return x > p.threshold ? x : nan_or(x, p.value); }
  CUACT_HD float backward(float x, float dy) const {
    return x > p.threshold ? dy : nan_or(x, 0.0f);
  }
};

// relu6(x + 3) / 6.
template <class Out>
struct Hardsigmoid {
  using Params = NoParams;
  static constexpr const char* kName = "hardsigmoid";
  static constexpr bool kBackwardFromOutput = false;
  CUACT_HD explicit Hardsigmoid(const Params&) {}
  CUACT_HD float forward(float x) const {
    if constexpr (is_half_v<Out>) {
      // x + 3 is exact for the inputs that are values of Out (or too small to matter).
      return sixth_to_odd(min_nan(max_nan(x + 3.0f, 0.0f), 6.0f));
    }
    const float xc = min_nan(max_nan(x, -3.0f), 3.0f);
    const float s = 3.0f + xc;  // + (xc - (s - 3)): exactly x + 3
    return sixth_of_sum(s, xc - (s - 3.0f));
  }
  CUACT_HD float backward(float x, float dy) const {
    float d;
    if constexpr (is_half_v<Out>) {
      d = sixth_to_odd(dy);
    } else {
      d = sixth(dy);
    }
    return fabsf(x) < 3.0f ? (is_inf(dy) ? dy : d) : nan_or(x, 0.0f);
  }
};

// x * relu6(x + 3) / 6; f' = (2x + 3) / 6 inside [-3, 3].
template <class Out>
struct Hardswish {
  using Params = NoParams;
  static constexpr const char* kName = "hardswish";
  static constexpr bool kBackwardFromOutput = false;
  CUACT_HD explicit Hardswish(const Params&) {}
  // (x^2 + 3x) / 6 for x in [-3, 3): 0 at -3 and below, x from 3 on (NaN too).
  CUACT_HD float forward(float x) const {
    const float xc = fmaxf(x, -3.0f);
    float v;
    if constexpr (is_half_v<Out>) {
      // 3x is exact for values of Out (t_lo = 0), so one fma rounded to odd
      // holds x^2 + 3x; for other fp32 x, t_lo keeps the cancellation near -3
      // within an ulp.
      const float t = 3.0f * xc, t_lo = fmaf(3.0f, xc, -t);
      v = sixth_to_odd(fma_to_odd(xc, xc, t) + t_lo);
    } else {
      // x (x + 3) with x + 3 = s + s_lo exactly: x s = n + n_lo, and the low
      // part n_lo + x s_lo rounded to odd.
      const float s = 3.0f + xc, s_lo = xc - (s - 3.0f);
      const FloatPair n = two_prod(xc, s);
      const float big = sixth_of_sum(n.hi, fma_to_odd(xc, s_lo, n.lo));
      // Tiny x, whose error terms underflow: x/2 + x^2/6 rounds as x/2 with
      // its ties broken upward (+ 0: -0 gives +0, as every zero result).
      v = fabsf(x) < 0x1p-60f ? fma_rounded<Round::up>(x, 0.5f, 0.0f) : big;
    }
    return x < 3.0f ? v : x;
  }
  CUACT_HD float backward(float x, float dy) const {
    float v;
    if constexpr (is_half_v<Out>) {
      // 3dy is exact for values of Out (t_lo = 0): dy (2x + 3) in one fma
      // rounded to odd. For other fp32 dy (a dropout-scaled gradient) t_lo
      // keeps the cancellation at x = -3/2 exact and the rest within an ulp.
      const float t = 3.0f * dy, t_lo = fmaf(3.0f, dy, -t);
      v = is_inf(dy) ? dy * (2.0f * x + 3.0f) : sixth_to_odd(fma_to_odd(2.0f * x, dy, t) + t_lo);
    } else {
      v = slope_product(x, dy);
    }
    return x < -3.0f ? 0.0f : (x > 3.0f ? dy : v);
  }

  // dy (2x + 3) / 6 correctly rounded, for x in [-3, 3]. dy is scaled into
  // [2^-60, 2^60] (g = dy * scale) so that no error term underflows or
  // product overflows. With 2x + 3 = t + t_lo exactly: g t = n + n_lo, the low
  // part n_lo + g t_lo rounded to odd (b), the quotient q (scaled, on the
  // grid of fp32's values once unscaled) and the rest (n - 6 q + b) / 6
  // rounded to odd (lo): then q + lo rounds right, at fp32's precision, or
  // where the result is subnormal on its fixed grid (2^-149 scaled: the sum
  // q + C, C = 2^-126 scale with q's sign, has that spacing and q's parity).
  CUACT_HD static float slope_product(float x, float dy) {
    const float a = fabsf(dy);
    const float scale = a < 0x1p-60f ? 0x1p64f : (a > 0x1p60f ? 0x1p-64f : 1.0f);
    const float unscale = a < 0x1p-60f ? 0x1p-64f : (a > 0x1p60f ? 0x1p64f : 1.0f);
    const float g = dy * scale;
    const FloatPair t = two_sum(2.0f * x, 3.0f);
    const FloatPair n = two_prod(g, t.hi);
    const float b = fma_to_odd(g, t.lo, n.lo);
    const float q0 = n.hi * kSixth;
    const float qs = a < 0x1p-60f ? (q0 * 0x1p-64f) * 0x1p64f : q0;
    const float lo = sixth_to_odd(sum_to_odd(fmaf(-6.0f, qs, n.hi), b));
    const float w = qs + lo;
    const float c = copysignf(0x1p-126f * scale, qs);
    const float v = (fabsf(w) < 0x1p-126f * scale ? ((qs + c) + lo) - c : w) * unscale;
    return is_inf(dy) ? dy * t.hi : v;
  }
};

// ---------------------------------------------------------------- exponential family

struct AlphaParams {
  float alpha = 1.0f;
};

// e^x - 1 for fp16/bf16 results (relative error < 2^-14.5): 2^(x log2 e) - 1,
// and near 0, where that cancels, the series x + x^2/2 (error < 2^-16.6
// below 2^-7).
CUACT_HD float expm1_fast(float x) {
  const float e = exp2_ftz(x * kLog2e) - 1.0f;
  return fabsf(x) < 0x1p-7f ? fmaf(0.5f * x, x, x) : e;
}

// alpha * expm1(x) for x <= 0.
template <class Out>
struct Elu {
  using Params = AlphaParams;
  static constexpr const char* kName = "elu";
  static constexpr bool kBackwardFromOutput = true;
  float alpha;
  CUACT_HD explicit Elu(const Params& p) : alpha(p.alpha) {}
  // y keeps the sign of x (and so determines f') only for alpha >= 0.
  CUACT_HD static bool from_output_defined(const Params& p) { return p.alpha >= 0.0f; }
  CUACT_HD float forward(float x) const {
    return x > 0.0f ? x : alpha * (is_half_v<Out> ? expm1_fast(x) : expm1f(x));
  }
  CUACT_HD float backward(float x, float dy) const {
    if constexpr (is_half_v<Out>) {
      return x > 0.0f ? dy : times_unscaled<Out>(dy, alpha * exp2_scaled<Out>(x * kLog2e));
    }
    return x > 0.0f ? dy : dy * (alpha * expf(x));
  }
  // f' = y + alpha for x <= 0; y + alpha is exact (Sterbenz) where it cancels.
  CUACT_HD float backward_from_output(float y, float dy) const {
    return y > 0.0f ? dy : dy * (y + alpha);
  }
};

template <class Out>
struct Selu {
  using Params = NoParams;
  static constexpr const char* kName = "selu";
  static constexpr bool kBackwardFromOutput = true;
  // lambda and lambda*alpha as float pairs (hi + lo) so the constants cost no
  // fp32 accuracy (fp16/bf16 results need only the hi parts).
  static constexpr float kLambdaHi = 1.0507010221481323f, kLambdaLo = -3.479265231476347e-08f;
  static constexpr float kLambdaAlphaHi = 1.7580993175506592f;
  static constexpr float kLambdaAlphaLo = 2.3296717444054593e-08f;
  CUACT_HD explicit Selu(const Params&) {}
  CUACT_HD static float times_lambda(float v) {
    return is_half_v<Out> ? kLambdaHi * v : mul_by_pair(kLambdaHi, kLambdaLo, v);
  }
  CUACT_HD static float times_lambda_alpha(float v) {
    return is_half_v<Out> ? kLambdaAlphaHi * v : mul_by_pair(kLambdaAlphaHi, kLambdaAlphaLo, v);
  }
  CUACT_HD float forward(float x) const {
    return x > 0.0f ? times_lambda(x)
                    : times_lambda_alpha(is_half_v<Out> ? expm1_fast(x) : expm1f(x));
  }
  CUACT_HD float backward(float x, float dy) const {
    if constexpr (is_half_v<Out>) {
      return x > 0.0f ? times_lambda(dy)
                      : times_unscaled<Out>(dy, kLambdaAlphaHi * exp2_scaled<Out>(x * kLog2e));
    }
    return x > 0.0f ? times_lambda(dy) : dy * times_lambda_alpha(expf(x));
  }
  // f' = y + lambda*alpha for x <= 0.
  CUACT_HD float backward_from_output(float y, float dy) const {
    return y > 0.0f ? times_lambda(dy) : dy * ((y + kLambdaAlphaHi) + kLambdaAlphaLo);
  }
};

// alpha and its reciprocal, computed once per call: the functor multiplies.
struct CeluParams {
  float alpha = 1.0f, inv_alpha = 1.0f;
};

template <class Out>
struct Celu {
  using Params = CeluParams;
  static constexpr const char* kName = "celu";
  static constexpr bool kBackwardFromOutput = true;
  Params p;
  CUACT_HD explicit Celu(const Params& params) : p(params) {}
  CUACT_HD static bool from_output_defined(const Params& p) { return p.alpha > 0.0f; }
  CUACT_HD float forward(float x) const {
    const float z = x * p.inv_alpha;
    return x > 0.0f ? x : p.alpha * (is_half_v<Out> ? expm1_fast(z) : expm1f(z));
  }
  CUACT_HD float backward(float x, float dy) const {
    const float e = is_half_v<Out> ? exp2_for<Out>(x * p.inv_alpha * kLog2e)
                                   : exp_of_quotient(x, p.alpha, p.inv_alpha);
    return x > 0.0f ? dy : dy * e;
  }
  // f' = y/alpha + 1 = (y + alpha)/alpha, the sum exact where it cancels.
  CUACT_HD float backward_from_output(float y, float dy) const {
    return y > 0.0f ? dy : dy * ((y + p.alpha) * p.inv_alpha);
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

// For fp16/bf16 results, from z2 = z log2(e): q = e^-|z| (scaled:
// q_scaled = q kExpScale) and r = 1/(1 + q), one MUFU.EX2 and one MUFU.RCP.
// Then sigma(z) = r (z >= 0) or q r (z < 0), and sigma (1 - sigma) = q r^2.
struct LogisticParts {
  float q_scaled, r;
};
template <class Out>
CUACT_HD LogisticParts logistic_parts(float z2) {
  const float q_scaled = exp2_scaled<Out>(-fabsf(z2));
  return {q_scaled, rcp_approx(fmaf(q_scaled, 1.0f / kExpScale<Out>, 1.0f))};
}
// sigma(z) and 1 - sigma(z); scaled: both times kExpScale.
template <class Out>
CUACT_HD SigmoidPair sigmoid_pair_fast(float z2, bool scaled = false) {
  const LogisticParts l = logistic_parts<Out>(z2);
  const float qr = l.q_scaled * l.r * (scaled ? 1.0f : 1.0f / kExpScale<Out>);
  const float r = l.r * (scaled ? kExpScale<Out> : 1.0f);
  return z2 >= 0.0f ? SigmoidPair{r, qr} : SigmoidPair{qr, r};
}

template <class Out>
struct Sigmoid {
  using Params = NoParams;
  static constexpr const char* kName = "sigmoid";
  static constexpr bool kBackwardFromOutput = true;
  CUACT_HD explicit Sigmoid(const Params&) {}
  CUACT_HD float forward(float x) const {
    if constexpr (is_half_v<Out>) return sigmoid_pair_fast<Out>(x * kLog2e).s;
    return sigmoid(x);
  }
  CUACT_HD float backward(float x, float dy) const {
    if constexpr (is_half_v<Out>) {
      const LogisticParts l = logistic_parts<Out>(x * kLog2e);
      return times_unscaled<Out>(dy, l.q_scaled * l.r * l.r);
    }
    const SigmoidPair p = sigmoid_pair(x);
    return dy * (p.s * p.one_minus_s);
  }
  CUACT_HD float backward_from_output(float y, float dy) const { return dy * (y * (1.0f - y)); }
};

template <class Out>
struct Tanh {
  using Params = NoParams;
  static constexpr const char* kName = "tanh";
  static constexpr bool kBackwardFromOutput = true;
  CUACT_HD explicit Tanh(const Params&) {}
  CUACT_HD float forward(float x) const { return is_half_v<Out> ? tanh_fast(x) : tanhf(x); }
  // 1 - tanh^2 = 4 e^-2|x| / (1 + e^-2|x|)^2, which keeps its accuracy in the tails.
  CUACT_HD float backward(float x, float dy) const {
    if constexpr (is_half_v<Out>) {
      const LogisticParts l = logistic_parts<Out>(x * (2.0f * kLog2e));
      return times_unscaled<Out>(dy, 4.0f * l.q_scaled * l.r * l.r);
    }
    const float q = expf(-2.0f * fabsf(x));
    const float r = reciprocal_at_least_1(1.0f + q);
    return dy * (4.0f * q * r * r);
  }
  CUACT_HD float backward_from_output(float y, float dy) const {
    return dy * ((1.0f - y) * (1.0f + y));
  }
};

struct SiluParams {
  float beta = 1.0f;
};

// x * sigma(beta x)
template <class Out>
struct Silu {
  using Params = SiluParams;
  static constexpr const char* kName = "silu";
  static constexpr bool kBackwardFromOutput = false;
  float beta, beta_log2e;
  CUACT_HD explicit Silu(const Params& p) : beta(p.beta), beta_log2e(p.beta * kLog2e) {}
  // Where beta x overflows (x = +-inf included) the gate is 0 or 1 and so is f'.
  CUACT_HD float forward(float x) const {
    if (beta == 0.0f) return 0.5f * x;
    if constexpr (is_half_v<Out>) {
      const float s = sigmoid_pair_fast<Out>(x * beta_log2e).s;
      return s == 0.0f ? 0.0f : x * s;  // x = +-inf where the gate is closed
    }
    const float z = beta * x;
    if (is_inf(z)) return z > 0.0f ? x : 0.0f;
    return x * sigmoid_pair(z, fmaf(beta, x, -z)).s;
  }
  // sigma (1 + beta x (1 - sigma))
  CUACT_HD float backward(float x, float dy) const {
    if (beta == 0.0f) return 0.5f * dy;
    if constexpr (is_half_v<Out>) {
      const SigmoidPair s = sigmoid_pair_fast<Out>(x * beta_log2e, true);  // scaled
      const float z = fminf(fmaxf(beta * x, -128.0f), 128.0f);  // 1 - sigma(+-128) is 0 in fp32
      return times_unscaled<Out>(dy, s.s * fmaf(z, s.one_minus_s * (1.0f / kExpScale<Out>), 1.0f));
    }
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
// floats (gate(x)), z log2(e) (z2(x), for fp16/bf16 results) and z'(x)
// (slope(x)).
template <class Gate, class Out>
struct SigmoidGated {
  CUACT_HD float forward(float x) const {
    if constexpr (is_half_v<Out>) {
      return fmaxf(x, -Gate::kSaturation) * sigmoid_pair_fast<Out>(Gate::z2(x)).s;
    }
    if (fabsf(x) > Gate::kSaturation) return x > 0.0f ? x : 0.0f;
    return x * Gate::gate(x).s;
  }
  CUACT_HD float backward(float x, float dy) const {
    if constexpr (is_half_v<Out>) {
      const SigmoidPair s = sigmoid_pair_fast<Out>(Gate::z2(x), true);  // scaled
      const float xc = fminf(fmaxf(x, -Gate::kSaturation), Gate::kSaturation);
      const float xz = xc * Gate::slope(xc);
      return times_unscaled<Out>(dy, s.s * fmaf(xz, s.one_minus_s * (1.0f / kExpScale<Out>), 1.0f));
    }
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
  CUACT_HD static float z2(float x) { return x * 2.45546699f; }
  CUACT_HD static float slope(float) { return kHi; }
};

template <class Out>
struct QuickGelu : SigmoidGated<QuickGeluGate, Out> {
  using Params = NoParams;
  static constexpr const char* kName = "quick_gelu";
  static constexpr bool kBackwardFromOutput = false;
  CUACT_HD explicit QuickGelu(const Params&) {}
};

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
    const FloatPair z = two_sum(t1, t3);
    return sigmoid_pair(z.hi, z.lo + t1_lo + t3_lo);
  }
  // (k1 + k3 x^2) x log2(e)
  CUACT_HD static float z2(float x) { return x * fmaf(0.102943242f, x * x, 2.30220819f); }
  CUACT_HD static float slope(float x) { return fmaf(3.0f * kK3Hi, x * x, kK1Hi); }
};

template <class Out>
struct GeluTanh : SigmoidGated<GeluTanhGate, Out> {
  using Params = NoParams;
  static constexpr const char* kName = "gelu_tanh";
  static constexpr bool kBackwardFromOutput = false;
  CUACT_HD explicit GeluTanh(const Params&) {}
};

// ---------------------------------------------------------------- gelu (erf)

// The standard normal's tail Q(u) = Phi(-u) = e^(-u^2/2) R(u) for u = |x|,
// where R(u) = erfcx(u/sqrt2)/2 is smooth and slowly varying, fitted as a
// polynomial in t = 1/(1 + p u), which maps u in [0, inf] to t in [0, 1]: so
// Phi(x) = Q(|x|) for x < 0 and 1 - Q(|x|) for x >= 0, one exponential and one
// reciprocal, no erfc. The backward's f' = Phi(x) + x phi(x) vanishes at x =
// -u0 (u0 = 0.7517915...): for x < 0 it is e^(-u^2/2) G(u) with G(u) = R(u) -
// u/sqrt(2 pi) = (u0 - u) H(u), the zero factored out and H fitted likewise;
// for x >= 0 it is 1 - e^(-u^2/2) G(u). The fits are minimax in relative
// error over all of t in [0, 1] (coefficients rounded to fp32 one at a time,
// refitting the rest); the tests' exhaustive sweeps are the proof.
// Beyond |x| > kSaturation, Q is below fp32's smallest subnormal.
template <class Out>
struct Gelu {
  using Params = NoParams;
  static constexpr const char* kName = "gelu";
  static constexpr bool kBackwardFromOutput = false;
  static constexpr float kSaturation = 16.0f;
  static constexpr float kU0Hi = 0.751791537f, kU0Lo = -1.21144499e-08f;
  CUACT_HD explicit Gelu(const Params&) {}

  // e^(-u^2/2): times kExpScale for fp16/bf16 results, the rounding of u^2
  // carried for fp32 ones.
  CUACT_HD static float gaussian(float u) {
    if constexpr (is_half_v<Out>) return exp2_scaled<Out>(u * -0.721347511f * u);
    const float u2 = u * u;
    const float e = expf(-0.5f * u2);
    return fmaf(e, -0.5f * fmaf(u, u, -u2), e);
  }
  // t = 1/(1 + p u), fp32 results: as t + t_lo, carrying the roundings of
  // 1 + p u and of the reciprocal, which R (sensitive to t near u = 0, by a
  // factor 1/p) would amplify to ~3 ulp.
  CUACT_HD static FloatPair tail_variable(float u) {
    constexpr float kP = 0.300000012f;
    const float d = fmaf(kP, u, 1.0f);
    const float d_lo = fmaf(kP, u, 1.0f - d);
    const float t = reciprocal_at_least_1(d);
    return {t, t * fmaf(-t, d_lo, fmaf(-t, d, 1.0f))};
  }
  // R(u) / kExpScale, relative error < 2^-15.4 (fp16/bf16: t times degree 5
  // in t, p = 0.33, written in t / p = 1/(1/p + u)) or < 2^-26.9 (fp32: t
  // times degree 11 in 2t - 1, p = 0.3, its constant term a float pair).
  CUACT_HD static float tail_ratio(float u) {
    if constexpr (is_half_v<Out>) {
      constexpr float k = 1.0f / kExpScale<Out>;
      const float t = rcp_approx(u + 3.030303f);
      return t * horner(t, 0.39893356f * k, 1.20872903f * k, 3.32072735f * k, 5.97795963f * k,
                        27.4114437f * k, -47.0754089f * k);
    }
    const FloatPair t = tail_variable(u);
    const float v = fmaf(2.0f, t.lo, fmaf(2.0f, t.hi, -1.0f));
    const float rest = horner(v, 0.164579496f, 0.0865496472f, 0.0277601406f, 0.00181692606f,
                              -0.00242232019f, -0.000574560836f, 0.000278780703f,
                              8.78171995e-05f, -4.22879311e-05f, -9.10722702e-06f, 4.84739166e-06f);
    const float s = fmaf(v, rest, 4.19761959e-09f) + 0.221970618f;  // c0 as a pair
    return fmaf(t.lo, s, t.hi * s);
  }
  // H(u), relative error < 2^-16.2 (fp16/bf16: degree 5 in t, p = 1/2,
  // written in t / 2 = 1/(2 + u)) or < 2^-27.6 (fp32: degree 10 in 2t - 1,
  // p = 0.3, its constant term a float pair).
  CUACT_HD static float root_ratio(float u) {
    if constexpr (is_half_v<Out>) {
      const float t = rcp_approx(u + 2.0f);
      return horner(t, 0.398936987f, 2.0f * 0.150435552f, 4.0f * 0.0997903645f,
                    8.0f * 0.0818614811f, 16.0f * -0.0870839655f, 32.0f * 0.0211287588f);
    }
    const FloatPair t = tail_variable(u);
    const float v = fmaf(2.0f, t.lo, fmaf(2.0f, t.hi, -1.0f));
    const float rest = horner(v, 0.114133507f, 0.0571015477f, 0.0195801035f, 0.00311575783f,
                              -0.000679190096f, -0.000376832148f, 3.67824578e-05f,
                              4.43608187e-05f, -3.34803872e-06f, -4.29615102e-06f);
    return fmaf(v, rest, -1.41102019e-08f) + 0.472129613f;  // c0 as a pair
  }

  // x Phi(x), from u = |x| clamped where Q(u) is 0 anyway (NaN passes); fmaxf
  // keeps -inf * 0 from the product (for NaN, x < 0 is false).
  CUACT_HD float forward(float x) const {
    const float u = min_nan(fabsf(x), kSaturation);
    const float q = gaussian(u) * tail_ratio(u);
    return fmaxf(x, -kSaturation) * (x < 0.0f ? q : 1.0f - q);
  }
  // Phi(x) + x phi(x)
  CUACT_HD float backward(float x, float dy) const {
    const float u = min_nan(fabsf(x), kSaturation);
    const float u0_minus_u = is_half_v<Out> ? kU0Hi - u : (kU0Hi - u) + kU0Lo;
    const float eg = gaussian(u) * (u0_minus_u * root_ratio(u));
    if constexpr (is_half_v<Out>) {
      return times_unscaled<Out>(dy, x < 0.0f ? eg : kExpScale<Out> - eg);  // f' kExpScale
    }
    return dy * (x < 0.0f ? eg : 1.0f - eg);
  }
};

// ---------------------------------------------------------------- softplus family

// log1p(e^z) for any z, never overflowing: max(z, 0) + log1p(e^-|z|).
CUACT_HD float log1p_exp(float z) {
  return (z > 0.0f ? z : 0.0f) + log1pf(expf(-fabsf(z)));
}

// log2(1 + q) for 0 <= q <= 1 and fp16/bf16 results (relative error <
// 2^-14.5): MUFU.LG2 (absolute error 2^-22.6) where that keeps the relative
// accuracy, the series q log2(e) (1 - q/2) below q = 2^-8 (error < 2^-17.6).
CUACT_HD float log2_1p_fast(float q) {
  const float series = q * fmaf(q, -0.5f * kLog2e, kLog2e);
  return q < 0x1p-8f ? series : log2_approx(1.0f + q);
}

// beta, its reciprocal (computed once per call) and the linear threshold.
struct SoftplusParams {
  float beta = 1.0f, inv_beta = 1.0f, threshold = 20.0f;
};

template <class Out>
struct Softplus {
  using Params = SoftplusParams;
  static constexpr const char* kName = "softplus";
  static constexpr bool kBackwardFromOutput = false;
  Params p;
  float beta_log2e, ln2_inv_beta;
  CUACT_HD explicit Softplus(const Params& params)
      : p(params), beta_log2e(params.beta * kLog2e), ln2_inv_beta(params.inv_beta * kLn2) {}
  // beta x > threshold, decided exactly (the sign of one fma).
  CUACT_HD bool linear(float x) const { return fmaf(p.beta, x, -p.threshold) > 0.0f; }
  // beta > 0 (the descriptor's check rejects the rest):
  // max(x, 0) + log1p(e^-|beta x|) / beta.
  CUACT_HD float forward(float x) const {
    float v;
    if constexpr (is_half_v<Out>) {
      const float q = exp2_scaled<Out>(-fabsf(x * beta_log2e)) * (1.0f / kExpScale<Out>);
      const float l = log2_1p_fast(q);
      v = fmaf(l, ln2_inv_beta, fmaxf(x, 0.0f));
    } else {
      // The rounding of z = beta x carried through softplus' = sigma(z) = e^z
      // (to fp32 accuracy) where z < 0; the clamp turns the NaN of x = -inf
      // into a finite factor of e^-inf = 0.
      const float z = p.beta * x;
      const float z_lo = fminf(fmaxf(fmaf(p.beta, x, -z), -1.0f), 1.0f);
      const float q = expf(-fabsf(z));
      v = fmaf(log1pf(q) + (z < 0.0f ? z_lo * q : 0.0f), p.inv_beta, fmaxf(x, 0.0f));
    }
    return linear(x) ? x : v;
  }
  CUACT_HD float backward(float x, float dy) const {
    float dx;
    if constexpr (is_half_v<Out>) {
      dx = times_unscaled<Out>(dy, sigmoid_pair_fast<Out>(x * beta_log2e, true).s);
    } else {
      const float z = p.beta * x;
      dx = dy * sigmoid_pair(z, fmaf(p.beta, x, -z)).s;
    }
    return linear(x) ? dy : dx;
  }
};

template <class Out>
struct LogSigmoid {
  using Params = NoParams;
  static constexpr const char* kName = "log_sigmoid";
  static constexpr bool kBackwardFromOutput = false;
  CUACT_HD explicit LogSigmoid(const Params&) {}
  // -softplus(-x) = min(x, 0) - log1p(e^-|x|)
  CUACT_HD float forward(float x) const {
    if constexpr (is_half_v<Out>) {
      const float q = exp2_scaled<Out>(-fabsf(x * kLog2e)) * (1.0f / kExpScale<Out>);
      return fmaf(-log2_1p_fast(q), kLn2, fminf(x, 0.0f));
    }
    return (x < 0.0f ? x : 0.0f) - log1pf(expf(-fabsf(x)));
  }
  CUACT_HD float backward(float x, float dy) const {
    if constexpr (is_half_v<Out>) {
      return times_unscaled<Out>(dy, sigmoid_pair_fast<Out>(x * kLog2e, true).one_minus_s);
    }
    return dy * sigmoid(-x);
  }
};

// x * tanh(softplus(x)). With e = e^x and n = e (e + 2): tanh(softplus(x)) = n / (n + 2)
// and 1 - tanh^2 = 4 (e + 1)^2 / (n + 2)^2, one exponential for both.
template <class Out>
struct Mish {
  using Params = NoParams;
  static constexpr const char* kName = "mish";
  static constexpr bool kBackwardFromOutput = false;
  static constexpr float kLinear = 20.0f;  // tanh(softplus(x)) rounds to 1 beyond this
  // Below -kSaturation, e^x x is below fp32's smallest subnormal.
  static constexpr float kSaturation = 128.0f;
  CUACT_HD explicit Mish(const Params&) {}
  CUACT_HD float forward(float x) const {
    if constexpr (is_half_v<Out>) {
      const float e = exp2_scaled<Out>(x * kLog2e) * (1.0f / kExpScale<Out>);
      const float n = e * (e + 2.0f);
      const float v = fmaxf(x, -kSaturation) * (n * rcp_approx(n + 2.0f));
      return x > kLinear ? x : v;
    }
    if (x > kLinear) return x;
    if (is_inf(x)) return 0.0f;
    const float e = expf(x);
    const float n = e * (e + 2.0f);
    return x * (n / (n + 2.0f));
  }
  // f' = tanh(sp) + x sigma(x) (1 - tanh^2(sp)) = n/(n+2) + 4 x e (e + 1) / (n + 2)^2
  CUACT_HD float backward(float x, float dy) const {
    if constexpr (is_half_v<Out>) {
      // With e carried scaled, so is f' (n scaled too).
      const float e_scaled = exp2_scaled<Out>(x * kLog2e);
      const float e = e_scaled * (1.0f / kExpScale<Out>);
      const float n_scaled = e_scaled * (e + 2.0f);
      const float d = rcp_approx(fmaf(e, e + 2.0f, 2.0f));
      const float f_scaled =
          fmaf(fmaxf(x, -kSaturation) * e_scaled * 4.0f * (e + 1.0f), d * d, n_scaled * d);
      return x > kLinear ? dy : times_unscaled<Out>(dy, f_scaled);
    }
    if (x > kLinear) return dy;
    if (is_inf(x)) return 0.0f;
    const float e = expf(x);
    const float n = e * (e + 2.0f);
    const float d = 1.0f / (n + 2.0f);
    return dy * fmaf(x * e * 4.0f * (e + 1.0f), d * d, n * d);  // x * e first: no inf * 0
  }
};

// ---------------------------------------------------------------- rational and shrink

template <class Out>
struct Softsign {
  using Params = NoParams;
  static constexpr const char* kName = "softsign";
  static constexpr bool kBackwardFromOutput = false;
  CUACT_HD explicit Softsign(const Params&) {}
  CUACT_HD float forward(float x) const {
    if constexpr (is_half_v<Out>) {
      // Clamped where the result rounds to +-1 anyway, so +-inf needs no test.
      const float xc = min_nan(max_nan(x, -0x1p64f), 0x1p64f);
      return xc * rcp_approx(1.0f + fabsf(xc));
    }
    if (is_inf(x)) return x > 0.0f ? 1.0f : -1.0f;
    return x / (1.0f + fabsf(x));
  }
  CUACT_HD float backward(float x, float dy) const {
    const float r = is_half_v<Out> ? rcp_approx(1.0f + fabsf(x)) : 1.0f / (1.0f + fabsf(x));
    return dy * r * r;
  }
};

// x - tanh(x). Near 0 the difference cancels, so small |x| uses a fitted
// polynomial x^3 P(x^2): relative error < 5e-10 on [-1, 1] (fp32) or
// < 2^-15.1 on [-1/2, 1/2] (fp16/bf16, beyond which |x| - 1 + 2q/(1 + q),
// q = e^-2|x|, keeps its relative accuracy).
template <class Out>
struct Tanhshrink {
  using Params = NoParams;
  static constexpr const char* kName = "tanhshrink";
  static constexpr bool kBackwardFromOutput = false;
  CUACT_HD explicit Tanhshrink(const Params&) {}
  CUACT_HD static float small_x(float x) {
    const float t = x * x;
    if constexpr (is_half_v<Out>) return x * t * horner(t, 0.333324105f, -0.132665709f, 0.0466149449f);
    return x * t *
           horner(t, 0.3333333331711337f, -0.13333330748289887f, 0.053967565970779986f,
                  -0.021862335860820106f, 0.008825328696096438f, -0.0034764536567084767f,
                  0.001239905792172133f, -0.0003363209772650963f, 4.812848960537505e-05f);
  }
  CUACT_HD float forward(float x) const {
    if constexpr (is_half_v<Out>) {
      const float a = fabsf(x);
      const float q = exp2_ftz(a * (-2.0f * kLog2e));
      const float v = copysignf(fmaf(q + q, rcp_approx(1.0f + q), a - 1.0f), x);
      return a < 0.5f ? small_x(x) : v;
    }
    if (fabsf(x) < 1.0f) return small_x(x);
    return is_inf(x) ? x : x - tanhf(x);
  }
  // f' = tanh^2(x)
  CUACT_HD float backward(float x, float dy) const {
    const float t = is_half_v<Out> ? tanh_fast(x) : tanhf(x);
    return dy * (t * t);
  }
};

// ---------------------------------------------------------------- the list

// Whether F offers backward_from_output with these parameters (its trait,
// and its from_output_defined(p) where the parameters matter).
template <class F, class = void>
struct HasFromOutputCondition : std::false_type {};
template <class F>
struct HasFromOutputCondition<F, std::void_t<decltype(F::from_output_defined(
                                     std::declval<const typename F::Params&>()))>> : std::true_type {};
template <class F>
CUACT_HD bool backward_from_output_defined(const typename F::Params& p) {
  if constexpr (!F::kBackwardFromOutput) {
    return false;
  } else if constexpr (HasFromOutputCondition<F>::value) {
    return F::from_output_defined(p);
  } else {
    return true;
  }
}

// Every activation functor, in the order of the math contract's table (and of
// the public ActivationKind).
template <template <class> class... F>
struct ActivationList {
  static constexpr std::size_t size = sizeof...(F);
};
using AllActivations =
    ActivationList<Identity, Relu, Relu6, Hardtanh, LeakyRelu, Elu, Selu, Celu, Gelu, GeluTanh,
                   QuickGelu, Sigmoid, Tanh, Silu, Mish, Softplus, LogSigmoid, Hardsigmoid,
                   Hardswish, Softsign, Tanhshrink, Hardshrink, Softshrink, Threshold>;

// The K-th functor of a list, for Out: ActivationAt<K, Out>.
template <std::size_t K, class List>
struct ActivationAtImpl;
template <std::size_t K, template <class> class F0, template <class> class... F>
struct ActivationAtImpl<K, ActivationList<F0, F...>> : ActivationAtImpl<K - 1, ActivationList<F...>> {};
template <template <class> class F0, template <class> class... F>
struct ActivationAtImpl<0, ActivationList<F0, F...>> {
  template <class Out>
  using type = F0<Out>;
};
template <std::size_t K, class Out>
using ActivationAt = typename ActivationAtImpl<K, AllActivations>::template type<Out>;

}  // namespace cuact::device
