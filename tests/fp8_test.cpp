// The fp8 formats (cuact/fp8.h): the reference's rounding, encoding and
// decoding (host/reference.cpp, written from the formats' definitions) against
// hand-worked values, and the device conversions (cuact/device/fp8.cuh, run on
// the host) bit for bit against the reference: every fp16 and bf16 value, a
// dense fp32 set holding every rounding boundary, and every code's decoding.
// CPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "cuact/device/fp8.cuh"
#include "cuact/reference.h"

namespace {

using cuact::Fp8;
namespace ref = cuact::reference;
namespace dev = cuact::device;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const char* name(Fp8 f) { return f == Fp8::e4m3 ? "e4m3" : "e5m2"; }

// Same value, including the sign of zero; any NaN equals any NaN.
bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

float float_of_bits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
uint32_t bits_of(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

// ------------------------------------------------------------ the reference

struct RoundingCase {
  Fp8 format;
  double v;
  double saturated;    // round_to_fp8(format, v)
  double unsaturated;  // round_to_fp8(format, v, false)
};

TEST(Fp8Reference, RoundsHandWorkedValues) {
  const double up464 = std::nextafter(464.0, kInf), down464 = std::nextafter(464.0, 0.0);
  const double up61440 = std::nextafter(61440.0, kInf), down61440 = std::nextafter(61440.0, 0.0);
  const RoundingCase cases[] = {
      // e4m3: subnormals k 2^-9 (k < 8), smallest normal 2^-6, largest 448 (ulp 32).
      {Fp8::e4m3, 0.0, 0.0, 0.0},
      {Fp8::e4m3, -0.0, -0.0, -0.0},
      {Fp8::e4m3, 0x1p-9, 0x1p-9, 0x1p-9},  // smallest subnormal
      {Fp8::e4m3, 0x1p-10, 0.0, 0.0},       // half of it: tie, to even 0
      {Fp8::e4m3, -0x1p-10, -0.0, -0.0},
      {Fp8::e4m3, std::nextafter(0x1p-10, 1.0), 0x1p-9, 0x1p-9},
      {Fp8::e4m3, 3 * 0x1p-10, 0x1p-8, 0x1p-8},   // tie between codes 1 and 2: 2
      {Fp8::e4m3, 5 * 0x1p-10, 0x1p-8, 0x1p-8},   // tie between codes 2 and 3: 2
      {Fp8::e4m3, 15 * 0x1p-10, 0x1p-6, 0x1p-6},  // tie 7 2^-9 / 2^-6: the smallest normal
      {Fp8::e4m3, 0x1p-6, 0x1p-6, 0x1p-6},
      {Fp8::e4m3, 1.0625, 1.0, 1.0},    // tie 1 / 1.125: 1
      {Fp8::e4m3, 1.1875, 1.25, 1.25},  // tie 1.125 / 1.25: 1.25
      {Fp8::e4m3, std::nextafter(432.0, 0.0), 416.0, 416.0},
      {Fp8::e4m3, 432.0, 448.0, 448.0},  // tie 416 (101) / 448 (110): 448
      {Fp8::e4m3, 448.0, 448.0, 448.0},
      {Fp8::e4m3, 456.0, 448.0, 448.0},
      {Fp8::e4m3, down464, 448.0, 448.0},
      {Fp8::e4m3, 464.0, 448.0, 448.0},  // tie 448 (110) / 480 (no code): 448
      {Fp8::e4m3, -464.0, -448.0, -448.0},
      {Fp8::e4m3, up464, 448.0, kNaN},  // overflow
      {Fp8::e4m3, 480.0, 448.0, kNaN},
      {Fp8::e4m3, -500.0, -448.0, kNaN},
      {Fp8::e4m3, 1e300, 448.0, kNaN},
      {Fp8::e4m3, kInf, 448.0, kNaN},
      {Fp8::e4m3, -kInf, -448.0, kNaN},
      {Fp8::e4m3, kNaN, kNaN, kNaN},
      {Fp8::e4m3, -kNaN, kNaN, kNaN},
      // e5m2: subnormals k 2^-16 (k < 4), smallest normal 2^-14, largest 57344 (ulp 8192).
      {Fp8::e5m2, -0.0, -0.0, -0.0},
      {Fp8::e5m2, 0x1p-16, 0x1p-16, 0x1p-16},
      {Fp8::e5m2, 0x1p-17, 0.0, 0.0},
      {Fp8::e5m2, std::nextafter(0x1p-17, 1.0), 0x1p-16, 0x1p-16},
      {Fp8::e5m2, 3 * 0x1p-17, 0x1p-15, 0x1p-15},  // tie between codes 1 and 2: 2
      {Fp8::e5m2, 7 * 0x1p-17, 0x1p-14, 0x1p-14},  // tie 3 2^-16 / 2^-14: the smallest normal
      {Fp8::e5m2, 0x1p-14, 0x1p-14, 0x1p-14},
      {Fp8::e5m2, 1.125, 1.0, 1.0},            // tie 1 (00) / 1.25 (01): 1
      {Fp8::e5m2, 1.375, 1.5, 1.5},            // tie 1.25 (01) / 1.5 (10): 1.5
      {Fp8::e5m2, 53248.0, 49152.0, 49152.0},  // tie 49152 (10) / 57344 (11): 49152
      {Fp8::e5m2, std::nextafter(53248.0, kInf), 57344.0, 57344.0},
      {Fp8::e5m2, 57344.0, 57344.0, 57344.0},
      {Fp8::e5m2, down61440, 57344.0, 57344.0},
      {Fp8::e5m2, 61440.0, 57344.0, kInf},  // tie 57344 (11) / 2^16 (even): overflow
      {Fp8::e5m2, -61440.0, -57344.0, -kInf},
      {Fp8::e5m2, up61440, 57344.0, kInf},
      {Fp8::e5m2, 1e300, 57344.0, kInf},
      {Fp8::e5m2, kInf, 57344.0, kInf},
      {Fp8::e5m2, -kInf, -57344.0, -kInf},
      {Fp8::e5m2, kNaN, kNaN, kNaN},
  };
  for (const RoundingCase& c : cases) {
    EXPECT_PRED2(same, ref::round_to_fp8(c.format, c.v), c.saturated)
        << name(c.format) << " " << c.v;
    EXPECT_PRED2(same, ref::round_to_fp8(c.format, c.v, false), c.unsaturated)
        << name(c.format) << " " << c.v << " unsaturated";
  }
}

struct CodeCase {
  Fp8 format;
  uint8_t code;
  double value;
};

TEST(Fp8Reference, DecodesHandWorkedCodes) {
  const CodeCase cases[] = {
      {Fp8::e4m3, 0x00, 0.0},        {Fp8::e4m3, 0x80, -0.0},        {Fp8::e4m3, 0x01, 0x1p-9},
      {Fp8::e4m3, 0x07, 7 * 0x1p-9}, {Fp8::e4m3, 0x08, 0x1p-6},      {Fp8::e4m3, 0x38, 1.0},
      {Fp8::e4m3, 0x39, 1.125},      {Fp8::e4m3, 0x3F, 1.875},       {Fp8::e4m3, 0x40, 2.0},
      {Fp8::e4m3, 0x77, 240.0},      {Fp8::e4m3, 0x78, 256.0},       {Fp8::e4m3, 0x7E, 448.0},
      {Fp8::e4m3, 0xFE, -448.0},     {Fp8::e4m3, 0xB8, -1.0},        {Fp8::e4m3, 0x7F, kNaN},
      {Fp8::e4m3, 0xFF, kNaN},       {Fp8::e5m2, 0x00, 0.0},         {Fp8::e5m2, 0x80, -0.0},
      {Fp8::e5m2, 0x01, 0x1p-16},    {Fp8::e5m2, 0x03, 3 * 0x1p-16}, {Fp8::e5m2, 0x04, 0x1p-14},
      {Fp8::e5m2, 0x3C, 1.0},        {Fp8::e5m2, 0x3D, 1.25},        {Fp8::e5m2, 0x3F, 1.75},
      {Fp8::e5m2, 0x40, 2.0},        {Fp8::e5m2, 0x7A, 49152.0},     {Fp8::e5m2, 0x7B, 57344.0},
      {Fp8::e5m2, 0xFB, -57344.0},   {Fp8::e5m2, 0x7C, kInf},        {Fp8::e5m2, 0xFC, -kInf},
      {Fp8::e5m2, 0x7D, kNaN},       {Fp8::e5m2, 0x7E, kNaN},        {Fp8::e5m2, 0x7F, kNaN},
      {Fp8::e5m2, 0xFD, kNaN},       {Fp8::e5m2, 0xFE, kNaN},        {Fp8::e5m2, 0xFF, kNaN},
  };
  for (const CodeCase& c : cases) {
    EXPECT_PRED2(same, ref::fp8_value(c.format, c.code), c.value)
        << name(c.format) << " code 0x" << std::hex << int{c.code};
  }
}

TEST(Fp8Reference, EncodesHandWorkedValues) {
  const struct {
    Fp8 format;
    double v;
    bool saturate;
    uint8_t code;
  } cases[] = {
      {Fp8::e4m3, 448.0, true, 0x7E},    {Fp8::e4m3, -448.0, true, 0xFE},
      {Fp8::e4m3, 1.0, true, 0x38},      {Fp8::e4m3, 0x1p-9, true, 0x01},
      {Fp8::e4m3, 0x1p-6, true, 0x08},   {Fp8::e4m3, -0.0, true, 0x80},
      {Fp8::e4m3, 464.0, false, 0x7E},   {Fp8::e4m3, 465.0, true, 0x7E},
      {Fp8::e4m3, 465.0, false, 0x7F},   {Fp8::e4m3, kInf, true, 0x7E},
      {Fp8::e4m3, -kInf, true, 0xFE},    {Fp8::e4m3, -kInf, false, 0x7F},
      {Fp8::e4m3, kNaN, true, 0x7F},     {Fp8::e4m3, -kNaN, true, 0x7F},
      {Fp8::e5m2, 57344.0, true, 0x7B},  {Fp8::e5m2, 1.0, true, 0x3C},
      {Fp8::e5m2, 0x1p-16, true, 0x01},  {Fp8::e5m2, 0x1p-14, true, 0x04},
      {Fp8::e5m2, -0.0, true, 0x80},     {Fp8::e5m2, 61440.0, true, 0x7B},
      {Fp8::e5m2, 61440.0, false, 0x7C}, {Fp8::e5m2, kInf, true, 0x7B},
      {Fp8::e5m2, kInf, false, 0x7C},    {Fp8::e5m2, -kInf, false, 0xFC},
      {Fp8::e5m2, kNaN, true, 0x7F},     {Fp8::e5m2, -kNaN, false, 0x7F},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(int{ref::fp8_bits(c.format, c.v, c.saturate)}, int{c.code})
        << name(c.format) << " " << c.v << (c.saturate ? "" : " unsaturated");
  }
}

// Every code: NaN exactly for the NaN codes; the others ordered as the
// values, symmetric in sign, fixed points of the rounding, encoding back to
// themselves.
TEST(Fp8Reference, EveryCodeDecodesAndEncodesBack) {
  for (Fp8 f : {Fp8::e4m3, Fp8::e5m2}) {
    int nan_codes = 0;
    double previous = -kInf;
    for (int code = 0; code < 256; ++code) {
      const double v = ref::fp8_value(f, static_cast<uint8_t>(code));
      const bool nan_code = f == Fp8::e4m3 ? (code & 0x7F) == 0x7F : (code & 0x7F) > 0x7C;
      ASSERT_EQ(std::isnan(v), nan_code) << name(f) << " code " << code;
      if (nan_code) {
        ++nan_codes;
        continue;
      }
      if (code < 0x80) {
        EXPECT_GT(v, previous) << name(f) << " code " << code;
        previous = v;
      }
      EXPECT_PRED2(same, ref::fp8_value(f, static_cast<uint8_t>(code ^ 0x80)), -v);
      EXPECT_PRED2(same, ref::round_to_fp8(f, v, false), v) << name(f) << " code " << code;
      EXPECT_EQ(int{ref::fp8_bits(f, v, false)}, code) << name(f);
    }
    EXPECT_EQ(nan_codes, f == Fp8::e4m3 ? 2 : 6) << name(f);
  }
}

// ------------------------------------------- the device code against the reference

template <Fp8 F>
int64_t count_mismatches(const std::vector<float>& inputs, const char* what) {
  int64_t mismatches = 0;
  for (float x : inputs) {
    const int got = dev::to_fp8_satfinite<F>(x), want = ref::fp8_bits(F, x);
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << name(F) << " " << what << ": x = " << x << " (0x" << std::hex << bits_of(x)
                    << "): device 0x" << got << ", reference 0x" << want;
    }
  }
  std::printf("fp8 %s from %s: %zu inputs, %lld mismatches\n", name(F), what, inputs.size(),
              static_cast<long long>(mismatches));
  return mismatches;
}

void expect_both_formats_match(const std::vector<float>& inputs, const char* what) {
  EXPECT_EQ(count_mismatches<Fp8::e4m3>(inputs, what), 0);
  EXPECT_EQ(count_mismatches<Fp8::e5m2>(inputs, what), 0);
}

TEST(Fp8Device, EveryFp16ValueRoundsAsTheReference) {
  std::vector<float> inputs;
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    __half_raw raw;
    raw.x = static_cast<unsigned short>(bits);
    inputs.push_back(__half2float(__half(raw)));
  }
  expect_both_formats_match(inputs, "every fp16");
}

