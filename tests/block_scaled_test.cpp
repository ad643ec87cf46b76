// Block-scaled fp8 outputs (cuact/quantized.h's BlockScaledOutput): the
// output stage's scales and codes bit for bit against the reference's
// quantizer (written from the OCP MX definitions) on the same fp32 values,
// over dense block contents and every fp16/bf16 value; the whole calls run
// through the kernels' own code on the host (fused_emulation.h) against
// the same quantizer on the fp32 results; the scale layouts; the argument
// checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_fp4.h>

#include "accuracy.h"
#include "cuact/quantized.h"
#include "cuact/reference.h"
#include "element_io.h"
#include "fused_emulation.h"
#include "output_stage.h"
#include "row_calls.h"

namespace cuact::test {
namespace {

struct Recipe {
  Fp8 format;
  BlockScale type;
  int block;
  Scaling scaling = Scaling::delayed;  // NVFP4: current finds the tensor scale
};

std::vector<Recipe> recipes() {
  std::vector<Recipe> out;
  for (Fp8 f : {Fp8::e4m3, Fp8::e5m2})
    for (BlockScale t : {BlockScale::e8m0, BlockScale::e8m0_floor, BlockScale::f32})
      for (int b : {32, 16, 64, 128}) out.push_back({f, t, b});
  return out;
}
// Every recipe of the calls: the fp8 ones and NVFP4.
std::vector<Recipe> call_recipes() {
  std::vector<Recipe> out = recipes();
  out.push_back({Fp8::e4m3, BlockScale::e4m3, 16});
  out.push_back({Fp8::e4m3, BlockScale::e4m3, 16, Scaling::current});
  return out;
}

std::string name(const Recipe& r) {
  const char* t = r.type == BlockScale::e8m0         ? "e8m0"
                  : r.type == BlockScale::e8m0_floor ? "floor"
                  : r.type == BlockScale::f32        ? "f32"
                                                     : "nvfp4";
  return std::string(r.format == Fp8::e4m3 ? "e4m3" : "e5m2") + "/" + t + "/" + std::to_string(r.block) +
         (r.scaling == Scaling::current ? "/found" : "");
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Codes and scales of [rows, cols] fp32 values through the kernels' code
// on the host (the identity's bias + activation call from f32: its
// results are the values), and through the reference's quantizer; the
// count of codes and scales that differ.
struct Compared {
  int64_t codes = 0, code_mismatches = 0, scales = 0, scale_mismatches = 0;
  std::string first;
};
Compared compare_stage(const Recipe& r, const std::vector<float>& v, int64_t rows, int64_t cols) {
  const int64_t groups = (cols + r.block - 1) / r.block;
  const int entry = r.type == BlockScale::f32 ? 4 : 1;
  std::vector<uint8_t> codes(v.size()), want_codes(v.size());
  std::vector<unsigned char> scales(static_cast<size_t>(rows * groups * entry)),
      want_scales(scales.size());
  float amax = 0, want_amax = 0;
  const BlockScaledOutput y{codes.data(), r.format, r.block, r.type, scales.data(),
                            ScaleLayout::row_major, &amax};
  emulate_fused(detail::block_scaled_request(
                    detail::bias_activation_forward_request(Activation::identity(), DType::f32,
                                                            v.data(), nullptr, DType::f32,
                                                            codes.data(), rows, cols, {}, nullptr),
                    y),
                kH100DeviceBlocks);
  BlockScaledOutput out{want_codes.data(), r.format, r.block, r.type, want_scales.data(),
                        ScaleLayout::row_major, &want_amax};
  EXPECT_TRUE(reference::block_quantize(v.data(), rows, cols, out).ok());
  Compared k;
  for (size_t i = 0; i < codes.size(); ++i) {
    ++k.codes;
    if (codes[i] != want_codes[i] && ++k.code_mismatches == 1)
      k.first = name(r) + " value " + std::to_string(v[i]) + ": code " + std::to_string(codes[i]) +
                ", reference " + std::to_string(want_codes[i]);
  }
  for (size_t g = 0; g < scales.size() / entry; ++g) {
    ++k.scales;
    if (std::memcmp(&scales[g * entry], &want_scales[g * entry], static_cast<size_t>(entry)) != 0 &&
        ++k.scale_mismatches == 1 && k.first.empty())
      k.first = name(r) + " scale of block " + std::to_string(g);
  }
  EXPECT_EQ(amax, want_amax) << name(r);
  return k;
}

// Blocks of `length` whose amax walks every fp32 exponent with the
// significands that decide the scale (1, just below, at and above 1.75,
// the largest), and subnormal, zero, infinite and NaN blocks; the rest of
// each block random below its amax (both signs); rows of two blocks.
std::vector<float> dense_blocks(int length, int64_t* rows) {
  std::vector<float> v;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const uint32_t significands[] = {0, 1, 0x5fffff, 0x600000, 0x600001, 0x7fffff, 0x123456};
  auto block = [&](float amax, float fill_scale) {
    for (int j = 0; j < length; ++j) v.push_back(j == 5 ? -amax : u(rng) * fill_scale);
  };
  for (uint32_t e = 0; e < 255; ++e)
    for (uint32_t m : significands) {
      const float amax = bits_float(e << 23 | m);
      block(amax, amax);
      block(amax, amax * 0x1p-20f);  // the rest far below: subnormal codes, zeros
    }
  block(0.0f, 0.0f);                                        // all zero
  block(INFINITY, 1.0f);                                    // an infinity
  block(1.0f, 1.0f);
  v[v.size() - 3] = NAN;                                    // a NaN among finite values
  block(0x1p-140f, 0x1p-140f);                              // subnormal
  *rows = static_cast<int64_t>(v.size()) / (2 * length);
  return v;
}

TEST(BlockScale, StageMatchesTheReferenceOnDenseBlockContents) {
  int64_t codes = 0, scales = 0;
  for (const Recipe& r : recipes()) {
    const int length = std::max(32, r.block);  // blocks of 16: the designed block's two halves
    int64_t rows = 0;
    const std::vector<float> v = dense_blocks(length, &rows);
    const Compared k = compare_stage(r, v, rows, 2 * length);
    EXPECT_EQ(k.code_mismatches, 0) << k.first;
    EXPECT_EQ(k.scale_mismatches, 0) << k.first;
    codes += k.codes;
    scales += k.scales;
  }
  RecordProperty("codes", std::to_string(codes));
  RecordProperty("scales", std::to_string(scales));
}

// Every fp16 and bf16 value as an element (identity's results), in order
// and shuffled, blocks of 32 and 16, every recipe; partial last blocks.
TEST(BlockScale, StageMatchesTheReferenceOnEveryHalfValue) {
  for (DType dtype : {DType::f16, DType::bf16}) {
    std::vector<float> v;
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      const uint32_t word = bits;  // little-endian: the 16-bit value first
      v.push_back(static_cast<float>(detail::load_element(dtype, &word, 0)));
    }
    std::vector<float> shuffled = v;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(11));
    for (const Recipe& r : recipes()) {
      for (const auto* values : {&v, &shuffled}) {
        const Compared k = compare_stage(r, *values, 512, 128);
        EXPECT_EQ(k.code_mismatches, 0) << dtype_name(dtype) << " " << k.first;
        EXPECT_EQ(k.scale_mismatches, 0) << dtype_name(dtype) << " " << k.first;
      }
      const std::vector<float> part(v.begin(), v.begin() + 100 * 77);  // rows of 77: partial blocks
      const Compared k = compare_stage(r, part, 100, 77);
      EXPECT_EQ(k.code_mismatches + k.scale_mismatches, 0) << dtype_name(dtype) << " " << k.first;
    }
  }
}

// NVFP4: packed codes and e4m3 scales of [rows, cols] fp32 values (cols
// even) through the stage in chunks of 16, and through the reference, with
// tensor scale t; mismatching bytes (codes and scales).
int64_t nvfp4_mismatches(const std::vector<float>& v, int64_t rows, int64_t cols, float t,
                         std::string* first) {
  const int64_t groups = (cols + 15) / 16;
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols / 2)), want(codes.size());
  std::vector<uint8_t> scales(static_cast<size_t>(rows * groups)), want_scales(scales.size());
  float amax = 0, want_amax = 0;
  detail::QuantizedStore q;
  q.block = 16;
  q.scale_type = BlockScale::e4m3;
  q.scales = scales.data();
  q.scale_rows = rows;
  q.scale_groups = groups;
  q.tensor_scale = &t;
  const auto stage = detail::OutputStage<detail::BlockCode4>::make(q);
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t col = 0; col < cols; col += 16) {
      float y[16] = {};
      const int count = static_cast<int>(std::min<int64_t>(16, cols - col));
      for (int j = 0; j < count; ++j) y[j] = v[static_cast<size_t>(row * cols + col + j)];
      const auto c = stage.chunk(y, count, row, col, amax);
      std::memcpy(&codes[static_cast<size_t>((row * cols + col) / 2)], c.w, static_cast<size_t>(count / 2));
    }
  const BlockScaledOutput out = BlockScaledOutput::nvfp4(want.data(), want_scales.data(), &t);
  BlockScaledOutput with_amax = out;
  with_amax.amax = &want_amax;
  EXPECT_TRUE(reference::block_quantize(v.data(), rows, cols, with_amax).ok());
  EXPECT_EQ(amax, want_amax);
  int64_t bad = 0;
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] != want[i] && ++bad == 1)
      *first = "t " + std::to_string(t) + " values " + std::to_string(v[2 * i]) + ", " +
               std::to_string(v[2 * i + 1]) + ": byte " + std::to_string(codes[i]) + ", reference " +
               std::to_string(want[i]);
  for (size_t i = 0; i < scales.size(); ++i)
    if (scales[i] != want_scales[i] && ++bad == 1) *first = "t " + std::to_string(t) + " scale " + std::to_string(i);
  return bad;
}

