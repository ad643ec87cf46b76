// The random generator of the fused forms: Philox4x32-10 (Salmon, Moraes, Dror,
// Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11), a counter-based
// generator: a pure function of (key, counter), so any element's random draw
// is computed where it is needed, in any order, on any thread, host or device.
//
// The contract (the same on every GPU, launch geometry and run; the CPU
// reference uses this definition too):
//
//   block g of the stream (seed, offset) is
//     philox4x32_10(counter = {lo(g), hi(g), lo(offset), hi(offset)},
//                   key     = {lo(seed), hi(seed)}) = words {w0, w1, w2, w3};
//   element e draws the 16-bit value
//     draw(e) = bits [16 (e % 2), 16 (e % 2) + 16) of word (e / 2) % 4 of block e / 8,
//   so one block serves eight consecutive elements;
//
//   dropout keeps element e iff draw(e) >= ceil(p * 2^16), so P(keep) is 1 - p
//   with p rounded up to a multiple of 2^-16 (the scale stays 1/(1 - p));
//   rrelu's slope of element e is lower + (upper - lower) * u, u = draw(e) * 2^-16,
//   computed in fp32 (one fma) and clamped to upper.
//
// Sixteen bits per element (FlashAttention draws eight) keep the generator's
// cost at about 6 instructions per element, inside the budget of a bf16 kernel
// at the memory limit. Distinct (offset, e) pairs give distinct (counter,
// half) pairs, so calls that differ in offset draw independent values
// whatever their sizes. Plain C++ (no CUDA intrinsics) so g++ compiles it for
// the CPU reference and tests.
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

// Draw k (0..7) of a block: half k % 2 of word k / 2.
CUACT_HD uint32_t half_of(uint32_t word, int upper) { return upper != 0 ? word >> 16 : word & 0xffffu; }
CUACT_HD uint32_t draw_at(const Philox4& b, int k) { return half_of(philox_word_at(b, k >> 1), k & 1); }

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

// The draws of one call: element e's is half e % 2 of block(e / 8)[(e / 2) % 4]. The ten
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
  CUACT_HD uint32_t draw(uint64_t e) const { return draw_at(block(e >> 3), static_cast<int>(e & 7)); }

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

// The draws of elements e0 .. e0 + W - 1 (W = 4 or 8), two per word: draw
// e0 + j is half j % 2 of packed[j / 2]. Aligned (e0 a multiple of W: every
// row of a call with cols % W == 0, a flat call at a 16-byte boundary): one
// block, or half of one; otherwise two blocks, funnel-shifted into place.
template <int W>
CUACT_HD void chunk_draws(const RandomStream& s, uint64_t e0, uint32_t (&packed)[W / 2]) {
  static_assert(W == 4 || W == 8, "a chunk is at most one block");
  const uint64_t g = e0 >> 3;
  const Philox4 a = s.block(g);
  if ((e0 & (W - 1)) == 0) {
    const bool upper = W == 4 && (e0 & 4) != 0;
    packed[0] = upper ? a.z : a.x;
    packed[1] = upper ? a.w : a.y;
    if constexpr (W == 8) {
      packed[2] = a.z;
      packed[3] = a.w;
    }
    return;
  }
  const int shift = static_cast<int>(e0 & 7);  // the first draw's place in block g
  const Philox4 b = shift + W > 8 ? s.block(g + 1) : a;
  const int q = shift >> 1;
  auto word = [&](int k) {  // word k (0..7) of blocks g, g + 1, without indexing
    return k < 4 ? philox_word_at(a, k) : philox_word_at(b, k - 4);
  };
  CUACT_UNROLL
  for (int i = 0; i < W / 2; ++i) {
    const uint64_t pair = (static_cast<uint64_t>(word(q + i + 1)) << 32) | word(q + i);
    packed[i] = static_cast<uint32_t>(pair >> (16 * (shift & 1)));
  }
}

// The generator state in device memory (cuact/fused.h, Dropout::device_state):
// a forward call's first step, one thread, stream-ordered before its kernel:
// used = state, then state's offset advances by one (distinct offsets never
// share a counter, whatever the call's size).
CUACT_HD void take_random_state(uint64_t* state, uint64_t* used) {
  used[0] = state[0];
  used[1] = state[1];
  state[1] += 1;
}

// Dropout's decision and scale for a drop probability p in [0, 1].
struct DropoutRule {
  uint32_t threshold = 0;  // keep iff draw >= threshold = ceil(p * 2^16); 2^16 drops all
  float scale = 1.0f;      // 1/(1 - p) rounded to fp32; 0 when p == 1

  CUACT_HD bool keeps(uint32_t draw) const { return draw >= threshold; }
};

inline DropoutRule make_dropout_rule(float p) {
  DropoutRule rule;
  rule.threshold = static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 65536.0));  // exact product
  rule.scale = p < 1.0f ? static_cast<float>(1.0 / (1.0 - static_cast<double>(p))) : 0.0f;
  return rule;
}

// rrelu's slope from an element's draw (see the contract above); `span` is
// upper - lower, computed once in fp32.
CUACT_HD float rrelu_slope(float lower, float upper, uint32_t draw, float span) {
  const float u = static_cast<float>(draw) * 0x1p-16f;  // exact, in [0, 1)
  const float r = fmaf(span, u, lower);
  return r > upper ? upper : r;
}
CUACT_HD float rrelu_slope(float lower, float upper, uint32_t draw) {
  return rrelu_slope(lower, upper, draw, upper - lower);
}

}  // namespace cuact::detail