TEST(Fp8Device, EveryBf16ValueRoundsAsTheReference) {
  std::vector<float> inputs;
  for (uint32_t bits = 0; bits < 0x10000; ++bits) inputs.push_back(float_of_bits(bits << 16));
  expect_both_formats_match(inputs, "every bf16");
}

// fp32, both signs, every binade from three below F's smallest subnormal to
// three above its largest finite value's: significands at every multiple of
// 2^-12 (every fp8 midpoint of these binades is one: at most 3 mantissa bits
// plus the half) and one fp32 ulp either side of each. Then every 4099th fp32
// bit pattern (all classes: subnormal, inf, NaN payloads).
template <Fp8 F>
std::vector<float> dense_fp32() {
  const int lowest = std::ilogb(ref::fp8_value(F, 0x01)) - 3;
  const int highest = std::ilogb(ref::fp8_value(F, F == Fp8::e4m3 ? 0x7E : 0x7B)) + 3;
  std::vector<float> inputs;
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (int e = lowest; e <= highest; ++e) {
      for (uint32_t k = 0; k < (1u << 12); ++k) {
        const uint32_t bits = sign | static_cast<uint32_t>(e + 127) << 23 | k << 11;
        for (uint32_t b : {bits - 1, bits, bits + 1}) inputs.push_back(float_of_bits(b));
      }
    }
  }
  for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 4099)
    inputs.push_back(float_of_bits(static_cast<uint32_t>(bits)));
  return inputs;
}

