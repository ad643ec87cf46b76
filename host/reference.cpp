// The CPU reference: docs/SPEC.md's formulas evaluated in double precision, written
// from docs/SPEC.md alone (not from the device functors), so that a test comparing
// the two can fail. See include/cuact/reference.h for the contract.
//
// Conventions shared by every function below:
// - A NaN input gives NaN, forward and backward, checked once up front.
// - Piecewise branches *select* their result (a zero branch returns 0 even for
//   a NaN or infinite dy); smooth derivatives multiply dy by f'(x).
// - +-inf inputs give the mathematical limit; the x*g(x) forms whose g vanishes
//   at an infinite x go through mul0 so that inf*0 does not produce NaN.
#include "cuact/reference.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "argument_checks.h"
#include "dtype_list.h"

namespace cuact::reference {

namespace {

using K = ActivationKind;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kSeluAlpha = 1.6732632423543772;
constexpr double kSeluLambda = 1.0507009873554805;
constexpr double kSqrt2 = 1.4142135623730950488;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2*pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2/pi)
constexpr double kGeluTanhCubic = 0.044715;
constexpr double kQuickGeluBeta = 1.702;

// a*b, but 0 for inf*0. In the x*g(x) forms below g tends to 0 faster than x
// grows, so the limit at x = +-inf is 0, where a*b would be NaN.
double mul0(double a, double b) {
  const bool inf_times_zero = (std::isinf(a) && b == 0) || (a == 0 && std::isinf(b));
  return inf_times_zero ? 0.0 : a * b;
}

// sigma(x) through e^-|x|, which never overflows.
double sigmoid(double x) {
  const double e = std::exp(-std::fabs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

// sigma'(x) = sigma(x)*sigma(-x) = e^-|x| / (1 + e^-|x|)^2: no 1 - sigma(x)
// cancellation for large x, no overflow for any x.
double sigmoid_slope(double x) {
  const double e = std::exp(-std::fabs(x));
  return e / ((1 + e) * (1 + e));
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow of e^x for large x.
double log1p_exp(double x) { return (x > 0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }

// SiLU x*sigma(b*x) (quick_gelu is b = 1.702) and its derivative
// sigma(bx) + bx*sigma(bx)*(1 - sigma(bx)).
double silu(double x, double beta) { return mul0(x, sigmoid(mul0(beta, x))); }
double silu_slope(double x, double beta) {
  const double bx = mul0(beta, x);
  return sigmoid(bx) + mul0(bx, sigmoid_slope(bx));
}

// GELU x*Phi(x). Phi(x) = erfc(-x/sqrt2)/2 rather than (1 + erf(x/sqrt2))/2,
// which cancels for negative x.
double gelu_cdf(double x) { return 0.5 * std::erfc(-x / kSqrt2); }
double gelu_pdf(double x) { return kInvSqrt2Pi * std::exp(-0.5 * x * x); }

// GELU (tanh form): 0.5*x*(1 + tanh(u)) = x*sigma(2u), u = sqrt(2/pi)*(x + c*x^3);
// the sigma form does not cancel for negative u.
double gelu_tanh_u(double x) { return kSqrt2OverPi * (x + kGeluTanhCubic * x * x * x); }
double gelu_tanh(double x) { return mul0(x, sigmoid(2 * gelu_tanh_u(x))); }
double gelu_tanh_slope(double x) {
  const double two_u = 2 * gelu_tanh_u(x);
  const double du_dx = kSqrt2OverPi * (1 + 3 * kGeluTanhCubic * x * x);
  // d/dx [x*sigma(2u)] = sigma(2u) + x * 2u' * sigma'(2u); x*u' overflows only
  // where sigma'(2u) is already 0.
  return sigmoid(two_u) + mul0(2 * x * du_dx, sigmoid_slope(two_u));
}

// t = tanh(softplus(x)) = n/(n + 2) with n = e^x(e^x + 2), and 1 - t. Written
// in e^x for x <= 0 and in e^-x for x > 0, so nothing overflows and 1 - t
// (needed by the derivative) has no cancellation.
struct TanhSoftplus {
  double t;
  double one_minus_t;
};
TanhSoftplus tanh_softplus(double x) {
  if (x <= 0) {
    const double e = std::exp(x);
    const double n = e * (e + 2);
    return {n / (n + 2), 2 / (n + 2)};
  }
  const double e = std::exp(-x);
  const double d = 1 + 2 * e + 2 * e * e;
  return {(1 + 2 * e) / d, 2 * e * e / d};
}

// tanh'(x) = 1 - tanh^2(x) = 4e/(1 + e)^2 with e = e^-2|x|: exact for large |x|,
// where 1 - tanh^2 would cancel.
double tanh_slope(double x) {
  const double e = std::exp(-2 * std::fabs(x));
  return 4 * e / ((1 + e) * (1 + e));
}

// x - tanh(x). For |x| < 1 the subtraction cancels (the result is ~x^3/3), so
// use (x*cosh(x) - sinh(x))/cosh(x), whose numerator is the series
// sum_{k>=1} 2k x^(2k+1)/(2k+1)!: terms of one sign, nothing cancels, and 12
// terms reach double precision at |x| = 1. Above 1 the subtraction loses < 2 bits.
double tanhshrink(double x) {
  if (!(std::fabs(x) < 1)) return x - std::tanh(x);
  double power = x;  // x^(2k+1)/(2k+1)!
  double numerator = 0;
  for (int k = 1; k <= 12; ++k) {
    power *= x * x / ((2 * k) * (2 * k + 1));
    numerator += 2 * k * power;
  }
  return numerator / std::cosh(x);
}

// How the piecewise ops' division by 6 rounds its double quotient: to nearest
// for a double result (the scalar forms), to odd for a result that will be
// rounded once more, to a dtype of at most 51 bits (the buffer forms, and
// the scalar forms given a dtype): its one rounding to the dtype is then the
// correct rounding of the exact quotient.
enum class Quotient { nearest, odd };

// (hi + lo) / 6 for an exact dividend hi + lo (|lo| <= ulp(hi) / 2), rounded
// as `rounding` says. The piecewise ops' only division goes through here, so
// no dtype result is rounded twice (e.g. dy * ((2x + 3) / 6) rounds at the
// quotient and again at the product). An infinite or NaN dividend gives hi / 6
// (inf, NaN); a zero one keeps its sign.
double sixth(double hi, double lo, Quotient rounding) {
  if (!std::isfinite(hi) || (hi == 0 && lo == 0)) return hi / 6;
  const double q0 = hi / 6;
  const double q = q0 + (std::fma(-6, q0, hi) + lo) / 6;  // within an ulp of the quotient
  const double e = std::fma(-6, q, hi);  // hi - 6q, exact (a small multiple of ulp(q))
  // The quotient lies at (e + lo) / 6 from q: its side of q is the sign of
  // e + lo, exact as a comparison. (q == 0: a quotient below the smallest
  // double, from float64 data only; the bit steps below would wrap it.)
  if (e == -lo || !std::isfinite(q) || q == 0) return q;
  const bool above = e > -lo;
  if (rounding == Quotient::odd) {
    uint64_t bits;
    std::memcpy(&bits, &q, sizeof bits);
    if (above != (q > 0)) bits -= 1;  // the quotient lies toward zero from q
    bits |= 1;
    double odd;
    std::memcpy(&odd, &bits, sizeof odd);
    return odd;
  }
  // To nearest: step to the neighbour n on the quotient's side when the
  // quotient is past the midpoint, |e + lo| > 3 |n - q| (e - 3(n - q) is exact:
  // both are small multiples of half an ulp of q); ties to the even one.
  const double n = std::nextafter(q, above ? kInf : -kInf);
  const double past = e - 3 * (n - q);  // (e + lo) - 3(n - q) = past + lo
  if (past == -lo) {
    uint64_t bits;
    std::memcpy(&bits, &q, sizeof bits);
    return (bits & 1) != 0 ? n : q;
  }
  return (above ? past > -lo : past < -lo) ? n : q;
}

// a (b + c) / 6 rounded as above, with b + c and the product carried exactly
// (for floats a, b, c; within an ulp for other doubles).
double product_over_6(double a, double b, double c, Quotient rounding) {
  const double s = b + c;
  const double bb = s - b;
  const double s_lo = (b - (s - bb)) + (c - bb);  // b + c = s + s_lo (TwoSum)
  const double p = a * s;
  if (!std::isfinite(p) || p == 0) return sixth(p, 0, rounding);
  return sixth(p, std::fma(a, s, -p) + a * s_lo, rounding);
}

// Rounds v to the binary format with `precision` significand bits, smallest
// normal exponent `min_exponent` (value 2^min_exponent) and largest finite
// value `max_finite`: to nearest, ties to even, with gradual underflow.
double round_to_format(double v, int precision, int min_exponent, double max_finite) {
  if (std::isnan(v) || std::isinf(v) || v == 0) return v;
  const double magnitude = std::fabs(v);
  int e = 0;
  std::frexp(magnitude, &e);  // magnitude = m * 2^e, 0.5 <= m < 1
  // The weight of the last significand bit; subnormals share the smallest one.
  const int ulp_exponent = std::max(e - precision, min_exponent - precision + 1);
  const double scaled = std::ldexp(magnitude, -ulp_exponent);  // exact
  const double floor = std::floor(scaled);
  const double fraction = scaled - floor;  // exact
  double units = floor;
  if (fraction > 0.5 || (fraction == 0.5 && std::fmod(floor, 2) != 0)) units += 1;
  // A carry into the next binade stays exact. A result above the largest finite
  // value is IEEE's overflow (the rounding with an unbounded exponent exceeds
  // it), so inf; for formats whose largest value does not end its binade
  // (e4m3's 448) that is still exactly v > largest + half its ulp.
  const double rounded = std::ldexp(units, ulp_exponent);
  return std::copysign(rounded > max_finite ? kInf : rounded, v);
}

// The activation's parameters, in double (exact: they are floats).
struct Params {
  double alpha, beta, lambda, lower, upper, cutoff, value;
};
Params params_of(const Activation& act) {
  return {act.alpha, act.beta, act.lambda, act.lower, act.upper, act.cutoff, act.value};
}

double load(float v) { return v; }
double load(__half v) { return __half2float(v); }
double load(__nv_bfloat16 v) { return __bfloat162float(v); }

// r is already rounded to the dtype, so these conversions are exact.
void store(double r, float* out) { *out = static_cast<float>(round_to(DType::f32, r)); }
void store(double r, __half* out) {
  *out = __float2half_rn(static_cast<float>(round_to(DType::f16, r)));
}
void store(double r, __nv_bfloat16* out) {
  *out = __float2bfloat16_rn(static_cast<float>(round_to(DType::bf16, r)));
}

double forward_rounded(const Activation& act, double x, Quotient rounding) {
  if (std::isnan(x)) return x;
  const auto [alpha, beta, lambda, lower, upper, cutoff, value] = params_of(act);
  switch (act.kind) {
    case K::identity: return x;
    case K::relu: return x > 0 ? x : 0.0;
    case K::relu6: return x <= 0 ? 0.0 : (x >= 6 ? 6.0 : x);
    case K::hardtanh: return x < lower ? lower : (x > upper ? upper : x);
    case K::leaky_relu: return x > 0 ? x : mul0(alpha, x);
    case K::elu: return x > 0 ? x : alpha * std::expm1(x);
    case K::selu: return kSeluLambda * (x > 0 ? x : kSeluAlpha * std::expm1(x));
    // max(0,x) + min(0, a*expm1(x/a)) is this for either sign of a.
    case K::celu: return x > 0 ? x : alpha * std::expm1(x / alpha);
    case K::gelu: return mul0(x, gelu_cdf(x));
    case K::gelu_tanh: return gelu_tanh(x);
    case K::quick_gelu: return silu(x, kQuickGeluBeta);
    case K::sigmoid: return sigmoid(x);
    case K::tanh: return std::tanh(x);
    case K::silu: return silu(x, beta);
    case K::mish: return mul0(x, tanh_softplus(x).t);
    case K::softplus: {
      const double bx = beta * x;
      return bx > cutoff ? x : log1p_exp(bx) / beta;
    }
    case K::log_sigmoid: return (x < 0 ? x : 0.0) - std::log1p(std::exp(-std::fabs(x)));
    case K::hardsigmoid:
      return x <= -3 ? 0.0 : (x >= 3 ? 1.0 : product_over_6(1, x, 3, rounding));
    // Every zero result is +0 (SPEC), -0 and x <= -3 included.
    case K::hardswish:
      return x <= -3 || x == 0 ? 0.0 : (x >= 3 ? x : product_over_6(x, x, 3, rounding));
    case K::softsign: return std::isinf(x) ? std::copysign(1.0, x) : x / (1 + std::fabs(x));
    case K::tanhshrink: return tanhshrink(x);
    case K::hardshrink: return std::fabs(x) > lambda ? x : 0.0;
    case K::softshrink: return x > lambda ? x - lambda : (x < -lambda ? x + lambda : 0.0);
    case K::threshold: return x > cutoff ? x : value;
  }
  return kNaN;
}

double backward_rounded(const Activation& act, double x, double dy, Quotient rounding) {
  if (std::isnan(x)) return x;
  const auto [alpha, beta, lambda, lower, upper, cutoff, value] = params_of(act);
  switch (act.kind) {
    case K::identity: return dy;
    case K::relu: return x > 0 ? dy : 0.0;
    case K::relu6: return x > 0 && x < 6 ? dy : 0.0;
    case K::hardtanh: return x > lower && x < upper ? dy : 0.0;
    case K::leaky_relu: return x > 0 ? dy : dy * alpha;
    case K::elu: return x > 0 ? dy : dy * (alpha * std::exp(x));
    case K::selu: return kSeluLambda * (x > 0 ? dy : dy * (kSeluAlpha * std::exp(x)));
    case K::celu: return x > 0 ? dy : dy * std::exp(x / alpha);
    case K::gelu: return dy * (gelu_cdf(x) + mul0(x, gelu_pdf(x)));
    case K::gelu_tanh: return dy * gelu_tanh_slope(x);
    case K::quick_gelu: return dy * silu_slope(x, kQuickGeluBeta);
    case K::sigmoid: return dy * sigmoid_slope(x);
    case K::tanh: return dy * tanh_slope(x);
    case K::silu: return dy * silu_slope(x, beta);
    case K::mish: {
      // tanh(sp) + x*sigma(x)*(1 - tanh^2(sp)), with 1 - t^2 = (1 - t)(1 + t).
      const TanhSoftplus sp = tanh_softplus(x);
      const double sech2 = sp.one_minus_t * (1 + sp.t);
      return dy * (sp.t + mul0(x, sigmoid(x) * sech2));
    }
    case K::softplus: {
      const double bx = beta * x;
      return bx > cutoff ? dy : dy * sigmoid(bx);
    }
    case K::log_sigmoid: return dy * sigmoid(-x);
    case K::hardsigmoid: return x > -3 && x < 3 ? sixth(dy, 0, rounding) : 0.0;
    case K::hardswish:
      return x < -3 ? 0.0 : (x > 3 ? dy : product_over_6(dy, 2 * x, 3, rounding));
    case K::softsign: {
      const double d = 1 + std::fabs(x);
      return dy / (d * d);
    }
    case K::tanhshrink: {
      const double t = std::tanh(x);
      return dy * (t * t);
    }
    case K::hardshrink:
    case K::softshrink: return std::fabs(x) > lambda ? dy : 0.0;
    case K::threshold: return x > cutoff ? dy : 0.0;
  }
  return kNaN;
}

template <class T>
void activation_on(Direction direction, const Activation& act, const void* in, const void* grad,
                   void* out, int64_t n) {
  const T* x = static_cast<const T*>(in);
  const T* dy = static_cast<const T*>(grad);
  T* result = static_cast<T*>(out);
  for (int64_t i = 0; i < n; ++i) {
    // Both inputs of element i are read before it is written (in place is allowed).
    const double a = load(x[i]);
    const double g = direction == Direction::forward ? 0.0 : load(dy[i]);
    double r = kNaN;
    switch (direction) {
      case Direction::forward: r = forward_rounded(act, a, Quotient::odd); break;
      case Direction::backward: r = backward_rounded(act, a, g, Quotient::odd); break;
      case Direction::backward_from_output: r = backward_from_output(act, a, g); break;
    }
    store(r, &result[i]);
  }
}

}  // namespace

double forward(const Activation& act, double x) {
  return forward_rounded(act, x, Quotient::nearest);
}
double backward(const Activation& act, double x, double dy) {
  return backward_rounded(act, x, dy, Quotient::nearest);
}
double forward(const Activation& act, double x, DType rounded_to) {
  return round_to(rounded_to, forward_rounded(act, x, Quotient::odd));
}
double backward(const Activation& act, double x, double dy, DType rounded_to) {
  return round_to(rounded_to, backward_rounded(act, x, dy, Quotient::odd));
}

double backward_from_output(const Activation& act, double y, double dy) {
  if (std::isnan(y)) return y;
  const double alpha = params_of(act).alpha;
  switch (act.kind) {
    case K::identity: return dy;
    case K::relu: return y > 0 ? dy : 0.0;
    case K::sigmoid: return dy * (y * (1 - y));
    case K::tanh: return dy * ((1 - y) * (1 + y));
    // x <= 0: alpha*e^x = y + alpha (y keeps the sign of x for alpha >= 0).
    case K::elu: return y > 0 ? dy : dy * (y + alpha);
    case K::selu:
      return y > 0 ? kSeluLambda * dy : dy * (y + kSeluLambda * kSeluAlpha);
    // x <= 0: e^(x/alpha) = y/alpha + 1 (alpha > 0).
    case K::celu: return y > 0 ? dy : dy * (y / alpha + 1);
    default: return kNaN;
  }
}

double round_to(DType dtype, double v) {
  if (!detail::known_dtype(dtype)) return kNaN;
  return detail::visit_dtype(dtype, [&](auto tag) {
    const detail::DTypeFormat& f = detail::kFormat<typename decltype(tag)::type>;
    return round_to_format(v, f.digits, f.min_exponent, f.max);
  });
}

namespace {

// An fp8 format from its definition (cuact/fp8.h). With m mantissa bits, the
// non-negative finite codes count the values in order: code c has exponent
// field f = c >> m and value (c - (max(f, 1) - 1) 2^m) 2^(max(f, 1) - bias - m)
// (subnormals, f = 0, share field 1's scale). Past max_code: e5m2's inf, then
// NaNs; e4m3's NaN.
struct Fp8Format {
  int mantissa_bits;
  int bias;
  int max_code;  // the largest finite value's code
  bool has_inf;
};
Fp8Format fp8_format(Fp8 format) {
  return format == Fp8::e4m3 ? Fp8Format{3, 7, 0x7E, false} : Fp8Format{2, 15, 0x7B, true};
}

double fp8_magnitude(const Fp8Format& f, int code) {
  const int field = std::max(code >> f.mantissa_bits, 1);
  return std::ldexp(code - ((field - 1) << f.mantissa_bits), field - f.bias - f.mantissa_bits);
}

// The inverse of fp8_magnitude: the code of a finite non-negative value of the format.
int fp8_code(const Fp8Format& f, double magnitude) {
  const int e = magnitude == 0 ? 1 - f.bias : std::max(std::ilogb(magnitude), 1 - f.bias);
  const int field = e + f.bias;  // >= 1
  return ((field - 1) << f.mantissa_bits) +
         static_cast<int>(std::ldexp(magnitude, f.mantissa_bits - e));
}

}  // namespace

double round_to_fp8(Fp8 format, double v, bool saturate) {
  const Fp8Format f = fp8_format(format);
  const double max = fp8_magnitude(f, f.max_code);
  const double r = round_to_format(v, f.mantissa_bits + 1, 1 - f.bias, max);
  if (!std::isinf(r)) return r;  // NaN included
  if (saturate) return std::copysign(max, r);
  return f.has_inf ? r : kNaN;
}

uint8_t fp8_bits(Fp8 format, double v, bool saturate) {
  const Fp8Format f = fp8_format(format);
  const double r = round_to_fp8(format, v, saturate);
  if (std::isnan(r)) return 0x7F;
  const int sign = std::signbit(r) ? 0x80 : 0;
  const int magnitude = std::isinf(r) ? f.max_code + 1 : fp8_code(f, std::fabs(r));
  return static_cast<uint8_t>(sign | magnitude);
}

double fp8_value(Fp8 format, uint8_t bits) {
  const Fp8Format f = fp8_format(format);
  const int code = bits & 0x7F;
  const double magnitude = code <= f.max_code                  ? fp8_magnitude(f, code)
                           : f.has_inf && code == f.max_code + 1 ? kInf
                                                                 : kNaN;
  return (bits & 0x80) != 0 ? -magnitude : magnitude;
}

Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, void* out, int64_t n) {
  if (Status s = detail::check_activation_call(direction, act, dtype, in, grad, out, n); !s.ok())
    return s;
  detail::visit_dtype(dtype, [&](auto tag) {
    activation_on<typename decltype(tag)::type>(direction, act, in, grad, out, n);
  });
  return {};
}

}  // namespace cuact::reference
