// The random generator of the fused forms (cuda/philox.h): Philox4x32 against
// the published known-answer vectors, the element -> draw mapping of the
// contract, the run helpers the kernels use, and the statistics of dropout
// masks and RReLU slopes. CPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cuact/reference.h"
#include "philox.h"

namespace cuact::detail {
namespace {

struct KnownAnswer {
  Philox4 counter;
  uint32_t k0, k1;
  Philox4 expected;
};

void expect_block(const Philox4& got, const Philox4& want) {
  EXPECT_EQ(got.x, want.x);
  EXPECT_EQ(got.y, want.y);
  EXPECT_EQ(got.z, want.z);
  EXPECT_EQ(got.w, want.w);
}

// Random123 (D. E. Shaw Research), tests/kat_vectors, the philox4x32 lines
// (https://github.com/DEShawResearch/random123, release v1.14.0): name,
// rounds, counter (4 words), key (2 words), expected output (4 words).
//   philox4x32 7  00000000 00000000 00000000 00000000 00000000 00000000  5f6fb709 0d893f64 4f121f81 4f730a48
//   philox4x32 7  ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff  5207ddc2 45165e59 4d8ee751 8c52f662
//   philox4x32 7  243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0  4dfccaba 190a87f0 c47362ba b6b5242a
//   philox4x32 10 00000000 00000000 00000000 00000000 00000000 00000000  6627e8d5 e169c58d bc57ac4c 9b00dbd8
//   philox4x32 10 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff  408f276d 41c83b0e a20bc7c6 6d5451fd
//   philox4x32 10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0  d16cfe09 94fdcceb 5001e420 24126ea1
const KnownAnswer kPhilox10[] = {
    {{0, 0, 0, 0}, 0, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff,
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0,
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};
const KnownAnswer kPhilox7[] = {
    {{0, 0, 0, 0}, 0, 0, {0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff,
     {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0,
     {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
};

TEST(Philox, Random123KnownAnswers10Rounds) {
  for (const KnownAnswer& k : kPhilox10) expect_block(philox4x32<10>(k.counter, k.k0, k.k1), k.expected);
}

TEST(Philox, Random123KnownAnswers7Rounds) {
  for (const KnownAnswer& k : kPhilox7) expect_block(philox4x32<7>(k.counter, k.k0, k.k1), k.expected);
}

TEST(Philox, MulHiLoIsTheFullProduct) {
  uint32_t hi = 0, lo = 0;
  mul_hi_lo(0xD2511F53u, 0xffffffffu, hi, lo);
  const uint64_t p = uint64_t{0xD2511F53u} * 0xffffffffu;
  EXPECT_EQ(hi, static_cast<uint32_t>(p >> 32));
  EXPECT_EQ(lo, static_cast<uint32_t>(p));
}

// The contract: element e of (seed, offset) draws half e % 2 of word (e/2) % 4
// of the block with counter {lo(e/8), hi(e/8), lo(offset), hi(offset)} and
// key {lo(seed), hi(seed)}.
TEST(RandomStream, ElementDrawFollowsTheContract) {
  const uint64_t seeds[] = {0, 42, 0x0123456789abcdefull};
  const uint64_t offsets[] = {0, 1, 0xfedcba9876543210ull};
  const uint64_t elements[] = {0, 1, 2, 3, 4, 5, 1000003, (uint64_t{1} << 34) + 7,
                               0xffffffffffffffffull};
  for (uint64_t seed : seeds)
    for (uint64_t offset : offsets)
      for (uint64_t e : elements) {
        const uint64_t g = e / 8;
        const Philox4 counter = {static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32),
                                 static_cast<uint32_t>(offset),
                                 static_cast<uint32_t>(offset >> 32)};
        const Philox4 b = philox4x32<10>(counter, static_cast<uint32_t>(seed),
                                         static_cast<uint32_t>(seed >> 32));
        const uint32_t words[4] = {b.x, b.y, b.z, b.w};
        const uint32_t word = words[(e / 2) % 4];
        const uint32_t want = e % 2 == 0 ? word & 0xffffu : word >> 16;
        EXPECT_EQ((RandomStream{seed, offset}.draw(e)), want) << "e=" << e;
      }
}

template <int W>
void check_runs() {
  const RandomStream s{1234, 99};
  for (uint64_t e0 : {uint64_t{0}, uint64_t{1} << 35}) {
    for (uint64_t start = e0; start < e0 + 64; ++start) {
      uint32_t packed[W / 2];
      chunk_draws<W>(s, start, packed);
      for (int j = 0; j < W; ++j)
        ASSERT_EQ(half_of(packed[j / 2], j & 1), s.draw(start + j)) << "start=" << start << " j=" << j;
    }
  }
}

// The kernels draw a chunk's values in runs that need not start at a multiple
// of 8: every start gives the contract's draws (the aligned starts one block
// or half of one, the others two).
TEST(RandomStream, ChunkDrawsMatchElementDraws) {
  check_runs<4>();
  check_runs<8>();
}

// The round keys a stream computes once are the ones philox4x32 bumps per round.
TEST(RandomStream, PrecomputedRoundKeysGiveTheReferenceBlocks) {
  for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{0xffffffffffffffff}, uint64_t{0x243f6a8885a308d3}})
    for (uint64_t group : {uint64_t{0}, uint64_t{5}, uint64_t{1} << 40}) {
      const RandomStream s{seed, 77};
      const Philox4 counter = {static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32), 77, 0};
      const Philox4 want = philox4x32<10>(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
      const Philox4 got = s.block(group);
      EXPECT_EQ(got.x, want.x);
      EXPECT_EQ(got.y, want.y);
      EXPECT_EQ(got.z, want.z);
      EXPECT_EQ(got.w, want.w);
    }
}

TEST(RandomStream, DifferentOffsetsAndSeedsGiveDifferentStreams) {
  int same_offset = 0, same_seed = 0;
  for (uint64_t e = 0; e < 4096; ++e) {
    same_offset += RandomStream{7, 0}.draw(e) == RandomStream{7, 1}.draw(e);
    same_seed += RandomStream{7, 0}.draw(e) == RandomStream{8, 0}.draw(e);
  }
  // Independent 16-bit draws agree with probability 2^-16: 4096 / 65536 expected.
  EXPECT_LE(same_offset, 4);
  EXPECT_LE(same_seed, 4);
}

// ---------------------------------------------------------------- dropout

TEST(DropoutRule, ThresholdIsCeilOfPTimes2To16AndScaleIsFp32) {
  EXPECT_EQ(make_dropout_rule(0.0f).threshold, 0u);
  EXPECT_EQ(make_dropout_rule(0.0f).scale, 1.0f);
  EXPECT_EQ(make_dropout_rule(1.0f).threshold, 65536u);
  EXPECT_EQ(make_dropout_rule(1.0f).scale, 0.0f);
  EXPECT_EQ(make_dropout_rule(0.5f).threshold, 32768u);
  EXPECT_EQ(make_dropout_rule(0.5f).scale, 2.0f);
  EXPECT_EQ(make_dropout_rule(0.1f).scale, static_cast<float>(1.0 / (1.0 - 0.1f)));
  // 0.1f * 2^16 = 6553.6000977: not an integer, rounded up.
  EXPECT_EQ(make_dropout_rule(0.1f).threshold, 6554u);
  EXPECT_EQ(make_dropout_rule(std::nextafter(1.0f, 0.0f)).threshold, 65536u)
      << "p within 2^-16 of 1 drops every element";
  EXPECT_EQ(make_dropout_rule(std::nextafter(0.0f, 1.0f)).threshold, 1u)
      << "any p > 0 drops the draw 0";
  EXPECT_FALSE(make_dropout_rule(1.0f).keeps(0xffffu));
  EXPECT_TRUE(make_dropout_rule(0.0f).keeps(0u));
  EXPECT_FALSE(make_dropout_rule(0.1f).keeps(6553u));
  EXPECT_TRUE(make_dropout_rule(0.1f).keeps(6554u));
}

TEST(DropoutRule, ReferenceAgreesWithTheEngineDecision) {
  for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
    const Dropout d{p, 31337, 5};
    const DropoutRule rule = make_dropout_rule(p);
    const RandomStream s{d.seed, d.offset};
    for (uint64_t e = 0; e < 2000; ++e)
      ASSERT_EQ(reference::dropout_keeps(d, e), rule.keeps(s.draw(e))) << "p=" << p << " e=" << e;
    EXPECT_EQ(reference::dropout_scale(p), static_cast<double>(rule.scale));
  }
}

// The kept fraction of n = 2^20 elements is 1 - p within 6 standard
// deviations (sqrt(n p (1-p))), for several seeds and offsets; the same
// (seed, offset) gives the same mask.
TEST(DropoutRule, KeptFractionWithinStatisticalBound) {
  const int64_t n = int64_t{1} << 20;
  for (float p : {0.1f, 0.5f, 0.9f})
    for (uint64_t seed : {uint64_t{0}, uint64_t{20260101}})
      for (uint64_t offset : {uint64_t{0}, uint64_t{12345}}) {
        const DropoutRule rule = make_dropout_rule(p);
        const RandomStream s{seed, offset};
        int64_t kept = 0;
        for (int64_t e = 0; e < n; ++e) kept += rule.keeps(s.draw(static_cast<uint64_t>(e)));
        const double q = rule.threshold / 65536.0;  // p rounded up to a multiple of 2^-16
        const double expected = n * (1.0 - q);
        const double sigma = std::sqrt(n * q * (1.0 - q));
        EXPECT_LE(std::fabs(kept - expected), 6 * sigma)
            << "p=" << p << " seed=" << seed << " offset=" << offset << ": kept " << kept;
      }
}

TEST(DropoutRule, MasksAreDeterministicAndOffsetsIndependent) {
  const int64_t n = 1 << 16;
  const DropoutRule rule = make_dropout_rule(0.5f);
  int64_t agree = 0;
  for (int64_t e = 0; e < n; ++e) {
    const auto u = static_cast<uint64_t>(e);
    const bool a = rule.keeps(RandomStream{9, 100}.draw(u));
    ASSERT_EQ(a, rule.keeps(RandomStream{9, 100}.draw(u)));
    agree += a == rule.keeps(RandomStream{9, 101}.draw(u));
  }
  // Independent masks agree on half the elements: within 6 sigma of n/2.
  EXPECT_LE(std::fabs(agree - n / 2.0), 6 * std::sqrt(n * 0.25));
}

// ---------------------------------------------------------------- rrelu slopes

TEST(RreluSlope, InRangeWithTheUniformMeanAndMatchingTheReference) {
  const Rrelu r{1.0f / 8.0f, 1.0f / 3.0f, true, 77, 3};
  const RandomStream s{r.seed, r.offset};
  const int64_t n = 1 << 18;
  double sum = 0, sum_sq = 0;
  int64_t below_mid = 0;
  for (int64_t e = 0; e < n; ++e) {
    const auto u = static_cast<uint64_t>(e);
    const float slope = rrelu_slope(r.lower, r.upper, s.draw(u));
    ASSERT_GE(slope, r.lower);
    ASSERT_LE(slope, r.upper);
    ASSERT_EQ(static_cast<double>(slope), reference::rrelu_slope(r, u)) << "e=" << e;
    sum += slope;
    sum_sq += static_cast<double>(slope) * slope;
    below_mid += slope < (r.lower + r.upper) / 2;
  }
  const double width = static_cast<double>(r.upper) - r.lower;
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  const double sigma_mean = width / std::sqrt(12.0 * n);
  EXPECT_NEAR(mean, (static_cast<double>(r.lower) + r.upper) / 2, 6 * sigma_mean);
  EXPECT_NEAR(var, width * width / 12, 0.01 * width * width / 12);
  EXPECT_LE(std::fabs(below_mid - n / 2.0), 6 * std::sqrt(n * 0.25));
}

TEST(RreluSlope, EvalIsTheMidpointInFp32AndExtremesClamp) {
  Rrelu r;
  EXPECT_EQ(reference::rrelu_slope(r, 5),
            static_cast<double>(static_cast<float>((1.0 / 8 + 1.0 / 3) / 2)));
  EXPECT_EQ(rrelu_slope(0.25f, 0.25f, 0xffffu), 0.25f);
  EXPECT_EQ(rrelu_slope(-1.0f, 2.0f, 0u), -1.0f);
  EXPECT_EQ(rrelu_slope(0.0f, 1.0f, 0x8000u), 0.5f);
  EXPECT_LE(rrelu_slope(0.1f, 0.3f, 0xffffu), 0.3f);
}

}  // namespace
}  // namespace cuact::detail