TEST(Fp8Device, DenseFp32SetRoundsAsTheReference) {
  EXPECT_EQ(count_mismatches<Fp8::e4m3>(dense_fp32<Fp8::e4m3>(), "dense fp32"), 0);
  EXPECT_EQ(count_mismatches<Fp8::e5m2>(dense_fp32<Fp8::e5m2>(), "dense fp32"), 0);
}

// The pair form packs the two single conversions, the first in the low byte.
template <Fp8 F>
void expect_pairs_pack_singles() {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float first = float_of_bits(bits << 16);
    const float second = float_of_bits(((bits * 40503u + 1) & 0xFFFFu) << 16);
    const int want = dev::to_fp8_satfinite<F>(first) | dev::to_fp8_satfinite<F>(second) << 8;
    ASSERT_EQ(dev::to_fp8x2_satfinite<F>(first, second), want)
        << name(F) << " " << first << ", " << second;
  }
}

TEST(Fp8Device, PairPacksTheFirstInTheLowByte) {
  expect_pairs_pack_singles<Fp8::e4m3>();
  expect_pairs_pack_singles<Fp8::e5m2>();
  EXPECT_EQ(dev::to_e4m3x2_satfinite(1.0f, -2.0f), 0xC038);
  EXPECT_EQ(dev::to_e5m2x2_satfinite(1.0f, -2.0f), 0xC03C);
}

