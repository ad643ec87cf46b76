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

class SimulatedKernel : public testing::TestWithParam<SoftmaxCase> {};

TEST_P(SimulatedKernel, MatchesTheReferenceOverTheColumnGrid) {
  const SoftmaxCase c = GetParam();
  const SoftmaxOptions& options = softmax_option_sets()[c.options];
  const size_t elem = dtype_size(c.dtype);
  double worst = 0;
  int64_t elements = 0, rows_summed = 0;
  for (int64_t cols : softmax_test_cols()) {
    if (!takes(c.algorithm, c.dtype, c.direction, cols)) continue;
    if (cols > 70000 && c.options >= 2) continue;  // the longest rows: two option sets
    const int64_t rows = cols <= 128 ? 18 : cols <= 4097 ? 3 : 1;  // 18: a NaN and an empty row
    const SoftmaxProblem p = make_softmax_problem(options, c.direction, c.dtype, rows, cols, 1);
    const auto in = to_buffer(c.dtype, p.in), grad = to_buffer(c.dtype, p.grad),
               mask = to_buffer(c.dtype, p.mask);
    const size_t bytes = in.size();
    for (Layout layout : {Layout::aligned, Layout::misaligned, Layout::in_place}) {
      if (cols > 4097 && layout != Layout::aligned) continue;
      SCOPED_TRACE(testing::Message() << "cols=" << cols << " rows=" << rows
                                      << " layout=" << static_cast<int>(layout));
      // Buffers 16-byte aligned, or one element past it; mask as given.
      const size_t shift = layout == Layout::misaligned ? elem : 0;
      std::vector<unsigned char> in_buf(bytes + 32), grad_buf(bytes + 32), out_buf(bytes + 32),
          mask_buf(mask.size() + 32);
      auto at = [&](std::vector<unsigned char>& b) {
        const auto base = reinterpret_cast<std::uintptr_t>(b.data());
        return b.data() + ((16 - base % 16) % 16) + shift;
      };
      unsigned char* in_p = at(in_buf);
      unsigned char* grad_p = at(grad_buf);
      // In place: y over x forward, dx over dy backward.
      unsigned char* out_p = layout != Layout::in_place          ? at(out_buf)
                             : c.direction == Direction::forward ? in_p
                                                                 : grad_p;
      unsigned char* mask_p = at(mask_buf);
      std::memcpy(in_p, in.data(), bytes);
      if (!grad.empty()) std::memcpy(grad_p, grad.data(), bytes);
      if (!mask.empty()) std::memcpy(mask_p, mask.data(), mask.size());
      const Softmax op = options.descriptor(rows, cols, mask.empty() ? nullptr : mask_p, c.dtype);
      // Short rows leave some of a cluster's slices empty; long ones use 16 blocks.
      simulate_softmax(c.algorithm, c.direction, op, c.dtype, in_p, grad_p, out_p, rows, cols,
                       cols <= 4097 ? 128 : 1024, cols <= 4097 ? 4 : 16);
      std::vector<unsigned char> result(out_p, out_p + bytes);
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

}  // namespace
}  // namespace cuact::test