TEST(BlockScale, Nvfp4StageMatchesTheReference) {
  int64_t rows = 0;
  const std::vector<float> dense = dense_blocks(32, &rows);
  std::vector<float> halves;
  for (DType dtype : {DType::f16, DType::bf16})
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      const uint32_t word = bits;
      halves.push_back(static_cast<float>(detail::load_element(dtype, &word, 0)));
    }
  // Tensor scales: the usual amax / (448 * 6) of a few amaxes, 1, tiny and
  // huge ones, and those read as 1 (0, negative, inf, NaN).
  for (float t : {1.0f, 3.0f / 2688.0f, 65504.0f / 2688.0f, 1e-30f, 1e30f, 0.0f, -2.0f, INFINITY, NAN}) {
    std::string first;
    EXPECT_EQ(nvfp4_mismatches(dense, rows, 64, t, &first), 0) << first;
    EXPECT_EQ(nvfp4_mismatches(halves, 2048, 64, t, &first), 0) << first;
    const std::vector<float> part(halves.begin(), halves.begin() + 100 * 78);  // a partial block
    EXPECT_EQ(nvfp4_mismatches(part, 100, 78, t, &first), 0) << first;
  }
}

// NVFP4's tensor scale found from the results (Scaling::current): the
// reference's rule and the scale step's on the amaxes that decide it.
TEST(BlockScale, Nvfp4TensorScaleFound) {
  struct Case {
    float value, t;
  };
  const Case cases[] = {
      {2688.0f, 1.0f},         {6.0f, 6.0f / 2688.0f},     {-448.0f, 448.0f / 2688.0f},
      {0.0f, 1.0f},            {INFINITY, 1.0f},           {NAN, 1.0f},  // NaN excluded: amax 0
      {1e-38f, 0x1p-126f},     {3.0e38f, 3.0e38f / 2688.0f},
  };
  for (const Case& c : cases) {
    std::vector<float> v(32, 0.0f);
    v[3] = c.value;
    std::vector<uint8_t> codes(16), scales(2);
    float t = -1, amax = -1;
    ASSERT_TRUE(reference::block_quantize(v.data(), 1, 32,
                                          BlockScaledOutput::nvfp4_current(codes.data(), scales.data(), &t, &amax))
                    .ok());
    EXPECT_EQ(t, c.t) << c.value;
    EXPECT_EQ(detail::nvfp4_tensor_scale(amax), c.t) << c.value;
  }
}

