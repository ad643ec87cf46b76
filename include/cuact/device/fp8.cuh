// Storing fp8 (cuact/fp8.h): fp32 rounded to nearest even and saturated to
// the largest finite value (satfinite), and codes widened back to fp32. Host
// and device, so CPU tests convert exactly as the kernels do.
//
// Through CUDA's <cuda_fp8.h> conversions: on sm_89+ they are the instruction
// cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32; elsewhere (older GPUs, and the host)
// CUDA's software path. The rule (docs/SPEC.md, "fp8 formats"): |v| past the
// largest finite value and +-inf give +-448 (0x7E / 0xFE) or +-57344 (0x7B /
// 0xFB); the tie at e4m3's 464 gives 448. NaN gives 0x7F in both formats (CUDA's
// canonical fp8 NaN: the software path drops the sign). tests/fp8_test.cpp
// checks the host path bit for bit against the reference.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

#include "cuact/device/config.h"
#include "cuact/fp8.h"

namespace cuact::device {

CUACT_HD constexpr __nv_fp8_interpretation_t fp8_interpretation(Fp8 format) {
  return format == Fp8::e4m3 ? __NV_E4M3 : __NV_E5M2;
}

// v's code in F.
template <Fp8 F>
CUACT_HD uint8_t to_fp8_satfinite(float v) {
  return __nv_cvt_float_to_fp8(v, __NV_SATFINITE, fp8_interpretation(F));
}

// Two codes in one 16-bit word, `first` in the low byte (at the lower address
// when stored): the pack cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32 makes.
template <Fp8 F>
CUACT_HD uint16_t to_fp8x2_satfinite(float first, float second) {
  float2 pair;
  pair.x = first;
  pair.y = second;
  return __nv_cvt_float2_to_fp8x2(pair, __NV_SATFINITE, fp8_interpretation(F));
}

// A code's value, exactly (every fp8 value is an fp16 value); NaN codes give NaN.
template <Fp8 F>
CUACT_HD float fp8_to_float(uint8_t code) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(code, fp8_interpretation(F))));
}

CUACT_HD uint8_t to_e4m3_satfinite(float v) { return to_fp8_satfinite<Fp8::e4m3>(v); }
CUACT_HD uint8_t to_e5m2_satfinite(float v) { return to_fp8_satfinite<Fp8::e5m2>(v); }
CUACT_HD uint16_t to_e4m3x2_satfinite(float first, float second) {
  return to_fp8x2_satfinite<Fp8::e4m3>(first, second);
}
CUACT_HD uint16_t to_e5m2x2_satfinite(float first, float second) {
  return to_fp8x2_satfinite<Fp8::e5m2>(first, second);
}
CUACT_HD float e4m3_to_float(uint8_t code) { return fp8_to_float<Fp8::e4m3>(code); }
CUACT_HD float e5m2_to_float(uint8_t code) { return fp8_to_float<Fp8::e5m2>(code); }

}  // namespace cuact::device
