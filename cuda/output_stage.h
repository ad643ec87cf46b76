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
  // Block-scaled outputs (BlockCode8): blocks of `block` results along a
  // row, each with its scale, written to `scales` in `layout` as a
  // [scale_rows, scale_groups] matrix (1-byte E8M0 or 4-byte fp32 entries).
  int block = 32;
  BlockScale scale_type = BlockScale::e8m0;
  void* scales = nullptr;
  ScaleLayout layout = ScaleLayout::row_major;
  int64_t scale_rows = 0;
  int64_t scale_groups = 0;
  const float* tensor_scale = nullptr;  // NVFP4 (scale_type e4m3): t, read when the kernel starts
                                        // (written by the scale step where it is found)
};

// max(m, |v|) with NaN ignored, signalling NaNs too: the device's fmaxf
// (max.f32) ignores every NaN, while the host's fmaxf may return NaN for a
// signalling one (an fp16/bf16 NaN widened keeps its payload), so the host
// compares instead. m is never NaN.
CUACT_HD float max_abs(float m, float v) {
#ifdef __CUDA_ARCH__
  return fmaxf(m, fabsf(v));
#else
  const float a = std::fabs(v);
  return a > m ? a : m;
#endif
}

template <class O>
struct OutputStage {
  static constexpr bool kQuantized = false;
  static constexpr bool kBlockScaled = false;
  static constexpr bool kPacked = false;  // two codes a byte (NVFP4)
  static constexpr int kChunk = 0;  // block-scaled stages: the chunk's elements
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
  static constexpr bool kBlockScaled = false;
  static constexpr bool kPacked = false;
  static constexpr int kChunk = 0;
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
    for (int j = 0; j < W; ++j) amax = max_abs(amax, y[j]);  // NaN does not enter
    CUACT_UNROLL
    for (int q = 0; q < W / 4; ++q)
      v.w[q] = code_pair(y[4 * q], y[4 * q + 1]) | code_pair(y[4 * q + 2], y[4 * q + 3]) << 16;
    return v;
  }
  CUACT_HD Code8 one(float y, float& amax) const {
    amax = max_abs(amax, y);
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

// NVFP4's tensor scale from the amax of the results (docs/SPEC.md,
// "Block-scaled outputs"): fl32(amax / (448 * 6)), at least the smallest
// normal fp32 (so that 1 / (6 t) stays finite); 1 where amax is 0 or inf.
CUACT_HD float nvfp4_tensor_scale(float amax) {
  if (!(amax > 0.0f) || !(amax < INFINITY)) return 1.0f;
  const float t = amax / 2688.0f;
  return t > 1.17549435e-38f ? t : 1.17549435e-38f;
}

// The current recipe's scale step, between the amax pass and the store
// pass (cuda/scale_step.cu runs it in one thread): the per-tensor fp8 scale
// and its inverse, or NVFP4's tensor scale.
struct ScaleStep {
  Fp8 format = Fp8::e4m3;
  int margin = 0;
  bool power_of_two = false;
  bool nvfp4 = false;
  float* scale = nullptr;      // written (NVFP4: the tensor scale)
  float* scale_inv = nullptr;  // 1 / scale written where not null
  CUACT_HD void run(float amax) const {
    const float s = nvfp4 ? nvfp4_tensor_scale(amax) : scale_from_amax(amax, format, margin, power_of_two);
    *scale = s;
    if (scale_inv != nullptr) *scale_inv = 1.0f / s;
  }
};

// ---------------------------------------------------------------- block-scaled outputs

// The largest finite value of an fp8 format, and its exponent (448 = 1.75 *
// 2^8, 57344 = 1.75 * 2^15: both largest values have significand 1.75).
CUACT_HD constexpr float fp8_largest(Fp8 f) { return f == Fp8::e4m3 ? 448.0f : 57344.0f; }
CUACT_HD constexpr int fp8_emax(Fp8 f) { return f == Fp8::e4m3 ? 8 : 15; }

// The entry of (row, group) in a [rows, groups] scale matrix of `layout`
// (cuact/fp8.h states each).
CUACT_HD int64_t scale_index(ScaleLayout layout, int64_t row, int64_t group, int64_t rows,
                             int64_t groups) {
  switch (layout) {
    case ScaleLayout::row_major: return row * groups + group;
    case ScaleLayout::column_major: return group * rows + row;
    case ScaleLayout::column_major_packed: return (group / 4 * ((rows + 3) / 4) * 4 + row) * 4 + group % 4;
    default: {
      const int64_t tiles_across = (groups + 3) / 4;
      return ((row / 128) * tiles_across + group / 4) * 512 + (row % 32) * 16 + (row % 128) / 32 * 4 +
             group % 4;
    }
  }
}

// The entries a [rows, groups] scale matrix of `layout` spans (swizzled:
// rows padded to 128, groups to 4; packed: rows to 4, groups to 4).
CUACT_HD int64_t scale_entries(ScaleLayout layout, int64_t rows, int64_t groups) {
  if (layout == ScaleLayout::swizzled_128x4) return (rows + 127) / 128 * 128 * ((groups + 3) / 4 * 4);
  if (layout == ScaleLayout::column_major_packed) return (rows + 3) / 4 * 4 * ((groups + 3) / 4 * 4);
  return rows * groups;
}

// A block's scale from its amax (the max |result| of the block, NaN
// excluded): the factor its results are multiplied by before the fp8
// rounding (`multiplier`) and the scale's stored bits (E8M0: the biased
// exponent byte; f32: the float's bits). docs/SPEC.md, "Block-scaled
// outputs". Integer work on the float's bits for E8M0, so that the
// exponent is exact (no log2).
struct BlockScaleBits {
  float multiplier;
  uint32_t bits;
};
CUACT_HD BlockScaleBits block_scale(float amax, Fp8 format, BlockScale type) {
  if (type == BlockScale::f32) {
    // a within [largest * 2^-126, FLT_MAX]: the multiplier and the scale stay finite and normal.
    const float largest = fp8_largest(format);
    float a = amax > largest * 1.17549435e-38f ? amax : largest * 1.17549435e-38f;
    a = a < 3.40282347e38f ? a : 3.40282347e38f;
    const float scale = a / largest;
    uint32_t bits;
    memcpy(&bits, &scale, 4);
    return {largest / a, bits};
  }
  int e;
  if (!(amax > 0.0f)) {
    e = -127;
  } else if (!(amax < INFINITY)) {
    e = 127;
  } else {
    uint32_t u;
    memcpy(&u, &amax, 4);
    int exponent = static_cast<int>((u >> 23) & 0xffu);
    uint32_t mantissa = u & 0x7fffffu;
    if (exponent == 0) {  // subnormal: normalize
      while ((mantissa & 0x800000u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      exponent += 1;
      mantissa &= 0x7fffffu;
    }
    e = exponent - 127 - fp8_emax(format);  // floor(log2 amax) - emax
    // RCEIL: one more where amax's significand exceeds the largest value's 1.75.
    if (type == BlockScale::e8m0 && mantissa > 0x600000u) ++e;
  }
  e = e < -127 ? -127 : e > 127 ? 127 : e;
  // 2^-e: a normal float but at e = 127 (2^-127, subnormal), exact either way.
  uint32_t m = e == 127 ? 0x00400000u : static_cast<uint32_t>(127 - e) << 23;
  float multiplier;
  memcpy(&multiplier, &m, 4);
  return {multiplier, static_cast<uint32_t>(e + 127)};
}

// v's e2m1 code (NVFP4's elements: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their
// negatives): nearest, ties to the even code, saturated to +-6; NaN gives
// +6 (0x7), as CUDA's conversion; the sign of zero kept. Compares only, so
// that no architecture needs the fp4 conversion instruction (sm_100a).
CUACT_HD uint32_t e2m1_code(float v) {
  const float a = fabsf(v);
  if (!(a == a)) return 0x7u;  // NaN
  const uint32_t c = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) +
                     (a >= 3.5f) + (a > 5.0f);
  uint32_t bits;
  memcpy(&bits, &v, 4);
  return c | (bits >> 31) << 3;
}

// NVFP4's multipliers from the tensor scale t (SPEC, "Block-scaled
// outputs"): k = 1 / (6 t) turns a block's amax into its e4m3 scale; t
// that is not a positive finite number reads as 1.
struct Nvfp4Tensor {
  float t = 1.0f;
  float k = 1.0f / 6.0f;
  CUACT_HD static Nvfp4Tensor from(const float* tensor_scale) {
    Nvfp4Tensor n;
    const float t = tensor_scale != nullptr ? *tensor_scale : 1.0f;
    if (t > 0.0f && t < INFINITY) n.t = t;
    n.k = 1.0f / (6.0f * n.t);
    return n;
  }
};

// What the block-scaled stages share: the call's store, each 16's max
// |result| of a chunk, and the scales' stores.
struct BlockStageBase {
  QuantizedStore q;

  // Each 16's max |result| of the chunk's first `count`, NaN excluded; the
  // call's amax folded.
  template <int W>
  CUACT_HD static void halves(const float (&y)[W], int count, float (&half)[2], float& amax) {
    static_assert(W == 32, "a chunk is one block of 32 or two of 16");
    half[0] = half[1] = 0.0f;
    CUACT_UNROLL
    for (int j = 0; j < W; ++j)
      if (j < count) half[j / 16] = max_abs(half[j / 16], y[j]);
    amax = fmaxf(amax, fmaxf(half[0], half[1]));  // (no NaN here)
  }
  CUACT_HD void store_scale(int64_t row, int64_t group, uint32_t bits) const {
    const int64_t at = scale_index(q.layout, row, group, q.scale_rows, q.scale_groups);
    if (q.scale_type == BlockScale::f32)
      static_cast<uint32_t*>(q.scales)[at] = bits;
    else
      static_cast<uint8_t*>(q.scales)[at] = static_cast<uint8_t>(bits);
  }
};

// A block-scaled fp8 output (BlockCode8): a chunk is 32 results of one row
// starting at a multiple of 32 columns, one block of 32 or two of 16; a
// block of 64 or 128 is a group of 2 or 4 chunks (row_engine.h, block_rows:
// the group's max |result| first, then each chunk's codes at its scale).
template <>
struct OutputStage<BlockCode8> : BlockStageBase {
  static constexpr bool kQuantized = true;
  static constexpr bool kBlockScaled = true;
  static constexpr bool kPacked = false;
  static constexpr int kChunk = 32;

  CUACT_HD static OutputStage make(const QuantizedStore& store) { return {{store}}; }
  CUACT_HD static constexpr bool writes() { return true; }

  // The codes of the chunk y of row `row` from column `col`, of which the
  // first `count` are results (a row's last chunk may be partial); the
  // scales of its blocks written, amax folded. Blocks of 16 or 32.
  template <int W>
  CUACT_HD Vec<BlockCode8, W> chunk(const float (&y)[W], int count, int64_t row, int64_t col,
                                    float& amax) const {
    float m0, m1;
    chunk_scales(y, count, row, col, amax, m0, m1);
    return codes(y, m0, m1);
  }
  // chunk's scales: written, and the multipliers of its first and last 16.
  template <int W>
  CUACT_HD void chunk_scales(const float (&y)[W], int count, int64_t row, int64_t col, float& amax,
                             float& m0, float& m1) const {
    float half[2];
    halves(y, count, half, amax);
    const bool pair = q.block == 16;
    const BlockScaleBits s0 = scale_of(pair ? half[0] : fmaxf(half[0], half[1]));
    const BlockScaleBits s1 = pair ? scale_of(half[1]) : s0;
    const int64_t group = col / q.block;
    store_scale(row, group, s0.bits);
    if (pair && count > 16) store_scale(row, group + 1, s1.bits);
    m0 = s0.multiplier;
    m1 = s1.multiplier;
  }

  // A group's pieces: the max |result| of a chunk's first `count` (NaN
  // excluded; the call's amax folded), the scale of the group's max, and a
  // chunk's codes at the group's multiplier.
  template <int W>
  CUACT_HD static float chunk_max(const float (&y)[W], int count, float& amax) {
    float half[2];
    halves(y, count, half, amax);
    return fmaxf(half[0], half[1]);
  }
  CUACT_HD BlockScaleBits scale_of(float block_amax) const {
    return block_scale(block_amax, q.format, q.scale_type);
  }
  // The codes of y[j] * m0 (first 16) and * m1 (last 16).
  template <int W>
  CUACT_HD Vec<BlockCode8, W> codes(const float (&y)[W], float m0, float m1) const {
    Vec<BlockCode8, W> v;
    CUACT_UNROLL
    for (int w = 0; w < W / 4; ++w) {
      const float m = w < 4 ? m0 : m1;
      v.w[w] = code_pair(y[4 * w] * m, y[4 * w + 1] * m) |
               code_pair(y[4 * w + 2] * m, y[4 * w + 3] * m) << 16;
    }
    return v;
  }

 private:
  CUACT_HD uint32_t code_pair(float a, float b) const {
    return q.format == Fp8::e4m3 ? device::to_fp8x2_satfinite<Fp8::e4m3>(a, b)
                                 : device::to_fp8x2_satfinite<Fp8::e5m2>(a, b);
  }
};

// NVFP4 (BlockCode4): a chunk is one block of 16 results of a row (its
// chunks are 16 wide: 32 would not fit the fp32 forms' registers), with
// its e4m3 scale s = e4m3(amax * k) (saturated; k from the tensor scale,
// Nvfp4Tensor), the multiplier 1 / (s t) (0 where s is 0), and the e2m1
// codes of r times it: 8 bytes (element 2i low nibble, 2i + 1 high).
template <>
struct OutputStage<BlockCode4> : BlockStageBase {
  static constexpr bool kQuantized = true;
  static constexpr bool kBlockScaled = true;
  static constexpr bool kPacked = true;
  static constexpr int kChunk = 16;
  Nvfp4Tensor fp4;

  CUACT_HD static OutputStage make(const QuantizedStore& store) {
    return {{store}, Nvfp4Tensor::from(store.tensor_scale)};
  }
  CUACT_HD static constexpr bool writes() { return true; }

  template <int W>
  CUACT_HD Vec<BlockCode4, W> chunk(const float (&y)[W], int count, int64_t row, int64_t col,
                                    float& amax) const {
    static_assert(W == kChunk, "a chunk is one block of 16");
    float block = 0.0f;
    CUACT_UNROLL
    for (int j = 0; j < W; ++j)
      if (j < count) block = max_abs(block, y[j]);
    amax = fmaxf(amax, block);
    const uint8_t s = device::to_fp8_satfinite<Fp8::e4m3>(block * fp4.k);
    const float value = device::fp8_to_float<Fp8::e4m3>(s);
    const float m = value > 0.0f ? 1.0f / (value * fp4.t) : 0.0f;
    store_scale(row, col / 16, s);
    Vec<BlockCode4, W> v = {};
    CUACT_UNROLL
    for (int w = 0; w < W / 8; ++w) {
      uint32_t word = 0;
      CUACT_UNROLL
      for (int j = 0; j < 8; ++j) word |= e2m1_code(y[8 * w + j] * m) << (4 * j);
      v.w[w] = word;
    }
    return v;
  }
};

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
