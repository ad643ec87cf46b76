// The fused forms' index plans, walked on the CPU exactly as the kernels walk
// them (cuda/row_plan.h and the calls of host/fused_calls.h): every element
// of every stream is touched once and nothing outside a buffer is; packs are
// 16-byte aligned in every stream; the bias is read at the element's column,
// GLU halves (odd d included) at the right half of the right row, PReLU
// weights at the element's channel; a reducing thread keeps its columns (or
// its channel); the partials fill their layout exactly once and fit the
// workspace the size query returns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "fused_calls.h"
#include "row_engine.h"

namespace cuact::detail {
namespace {

constexpr std::uintptr_t kBase = 0x7f0000000000;  // 16-byte aligned

const int64_t kRows[] = {1, 2, 3, 7, 64};
const int64_t kCols[] = {1, 3, 7, 8, 9, 31, 33, 100, 1000};

// Walks plan + geometry like the kernel: calls f(block, thread, r, chunk).
template <class F>
void walk(const RowPlan& plan, const TileGeometry& g, F&& f) {
  for (int64_t b = 0; b < g.blocks(); ++b)
    for (int t = 0; t < kBlockThreads; ++t)
      for_each_tile_item(plan, g, b, t, [&](int64_t r, int64_t chunk) { f(b, t, r, chunk); });
}

struct Coverage {
  std::vector<uint8_t> hits;
  int64_t out_of_range = 0;
  explicit Coverage(int64_t n) : hits(static_cast<size_t>(n), 0) {}
  void touch(int64_t i) {
    if (i < 0 || i >= static_cast<int64_t>(hits.size())) ++out_of_range;
    else ++hits[static_cast<size_t>(i)];
  }
  int64_t not_once() const {
    int64_t k = 0;
    for (uint8_t h : hits) k += h != 1;
    return k;
  }
};

TEST(RowPlan, ChunksTileEveryRowOnceWithAlignedPacks) {
  for (int elem : {2, 4})
    for (int64_t cols : kCols)
      for (int offset = 0; offset < kPackBytes; offset += elem) {
        const RowPlan plan = make_row_plan(5, cols, elem, kBase + offset);
        SCOPED_TRACE(testing::Message() << "elem=" << elem << " cols=" << cols << " off=" << offset);
        ASSERT_LE(plan.chunks, max_row_chunks(cols, plan.width));
        int64_t next = 0;
        for (int64_t j = 0; j < plan.chunks; ++j) {
          const ColumnSpan s = plan.chunk_columns(j);
          ASSERT_EQ(s.begin, next);
          ASSERT_GE(s.count, 1);
          ASSERT_LE(s.count, plan.width);
          // Every full chunk after the head starts on a 16-byte boundary of row 0.
          if (s.count == plan.width) {
            EXPECT_EQ((kBase + offset + s.begin * elem) % kPackBytes, 0u);
          }
          next += s.count;
        }
        EXPECT_EQ(next, cols);
      }
}

TEST(TileGeometry, EveryItemOnceForAnyBlockBudget) {
  for (int64_t rows : kRows)
    for (int64_t cols : kCols)
      for (int64_t budget : {1, 3, 1000}) {
        const RowPlan plan = make_row_plan(rows, cols, 2, kBase + 6);
        const TileGeometry g = tile_geometry(rows, plan.chunks, budget, false);
        SCOPED_TRACE(testing::Message() << rows << "x" << cols << " budget " << budget);
        EXPECT_EQ(g.bx * g.by, kBlockThreads);
        EXPECT_LE(g.blocks(), budget);
        Coverage items(rows * plan.chunks);
        walk(plan, g, [&](int64_t, int, int64_t r, int64_t chunk) { items.touch(r * plan.chunks + chunk); });
        EXPECT_EQ(items.out_of_range, 0);
        EXPECT_EQ(items.not_once(), 0);
      }
}

TEST(TileGeometry, OneRowUsesWholeBlocksAlongColumns) {
  const TileGeometry g = tile_geometry(1, 1 << 20, 1 << 20, false);
  EXPECT_EQ(g.by, 1);
  EXPECT_EQ(g.bx, kBlockThreads);
  const TileGeometry tall = tile_geometry(1 << 20, 1, 1 << 20, false);
  EXPECT_EQ(tall.bx, 1);
  EXPECT_EQ(tall.by, kBlockThreads);
}

// A reducing launch: each thread keeps one chunk (so its column sums stay in
// registers), and row lanes are a multiple of the channel count in
// by_row_channel mode (so a thread keeps one channel).
TEST(ReductionGeometry, ThreadsKeepTheirColumnsAndChannels) {
  for (int64_t rows : {1, 5, 64, 3000})
    for (int64_t cols : {1, 7, 33, 1000}) {
      const RowPlan plan = make_row_plan(rows, cols, 2, kBase + 2);
      const TileGeometry g = reduction_geometry(rows, cols, 8, ReduceMode::by_column, 1);
      EXPECT_GE(g.gx * g.bx, plan.chunks);
      EXPECT_LE(g.blocks(), std::max<int64_t>(kReductionBlocks, g.gx));
      std::map<std::pair<int64_t, int>, int64_t> chunk_of;
      walk(plan, g, [&](int64_t b, int t, int64_t, int64_t chunk) {
        auto [it, fresh] = chunk_of.emplace(std::make_pair(b, t), chunk);
        if (!fresh) {
          EXPECT_EQ(it->second, chunk) << "a thread moved to another chunk";
        }
      });
      for (int64_t channels : {1, 3, 7, 64}) {
        const TileGeometry gc =
            reduction_geometry(rows * channels, cols, 8, ReduceMode::by_row_channel, channels);
        EXPECT_EQ(gc.row_lanes() % channels, 0);
      }
    }
}

TEST(ReduceLayout, PartialIndicesFillTheLayoutOnce) {
  for (int64_t rows : {1, 9, 500})
    for (int64_t cols : {1, 10, 257}) {
      const TileGeometry g = reduction_geometry(rows, cols, 4, ReduceMode::by_column, 1);
      const ReduceLayout l = reduce_layout(ReduceMode::by_column, cols, g, 1);
      Coverage slots(l.floats());
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t byi = 0; byi < g.gy; ++byi) {
          const int64_t i = column_partial_index(c, byi, g);
          slots.touch(i);
          EXPECT_EQ(i / l.segment_length, c);
        }
      EXPECT_EQ(slots.out_of_range, 0);
      EXPECT_EQ(slots.not_once(), 0);
      for (int64_t channels : {1, 3, 5}) {
        const TileGeometry gc =
            reduction_geometry(rows * channels, cols, 4, ReduceMode::by_row_channel, channels);
        const ReduceLayout lc = reduce_layout(ReduceMode::by_row_channel, cols, gc, channels);
        Coverage cslots(lc.floats());
        for (int64_t lane = 0; lane < gc.row_lanes(); ++lane)
          for (int64_t bxi = 0; bxi < gc.gx; ++bxi) {
            const int64_t i = channel_partial_index(lane, bxi, gc, channels);
            cslots.touch(i);
            EXPECT_EQ(i / lc.segment_length, lane % channels);
          }
        EXPECT_EQ(cslots.out_of_range, 0);
        EXPECT_EQ(cslots.not_once(), 0);
      }
    }
}

// The workspace is the partials of the shape's pure geometry, whatever the
// pointers' alignment, and smaller block budgets (tests) only shrink them.
TEST(ReduceLayout, WorkspaceHoldsThePartialsOfEveryGeometry) {
  for (int64_t rows : {1, 100, 100000})
    for (int64_t cols : {1, 13, 4096}) {
      const int64_t bytes = bias_backward_workspace(DType::f16, rows, cols);
      for (int64_t budget : {int64_t{1}, int64_t{7}, kReductionBlocks}) {
        const TileGeometry g = reduction_geometry(rows, cols, 8, ReduceMode::by_column, 1, budget);
        EXPECT_LE(reduce_layout(ReduceMode::by_column, cols, g, 1).floats() * 4 +
                      kWorkspaceAlignment,
                  bytes);
      }
      for (int64_t channels : {3, 64}) {
        const int64_t pbytes = prelu_backward_workspace(DType::f32, rows, channels, cols);
        const PreluLayout layout = prelu_layout(rows, channels, cols);
        const TileGeometry g = reduction_geometry(layout.rows, layout.cols, 4, layout.reduce, channels);
        EXPECT_EQ(reduce_layout(layout.reduce, layout.cols, g, channels).floats() * 4 +
                      kWorkspaceAlignment,
                  pbytes);
      }
    }
  EXPECT_EQ(bias_backward_workspace(DType::f32, 0, 10), 0);
  EXPECT_EQ(prelu_backward_workspace(DType::f32, 4, 0, 10), 0);
}

// ---------------------------------------------------------------- the calls' streams

// Byte address of element (r, c) of stream k of a call, as process_chunk forms it.
std::uintptr_t address(const void* base, int64_t stride, int64_t r, int64_t c, int elem) {
  return reinterpret_cast<std::uintptr_t>(base) + static_cast<std::uintptr_t>((r * stride + c) * elem);
}

// Walks a call's plan; for every element (r, c) of every stream, maps its
// address to an index of the buffer it lies in (via `index_of`).
template <class F>
void walk_elements(const FusedCall& c, int elem, F&& f) {
  const RowPlan plan = make_row_plan(c.rows, c.cols, elem, reinterpret_cast<std::uintptr_t>(c.in[0]));
  const TileGeometry g = tile_geometry(c.rows, plan.chunks, 37, false);
  walk(plan, g, [&](int64_t, int, int64_t r, int64_t chunk) {
    const ColumnSpan s = plan.chunk_columns(chunk);
    bool aligned = s.count == plan.width;
    for (int k = 0; k < kMaxInStreams; ++k)
      if (c.in[k] != nullptr) aligned = aligned && address(c.in[k], c.in_stride[k], r, s.begin, elem) % 16 == 0;
    for (int k = 0; k < kMaxOutStreams; ++k)
      if (c.out[k] != nullptr) aligned = aligned && address(c.out[k], c.out_stride[k], r, s.begin, elem) % 16 == 0;
    for (int j = 0; j < s.count; ++j) f(r, s.begin + j, aligned);
  });
}

TEST(FusedCalls, GluHalvesForOddAndEvenWidths) {
  for (int elem : {2, 4})
    for (int64_t d : {1, 3, 5, 8, 11, 64, 67})
      for (GatedHalf half : {GatedHalf::first, GatedHalf::second})
        for (int misalign : {0, 1}) {
          const int64_t rows = 6;
          const auto x = reinterpret_cast<const void*>(kBase + misalign * elem);
          const auto y = reinterpret_cast<void*>(kBase + (1 << 24));
          const DType dtype = elem == 2 ? DType::bf16 : DType::f32;
          const Glu glu{Activation::silu(), half};
          SCOPED_TRACE(testing::Message() << "elem=" << elem << " d=" << d << " half="
                                          << (half == GatedHalf::first ? "first" : "second")
                                          << " misalign=" << misalign);
          // Forward: y[r, c] from x[r, gated + c] (activated) and x[r, other + c].
          const FusedCall f = glu_forward_launch(glu, dtype, x, y, rows, d).call;
          const int64_t gated = half == GatedHalf::first ? 0 : d, other = d - gated;
          Coverage x_reads(rows * 2 * d), y_writes(rows * d);
          int64_t packed = 0;
          walk_elements(f, elem, [&](int64_t r, int64_t c, bool aligned) {
            const auto xa = reinterpret_cast<std::uintptr_t>(x);
            const std::uintptr_t a = address(f.in[0], f.in_stride[0], r, c, elem);
            const std::uintptr_t b = address(f.in[1], f.in_stride[1], r, c, elem);
            EXPECT_EQ((a - xa) / elem, static_cast<std::uintptr_t>(r * 2 * d + gated + c));
            EXPECT_EQ((b - xa) / elem, static_cast<std::uintptr_t>(r * 2 * d + other + c));
            x_reads.touch(static_cast<int64_t>((a - xa) / elem));
            x_reads.touch(static_cast<int64_t>((b - xa) / elem));
            y_writes.touch(static_cast<int64_t>(
                (address(f.out[0], f.out_stride[0], r, c, elem) - reinterpret_cast<std::uintptr_t>(y)) / elem));
            packed += aligned;
          });
          EXPECT_EQ(x_reads.out_of_range + y_writes.out_of_range, 0);
          EXPECT_EQ(x_reads.not_once() + y_writes.not_once(), 0);
          if (misalign == 0 && d % (16 / elem) == 0) {
            EXPECT_EQ(packed, rows * d) << "aligned GLU rows of whole packs move as packs";
          }
          // Backward writes both halves of dx where it reads both halves of x.
          const auto dx = reinterpret_cast<void*>(kBase + (1 << 25) + misalign * elem);
          const FusedCall bw = glu_backward_launch(glu, dtype, x, y, dx, rows, d).call;
          Coverage dx_writes(rows * 2 * d);
          walk_elements(bw, elem, [&](int64_t r, int64_t c, bool) {
            const auto base = reinterpret_cast<std::uintptr_t>(dx);
            const std::uintptr_t da = address(bw.out[0], bw.out_stride[0], r, c, elem);
            const std::uintptr_t db = address(bw.out[1], bw.out_stride[1], r, c, elem);
            EXPECT_EQ((da - base) / elem, static_cast<std::uintptr_t>(r * 2 * d + gated + c));
            dx_writes.touch(static_cast<int64_t>((da - base) / elem));
            dx_writes.touch(static_cast<int64_t>((db - base) / elem));
          });
          EXPECT_EQ(dx_writes.out_of_range, 0);
          EXPECT_EQ(dx_writes.not_once(), 0);
        }
}

TEST(FusedCalls, BiasIsReadAtTheElementsColumn) {
  for (int64_t rows : kRows)
    for (int64_t cols : kCols) {
      const auto x = reinterpret_cast<const void*>(kBase + 4);
      const auto bias = reinterpret_cast<const void*>(kBase + (1 << 26) + 8);
      const FusedCall c = bias_activation_forward_launch(Activation::gelu(), DType::f32, x, bias,
                                                         const_cast<void*>(x), rows, cols,
                                                         Dropout{}, nullptr)
                              .call;
      EXPECT_EQ(c.param_mode, ParamMode::by_column);
      EXPECT_EQ(c.param, bias);
      Coverage elements(rows * cols);
      walk_elements(c, 4, [&](int64_t r, int64_t col, bool) {
        // The engine reads param[col] for element (r, col), the logical index r * cols + col.
        elements.touch(r * cols + col);
        EXPECT_LT(col, cols);
      });
      EXPECT_EQ(elements.not_once(), 0);
    }
}

TEST(FusedCalls, PreluWeightIsTheElementsChannel) {
  for (int64_t outer : {1, 3})
    for (int64_t channels : {1, 4, 7})
      for (int64_t inner : {1, 2, 9, 33}) {
        const PreluLayout layout = prelu_layout(outer, channels, inner);
        EXPECT_EQ(layout.rows * layout.cols, outer * channels * inner);
        // Element (o, c, i) of [outer, C, inner] is index (o * C + c) * inner + i; as
        // element (r, col) of the plan it is r * cols + col, and its weight index is
        // col (by_column) or r % C (by_row_channel).
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t c = 0; c < channels; ++c)
            for (int64_t i = 0; i < inner; ++i) {
              const int64_t e = (o * channels + c) * inner + i;
              const int64_t r = e / layout.cols, col = e % layout.cols;
              const int64_t weight = layout.param == ParamMode::by_column ? col : r % channels;
              ASSERT_EQ(weight, c) << outer << "x" << channels << "x" << inner;
            }
      }
}

