// Softmax over strided rows and over the middle dimension of [outer, dim,
// inner] (cuact::SoftmaxShape): the reference's indexing, the middle_dim
// plan, and every algorithm's own code run on the host (the simulation)
// against the reference, with guard bytes around and between the strided
// extents, so that an element read or written out of place fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "accuracy.h"
#include "cuact/reference.h"
#include "softmax_accuracy.h"
#include "softmax_middle.h"
#include "softmax_simulation.h"
#include "strided_buffer.h"

namespace cuact::test {
namespace {

// A shape with explicit strides (pads: elements after each o's dim*inner).
struct LayoutCase {
  int64_t outer, dim, inner;
  int64_t in_pad, grad_pad, out_pad, mask_pad;
  size_t misalign;  // elements past a 16-byte boundary, for every buffer
  bool in_place;    // y over x (forward), dx over dy (backward): out's stride is the input's
};

std::string name_of(const LayoutCase& l) {
  return "[" + std::to_string(l.outer) + "," + std::to_string(l.dim) + "," +
         std::to_string(l.inner) + "] pads " + std::to_string(l.in_pad) + "/" +
         std::to_string(l.grad_pad) + "/" + std::to_string(l.out_pad) + "/" +
         std::to_string(l.mask_pad) + " misalign " + std::to_string(l.misalign) +
         (l.in_place ? " in place" : "");
}

const std::vector<LayoutCase>& row_cases() {
  static const std::vector<LayoutCase> cases = {
      {5, 3, 1, 3, 5, 2, 7, 0, false},
      {4, 64, 1, 8, 16, 8, 8, 0, false},  // whole-pack strides: the warp path keeps its packs
      {4, 64, 1, 8, 8, 8, 8, 0, true},
      {3, 100, 1, 1, 2, 3, 4, 1, false},
      {3, 1000, 1, 24, 24, 0, 40, 0, false},
      {2, 1000, 1, 5, 5, 5, 5, 0, true},
      {2, 4097, 1, 3, 9, 1, 2, 1, false},
      {18, 17, 1, 15, 1, 31, 0, 0, false},  // 18 rows: a NaN row and an empty one
  };
  return cases;
}

const std::vector<LayoutCase>& middle_cases() {
  static const std::vector<LayoutCase> cases = {
      {3, 5, 2, 0, 0, 0, 0, 0, false},      {2, 100, 8, 0, 0, 0, 0, 0, false},
      {2, 100, 8, 16, 8, 24, 0, 0, false},  {4, 33, 16, 0, 0, 0, 0, 0, true},
      {2, 300, 24, 8, 0, 0, 0, 1, false},   {1, 7, 37, 3, 1, 2, 0, 0, false},
      {3, 20, 64, 0, 0, 0, 0, 0, false},    {2, 64, 40, 40, 40, 40, 0, 0, true},
  };
  return cases;
}

struct LayoutRun {
  SoftmaxAlgorithm algorithm;
  DType dtype;
  Direction direction;
  size_t options;
  int middle_y;  // middle_dim's threads along dim (0: as planned)
};

// Runs one layout case: the problem built densely (one line per (o, j)),
// scattered into strided buffers, simulated, gathered and judged; guards
// checked in every buffer.
void run_layout(const LayoutRun& r, const LayoutCase& l) {
  const SoftmaxOptions& options = softmax_option_sets()[r.options];
  const int64_t lines = l.outer * l.inner;
  SCOPED_TRACE(testing::Message() << softmax_algorithm_name(r.algorithm) << " "
                                  << dtype_name(r.dtype) << " " << direction_name(r.direction)
                                  << " " << options.name << " " << name_of(l) << " y "
                                  << r.middle_y);
  const SoftmaxProblem p = make_softmax_problem(options, r.direction, r.dtype, lines, l.dim, 7);
  const int64_t dense = l.dim * l.inner;
  const int64_t in_stride = dense + l.in_pad;
  const int64_t grad_stride = dense + l.grad_pad;
  const bool forward = r.direction == Direction::forward;
  const int64_t out_stride = !l.in_place ? dense + l.out_pad : forward ? in_stride : grad_stride;
  StridedBuffer in(r.dtype, l.outer, l.dim, l.inner, in_stride, l.misalign);
  StridedBuffer grad(r.dtype, l.outer, l.dim, l.inner, grad_stride, l.misalign);
  StridedBuffer out(r.dtype, l.outer, l.dim, l.inner, out_stride, l.misalign);
  in.scatter(to_buffer(r.dtype, p.in));
  if (!forward) grad.scatter(to_buffer(r.dtype, p.grad));
  StridedBuffer* result = !l.in_place ? &out : forward ? &in : &grad;
  const std::vector<unsigned char> in_before = in.bytes, grad_before = grad.bytes;

  const int64_t mask_rows = options.mask_rows_for(lines);
  StridedBuffer mask(r.dtype, std::max<int64_t>(mask_rows, 1), l.dim, 1, l.dim + l.mask_pad,
                     l.misalign);
  if (!p.mask.empty()) mask.scatter(to_buffer(r.dtype, p.mask));
  Softmax op = options.descriptor(lines, l.dim, p.mask.empty() ? nullptr : mask.data(), r.dtype);
  op.mask_stride = l.dim + l.mask_pad;
  const SoftmaxShape shape =
      SoftmaxShape::middle(l.outer, l.dim, l.inner).with_strides(in_stride, out_stride, grad_stride);

  // The argument checks pass (the reference runs them), and the reference
  // on the strided buffers gives the dense problem's answer.
  StridedBuffer ref_out(r.dtype, l.outer, l.dim, l.inner, dense + l.out_pad, 0);
  ASSERT_TRUE(reference::softmax(r.direction, op, r.dtype, in.data(), grad.data(),
                                 ref_out.data(),
                                 shape.with_strides(in_stride, dense + l.out_pad, grad_stride))
                  .ok());
  simulate_softmax(r.algorithm, r.direction, op, r.dtype, in.data(), grad.data(),
                   result->data(), shape, 128, 4, r.middle_y);

  for (const StridedBuffer* got : {result, &ref_out}) {
    const SoftmaxCheck check =
        check_softmax(r.dtype, p.expected, from_buffer(r.dtype, got->gather()), lines, l.dim);
    for (const std::string& f : check.first_failures) ADD_FAILURE() << f;
    EXPECT_TRUE(check.ok()) << (got == result ? "kernel code: " : "reference: ") << check.failures
                            << " elements and " << check.row_sum_failures << " sums outside";
  }
  EXPECT_EQ(result->touched_guards(), 0) << "bytes outside the shape's elements were written";
  if (result != &in) {
    EXPECT_EQ(in.bytes, in_before) << "an input was written";
  }
  if (result != &grad) {
    EXPECT_EQ(grad.bytes, grad_before) << "an input was written";
  }
}

bool row_options(const SoftmaxOptions& o) { return o.mask_rows != 0 || o.causal_rows > 0; }

TEST(SimulatedLayouts, StridedRowsThroughEveryAlgorithm) {
  for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                             SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming,
                             SoftmaxAlgorithm::middle_dim})
    for (DType t : {DType::f32, DType::f16, DType::bf16})
      for (Direction d : {Direction::forward, Direction::backward})
        for (size_t o = 0; o < softmax_option_sets().size(); ++o)
          for (const LayoutCase& l : row_cases()) {
            if (a == SoftmaxAlgorithm::warp_per_row && l.dim > detail::kWarpMaxCols) continue;
            if (a == SoftmaxAlgorithm::middle_dim && row_options(softmax_option_sets()[o]))
              continue;  // middle_dim takes neither mask nor causal (either direction)
            run_layout({a, t, d, o, a == SoftmaxAlgorithm::middle_dim ? 16 : 0}, l);
            if (HasFailure()) return;
          }
}

