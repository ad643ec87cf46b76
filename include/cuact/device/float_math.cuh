// Small fp32 helpers shared by the activation functors: special values, the
// hardware approximations (MUFU), directed rounding and rounding to odd,
// error-free transformations, compensated exponentials and the sigmoid.
// Plain C++ that nvcc and the host compiler both accept (device intrinsics
// only under __CUDA_ARCH__), so CPU tests run the code the kernels run: the
// exact operations (directed rounding, rounding to odd) give the same bits on
// both; the approximations differ by the hardware's stated error, which is
// what the formulas that use them leave room for.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cuact/device/config.h"

namespace cuact::device {

inline constexpr float kLog2e = 1.4426950408889634f;  // log2(e), and ln(2), as fp32
inline constexpr float kLn2 = 0.6931471805599453f;

CUACT_HD bool is_nan(float x) { return x != x; }
CUACT_HD bool is_inf(float x) { return fabsf(x) == INFINITY; }
// x itself when it is NaN, else `otherwise`: lets a hard-zero branch still propagate NaN.
CUACT_HD float nan_or(float x, float otherwise) { return is_nan(x) ? x : otherwise; }

CUACT_HD uint32_t float_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
#endif
}
CUACT_HD float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
#endif
}

// max and min that return NaN when an operand is NaN (one FMNMX; fmaxf would drop the NaN).
CUACT_HD float max_nan(float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
#else
  return is_nan(a) || is_nan(b) ? a + b : fmaxf(a, b);
#endif
}
CUACT_HD float min_nan(float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  float r;
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
#else
  return is_nan(a) || is_nan(b) ? a + b : fminf(a, b);
#endif
}

// ---------------------------------------------------------------- hardware approximations

// For results that only need fp16/bf16 accuracy. Each is one MUFU instruction
// on the device (PTX ISA: ex2 and rcp within 2 ulp of fp32 (2^-22 relative),
// lg2 within 2^-22.6 absolute); on the host the libm function with the same
// flushing of subnormal results to zero.

// 2^x; results below 2^-126 flush to zero (ex2.approx.ftz).
CUACT_HD float exp2_ftz(float x) {
#ifdef __CUDA_ARCH__
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
#else
  const float r = exp2f(x);
  return r < 0x1p-126f ? 0.0f : r;
#endif
}

// 1/d for |d| in [2^-126, 2^126] (rcp.approx.ftz).
CUACT_HD float rcp_approx(float d) {
#ifdef __CUDA_ARCH__
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
  return r;
#else
  if (fabsf(d) < 0x1p-126f) return copysignf(INFINITY, d);
  const float r = 1.0f / d;
  return fabsf(r) < 0x1p-126f ? copysignf(0.0f, r) : r;
#endif
}

// log2(x) for normal x (lg2.approx.ftz).
CUACT_HD float log2_approx(float x) {
#ifdef __CUDA_ARCH__
  float r;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
#else
  return log2f(fabsf(x) < 0x1p-126f ? 0.0f : x);
#endif
}

// 1/d for 1 <= d < 2^126: the hardware reciprocal refined by one Newton step
// (within an ulp; no IEEE-division slow path).
CUACT_HD float reciprocal_at_least_1(float d) {
#ifdef __CUDA_ARCH__
  const float r = rcp_approx(d);
  return fmaf(r, fmaf(-d, r, 1.0f), r);
#else
  return 1.0f / d;
#endif
}

// ---------------------------------------------------------------- directed rounding

enum class Round { down, up, toward_zero };

namespace host_rounding {
// v = s + e exactly (s = RN(v), doubles), rounded to float in direction R.
template <Round R>
inline float round_pair(double s, double e) {
  float f = static_cast<float>(s);
  if (!std::isfinite(s)) return f;  // inf or NaN: nothing to direct
  const double d = static_cast<double>(f) - s;  // exact: f and s are neighbours
  const int f_vs_v = d > e ? 1 : (d < e ? -1 : 0);  // sign of f - v
  const bool v_negative = s < 0 || (s == 0 && e < 0);
  const bool down = R == Round::down || (R == Round::toward_zero && !v_negative);
  if (down && f_vs_v > 0) f = std::nextafter(f, -INFINITY);
  if (!down && f_vs_v < 0) f = std::nextafter(f, INFINITY);
  return f;
}
// a + b = s + e exactly, for doubles (Knuth's TwoSum).
inline void two_sum(double a, double b, double& s, double& e) {
  s = a + b;
  const double bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}
}  // namespace host_rounding