// e2m1 against CUDA's own host conversion (cuda_fp4.h, independent of
// both cuact's and the reference's): every fp16 value, and fp32 values
// around each code's rounding boundaries.
TEST(BlockScale, E2m1CodesMatchCudasConversion) {
  std::vector<float> v;
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint32_t word = bits;
    v.push_back(static_cast<float>(detail::load_element(DType::f16, &word, 0)));
  }
  for (float b : {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 0.0f})
    for (float s : {1.0f, -1.0f})
      for (int k = -3; k <= 3; ++k) {
        float x = b;
        for (int i = 0; i < std::abs(k); ++i) x = std::nextafter(x, k < 0 ? 0.0f : 100.0f);
        v.push_back(s * x);
      }
  int64_t bad = 0;
  for (float x : v)
    bad += detail::e2m1_code(x) != __nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundNearest);
  EXPECT_EQ(bad, 0);
}

TEST(BlockScale, ScaleLayouts) {
  using detail::scale_index;
  EXPECT_EQ(scale_index(ScaleLayout::row_major, 3, 2, 10, 5), 17);
  EXPECT_EQ(scale_index(ScaleLayout::column_major, 3, 2, 10, 5), 23);
  // Swizzled: (r % 32) * 16 + (r % 128) / 32 * 4 + g % 4 in tiles of 512,
  // tiles row-major over (r / 128, g / 4).
  const ScaleLayout s = ScaleLayout::swizzled_128x4;
  EXPECT_EQ(scale_index(s, 0, 0, 256, 8), 0);
  EXPECT_EQ(scale_index(s, 0, 1, 256, 8), 1);
  EXPECT_EQ(scale_index(s, 1, 0, 256, 8), 16);
  EXPECT_EQ(scale_index(s, 32, 0, 256, 8), 4);
  EXPECT_EQ(scale_index(s, 127, 3, 256, 8), 31 * 16 + 3 * 4 + 3);
  EXPECT_EQ(scale_index(s, 0, 4, 256, 8), 512);
  EXPECT_EQ(scale_index(s, 128, 0, 256, 8), 1024);
  EXPECT_EQ(detail::scale_entries(s, 130, 5), 256 * 8);
  // DeepGEMM's packed UE8M0: int32 words [groups / 4][rows padded to 4], block 4k low.
  const ScaleLayout p = ScaleLayout::column_major_packed;
  EXPECT_EQ(scale_index(p, 0, 0, 6, 5), 0);
  EXPECT_EQ(scale_index(p, 0, 3, 6, 5), 3);
  EXPECT_EQ(scale_index(p, 1, 0, 6, 5), 4);
  EXPECT_EQ(scale_index(p, 5, 2, 6, 5), 22);
  EXPECT_EQ(scale_index(p, 0, 4, 6, 5), 32);  // the next word column: 8 padded rows of 4 bytes
  EXPECT_EQ(scale_index(p, 5, 4, 6, 5), 52);
  EXPECT_EQ(detail::scale_entries(p, 6, 5), 8 * 8);
  // Every entry of a swizzled matrix is hit once.
  std::vector<int> hits(static_cast<size_t>(detail::scale_entries(s, 256, 8)));
  for (int64_t r = 0; r < 256; ++r)
    for (int64_t g = 0; g < 8; ++g) ++hits[static_cast<size_t>(scale_index(s, r, g, 256, 8))];
  for (int h : hits) EXPECT_EQ(h, 1);
}

