// The row engine's output stage: how a form's fp32 results become the
// elements of its output streams. Plain (an output of a number type): each
// result rounded once to it. Quantized (Code8, an fp8 output): each result
// multiplied by the call's scale in fp32, rounded once to the fp8 format
// (to nearest even, saturated to its largest finite value; NaN stays NaN),
// and its |value| before scaling kept for the call's amax. docs/SPEC.md,
// "Quantized outputs", states the rule. Host and device.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cuact/device/config.h"
#include "cuact/device/fp8.cuh"
#include "cuact/fp8.h"
#include "vec.h"

namespace cuact::detail {

// What a call tells the quantized stage (RowCall::quantized); unused by plain stages.
struct QuantizedStore {
  Fp8 format = Fp8::e4m3;
  const float* scale = nullptr;  // read when the kernel starts (null: 1)
  float* amax = nullptr;         // max |result| folded in (atomic max; null: not kept)
  float* scale_inv = nullptr;    // 1 / scale written by the grid's first thread (null: not)
  bool writes = true;            // false: only the amax (the current recipe's first pass)
};

template <class O>
struct OutputStage {
  static constexpr bool kQuantized = false;
  CUACT_HD static OutputStage make(const QuantizedStore&) { return {}; }
  CUACT_HD static constexpr bool writes() { return true; }
  template <int W>
  CUACT_HD Vec<O, W> pack(const float (&y)[W], float&) const {
    return from_floats<O, W>(y);
  }
  CUACT_HD O one(float y, float&) const { return device::narrow<O>(y); }
};

template <>
struct OutputStage<Code8> {
  static constexpr bool kQuantized = true;
  float scale = 1.0f;
  Fp8 format = Fp8::e4m3;
  bool store = true;

  CUACT_HD static OutputStage make(const QuantizedStore& q) {
    return {q.scale != nullptr ? *q.scale : 1.0f, q.format, q.writes};
  }
  CUACT_HD bool writes() const { return store; }
  // The codes of a and b (a in the low byte): one cvt.rn.satfinite pair.
  CUACT_HD uint32_t code_pair(float a, float b) const {
    return format == Fp8::e4m3 ? device::to_fp8x2_satfinite<Fp8::e4m3>(a * scale, b * scale)
                               : device::to_fp8x2_satfinite<Fp8::e5m2>(a * scale, b * scale);
  }
  template <int W>
  CUACT_HD Vec<Code8, W> pack(const float (&y)[W], float& amax) const {
    static_assert(W % 4 == 0, "whole words of codes");
    Vec<Code8, W> v;
    CUACT_UNROLL
    for (int j = 0; j < W; ++j) amax = fmaxf(amax, fabsf(y[j]));  // NaN does not enter
    CUACT_UNROLL
    for (int q = 0; q < W / 4; ++q)
      v.w[q] = code_pair(y[4 * q], y[4 * q + 1]) | code_pair(y[4 * q + 2], y[4 * q + 3]) << 16;
    return v;
  }
  CUACT_HD Code8 one(float y, float& amax) const {
    amax = fmaxf(amax, fabsf(y));
    return {static_cast<uint8_t>(code_pair(y, 0.0f) & 0xffu)};
  }
};

// The scale of the current recipe from the amax of the results: the largest
// finite value of the format over amax, divided by 2^margin, rounded down to a
// power of two on request; 1 where amax is 0, NaN or inf (nothing to scale
// by); kept within the normal fp32 range (so 1 / scale is finite). docs/SPEC.md,
// "Quantized outputs".
CUACT_HD float scale_from_amax(float amax, Fp8 format, int margin, bool power_of_two) {
  const float largest = format == Fp8::e4m3 ? 448.0f : 57344.0f;
  if (!(amax > 0.0f) || !(amax < INFINITY)) return 1.0f;
  float scale = ldexpf(largest / amax, -margin);
  if (scale > 3.40282347e38f) scale = 3.40282347e38f;
  if (scale < 1.17549435e-38f) scale = 1.17549435e-38f;  // normal: 1 / scale stays finite
  if (power_of_two) {
    uint32_t bits;
    memcpy(&bits, &scale, 4);
    bits &= 0x7f800000u;  // the exponent alone: rounded down
    memcpy(&scale, &bits, 4);
  }
  return scale;
}

#ifdef __CUDACC__
// A quantized output's amax after a block's work: the threads' running
// maxima folded into the call's word with atomic maxima on their bits
// (non-negative floats order as their bits; NaN never enters), so the word
// is the same on every run; and 1 / scale from the grid's first thread.
// Every thread of the block calls it, blocks of any size. (q by value: a
// reference to the kernel's parameter would copy the whole call to local
// memory.)
static __device__ __noinline__ void fold_amax(QuantizedStore q, float amax) {
  __shared__ unsigned int block_max;
  if (threadIdx.x == 0) block_max = 0u;
  __syncthreads();
  atomicMax(&block_max, __float_as_uint(amax));
  __syncthreads();
  if (threadIdx.x == 0) {
    if (q.amax != nullptr) atomicMax(reinterpret_cast<unsigned int*>(q.amax), block_max);
    if (q.scale_inv != nullptr && q.writes && blockIdx.x == 0)
      *q.scale_inv = 1.0f / (q.scale != nullptr ? *q.scale : 1.0f);
  }
}
#endif

}  // namespace cuact::detail
