// Each softmax algorithm's per-row code, run on the host exactly as the
// kernels run it (bench/accuracy/softmax_simulation.h: the kernels' plans, loads,
// stores and per-thread phases; host loops for the reductions), against the
// double reference by the accuracy rule (bench/accuracy/softmax_accuracy.h): every
// algorithm x dtype x direction x option set over the column grid, aligned,
// misaligned and in place, NaN and fully masked rows included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "accuracy.h"
#include "cuact/reference.h"
#include "softmax_accuracy.h"
#include "softmax_plan.h"
#include "softmax_simulation.h"

namespace cuact::test {
namespace {

// Whether the algorithm takes rows of `cols` (block_per_row and
// cluster_per_row: as on an H100).
bool takes(SoftmaxAlgorithm a, DType dtype, Direction d, int64_t cols) {
  const int64_t per_col = detail::block_cache_bytes_per_col(d == Direction::backward,
                                                            static_cast<int>(dtype_size(dtype)));
  return detail::choose_softmax_algorithm(a, cols, per_col, 232448 - detail::kBlockStaticSmemSlack,
                                          detail::full_pack_width(static_cast<int>(dtype_size(dtype))),
                                          16)
             .refusal == nullptr;
}

enum class Layout { aligned, misaligned, in_place };

// A problem's buffers in a layout (16-byte aligned, or one element past it;
// in place: y over x forward, dx over dy backward), its inputs copied in;
// mask null when the problem has none.
struct LaidOut {
  std::vector<unsigned char> in_buf, grad_buf, out_buf, mask_buf;
  unsigned char *in = nullptr, *grad = nullptr, *out = nullptr, *mask = nullptr;
  size_t bytes = 0;
  LaidOut(const SoftmaxProblem& p, Layout layout) {
    const auto x = to_buffer(p.dtype, p.in), g = to_buffer(p.dtype, p.grad),
               m = to_buffer(p.dtype, p.mask);
    bytes = x.size();
    const size_t shift = layout == Layout::misaligned ? dtype_size(p.dtype) : 0;
    in_buf.resize(bytes + 32);
    grad_buf.resize(bytes + 32);
    out_buf.resize(bytes + 32);
    mask_buf.resize(m.size() + 32);
    auto at = [&](std::vector<unsigned char>& b) {
      const auto base = reinterpret_cast<std::uintptr_t>(b.data());
      return b.data() + ((16 - base % 16) % 16) + shift;
    };
    in = at(in_buf);
    grad = at(grad_buf);
    out = layout != Layout::in_place ? at(out_buf) : p.direction == Direction::forward ? in : grad;
    std::memcpy(in, x.data(), bytes);
    if (!g.empty()) std::memcpy(grad, g.data(), bytes);
    if (!m.empty()) {
      mask = at(mask_buf);
      std::memcpy(mask, m.data(), m.size());
    }
  }
};

class SimulatedKernel : public testing::TestWithParam<SoftmaxCase> {};

TEST_P(SimulatedKernel, MatchesTheReferenceOverTheColumnGrid) {
  const SoftmaxCase c = GetParam();
  const SoftmaxOptions& options = softmax_option_sets()[c.options];
  double worst = 0;
  int64_t elements = 0, rows_summed = 0;
  for (int64_t cols : softmax_test_cols()) {
    if (!takes(c.algorithm, c.dtype, c.direction, cols)) continue;
    if (cols > 70000 && c.options >= 2) continue;  // the longest rows: two option sets
    const int64_t rows = cols <= 128 ? 18 : cols <= 4097 ? 3 : 1;  // 18: a NaN and an empty row
    const SoftmaxProblem p = make_softmax_problem(options, c.direction, c.dtype, rows, cols, 1);
    for (Layout layout : {Layout::aligned, Layout::misaligned, Layout::in_place}) {
      if (cols > 4097 && layout != Layout::aligned) continue;
      SCOPED_TRACE(testing::Message() << "cols=" << cols << " rows=" << rows
                                      << " layout=" << static_cast<int>(layout));
      LaidOut b(p, layout);
      const Softmax op = options.descriptor(rows, cols, b.mask, c.dtype);
      // Short rows leave some of a cluster's slices empty; long ones use 16 blocks.
      simulate_softmax(c.algorithm, c.direction, op, c.dtype, b.in, b.grad, b.out, rows, cols,
                       cols <= 4097 ? 128 : 1024, cols <= 4097 ? 4 : 16);
      std::vector<unsigned char> result(b.out, b.out + b.bytes);
      const SoftmaxCheck check =
          check_softmax(c.dtype, p.expected, from_buffer(c.dtype, result), rows, cols);
      for (const std::string& f : check.first_failures) ADD_FAILURE() << f;
      ASSERT_TRUE(check.ok()) << check.failures << " elements and " << check.row_sum_failures
                              << " row sums outside the rule";
      worst = std::max(worst, check.worst_ratio);
      elements += check.elements;
      rows_summed += check.rows_summed;
    }
  }
  RecordProperty("worst_error_over_bound", std::to_string(worst));
  std::printf("softmax simulated %s: %lld elements, %lld row sums, worst error %.3g of the bound\n",
              softmax_case_name(c).c_str(), static_cast<long long>(elements),
              static_cast<long long>(rows_summed), worst);
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, SimulatedKernel,
                         testing::ValuesIn(softmax_cases({SoftmaxAlgorithm::warp_per_row,
                                                          SoftmaxAlgorithm::block_per_row,
                                                          SoftmaxAlgorithm::cluster_per_row,
                                                          SoftmaxAlgorithm::streaming})),
                         [](const auto& info) { return softmax_case_name(info.param); });

// Hand-made rows through every algorithm: the special values of docs/SPEC.md.
TEST(SimulatedKernelSpecialRows, NaNEmptyAndOverflowProneRows) {
  const double inf = INFINITY, nan = NAN;
  const std::vector<std::vector<double>> rows = {
      {1.0, nan, 2.0, 3.0},        // NaN row
      {-inf, -inf, -inf, -inf},    // empty row
      {inf, 1.0, 2.0, 3.0},        // +inf: NaN row
      {-inf, 5.0, -inf, -inf},     // one finite entry: probability 1
      {1e4, 1e4 - 1, -1e4, -inf},  // overflow-prone
      {88.75, -88.75, 88.75, 0.0},
  };
  const int64_t cols = 4;
  for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                             SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16})
      for (const Softmax& op :
           {Softmax::softmax(), Softmax::log_softmax(), Softmax::softmin(-1.0f)}) {
        std::vector<double> x;
        for (const auto& r : rows)
          for (double v : r) x.push_back(reference::round_to(dtype, v));
        const int64_t n = static_cast<int64_t>(rows.size());
        auto in = to_buffer(dtype, x);
        std::vector<unsigned char> out(in.size());
        simulate_softmax(a, Direction::forward, op, dtype, in.data(), nullptr, out.data(), n, cols);
        const auto got = from_buffer(dtype, out);
        std::vector<unsigned char> expect_buf(in.size());
        ASSERT_TRUE(reference::softmax(Direction::forward, op, dtype, in.data(), nullptr,
                                       expect_buf.data(), n, cols)
                        .ok());
        const auto expect = from_buffer(dtype, expect_buf);
        for (size_t i = 0; i < got.size(); ++i) {
          SCOPED_TRACE(testing::Message()
                       << softmax_algorithm_name(a) << " " << dtype_name(dtype) << " "
                       << softmax_kind_name(op.kind) << " row " << i / cols << " col " << i % cols);
          if (std::isnan(expect[i])) {
            EXPECT_TRUE(std::isnan(got[i])) << got[i];
          } else if (!std::isfinite(expect[i]) || expect[i] == 0 || expect[i] == 1) {
            EXPECT_EQ(got[i], expect[i]);  // -inf, 0 and 1 exactly
          } else {
            EXPECT_NEAR(got[i], expect[i], 1e-2 * std::fabs(expect[i]) + 1e-6);
          }
        }
      }
}