TEST(FusedCalls, NeutralValuesAndFlagsOfEachCall) {
  const auto p = reinterpret_cast<void*>(kBase);
  const FusedCall plain =
      bias_activation_forward_launch(Activation::relu(), DType::f32, p, nullptr, p, 2, 3, {}, nullptr).call;
  EXPECT_EQ(plain.param_mode, ParamMode::none);
  EXPECT_TRUE(std::signbit(plain.param_fill)) << "no bias adds -0.0: x + -0.0 == x";
  EXPECT_EQ(plain.in_fill[1], 1.0f) << "no linear half multiplies by 1";
  EXPECT_FALSE(plain.use_random);
  EXPECT_EQ(plain.dropout.threshold, 0u);
  EXPECT_EQ(plain.dropout.scale, 1.0f);
  const FusedCall dropped = bias_activation_forward_launch(Activation::relu(), DType::f32, p,
                                                           nullptr, p, 2, 3, Dropout{1.0f}, nullptr)
                                .call;
  EXPECT_FALSE(dropped.use_random) << "p = 1 needs no words: nothing is kept";
  const FusedCall half = bias_activation_forward_launch(Activation::relu(), DType::f32, p,
                                                        nullptr, p, 2, 3, Dropout{0.5f, 1, 2}, nullptr)
                             .call;
  EXPECT_TRUE(half.use_random);
  EXPECT_EQ(half.random.seed, 1u);
  EXPECT_EQ(half.random.offset, 2u);
  const FusedCall train = rrelu_launch(Rrelu{0.1f, 0.3f, true, 5, 6}, DType::f32, p, nullptr, p, 9, false).call;
  EXPECT_TRUE(train.use_random);
  EXPECT_EQ(train.param_fill, 0.1f);
  EXPECT_EQ(train.slope.span, 0.3f - 0.1f);
  const FusedCall eval = rrelu_launch(Rrelu{0.1f, 0.3f, false}, DType::f32, p, nullptr, p, 9, false).call;
  EXPECT_FALSE(eval.use_random);
  EXPECT_EQ(eval.slope.span, 0.0f);
  EXPECT_EQ(eval.param_fill, static_cast<float>((static_cast<double>(0.1f) + 0.3f) / 2));
}

}  // namespace
}  // namespace cuact::detail
