// Small fp32 helpers shared by the activation functors. __host__ __device__ so
// that CPU tests run exactly the code the kernels run; plain C++ (no CUDA
// intrinsics) so that g++ can compile it too.
#pragma once

#include <cmath>

#ifdef __CUDACC__
#define CUACT_HD __host__ __device__ __forceinline__
#else
#define CUACT_HD inline
#endif

namespace cuact::detail {

CUACT_HD bool is_nan(float x) { return x != x; }
CUACT_HD bool is_inf(float x) { return fabsf(x) == INFINITY; }
// x itself when it is NaN, else `otherwise`: lets a hard-zero branch still propagate NaN.
CUACT_HD float nan_or(float x, float otherwise) { return is_nan(x) ? x : otherwise; }

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

// 1/d for 1 <= d < 2^126 (where __fdividef is exact enough). On the device:
// the fast reciprocal refined by one Newton step (within an ulp; no
// IEEE-division slow path, which is a called subroutine that costs registers
// and spills in unrolled loops).
CUACT_HD float reciprocal_at_least_1(float d) {
#ifdef __CUDA_ARCH__
  const float r = __fdividef(1.0f, d);
  return fmaf(r, fmaf(-d, r, 1.0f), r);
#else
  return 1.0f / d;
#endif
}

// e^(x/a), carrying the rounding of the quotient: x/a = q + r/a exactly with
// r = x - q*a (one fma), and e^(q + r/a) ~ e^q (1 + r/a).
CUACT_HD float exp_of_quotient(float x, float a) {
  const float q = x / a;
  const float e = expf(q);
  if (!(fabsf(q) < 100.0f)) return e;
  return fmaf(e, fmaf(-q, a, x) / a, e);
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

}  // namespace cuact::detail