// A bias + activation or GLU call through the kernels' code on the host
// (fused_emulation.h), and the fp32 results the kernel computes from the
// same inputs (the f32 kernels' code on the inputs widened, exactly), which
// the reference's quantizer turns into the expected codes and scales.
struct Call {
  DType dtype;
  Activation act;
  bool glu;
  int64_t rows, cols;  // cols: the output's (GLU: d)
  size_t shift;        // the inputs' misalignment in elements
};

void run_call(const Call& call, const Recipe& r, ScaleLayout layout) {
  const int64_t in_cols = call.glu ? 2 * call.cols : call.cols, n = call.rows * in_cols;
  std::vector<double> x(static_cast<size_t>(n)), bias(static_cast<size_t>(call.cols));
  std::mt19937 rng(static_cast<uint32_t>(call.rows * 131 + call.cols));
  std::normal_distribution<double> normal(0.0, 3.0);
  for (double& v : x) v = reference::round_to(call.dtype, normal(rng));
  for (double& v : bias) v = reference::round_to(call.dtype, normal(rng) * 0.1);
  const size_t es = dtype_size(call.dtype);
  std::vector<unsigned char> xb(static_cast<size_t>(n) * es + 64), bb(bias.size() * es + 64);
  unsigned char* xp = xb.data() + (16 - reinterpret_cast<std::uintptr_t>(xb.data()) % 16) % 16 + call.shift * es;
  const auto xv = to_buffer(call.dtype, x), bv = to_buffer(call.dtype, bias);
  std::memcpy(xp, xv.data(), xv.size());
  std::memcpy(bb.data(), bv.data(), bv.size());
  const int64_t groups = (call.cols + r.block - 1) / r.block;
  const int entry = r.type == BlockScale::f32 ? 4 : 1;
  const size_t entries = static_cast<size_t>(detail::scale_entries(layout, call.rows, groups));
  const bool fp4 = r.type == BlockScale::e4m3;
  std::vector<uint8_t> codes(static_cast<size_t>(call.rows * call.cols / (fp4 ? 2 : 1))), want(codes.size());
  std::vector<unsigned char> scales(entries * entry + 4, 0xAB), want_scales(scales.size(), 0xAB);
  float amax = -1, want_amax = -1;
  // NVFP4's tensor scale: given, or found (written by both sides).
  const bool found = r.scaling == Scaling::current;
  float tensor_scale = found ? -1.0f : 5.0f / 2688.0f, want_tensor_scale = tensor_scale;
  BlockScaledOutput y{codes.data(), r.format, r.block, r.type, scales.data(), layout, &amax,
                      &tensor_scale, r.scaling};
  const void* bias_ptr = call.glu ? nullptr : bb.data();
  detail::RowRequest req =
      call.glu ? detail::glu_forward_request(Glu::swiglu(), call.dtype, xp, codes.data(), call.rows, call.cols)
               : detail::bias_activation_forward_request(call.act, call.dtype, xp, bias_ptr, call.dtype,
                                                         codes.data(), call.rows, call.cols, {}, nullptr);
  emulate_fused(detail::block_scaled_request(req, y), kH100DeviceBlocks);
  // The fp32 results: the f32 kernels' code on the widened inputs.
  const auto x32 = to_buffer(DType::f32, x), b32 = to_buffer(DType::f32, bias);
  std::vector<float> results(static_cast<size_t>(call.rows * call.cols));
  detail::RowRequest plain =
      call.glu ? detail::glu_forward_request(Glu::swiglu(), DType::f32, x32.data(), results.data(),
                                             call.rows, call.cols)
               : detail::bias_activation_forward_request(call.act, DType::f32, x32.data(), b32.data(),
                                                         DType::f32, results.data(), call.rows,
                                                         call.cols, {}, nullptr);
  emulate_fused(plain, kH100DeviceBlocks);
  BlockScaledOutput expected{want.data(), r.format, r.block, r.type, want_scales.data(), layout,
                             &want_amax, &want_tensor_scale, r.scaling};
  ASSERT_TRUE(reference::block_quantize(results.data(), call.rows, call.cols, expected).ok());
  const std::string what = name(r) + " " + dtype_name(call.dtype) + " " + describe(call.act) +
                           (call.glu ? " glu" : " bias") + " [" + std::to_string(call.rows) + ", " +
                           std::to_string(call.cols) + "] shift " + std::to_string(call.shift) +
                           " layout " + std::to_string(static_cast<int>(layout));
  int64_t bad = 0;
  for (size_t i = 0; i < codes.size(); ++i) bad += codes[i] != want[i];
  EXPECT_EQ(bad, 0) << what;
  EXPECT_EQ(scales, want_scales) << what;  // padding (0xAB) untouched on both sides
  EXPECT_EQ(amax, want_amax) << what;
  EXPECT_EQ(tensor_scale, want_tensor_scale) << what;
  if (found) {
    EXPECT_EQ(tensor_scale, detail::nvfp4_tensor_scale(amax)) << what;
  }
}

