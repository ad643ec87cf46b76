// Quantized (fp8) outputs on the CPU:
// - accuracy: every activation, direction, format and a range of scales
//   over every fp16 and bf16 input, the functors and the output stage run
//   on the host as the kernels run them, judged against the double
//   reference (quantized_accuracy.h);
// - the engine: whole calls through the row engine's emulator (every block
//   and thread, heads, tails, misaligned rows, bias, GLU, dropout, dbias,
//   both recipes) give the codes of the output stage applied to the fp32
//   path's results, bit for bit, and the amax of those results;
// - bad input: each refusal by name, before anything runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "accuracy.h"
#include "cuact/quantized.h"
#include "cuact/reference.h"
#include "fused_emulation.h"
#include "output_stage.h"
#include "quantized_accuracy.h"
#include "row_calls.h"

namespace cuact {
namespace {

using test::QuantizedReport;

const char* format_name(Fp8 f) { return f == Fp8::e4m3 ? "e4m3" : "e5m2"; }

// Scales: 1, a delayed-scaling value (448 / 6), a small and a large power of
// two, and one that makes typical results subnormal in the format.
std::vector<float> test_scales(Fp8 format) {
  const float largest = format == Fp8::e4m3 ? 448.0f : 57344.0f;
  return {1.0f, largest / 6.0f, 0.125f, 64.0f, format == Fp8::e4m3 ? 0x1p-8f : 0x1p-15f};
}

TEST(QuantizedAccuracy, EveryActivationEveryHalfInput) {
  QuantizedReport total[2];
  for (DType dtype : {DType::f16, DType::bf16}) {
    const std::vector<double>& grid = test::test_inputs(dtype);
    for (const Activation& act : test::test_activations()) {
      for (Direction direction :
           {Direction::forward, Direction::backward, Direction::backward_from_output}) {
        if (direction == Direction::backward_from_output && !has_backward_from_output(act)) continue;
        std::vector<double> in(grid.size()), dy(grid.size()), exact(grid.size());
        for (size_t i = 0; i < grid.size(); ++i) {
          in[i] = test::direction_input(act, dtype, direction, grid[i]);
          dy[i] = direction == Direction::forward ? 0.0 : test::test_gradient(static_cast<int64_t>(i));
          exact[i] = direction == Direction::forward ? reference::forward(act, in[i])
                     : direction == Direction::backward
                         ? reference::backward(act, in[i], dy[i])
                         : reference::backward_from_output(act, in[i], dy[i]);
        }
        for (Fp8 format : {Fp8::e4m3, Fp8::e5m2}) {
          for (float scale : test_scales(format)) {
            const std::vector<uint8_t> codes =
                test::quantize_functors_on_host(act, direction, format, scale, in, dy);
            const test::QuantizedJudge judge{act, direction, format, scale};
            QuantizedReport r;
            for (size_t i = 0; i < grid.size(); ++i) judge.record(r, in[i], dy[i], exact[i], codes[i]);
            EXPECT_EQ(r.outside, 0) << test::describe(act) << " " << dtype_name(dtype) << " "
                                    << direction_name(direction) << " " << format_name(format)
                                    << " scale " << scale << ": "
                                    << (r.first_failures.empty() ? "" : r.first_failures[0]);
            total[format == Fp8::e4m3 ? 0 : 1].add(r);
          }
        }
      }
    }
  }
  for (Fp8 format : {Fp8::e4m3, Fp8::e5m2}) {
    const QuantizedReport& t = total[format == Fp8::e4m3 ? 0 : 1];
    std::printf("%s: %lld results, %lld correctly rounded, %lld near a boundary, %lld outside\n",
                format_name(format), static_cast<long long>(t.results),
                static_cast<long long>(t.correctly_rounded), static_cast<long long>(t.near_boundary),
                static_cast<long long>(t.outside));
    EXPECT_GT(t.correctly_rounded, t.results * 99 / 100);  // the rule is not vacuous
  }
}

// The specials through the stage: saturation, NaN, +-0, +-inf, subnormals.
TEST(QuantizedStage, EdgeCases) {
  float amax = 0.0f;
  const detail::OutputStage<detail::Code8> e4m3{1.0f, Fp8::e4m3, true}, e5m2{1.0f, Fp8::e5m2, true};
  EXPECT_EQ(e4m3.one(448.0f, amax).bits, 0x7E);
  EXPECT_EQ(e4m3.one(464.0f, amax).bits, 0x7E);  // the tie past the largest: saturated
  EXPECT_EQ(e4m3.one(1e30f, amax).bits, 0x7E);
  EXPECT_EQ(e4m3.one(-INFINITY, amax).bits, 0xFE);
  EXPECT_EQ(e5m2.one(INFINITY, amax).bits, 0x7B);
  EXPECT_EQ(e5m2.one(-70000.0f, amax).bits, 0xFB);
  EXPECT_EQ(e4m3.one(NAN, amax).bits & 0x7F, 0x7F);
  EXPECT_EQ(e5m2.one(NAN, amax).bits & 0x7F, 0x7F);
  EXPECT_EQ(e4m3.one(0.0f, amax).bits, 0x00);
  EXPECT_EQ(e4m3.one(-0.0f, amax).bits, 0x80);
  EXPECT_EQ(e4m3.one(0x1p-9f, amax).bits, 0x01);   // the smallest subnormal
  EXPECT_EQ(e4m3.one(0x1p-10f, amax).bits, 0x00);  // its half: the tie to even
  EXPECT_EQ(e5m2.one(0x1p-16f, amax).bits, 0x01);
  EXPECT_EQ(amax, INFINITY);  // +-inf results enter the amax; NaN does not
  float finite = 0.0f;
  e4m3.one(NAN, finite);
  e4m3.one(-3.0f, finite);
  EXPECT_EQ(finite, 3.0f);
}

TEST(QuantizedStage, ScaleFromAmax) {
  using detail::scale_from_amax;
  EXPECT_EQ(scale_from_amax(448.0f, Fp8::e4m3, 0, false), 1.0f);
  EXPECT_EQ(scale_from_amax(3.0f, Fp8::e4m3, 0, false), 448.0f / 3.0f);
  EXPECT_EQ(scale_from_amax(3.0f, Fp8::e4m3, 1, false), 448.0f / 3.0f / 2.0f);
  EXPECT_EQ(scale_from_amax(3.0f, Fp8::e4m3, 0, true), 128.0f);  // 149.3 rounded down
  EXPECT_EQ(scale_from_amax(3.0f, Fp8::e5m2, 0, false), 57344.0f / 3.0f);
  for (float bad : {0.0f, NAN, INFINITY})
    EXPECT_EQ(scale_from_amax(bad, Fp8::e4m3, 0, false), 1.0f) << bad;
  EXPECT_EQ(scale_from_amax(1e-45f, Fp8::e4m3, 0, false), 3.40282347e38f);  // overflow: largest
  EXPECT_EQ(scale_from_amax(1e38f, Fp8::e4m3, 64, false), 1.17549435e-38f);  // kept normal
}

// The device's scale step against the reference's rule, bit for bit.
TEST(QuantizedStage, ScaleMatchesTheReference) {
  uint32_t s = 12345;
  for (int i = 0; i < 200000; ++i) {
    s = s * 1664525u + 1013904223u;
    float amax;
    std::memcpy(&amax, &s, 4);
    amax = std::fabs(amax);
    for (Fp8 f : {Fp8::e4m3, Fp8::e5m2})
      for (int margin : {0, 3})
        for (bool pow2 : {false, true}) {
          const float got = detail::scale_from_amax(amax, f, margin, pow2);
          const double want = reference::quantized_scale(f, amax, margin, pow2);
          if (got != want) {
            ADD_FAILURE() << "amax " << amax << " margin " << margin << " pow2 " << pow2 << ": " << got
                          << " vs " << want;
            return;
          }
        }
  }
}

// The reference's calls against the emulated kernels: the codes by the
// accuracy rule (two roundings vs one), amax and the current scale exactly.
TEST(QuantizedReference, AgreesWithTheEmulatedKernels) {
  const int64_t rows = 7, cols = 45, n = rows * cols;
  std::vector<__nv_bfloat16> x(static_cast<size_t>(2 * n));
  uint32_t s = 7;
  for (auto& v : x) {
    s = s * 1664525u + 1013904223u;
    v = device::narrow<__nv_bfloat16>((static_cast<float>(s >> 8) / 16777216.0f - 0.5f) * 10.0f);
  }
  for (Scaling scaling : {Scaling::delayed, Scaling::current}) {
    std::vector<uint8_t> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    float scale_got = 5.0f, scale_want = 5.0f, amax_got = 0, amax_want = 0;
    alignas(16) unsigned char ws[16];
    const QuantizedOutput qg{got.data(), Fp8::e4m3, &scale_got, &amax_got, nullptr, scaling};
    const QuantizedOutput qw{want.data(), Fp8::e4m3, &scale_want, &amax_want, nullptr, scaling};
    const Glu glu = Glu::swiglu();
    test::emulate_fused(detail::quantized_request(
                            detail::glu_forward_request(glu, DType::bf16, x.data(), got.data(), rows, cols), qg, ws, 0),
                        test::kH100DeviceBlocks);
    ASSERT_TRUE(reference::glu_forward(glu, DType::bf16, x.data(), qw, rows, cols).ok());
    // amax: the fp32 results' max vs the exact max rounded to fp32 (within the fp32 bound).
    EXPECT_NEAR(amax_got, amax_want, 4e-7 * amax_want);
    if (amax_got == amax_want) {
      EXPECT_EQ(scale_got, scale_want);
    }
    int differ = 0;
    for (int64_t i = 0; i < n; ++i) differ += got[static_cast<size_t>(i)] != want[static_cast<size_t>(i)];
    EXPECT_LE(differ, n / 50) << "codes off the reference beyond near-boundary cases";
  }
}

// ---------------------------------------------------------------- the engine

// Host buffers of one call: inputs in T (bit patterns of random values in
// [-6, 6], a few specials), the same values in f32 for the reference path.
template <class T>
std::vector<T> values_of(int64_t n, uint32_t seed, bool specials = true) {
  std::vector<T> v(static_cast<size_t>(n));
  uint32_t s = seed;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    float x = (static_cast<float>(s >> 8) / 16777216.0f - 0.5f) * 12.0f;
    if (specials && i % 97 == 5) x = INFINITY;
    if (specials && i % 101 == 7) x = -0.0f;
    v[static_cast<size_t>(i)] = device::narrow<T>(x);
  }
  return v;
}
template <class T>
std::vector<float> widened(const std::vector<T>& v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = device::to_float(v[i]);
  return f;
}

// The oracle of a quantized call: the same call with f32 data and output
// through the emulator (the fp32 functor: exactly the quantized kernels'
// results before the stage), then the stage applied to each result.
struct Expected {
  std::vector<uint8_t> codes;
  float amax = 0.0f;
};
Expected stage_of(const std::vector<float>& y, Fp8 format, float scale) {
  Expected e;
  const detail::OutputStage<detail::Code8> stage{scale, format, true};
  for (float v : y) e.codes.push_back(stage.one(v, e.amax).bits);
  return e;
}

// The GLU/bias/flat forward calls of one dtype, each at several offsets
// (misaligned rows, heads and tails), checked against the f32 path.
template <class T>
void check_forward_calls(Fp8 format, Scaling scaling) {
  const DType dtype = DTypeOf<T>::value;
  const Activation acts[] = {Activation::gelu(), Activation::relu(), Activation::silu()};
  for (const Activation& act : acts) {
    for (int offset : {0, 1, 3}) {
      for (int64_t cols : {int64_t{1}, int64_t{37}, int64_t{64}, int64_t{1031}}) {
        const int64_t rows = cols > 100 ? 3 : 5;
        const int64_t n = rows * cols;
        const std::vector<T> x = values_of<T>(2 * n + 8, static_cast<uint32_t>(cols * 7 + offset));
        const std::vector<T> bias = values_of<T>(cols + 8, 99u);
        const std::vector<float> xf = widened(x), biasf = widened(bias);
        for (int kind = 0; kind < 4; ++kind) {  // flat, bias, GLU, bias + dropout with mask
          const bool glu = kind == 2, with_bias = kind == 1 || kind == 3;
          const Dropout dropout{kind == 3 ? 0.25f : 0.0f, 11, 64, nullptr, nullptr};
          const int64_t out_n = n;
          std::vector<uint8_t> codes(static_cast<size_t>(out_n + 8), 0xAA), mask(static_cast<size_t>(n + 8), 7),
              mask_f(static_cast<size_t>(n + 8), 7);
          std::vector<float> yf(static_cast<size_t>(out_n + 8), NAN);
          float scale = 3.5f, amax = -1.0f, scale_inv = -1.0f;
          alignas(16) unsigned char workspace[32];
          const QuantizedOutput q{codes.data() + offset, format, &scale, &amax, &scale_inv, scaling, 0, false};
          detail::RowRequest plain, quantized;
          const Glu g{act, GatedHalf::first};
          if (glu) {
            plain = detail::glu_forward_request(g, DType::f32, xf.data() + offset, yf.data() + offset, rows, cols);
            quantized = detail::glu_forward_request(g, dtype, x.data() + offset, q.data, rows, cols);
          } else if (kind == 0) {
            plain = detail::activation_request(Direction::forward, act, DType::f32, xf.data() + offset, nullptr,
                                               yf.data() + offset, n);
            quantized = detail::activation_request(Direction::forward, act, dtype, x.data() + offset, nullptr,
                                                   q.data, n);
          } else {
            plain = detail::bias_activation_forward_request(
                act, DType::f32, xf.data() + offset, with_bias ? biasf.data() : nullptr, DType::f32,
                yf.data() + offset, rows, cols, dropout, kind == 3 ? mask_f.data() + offset : nullptr);
            quantized = detail::bias_activation_forward_request(
                act, dtype, x.data() + offset, with_bias ? bias.data() : nullptr, dtype, q.data, rows,
                cols, dropout, kind == 3 ? mask.data() + offset : nullptr);
          }
          for (int64_t blocks : {int64_t{3}, test::kH100DeviceBlocks}) {
            plain.max_blocks = quantized.max_blocks = blocks;
            test::emulate_fused(plain, blocks);
            test::emulate_fused(detail::quantized_request(quantized, q, workspace, 0), blocks);
            const std::vector<float> y(yf.begin() + offset, yf.begin() + offset + out_n);
            const float expected_amax = stage_of(y, format, 1.0f).amax;
            const float used_scale =
                scaling == Scaling::current ? detail::scale_from_amax(expected_amax, format, 0, false) : 3.5f;
            const Expected e = stage_of(y, format, used_scale);
            const std::string where = std::string(dtype_name(dtype)) + " " + test::describe(act) +
                                      " kind " + std::to_string(kind) + " cols " + std::to_string(cols) +
                                      " offset " + std::to_string(offset);
            ASSERT_EQ(0, std::memcmp(e.codes.data(), codes.data() + offset, static_cast<size_t>(out_n))) << where;
            for (int i = 0; i < offset; ++i) ASSERT_EQ(codes[static_cast<size_t>(i)], 0xAA) << where;
            ASSERT_EQ(codes[static_cast<size_t>(offset + out_n)], 0xAA) << where << ": written past the end";
            EXPECT_EQ(amax, expected_amax) << where;
            EXPECT_EQ(scale, used_scale) << where;
            EXPECT_EQ(scale_inv, 1.0f / used_scale) << where;
            if (kind == 3) {
              EXPECT_EQ(0, std::memcmp(mask.data(), mask_f.data(), mask.size())) << where;
            }
            scale = 3.5f;
          }
        }
      }
    }
  }
}

TEST(QuantizedEmulation, ForwardCallsDelayed) {
  check_forward_calls<float>(Fp8::e4m3, Scaling::delayed);
  check_forward_calls<__half>(Fp8::e5m2, Scaling::delayed);
  check_forward_calls<__nv_bfloat16>(Fp8::e4m3, Scaling::delayed);
}

TEST(QuantizedEmulation, ForwardCallsCurrent) {
  check_forward_calls<float>(Fp8::e5m2, Scaling::current);
  check_forward_calls<__half>(Fp8::e4m3, Scaling::current);
  check_forward_calls<__nv_bfloat16>(Fp8::e5m2, Scaling::current);
}

// dact (+ dbias): the codes of the f32 path's dx, and dbias from the
// unquantized products (fp32 sums, the chunk width's order).
template <class T>
void check_backward_calls(Scaling scaling) {
  const DType dtype = DTypeOf<T>::value;
  for (const Activation& act : {Activation::gelu(), Activation::sigmoid()}) {
    for (int64_t cols : {int64_t{5}, int64_t{64}, int64_t{333}}) {
      const int64_t rows = 37, n = rows * cols;
      // (finite values: dbias is compared within a tolerance)
      const std::vector<T> x = values_of<T>(n, 5u, false), dy = values_of<T>(n, 6u, false),
                           bias = values_of<T>(cols, 7u, false);
      const std::vector<float> xf = widened(x), dyf = widened(dy), biasf = widened(bias);
      std::vector<float> dxf(static_cast<size_t>(n)), dbias_f(static_cast<size_t>(cols));
      std::vector<T> dbias(static_cast<size_t>(cols));
      std::vector<uint8_t> codes(static_cast<size_t>(n));
      float scale = 0.75f, amax = -1.0f;
      const int64_t reduction = detail::bias_backward_workspace(dtype, rows, cols);
      std::vector<unsigned char> ws(static_cast<size_t>(reduction + 16)),
          ws_f(static_cast<size_t>(detail::bias_backward_workspace(DType::f32, rows, cols)));
      const QuantizedOutput q{codes.data(), Fp8::e5m2, &scale, scaling == Scaling::current ? nullptr : &amax,
                              nullptr, scaling, 0, true};
      test::emulate_fused(detail::bias_activation_backward_request(act, DType::f32, xf.data(), biasf.data(),
                                                                   DType::f32, dyf.data(), dxf.data(),
                                                                   dbias_f.data(), rows, cols, Dropout{},
                                                                   ws_f.data()),
                          test::kH100DeviceBlocks);
      test::emulate_fused(
          detail::quantized_request(
              detail::bias_activation_backward_request(act, dtype, x.data(), bias.data(), dtype, dy.data(),
                                                       codes.data(), dbias.data(), rows, cols, Dropout{},
                                                       ws.data()),
              q, ws.data(), reduction),
          test::kH100DeviceBlocks);
      const float expected_amax = stage_of(dxf, Fp8::e5m2, 1.0f).amax;
      const float used = scaling == Scaling::current
                             ? detail::scale_from_amax(expected_amax, Fp8::e5m2, 0, true)
                             : 0.75f;
      const std::string where = std::string(dtype_name(dtype)) + " " + test::describe(act) + " cols " +
                                std::to_string(cols);
      EXPECT_EQ(stage_of(dxf, Fp8::e5m2, used).codes, codes) << where;
      if (scaling == Scaling::delayed) {
        EXPECT_EQ(amax, expected_amax) << where;
      }
      EXPECT_EQ(scale, used) << where;
      for (int64_t c = 0; c < cols; ++c) {
        const double want = dbias_f[static_cast<size_t>(c)];
        EXPECT_NEAR(device::to_float(dbias[static_cast<size_t>(c)]), want,
                    1e-5 * rows * 8 + std::fabs(want) * (sizeof(T) == 4 ? 1e-5 : 1e-2))
            << where << " dbias[" << c << "]";
      }
    }
  }
}

TEST(QuantizedEmulation, BackwardCalls) {
  check_backward_calls<float>(Scaling::delayed);
  check_backward_calls<__half>(Scaling::current);
  check_backward_calls<__nv_bfloat16>(Scaling::delayed);
}

// ---------------------------------------------------------------- bad input

TEST(QuantizedArguments, RefusedByName) {
  alignas(16) static unsigned char memory[4096];
  void* x = memory;
  auto* scale = reinterpret_cast<float*>(memory + 1024);
  auto* amax = reinterpret_cast<float*>(memory + 1040);
  const Activation gelu = Activation::gelu();
  auto expect = [](Status s, StatusCode code, const char* detail) {
    EXPECT_EQ(s.code(), code) << s.message();
    EXPECT_STREQ(s.detail(), detail);
  };
  QuantizedOutput q{memory + 512, Fp8::e4m3, scale, amax, nullptr};
  auto forward = [&](const QuantizedOutput& out, Workspace ws = {}) {
    return activation(Direction::forward, gelu, DType::bf16, x, nullptr, out, 100, ws);
  };
  QuantizedOutput no_scale = q;
  no_scale.scale = nullptr;
  expect(forward(no_scale), StatusCode::null_pointer, "scale is null");
  QuantizedOutput no_data = q;
  no_data.data = nullptr;
  expect(forward(no_data), StatusCode::null_pointer, "y is null");
  QuantizedOutput odd_scale = q;
  odd_scale.scale = reinterpret_cast<float*>(memory + 1026);
  expect(forward(odd_scale), StatusCode::misaligned_pointer, "scale is not 4-byte aligned");
  QuantizedOutput in_place = q;
  in_place.data = x;  // codes over the wider input
  expect(forward(in_place), StatusCode::overlapping_buffers, "y overlaps another buffer");
  QuantizedOutput amax_on_scale = q;
  amax_on_scale.amax = scale;
  expect(forward(amax_on_scale), StatusCode::overlapping_buffers, "amax overlaps another buffer");
  QuantizedOutput bad_format = q;
  bad_format.dtype = static_cast<Fp8>(7);
  expect(forward(bad_format), StatusCode::invalid_parameter, "unknown quantized output dtype");
  QuantizedOutput current = q;
  current.scaling = Scaling::current;
  current.amax = nullptr;
  current.margin = 65;
  expect(forward(current), StatusCode::invalid_parameter, "margin must be in [0, 64]");
  current.margin = 0;
  size_t bytes = 0;
  ASSERT_TRUE(quantized_workspace_size(current, &bytes).ok());
  EXPECT_EQ(bytes, 16u);
  expect(forward(current), StatusCode::null_pointer,
         "workspace is null (the reduction needs the size query's bytes)");
  expect(forward(current, Workspace{memory + 2048, 8}), StatusCode::invalid_size,
         "workspace_bytes is smaller than the workspace size query returned");
  expect(forward(current, Workspace{memory + 500, 16}), StatusCode::overlapping_buffers,
         "workspace overlaps another buffer");
  // GLU: y is half of x's width; bias + activation with a bias overlapping y.
  expect(glu_forward(Glu::swiglu(), DType::f16, x, QuantizedOutput{memory + 100, Fp8::e4m3, scale}, 4, 8),
         StatusCode::overlapping_buffers, "y overlaps another buffer");
  expect(bias_activation_forward(gelu, DType::f32, x, memory + 520, DType::f32, q, 2, 8),
         StatusCode::overlapping_buffers, "y overlaps another buffer");
  QuantizedOutput over_dy = q;
  over_dy.data = memory + 3000;
  expect(bias_activation_backward(gelu, DType::f32, x, nullptr, DType::f32, memory + 3000, over_dy,
                                  nullptr, 2, 8),
         StatusCode::overlapping_buffers, "dx overlaps another buffer");
}

}  // namespace
}  // namespace cuact
