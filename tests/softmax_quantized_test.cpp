// The softmax forward with an fp8 output (cuact/quantized.h's
// softmax_forward), run on the host through the kernels' own code with the
// quantized sink (bench/accuracy/softmax_simulation.h), judged code by code
// by the quantized rule (bench/accuracy/quantized_accuracy.h) with the fp32
// softmax's error bound (softmax_accuracy.h at f32): every algorithm, dtype
// and format over rows of many lengths and alignments, the option sets
// (masks, causal, log_softmax, softmin), scales that saturate and that make
// subnormal codes, both recipes; the amax and scale_inv words; and the
// calls' argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "accuracy.h"
#include "cuact/quantized.h"
#include "cuact/reference.h"
#include "output_stage.h"
#include "quantized_accuracy.h"
#include "softmax_accuracy.h"
#include "softmax_simulation.h"

namespace cuact::test {
namespace {

struct QuantizedCase {
  SoftmaxAlgorithm algorithm;
  DType dtype;
  Fp8 format;
};

std::string case_name(const testing::TestParamInfo<QuantizedCase>& info) {
  const QuantizedCase& c = info.param;
  return std::string(softmax_algorithm_name(c.algorithm)) + "_" + dtype_name(c.dtype) +
         (c.format == Fp8::e4m3 ? "_e4m3" : "_e5m2");
}

// Buffers 16-byte aligned plus `shift` bytes.
struct Shifted {
  std::vector<unsigned char> storage;
  unsigned char* data;
  Shifted(size_t bytes, size_t shift) : storage(bytes + 32) {
    const auto base = reinterpret_cast<std::uintptr_t>(storage.data());
    data = storage.data() + (16 - base % 16) % 16 + shift;
  }
};

// Runs one problem with the given recipe and judges every code; returns the
// report. `out_shift`: the codes' misalignment in bytes.
QuantizedReport run_problem(const QuantizedCase& c, const SoftmaxProblem& p, float scale,
                            Scaling scaling, size_t in_shift, size_t out_shift) {
  const auto x = to_buffer(p.dtype, p.in), m = to_buffer(p.dtype, p.mask);
  Shifted xs(x.size(), in_shift), ms(m.size(), in_shift), codes(p.expected.value.size(), out_shift);
  std::memcpy(xs.data, x.data(), x.size());
  if (!m.empty()) std::memcpy(ms.data, m.data(), m.size());
  const Softmax op = p.options.descriptor(p.rows, p.cols, m.empty() ? nullptr : ms.data, p.dtype);
  float words[3] = {scale, -1.0f, -1.0f};  // scale, amax, scale_inv
  QuantizedOutput y{codes.data, c.format, &words[0], &words[1], &words[2], scaling};
  simulate_softmax_quantized(c.algorithm, op, p.dtype, xs.data, y, SoftmaxShape::rows(p.rows, p.cols));
  // The fp32 softmax's error bound on these inputs.
  const SoftmaxExpected e32 =
      expected_softmax(p.options, Direction::forward, DType::f32, p.rows, p.cols, p.in, {}, p.mask);
  QuantizedReport r;
  double exact_max = 0, bound_at_max = 0;
  for (size_t i = 0; i < e32.value.size(); ++i) {
    const double v = e32.value[i];
    if (!judge_code(r, c.format, words[0], v, e32.bound[i], codes.data[i], false) && r.outside <= 5)
      r.first_failures.push_back(p.options.name + " cols " + std::to_string(p.cols) + " scale " +
                                 std::to_string(words[0]) + " element " + std::to_string(i) +
                                 ": exact " + std::to_string(v) + " code " +
                                 std::to_string(codes.data[i]));
    if (!std::isnan(v) && std::fabs(v) > exact_max) {
      exact_max = std::fabs(v);
      bound_at_max = e32.bound[i];
    }
  }
  // amax: the largest |fp32 result|, within the fp32 bound of the exact one
  // (inf where a result is: log_softmax's hidden columns).
  if (std::isinf(exact_max))
    EXPECT_EQ(words[1], INFINITY) << p.options.name;
  else
    EXPECT_NEAR(words[1], exact_max, bound_at_max) << p.options.name;
  EXPECT_EQ(words[2], 1.0f / words[0]) << "scale_inv";
  if (scaling == Scaling::current) {
    EXPECT_EQ(words[0], detail::scale_from_amax(words[1], c.format, 0, false)) << "current scale";
  }
  return r;
}

class QuantizedSoftmax : public testing::TestWithParam<QuantizedCase> {};

TEST_P(QuantizedSoftmax, CodesWithinOneUlpAndCorrectlyRoundedAwayFromBoundaries) {
  const QuantizedCase c = GetParam();
  // Row lengths the algorithm takes, on pack boundaries and off them.
  std::vector<int64_t> widths;
  switch (c.algorithm) {
    case SoftmaxAlgorithm::warp_per_row: widths = {1, 7, 32, 100, 256, 1000}; break;
    case SoftmaxAlgorithm::block_per_row: widths = {1025, 2048, 3001, 16384}; break;
    case SoftmaxAlgorithm::cluster_per_row: widths = {2049, 40000}; break;
    case SoftmaxAlgorithm::streaming: widths = {5, 1500, 9000}; break;
    default: widths = {3, 64, 1000, 20000}; break;
  }
  const float largest = c.format == Fp8::e4m3 ? 448.0f : 57344.0f;
  QuantizedReport total;
  uint64_t seed = 1;
  for (int64_t cols : widths)
    for (size_t o = 0; o < softmax_option_sets().size(); ++o) {
      if (cols > 5000 && o % 3 != 0) continue;  // long rows: three option sets
      const SoftmaxOptions& options = softmax_option_sets()[o];
      const SoftmaxProblem p = make_softmax_problem(options, Direction::forward, c.dtype,
                                                    cols > 5000 ? 3 : 14, cols, seed++);
      // Delayed with scales that saturate log_softmax, keep probabilities in
      // range, and make subnormal codes; off-alignment inputs and codes; the
      // current recipe.
      total.add(run_problem(c, p, largest, Scaling::delayed, 0, 0));
      total.add(run_problem(c, p, 0x1p-12f, Scaling::delayed, dtype_size(c.dtype), 1));
      total.add(run_problem(c, p, 1.0f, Scaling::delayed, 0, 3));
      total.add(run_problem(c, p, 0.0f, Scaling::current, 0, 0));
    }
  EXPECT_EQ(total.outside, 0) << testing::PrintToString(total.first_failures);
  EXPECT_GT(total.results, 0);
  // Nearly every code is the correctly rounded one.
  EXPECT_GE(total.correctly_rounded, total.results - total.results / 100);
  RecordProperty("results", std::to_string(total.results));
  RecordProperty("near_boundary", std::to_string(total.near_boundary));
}

std::vector<QuantizedCase> cases() {
  std::vector<QuantizedCase> out;
  for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::automatic, SoftmaxAlgorithm::warp_per_row,
                             SoftmaxAlgorithm::block_per_row, SoftmaxAlgorithm::cluster_per_row,
                             SoftmaxAlgorithm::streaming})
    for (DType t : {DType::f32, DType::f16, DType::bf16})
      for (Fp8 f : {Fp8::e4m3, Fp8::e5m2}) out.push_back({a, t, f});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Algorithms, QuantizedSoftmax, testing::ValuesIn(cases()), case_name);