// a * b, a + b and a * b + c rounded once, in direction R (the device's
// rounding-mode instructions; on the host from the exact result in doubles).
template <Round R>
CUACT_HD float mul_rounded(float a, float b) {
#ifdef __CUDA_ARCH__
  if constexpr (R == Round::down) return __fmul_rd(a, b);
  if constexpr (R == Round::up) return __fmul_ru(a, b);
  return __fmul_rz(a, b);
#else
  return host_rounding::round_pair<R>(static_cast<double>(a) * b, 0.0);  // exact in double
#endif
}
template <Round R>
CUACT_HD float add_rounded(float a, float b) {
#ifdef __CUDA_ARCH__
  if constexpr (R == Round::down) return __fadd_rd(a, b);
  if constexpr (R == Round::up) return __fadd_ru(a, b);
  return __fadd_rz(a, b);
#else
  double s, e;
  host_rounding::two_sum(a, b, s, e);
  return host_rounding::round_pair<R>(s, e);
#endif
}
template <Round R>
CUACT_HD float fma_rounded(float a, float b, float c) {
#ifdef __CUDA_ARCH__
  if constexpr (R == Round::down) return __fmaf_rd(a, b, c);
  if constexpr (R == Round::up) return __fmaf_ru(a, b, c);
  return __fmaf_rz(a, b, c);
#else
  double s, e;
  host_rounding::two_sum(static_cast<double>(a) * b, c, s, e);
  return host_rounding::round_pair<R>(s, e);
#endif
}

// ---------------------------------------------------------------- rounding to odd

// Rounding to odd: the fp32 value nearest to v toward zero, its lowest
// significand bit set when v is not an fp32 value (subnormals included). An
// exact result rounded to odd and then once to a format with at most 22
// significand bits at that magnitude (fp16, bf16, their subnormals) is the
// correctly rounded result: the fp32 intermediate costs no second rounding.
CUACT_HD float odd_unless_exact(float truncated, bool exact) {
  return exact ? truncated : bits_float(float_bits(truncated) | 1u);
}

CUACT_HD float product_to_odd(float a, float b) {
  return odd_unless_exact(mul_rounded<Round::toward_zero>(a, b),
                          mul_rounded<Round::up>(a, b) == mul_rounded<Round::down>(a, b));
}
CUACT_HD float sum_to_odd(float a, float b) {
  return odd_unless_exact(add_rounded<Round::toward_zero>(a, b),
                          add_rounded<Round::up>(a, b) == add_rounded<Round::down>(a, b));
}
CUACT_HD float fma_to_odd(float a, float b, float c) {
  return odd_unless_exact(fma_rounded<Round::toward_zero>(a, b, c),
                          fma_rounded<Round::up>(a, b, c) == fma_rounded<Round::down>(a, b, c));
}

// Division by 6, the exact piecewise ops' only inexact step (hardsigmoid,
// hardswish), from Markstein's quotient: q0 = n/6 to within an ulp, its
// remainder n - 6 q0 exact (one fma), the corrected quotient rounded once.
inline constexpr float kSixth = 1.0f / 6.0f;

// n / 6 rounded to odd, for finite n (its last fma rounded toward zero gives
// the truncated quotient). Checked exhaustively over all fp32 n.
CUACT_HD float sixth_to_odd(float n) {
  const float q0 = n * kSixth;
  const float q = fma_rounded<Round::toward_zero>(fmaf(-6.0f, q0, n), kSixth, q0);
  return odd_unless_exact(q, fmaf(-6.0f, q, n) == 0.0f);
}

// n / 6 rounded to nearest, for finite n. Where the quotient is subnormal,
// n / 6 can lie exactly halfway between two fp32 values (|remainder| = 3 *
// 2^-149), and Markstein's rounding may miss the even one. Checked
// exhaustively over all fp32 n.
CUACT_HD float sixth(float n) {
  const float q0 = n * kSixth;
  const float q = fmaf(fmaf(-6.0f, q0, n), kSixth, q0);
  const float r = fmaf(-6.0f, q, n);
  const bool odd_tie = fabsf(r) == 0x1.8p-148f && (float_bits(q) & 1u);
  return odd_tie ? fmaf(r, 1.0f / 3.0f, q) : q;  // the neighbour on the remainder's side
}