template <Fp8 F>
void expect_decoding_as_the_reference(float (*decode)(uint8_t)) {
  for (int code = 0; code < 256; ++code) {
    EXPECT_PRED2(same, decode(static_cast<uint8_t>(code)),
                 ref::fp8_value(F, static_cast<uint8_t>(code)))
        << name(F) << " code 0x" << std::hex << code;
  }
}

TEST(Fp8Device, EveryCodeDecodesAsTheReference) {
  expect_decoding_as_the_reference<Fp8::e4m3>(dev::e4m3_to_float);
  expect_decoding_as_the_reference<Fp8::e5m2>(dev::e5m2_to_float);
}

// The codes docs/SPEC.md states for the edge cases (the sweeps above hold them
// too): saturation, the e4m3 tie at 464, NaN as 0x7F whatever its sign.
TEST(Fp8Device, EdgeCasesGiveTheStatedCodes) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  EXPECT_EQ(dev::to_e4m3_satfinite(464.0f), 0x7E);
  EXPECT_EQ(dev::to_e4m3_satfinite(std::nextafter(464.0f, inf)), 0x7E);
  EXPECT_EQ(dev::to_e4m3_satfinite(-inf), 0xFE);
  EXPECT_EQ(dev::to_e4m3_satfinite(nan), 0x7F);
  EXPECT_EQ(dev::to_e4m3_satfinite(-nan), 0x7F);
  EXPECT_EQ(dev::to_e4m3_satfinite(-0.0f), 0x80);
  EXPECT_EQ(dev::to_e5m2_satfinite(61440.0f), 0x7B);
  EXPECT_EQ(dev::to_e5m2_satfinite(inf), 0x7B);
  EXPECT_EQ(dev::to_e5m2_satfinite(-inf), 0xFB);
  EXPECT_EQ(dev::to_e5m2_satfinite(-nan), 0x7F);
}

}  // namespace
