// Loading and storing the three dtypes: widen to fp32 on load, round once
// (to nearest even) on store. A functor returns float, or double where one
// fp32 rounding before the store would be a second rounding for fp16/bf16
// (the exact piecewise-linear ops); narrow<T> rounds either once, correctly.
// Host and device, so CPU tests convert exactly as the kernels do.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "float_math.cuh"

namespace cuact::detail {

CUACT_HD float to_float(float v) { return v; }
CUACT_HD float to_float(__half v) { return __half2float(v); }
CUACT_HD float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T> struct Narrow;
template <> struct Narrow<float> {
  CUACT_HD static float from(float v) { return v; }
  CUACT_HD static float from(double v) { return static_cast<float>(v); }
};
template <> struct Narrow<__half> {
  CUACT_HD static __half from(float v) { return __float2half_rn(v); }
  CUACT_HD static __half from(double v) { return __double2half(v); }
};
template <> struct Narrow<__nv_bfloat16> {
  CUACT_HD static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
  CUACT_HD static __nv_bfloat16 from(double v) { return __double2bfloat16(v); }
};

template <class T, class V>
CUACT_HD T narrow(V v) {
  return Narrow<T>::from(v);
}

}  // namespace cuact::detail
