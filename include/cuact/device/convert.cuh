// Converting the element types cuact computes on: widen to fp32 on load,
// round once (to nearest even) on store. Host and device, so CPU tests
// convert exactly as the kernels do.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "cuact/device/config.h"

namespace cuact::device {

CUACT_HD float to_float(float v) { return v; }
CUACT_HD float to_float(__half v) { return __half2float(v); }
CUACT_HD float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T> struct Narrow;
template <> struct Narrow<float> {
  CUACT_HD static float from(float v) { return v; }
};
template <> struct Narrow<__half> {
  CUACT_HD static __half from(float v) { return __float2half_rn(v); }
};
template <> struct Narrow<__nv_bfloat16> {
  CUACT_HD static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
};

// v rounded to T, to nearest even.
template <class T>
CUACT_HD T narrow(float v) {
  return Narrow<T>::from(v);
}

// True for the 16-bit types, whose results the functors compute only as
// precisely as their 11 (fp16) or 8 (bf16) significant bits need.
template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

}  // namespace cuact::device