TEST(SimulatedLayouts, MiddleDimensionForEveryKindDtypeAndBlockShape) {
  for (DType t : {DType::f32, DType::f16, DType::bf16})
    for (Direction d : {Direction::forward, Direction::backward})
      for (size_t o = 0; o < softmax_option_sets().size(); ++o) {
        if (row_options(softmax_option_sets()[o])) continue;
        for (const LayoutCase& l : middle_cases())
          for (int y : {0, 1, 4, 256}) {
            run_layout({SoftmaxAlgorithm::middle_dim, t, d, o, y}, l);
            if (HasFailure()) return;
          }
      }
}

// The reference's [outer, dim, inner] indexing against a transpose done by
// hand: softmax over the middle dimension is the row softmax of the lines.
TEST(SoftmaxReferenceLayouts, MiddleDimensionIsTheRowSoftmaxOfEachLine) {
  const int64_t outer = 3, dim = 6, inner = 5;
  std::vector<float> x(static_cast<size_t>(outer * dim * inner)), y(x.size()), rows(x.size()),
      expect(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.7 * i) * 3);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < dim; ++c)
      for (int64_t j = 0; j < inner; ++j)
        rows[(o * inner + j) * dim + c] = x[(o * dim + c) * inner + j];
  for (const Softmax& op : {Softmax::softmax(), Softmax::log_softmax(0.5f), Softmax::softmin()}) {
    ASSERT_TRUE(reference::softmax(Direction::forward, op, DType::f32, x.data(), nullptr, y.data(),
                                   SoftmaxShape::middle(outer, dim, inner))
                    .ok());
    ASSERT_TRUE(reference::softmax(Direction::forward, op, DType::f32, rows.data(), nullptr,
                                   expect.data(), outer * inner, dim)
                    .ok());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < dim; ++c)
        for (int64_t j = 0; j < inner; ++j)
          EXPECT_EQ(y[(o * dim + c) * inner + j], expect[(o * inner + j) * dim + c]);
  }
}