TEST(BlockScaled, EmulatedCallsMatchTheReferencesQuantizer) {
  const std::vector<Call> calls = {
      {DType::bf16, Activation::gelu(), false, 9, 256, 0},  // vector path
      {DType::f16, Activation::silu(), false, 5, 100, 0},   // a partial last block
      {DType::f32, Activation::identity(), false, 7, 64, 1},  // misaligned: element by element
      {DType::bf16, Activation::relu(), false, 3, 16, 0},
      {DType::f32, Activation::gelu(), true, 6, 96, 0},     // GLU, vector path
      {DType::bf16, Activation::silu(), true, 4, 40, 0},    // GLU, odd halves
      {DType::f16, Activation::hardswish(), false, 130, 160, 0},  // past one swizzle tile
  };
  for (const Call& call : calls)
    for (const Recipe& r : call_recipes())
      for (ScaleLayout layout : {ScaleLayout::row_major, ScaleLayout::column_major,
                                 ScaleLayout::swizzled_128x4, ScaleLayout::column_major_packed}) {
        if (layout != ScaleLayout::row_major && r.format == Fp8::e5m2) continue;
        if (layout == ScaleLayout::column_major_packed && r.type == BlockScale::f32) continue;
        run_call(call, r, layout);
      }
}

// The whole pipeline against the reference's double results: every code
// within one fp8 step of the correctly rounded one (the scales may differ
// where the fp32 amax and the exact one fall on either side of a power of two).
TEST(BlockScaled, ReferencePipelineAgreesWithTheFp32Quantizer) {
  const int64_t rows = 8, cols = 256;
  std::vector<double> x(static_cast<size_t>(rows * cols));
  std::mt19937 rng(3);
  std::normal_distribution<double> normal(0.0, 2.0);
  for (double& v : x) v = reference::round_to(DType::bf16, normal(rng));
  const auto xb = to_buffer(DType::bf16, x);
  std::vector<uint8_t> codes(x.size());
  std::vector<uint8_t> scales(static_cast<size_t>(rows * cols / 32));
  const BlockScaledOutput y = BlockScaledOutput::mxfp8(codes.data(), scales.data());
  ASSERT_TRUE(reference::bias_activation_forward(Activation::gelu(), DType::bf16, xb.data(), nullptr,
                                                 DType::bf16, y, rows, cols)
                  .ok());
  for (size_t i = 0; i < codes.size(); ++i) {
    const double s = std::ldexp(1.0, scales[i / 32] - 127);
    const double got = reference::fp8_value(Fp8::e4m3, codes[i]) * s;
    const double exact = reference::forward(Activation::gelu(), x[i]);
    EXPECT_LE(std::fabs(got - exact), 0.0625 * std::fabs(exact) + 0x1p-9 * s) << i;
  }
}