// (n + b) / 6 rounded to nearest, for a quotient of at least 2^-125 in
// magnitude: n + b is the exact dividend, or b is its low part rounded to odd
// (which lies on the same side of every midpoint). q = n / 6 is within two
// ulp; the rest, (n - 6q + b) / 6, rounded to odd twice over, lies on the
// same side of q's midpoints as the exact rest, so q + rest rounds right.
CUACT_HD float sixth_of_sum(float n, float b) {
  const float q = n * kSixth;
  return q + sixth_to_odd(sum_to_odd(fmaf(-6.0f, q, n), b));
}

// ---------------------------------------------------------------- exact arithmetic

// hi + lo == the exact result of one fp32 operation (hi its rounding).
struct FloatPair {
  float hi, lo;
};

// a + b = hi + lo exactly (Knuth's TwoSum; any magnitudes, no overflow).
CUACT_HD FloatPair two_sum(float a, float b) {
  const float s = a + b;
  const float bb = s - a;
  return {s, (a - (s - bb)) + (b - bb)};
}

// a * b = hi + lo exactly, unless the product is below 2^-102 in magnitude
// (where lo may itself round).
CUACT_HD FloatPair two_prod(float a, float b) {
  const float p = a * b;
  return {p, fmaf(a, b, -p)};
}

// ---------------------------------------------------------------- exponentials and friends

// e^(c*x) where the constant c = c_hi + c_lo is known to ~48 bits. The
// rounding of c*x is carried into the result (e^(p+e) ~ e^p + e^p*e), which
// keeps the result within a few ulp even where |c*x| is large and a plain
// expf(c*x) would lose |c*x| * 2^-24 of relative accuracy.
CUACT_HD float exp_of_product(float c_hi, float c_lo, float x) {
  const float p = c_hi * x;
  if (!(fabsf(p) < 100.0f)) return expf(p);  // 0, inf or NaN: nothing to carry
  const float err = fmaf(c_hi, x, -p) + c_lo * x;
  const float e = expf(p);
  return fmaf(e, err, e);
}

// e^(x/a) given r = 1/a (computed once per call): the quotient q = x*r and its
// exact remainder x - q*a (one fma) carried through e^(q + d) ~ e^q (1 + d).
CUACT_HD float exp_of_quotient(float x, float a, float r) {
  const float q = x * r;
  const float e = expf(q);
  if (!(fabsf(q) < 100.0f)) return e;
  return fmaf(e, fmaf(-q, a, x) * r, e);
}

// (hi + lo) * v for a constant split in two floats; stays +-inf where hi * v overflows.
CUACT_HD float mul_by_pair(float hi, float lo, float v) {
  const float p = hi * v;
  return is_inf(p) ? p : fmaf(hi, v, lo * v);
}

// sigma(z) = 1/(1+e^-z) given q = e^-|z|: never overflows.
CUACT_HD float sigmoid_from_exp_neg_abs(float z, float q) {
  const float r = reciprocal_at_least_1(1.0f + q);
  return z >= 0.0f ? r : q * r;
}

// sigma(z), computed through e^-|z| so it is stable for every z.
CUACT_HD float sigmoid(float z) { return sigmoid_from_exp_neg_abs(z, expf(-fabsf(z))); }

// tanh in MUFU operations: (1 - q)/(1 + q) with q = e^-2|x|, and near 0,
// where 1 - q cancels, x - x^3/3 (error < 2^-19 below 2^-4); elsewhere
// within about 2^-21 relative plus 2^-24 absolute. The fp16/bf16 tanh
// results, and the cross-entropy's soft cap (where tanhf's longer code
// makes ptxas spill).
CUACT_HD float tanh_fast(float x) {
  const float q = exp2_ftz(fabsf(x) * (-2.0f * kLog2e));
  const float t = (1.0f - q) * rcp_approx(1.0f + q);
  return fabsf(x) < 0x1p-4f ? x * fmaf(x * x, -1.0f / 3.0f, 1.0f) : copysignf(t, x);
}

}  // namespace cuact::device