// middle_dim's plan visits every element of the shape once per pass: the
// columns of every tile (the kernel's MiddleColumn addresses), each
// thread's c = ty, ty + Y, ...
TEST(SoftmaxMiddlePlan, EveryElementOncePerPassForEveryBlockShape) {
  using namespace cuact::detail;
  for (int64_t inner : {2, 8, 24, 37})
    for (int64_t dim : {1, 5, 300})
      for (bool vectorized : {false, true}) {
        if (vectorized && inner % 4 != 0) continue;
        const int64_t outer = 3, stride = dim * inner + 4;
        SoftmaxArgs<float> a;
        a.in = reinterpret_cast<const float*>(std::uintptr_t{1} << 20);
        a.out = reinterpret_cast<float*>(std::uintptr_t{1} << 30);
        a.layout = make_softmax_layout(outer, dim, 0, 1, 0, 0);
        a.layout.inner = inner;
        a.layout.in_stride = a.layout.out_stride = stride;
        const int width = vectorized ? 4 : 1;
        a.layout.inner_groups = FastDivider(static_cast<uint64_t>(inner / width));
        for (int y : {1, 2, 16, 256}) {
          std::map<int64_t, int> hits;
          const int64_t columns = outer * (inner / width);
          for (int64_t k = 0; k < columns; ++k) {
            const MiddleColumn<float, 1> one(a, k);
            const MiddleColumn<float, 4> four(a, k);
            const float* base = vectorized ? four.in : one.in;
            for (int ty = 0; ty < y; ++ty)
              for (int64_t c = ty; c < dim; c += y)
                for (int q = 0; q < width; ++q) ++hits[(base - a.in) + c * inner + q];
          }
          ASSERT_EQ(static_cast<int64_t>(hits.size()), outer * dim * inner);
          for (const auto& [offset, n] : hits) {
            const int64_t o = offset / stride, rest = offset % stride;
            EXPECT_LT(rest, dim * inner) << "offset " << offset << " is in a gap";
            EXPECT_LT(o, outer);
            EXPECT_EQ(n, 1) << "offset " << offset;
          }
        }
      }
  // The block's shape: Y grows only while the columns leave the device idle.
  EXPECT_EQ(plan_middle_dim(int64_t{1} << 20, 1000, 270336).y, 1);
  EXPECT_EQ(plan_middle_dim(4, 1 << 20, 270336).y, 256);
  EXPECT_EQ(plan_middle_dim(4, 5, 270336).y, 8);  // no more threads than dim, rounded up
  for (int64_t columns : {1, 100, 5000, 1 << 20})
    EXPECT_EQ(plan_middle_dim(columns, 64, 270336).threads(), kMiddleBlockThreads);
}

}  // namespace
}  // namespace cuact::test