// One problem through the simulated algorithm in a layout (buffers 16-byte
// aligned, or one element past; in place: y over x, dx over dy), judged by
// the accuracy rule (exact at hidden columns and special values).
void simulate_and_check(const SoftmaxProblem& p, SoftmaxAlgorithm algorithm, Layout layout) {
  LaidOut b(p, layout);
  const Softmax op = p.options.descriptor(p.rows, p.cols, b.mask, p.dtype);
  simulate_softmax(algorithm, p.direction, op, p.dtype, b.in, b.grad, b.out, p.rows, p.cols,
                   p.cols <= 4097 ? 128 : 1024, 4);
  std::vector<unsigned char> result(b.out, b.out + b.bytes);
  const SoftmaxCheck check =
      check_softmax(p.dtype, p.expected, from_buffer(p.dtype, result), p.rows, p.cols);
  for (const std::string& f : check.first_failures) ADD_FAILURE() << f;
  ASSERT_TRUE(check.ok()) << check.failures << " elements and " << check.row_sum_failures
                          << " row sums outside the rule";
}

// Backward decides the hidden columns from the mask and causal settings, not
// from y (docs/SPEC.md): rows whose outputs saturate (log_softmax -inf from
// overflow and from -inf inputs, softmax 0 from underflow), with masks and
// causal settings and non-finite dy at hidden columns (ignored) and at a
// visible saturated one (a NaN row), through every row algorithm (each in
// registers and, misaligned, cached: block_per_row's shared memory,
// cluster_per_row's slices), both directions, aligned, misaligned, in place.
TEST(SimulatedKernelSaturation, HiddenColumnsComeFromTheMaskAndCausalNotFromY) {
  int runs = 0;
  for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                             SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16})
      for (Direction d : {Direction::backward, Direction::forward})
        for (const SoftmaxOptions& options : saturation_option_sets())
          for (int64_t cols : {2, 8, 37, 40, 1100, 5000}) {
            if (!takes(a, dtype, d, cols)) continue;
            const SoftmaxProblem p = make_saturated_softmax_problem(options, d, dtype, cols, 3);
            for (Layout layout : {Layout::aligned, Layout::misaligned, Layout::in_place}) {
              SCOPED_TRACE(testing::Message()
                           << softmax_algorithm_name(a) << " " << dtype_name(dtype) << " "
                           << direction_name(d) << " " << options.name << " cols=" << cols
                           << " layout=" << static_cast<int>(layout));
              simulate_and_check(p, a, layout);
              if (HasFatalFailure()) return;
              ++runs;
            }
          }
  EXPECT_GT(runs, 1000);
}

