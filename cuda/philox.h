// The random generator of the fused forms: Philox4x32-10 (Salmon, Moraes, Dror,
// Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11), a counter-based
// generator: a pure function of (key, counter), so any element's random word
// is computed where it is needed, in any order, on any thread, host or device.
//
// The contract (the same on every GPU, launch geometry and run; the CPU
// reference uses this definition too):
//
//   element e of the stream (seed, offset) has the 32-bit word
//     philox4x32_10(counter = {lo(e/4), hi(e/4), lo(offset), hi(offset)},
//                   key     = {lo(seed), hi(seed)}) [e % 4]
//
//   dropout keeps element e iff word >= ceil(p * 2^32), so P(keep) = 1 - p;
//   rrelu's slope of element e is lower + (upper - lower) * u, u = (word >> 8) * 2^-24,
//   computed in fp32 (one fma) and clamped to upper.
//
// Distinct (offset, e) pairs give distinct counters, so calls that differ in
// offset draw independent words whatever their sizes. Plain C++ (no CUDA
// intrinsics) so g++ compiles it for the CPU reference and tests.
#pragma once

#include <cstdint>

#include <cmath>

#include "cuact/device/config.h"

namespace cuact::detail {

// Four 32-bit words: a Philox counter or its output.
struct Philox4 {
  uint32_t x, y, z, w;
};

// Word k (0..3) of a block, without indexing a register array.
CUACT_HD uint32_t philox_word_at(const Philox4& b, int k) {
  return k == 0 ? b.x : (k == 1 ? b.y : (k == 2 ? b.z : b.w));
}

// The 64-bit product a * b as (hi, lo): one IMAD.WIDE.U32 on the device.
CUACT_HD void mul_hi_lo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Philox4x32 with `Rounds` rounds (Random123's philox4x32_R): the round is
// (hi0, lo0) = M0 * c.x, (hi1, lo1) = M1 * c.z,
// c' = {hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0}, and the key is bumped by the
// Weyl constants before every round but the first.
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

CUACT_HD Philox4 philox_round(const Philox4& c, uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  mul_hi_lo(kPhiloxM0, c.x, hi0, lo0);
  mul_hi_lo(kPhiloxM1, c.z, hi1, lo1);
  return {hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
}

template <int Rounds = 10>
CUACT_HD Philox4 philox4x32(Philox4 c, uint32_t k0, uint32_t k1) {
  CUACT_UNROLL
  for (int round = 0; round < Rounds; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    c = philox_round(c, k0, k1);
  }
  return c;
}

// The words of one call: element e's word is block(e / 4)[e % 4]. The ten
// round keys, and the parts of the first round that depend on the offset and
// the key alone, are computed once, when the stream is made (on the host for
// a launch: in a kernel they are launch arguments).
struct RandomStream {
  uint64_t seed = 0;
  uint64_t offset = 0;
  uint32_t keys[20] = {};  // round r: keys[2r], keys[2r + 1]
  // Round 0 of block g: {first_x ^ hi(g), first_y, hi(M0 * lo(g)) ^ first_z, lo(M0 * lo(g))}.
  uint32_t first_x = 0, first_y = 0, first_z = 0;

  RandomStream() = default;
  CUACT_HD RandomStream(uint64_t s, uint64_t o) : seed(s), offset(o) {
    uint32_t k0 = static_cast<uint32_t>(s), k1 = static_cast<uint32_t>(s >> 32);
    for (int r = 0; r < 10; ++r) {
      keys[2 * r] = k0;
      keys[2 * r + 1] = k1;
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    uint32_t hi1, lo1;
    mul_hi_lo(kPhiloxM1, static_cast<uint32_t>(o), hi1, lo1);
    first_x = hi1 ^ keys[0];
    first_y = lo1;
    first_z = static_cast<uint32_t>(o >> 32) ^ keys[1];
  }

  CUACT_HD Philox4 block(uint64_t group) const {
    uint32_t hi0, lo0;
    mul_hi_lo(kPhiloxM0, static_cast<uint32_t>(group), hi0, lo0);
    Philox4 c = {first_x ^ static_cast<uint32_t>(group >> 32), first_y, hi0 ^ first_z, lo0};
    CUACT_UNROLL
    for (int r = 1; r < 10; ++r) c = philox_round(c, keys[2 * r], keys[2 * r + 1]);
    return c;
  }
  CUACT_HD uint32_t word(uint64_t e) const {
    return philox_word_at(block(e >> 2), static_cast<int>(e & 3));
  }

  // On the device: makes the keys opaque register values, so that a loop
  // drawing many blocks keeps them in registers (20 of them) instead of
  // moving each from the constant bank at every use. Call on a local copy
  // before the loop.
  CUACT_HD void pin_keys() {
#ifdef __CUDA_ARCH__
    CUACT_UNROLL
    for (int i = 0; i < 20; ++i) asm volatile("" : "+r"(keys[i]));
#endif
  }
};

// The words of elements e0 .. e0 + W - 1 (W a multiple of 4): W/4 Philox
// blocks when e0 is a multiple of 4, one more otherwise, computed by one
// (rolled) Philox body into a window that slides by a block at a time.
template <int W>
CUACT_HD void random_words(const RandomStream& s, uint64_t e0, uint32_t (&words)[W]) {
  static_assert(W % 4 == 0, "runs of whole Philox blocks");
  const uint64_t g0 = e0 >> 2;
  const int shift = static_cast<int>(e0 & 3);
  const int blocks = W / 4 + (shift != 0);
  uint32_t window[W + 4] = {};
  CUACT_NO_UNROLL
  for (int q = 0; q < blocks; ++q) {
    const Philox4 b = s.block(g0 + q);
    CUACT_UNROLL
    for (int k = 0; k < W; ++k) window[k] = window[k + 4];
    window[W] = b.x;
    window[W + 1] = b.y;
    window[W + 2] = b.z;
    window[W + 3] = b.w;
  }
  // Aligned (the common case): the blocks fill window[4 ..]; otherwise
  // window[0 ..], with word 0 at `shift`.
  if (shift == 0) {
    CUACT_UNROLL
    for (int j = 0; j < W; ++j) words[j] = window[j + 4];
    return;
  }
  CUACT_UNROLL
  for (int j = 0; j < W; ++j)
    words[j] = shift == 1 ? window[j + 1] : shift == 2 ? window[j + 2] : window[j + 3];
}

// Dropout's decision and scale for a drop probability p in [0, 1].
struct DropoutRule {
  uint64_t threshold = 0;  // keep iff word >= threshold = ceil(p * 2^32); 2^32 drops all
  float scale = 1.0f;      // 1/(1 - p) rounded to fp32; 0 when p == 1

  CUACT_HD bool keeps(uint32_t word) const { return word >= threshold; }
};

inline DropoutRule make_dropout_rule(float p) {
  DropoutRule rule;
  const double t = static_cast<double>(p) * 4294967296.0;  // exact: p has 24 bits
  uint64_t threshold = static_cast<uint64_t>(t);
  if (static_cast<double>(threshold) < t) ++threshold;  // ceil
  rule.threshold = threshold;
  rule.scale = p < 1.0f ? static_cast<float>(1.0 / (1.0 - static_cast<double>(p))) : 0.0f;
  return rule;
}

// rrelu's slope from an element's word (see the contract above); `span` is
// upper - lower, computed once in fp32.
CUACT_HD float rrelu_slope(float lower, float upper, uint32_t word, float span) {
  const float u = static_cast<float>(word >> 8) * 0x1p-24f;  // exact, in [0, 1)
  const float r = fmaf(span, u, lower);
  return r > upper ? upper : r;
}
CUACT_HD float rrelu_slope(float lower, float upper, uint32_t word) {
  return rrelu_slope(lower, upper, word, upper - lower);
}

}  // namespace cuact::detail