TEST(BlockScaledArguments, RefusedWithTheirStatus) {
  alignas(16) float x[256] = {};
  alignas(16) uint8_t codes[256] = {};
  alignas(16) unsigned char scales[64] = {};
  auto call = [&](BlockScaledOutput y, int64_t rows = 2, int64_t cols = 64) {
    return reference::bias_activation_forward(Activation::relu(), DType::f32, x, nullptr, DType::f32,
                                              y, rows, cols)
        .code();
  };
  const BlockScaledOutput ok = BlockScaledOutput::mxfp8(codes, scales);
  EXPECT_EQ(call(ok), StatusCode::success);
  BlockScaledOutput b = ok;
  b.block = 8;
  EXPECT_EQ(call(b), StatusCode::invalid_parameter);
  b = ok;
  b.scales = nullptr;
  EXPECT_EQ(call(b), StatusCode::null_pointer);
  b = ok;
  b.data = nullptr;
  EXPECT_EQ(call(b), StatusCode::null_pointer);
  b = ok;
  b.scale_type = BlockScale::f32;
  b.scales = scales + 1;
  EXPECT_EQ(call(b), StatusCode::misaligned_pointer);
  b = ok;
  b.data = x;  // the codes over the input
  EXPECT_EQ(call(b), StatusCode::overlapping_buffers);
  b = ok;
  b.scales = codes + 8;  // the scales over the codes
  EXPECT_EQ(call(b), StatusCode::overlapping_buffers);
  b = ok;
  b.scale_layout = static_cast<ScaleLayout>(9);
  EXPECT_EQ(call(b), StatusCode::invalid_parameter);
  b = ok;
  b.scale_type = BlockScale::f32;  // 4-byte scales do not pack
  b.scale_layout = ScaleLayout::column_major_packed;
  EXPECT_EQ(call(b), StatusCode::invalid_parameter);
  b = ok;
  b.block = 128;  // a block of 128 takes fp8 codes only
  b.scale_type = BlockScale::e4m3;
  EXPECT_EQ(call(b), StatusCode::invalid_parameter);
  b = ok;
  b.block = 64;
  EXPECT_EQ(call(b), StatusCode::success);
  // NVFP4's tensor scale found by a first pass: the amax word is required,
  // the tensor scale is written; fp8 blocks have nothing to find.
  alignas(16) float words[4] = {};
  b = BlockScaledOutput::nvfp4_current(codes, scales, &words[0], &words[1]);
  EXPECT_EQ(call(b), StatusCode::success);
  b.amax = nullptr;
  EXPECT_EQ(call(b), StatusCode::null_pointer);
  b.amax = &words[0];  // the amax over the tensor scale
  EXPECT_EQ(call(b), StatusCode::overlapping_buffers);
  b = ok;
  b.scaling = Scaling::current;
  EXPECT_EQ(call(b), StatusCode::invalid_parameter);
  size_t bytes = 0;
  b = ok;
  b.scale_layout = ScaleLayout::swizzled_128x4;
  ASSERT_TRUE(block_scales_size(b, 130, 100, &bytes).ok());
  EXPECT_EQ(bytes, size_t{256 * 4});
  b.scale_type = BlockScale::f32;
  ASSERT_TRUE(block_scales_size(b, 2, 64, &bytes).ok());
  EXPECT_EQ(bytes, size_t{128 * 4 * 4});
  // The device entry points check the same way before any launch.
  EXPECT_EQ(bias_activation_forward(Activation::relu(), DType::f32, x, nullptr, DType::f32,
                                    BlockScaledOutput::mxfp8(codes, nullptr), 2, 64)
                .code(),
            StatusCode::null_pointer);
}

}  // namespace
}  // namespace cuact::test