// The case through every algorithm's own code, forward then
// backward: fp16 log_softmax([-60000, 60000]) = [-inf, 0] (the difference
// overflows fp16), backward with dy = [1, 0] gives [1, -1] (PyTorch's
// answer), not [0, 0]; fp32 and bf16 likewise with +-3e38. Longer rows
// repeat -big, so that the saturated columns fill whole packs; middle_dim
// takes the same lines along dim.
TEST(SimulatedKernelSaturation, SaturatedLogSoftmaxColumnKeepsItsGradient) {
  for (DType dtype : {DType::f16, DType::f32, DType::bf16})
    for (int64_t cols : {2, 16, 40}) {
      const double big = reference::round_to(dtype, dtype == DType::f16 ? 60000.0 : 3e38);
      std::vector<double> x(static_cast<size_t>(cols), -big), dy(x.size(), 0.0),
          expect(x.size(), 0.0);
      x[1] = big;
      dy[0] = 1.0;
      expect[0] = 1.0;
      expect[1] = -1.0;
      const auto xb = to_buffer(dtype, x), dyb = to_buffer(dtype, dy);
      const Softmax op = Softmax::log_softmax();
      for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                                 SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming,
                                 SoftmaxAlgorithm::middle_dim}) {
        SCOPED_TRACE(testing::Message() << softmax_algorithm_name(a) << " " << dtype_name(dtype)
                                        << " cols=" << cols);
        // middle_dim: [1, cols, 8], every inner position the same line.
        const int64_t inner = a == SoftmaxAlgorithm::middle_dim ? 8 : 1;
        auto spread = [&](const std::vector<unsigned char>& line) {
          std::vector<unsigned char> out(line.size() * inner);
          const size_t e = dtype_size(dtype);
          for (int64_t c = 0; c < cols; ++c)
            for (int64_t j = 0; j < inner; ++j)
              std::memcpy(&out[(c * inner + j) * e], &line[c * e], e);
          return out;
        };
        const SoftmaxShape shape = SoftmaxShape::middle(1, cols, inner);
        alignas(16) unsigned char ybuf[40 * 8 * 4], dxbuf[40 * 8 * 4], xbuf[40 * 8 * 4],
            gbuf[40 * 8 * 4];
        const auto xs = spread(xb), gs = spread(dyb);
        std::memcpy(xbuf, xs.data(), xs.size());
        std::memcpy(gbuf, gs.data(), gs.size());
        simulate_softmax(a, Direction::forward, op, dtype, xbuf, nullptr, ybuf, shape);
        simulate_softmax(a, Direction::backward, op, dtype, ybuf, gbuf, dxbuf, shape);
        const auto y = from_buffer(dtype, std::vector<unsigned char>(ybuf, ybuf + xs.size()));
        const auto dx = from_buffer(dtype, std::vector<unsigned char>(dxbuf, dxbuf + xs.size()));
        for (int64_t c = 0; c < cols; ++c)
          for (int64_t j = 0; j < inner; ++j) {
            const size_t i = static_cast<size_t>(c * inner + j);
            EXPECT_EQ(y[i], c == 1 ? 0.0 : -INFINITY) << "y col " << c;
            EXPECT_EQ(dx[i], expect[static_cast<size_t>(c)]) << "dx col " << c;
          }
      }
    }
}

}  // namespace
}  // namespace cuact::test