// The middle dimension of [outer, dim, inner]: packs of inner positions and
// single ones, against the reference's codes at the same scale.
TEST(QuantizedSoftmaxMiddle, MatchesTheReferencesCodes) {
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (int64_t inner : {int64_t{5}, int64_t{16}}) {
      const int64_t outer = 3, dim = 37, n = outer * dim * inner;
      std::vector<double> xv(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) xv[i] = reference::round_to(dtype, std::sin(0.37 * i) * 6.0);
      const auto x = to_buffer(dtype, xv);
      std::vector<uint8_t> got(n), want(n);
      float g[3] = {448.0f, 0, 0}, w[3] = {448.0f, 0, 0};
      const SoftmaxShape shape = SoftmaxShape::middle(outer, dim, inner);
      const Softmax op;
      simulate_softmax_quantized(SoftmaxAlgorithm::automatic, op, dtype, x.data(),
                                 {got.data(), Fp8::e4m3, &g[0], &g[1], &g[2]}, shape);
      ASSERT_TRUE(reference::softmax_forward(op, dtype, x.data(),
                                             {want.data(), Fp8::e4m3, &w[0], &w[1], &w[2]}, shape)
                      .ok());
      int64_t differ = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int step = std::abs(static_cast<int>(got[i]) - static_cast<int>(want[i]));
        EXPECT_LE(step, 1) << i;
        differ += step != 0;
      }
      EXPECT_LE(differ, n / 50) << dtype_name(dtype) << " inner " << inner;
      EXPECT_NEAR(g[1], w[1], 1e-6) << "amax";
    }
}

// The argument rules: those of softmax_forward and of a quantized output;
// nothing is launched for a refused call.
TEST(QuantizedSoftmaxArguments, RefusedWithTheirStatus) {
  alignas(16) float x[64] = {};
  alignas(16) uint8_t codes[64] = {};
  alignas(16) float words[4] = {1.0f, 0, 0, 0};
  const Softmax op;
  const SoftmaxShape shape = SoftmaxShape::rows(2, 8);
  auto call = [&](const void* in, QuantizedOutput y, SoftmaxShape s = SoftmaxShape::rows(2, 8)) {
    return reference::softmax_forward(op, DType::f32, in, y, s).code();
  };
  EXPECT_EQ(call(x, {codes, Fp8::e4m3, &words[0]}), StatusCode::success);
  EXPECT_EQ(call(x, {codes, Fp8::e4m3, nullptr}), StatusCode::null_pointer);  // delayed: scale read
  EXPECT_EQ(call(x, {nullptr, Fp8::e4m3, &words[0]}), StatusCode::null_pointer);
  EXPECT_EQ(call(x, {codes, Fp8::e4m3,
                     reinterpret_cast<float*>(reinterpret_cast<char*>(&words[0]) + 1)}),
            StatusCode::misaligned_pointer);
  EXPECT_EQ(call(x, {x, Fp8::e4m3, &words[0]}), StatusCode::overlapping_buffers);  // codes over x
  EXPECT_EQ(call(x, {codes, static_cast<Fp8>(7), &words[0]}), StatusCode::invalid_parameter);
  QuantizedOutput current{codes, Fp8::e4m3, &words[0]};
  current.scaling = Scaling::current;
  current.margin = 65;
  EXPECT_EQ(call(x, current), StatusCode::invalid_parameter);
  EXPECT_EQ(call(x, {codes, Fp8::e4m3, &words[0]}, SoftmaxShape::rows(2, 0)),
            StatusCode::invalid_size);
  // The device entry point checks the same way before any launch (no GPU needed).
  EXPECT_EQ(softmax_forward(op, DType::f32, x, {codes, Fp8::e4m3, nullptr}, shape).code(),
            StatusCode::null_pointer);
  EXPECT_EQ(softmax_forward(op, DType::f32, x, {x, Fp8::e4m3, &words[0]}, shape).code(),
            StatusCode::overlapping_buffers);
}

}  // namespace
}  // namespace cuact::test
