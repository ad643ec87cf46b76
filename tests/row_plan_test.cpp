// The row engine's index plans, walked on the CPU exactly as the kernel walks
// them (cuda/row_plan.h, and the requests of host/row_calls.h): every element
// of every stream is touched once and nothing outside a buffer is; whole
// chunks sit on the plan's access boundary (16 bytes, or 8 where the streams
// allow no more) in every stream; a flat buffer's view and its leftover
// elements cover it once; the bias is read at the element's column, GLU halves
// (odd d included) at the right half of the right row, PReLU weights at the
// element's channel; a reducing thread keeps its columns (or its channel); the
// partials fill their layout exactly once and fit the workspace the size
// query returns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "argument_checks.h"
#include "row_calls.h"
#include "row_engine.h"

namespace cuact::detail {
namespace {

constexpr std::uintptr_t kBase = 0x7f0000000000;  // 256-byte aligned

const int64_t kRows[] = {1, 2, 3, 7, 64};
const int64_t kCols[] = {1, 3, 7, 8, 9, 31, 33, 100, 1000};

// Walks plan + geometry like the kernel (run_tiles): calls f(block, thread, r, chunk).
template <class F>
void walk(const RowPlan& plan, const TileGeometry& g, F&& f) {
  for (int64_t b = 0; b < g.blocks(); ++b)
    for (int t = 0; t < kBlockThreads; ++t) {
      const ThreadRows tr = thread_rows(g, b, t);
      for (int64_t chunk = tr.first_chunk; chunk < plan.chunks; chunk += tr.chunk_step)
        for (int64_t r = tr.first_row; r < plan.rows; r += tr.lanes) f(b, t, r, chunk);
    }
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

RowPlan one_stream_plan(int64_t rows, int64_t cols, int elem, std::uintptr_t address) {
  const StreamLayout s{address, cols * elem};
  return make_row_plan(rows, cols, elem, &s, 1);
}

TEST(RowPlan, ChunksTileEveryRowOnceWithWholeChunksOnTheBoundary) {
  for (int elem : {2, 4})
    for (int64_t cols : kCols)
      for (int offset = 0; offset < 16; offset += elem) {
        const std::uintptr_t a = kBase + offset;
        // A row stride that keeps 16-byte alignment, whatever cols is.
        const StreamLayout s{a, 1024 * elem};
        const RowPlan plan = make_row_plan(5, cols, elem, &s, 1);
        SCOPED_TRACE(testing::Message() << "elem=" << elem << " cols=" << cols << " off=" << offset);
        ASSERT_EQ(plan.access, 16);
        ASSERT_LE(plan.chunks, max_row_chunks(cols, plan.width));
        int64_t next = 0;
        for (int64_t j = 0; j < plan.chunks; ++j) {
          const ColumnSpan c = plan.chunk_columns(j);
          ASSERT_EQ(c.begin, next);
          ASSERT_GE(c.count, 1);
          ASSERT_LE(c.count, plan.width);
          if (c.count == plan.width) {
            EXPECT_EQ((a + c.begin * elem) % 16, 0u) << "a whole chunk off the boundary";
          }
          next += c.count;
        }
        EXPECT_EQ(next, cols);
      }
}

TEST(RowPlan, AccessWidthIsWhatEveryStreamAllows) {
  // Equal offsets and 16-byte strides: 16.
  const StreamLayout aligned[2] = {{kBase + 4, 4096}, {kBase + 65536 + 4, 4096}};
  EXPECT_EQ(make_row_plan(4, 100, 4, aligned, 2).access, 16);
  // A bf16 GLU half with d = 3420: rows of 2d elements (13680 bytes, 8-byte
  // multiples) and the second half 6840 bytes in: 8-byte accesses.
  const int64_t d = 3420;
  const StreamLayout glu[3] = {{kBase, 2 * d * 2}, {kBase + d * 2, 2 * d * 2}, {kBase + (1 << 24), d * 2}};
  const RowPlan p = make_row_plan(16, d, 2, glu, 3);
  EXPECT_EQ(p.access, 8) << "8-byte-aligned GLU halves use 8-byte accesses, not scalars";
  EXPECT_EQ(p.head, 0);
  EXPECT_EQ(p.chunks, (d + 7) / 8);
  // An odd d in bf16: rows shift by 2 bytes: element by element.
  const StreamLayout odd[2] = {{kBase, 2 * 2 * 333}, {kBase + 333 * 2, 2 * 2 * 333}};
  EXPECT_EQ(make_row_plan(16, 333, 2, odd, 2).access, 0);
  // Streams off each other by an element: element by element.
  const StreamLayout apart[2] = {{kBase + 4, 4096}, {kBase + 65536 + 8, 4096}};
  EXPECT_EQ(make_row_plan(4, 100, 4, apart, 2).access, 0);
}

// A flat buffer's row view and its leftover elements: every element once,
// whole chunks aligned in every stream.
TEST(FlatPlan, ViewAndExtrasCoverEveryElementOnce) {
  for (int elem : {2, 4})
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{31},
                      int64_t{1023}, int64_t{4096 + 5}, (int64_t{1} << 20) + 3})
      for (int in_off = 0; in_off < 16; in_off += elem)
        for (int out_off : {in_off, (in_off + elem) % 16}) {
          const std::uintptr_t addresses[2] = {kBase + in_off, kBase + (1 << 26) + out_off};
          const RowPlan p = make_flat_plan(n, elem, addresses, 2);
          SCOPED_TRACE(testing::Message() << "elem=" << elem << " n=" << n << " offsets " << in_off
                                          << "/" << out_off);
          Coverage c(n);
          for (int64_t r = 0; r < p.rows; ++r)
            for (int64_t j = 0; j < p.chunks; ++j) {
              const ColumnSpan s = p.chunk_columns(j);
              ASSERT_EQ(s.count, p.width) << "a flat view holds whole chunks only";
              const int64_t e = p.origin + r * p.cols + s.begin;
              for (std::uintptr_t a : addresses) EXPECT_EQ((a + e * elem) % p.access, 0u);
              for (int k = 0; k < s.count; ++k) c.touch(e + k);
            }
          for (int64_t i = 0; i < p.extras(); ++i) c.touch(p.extra_index(i));
          ASSERT_EQ(c.out_of_range, 0);
          ASSERT_EQ(c.not_once(), 0);
          if (in_off == out_off && n >= 64) {
            EXPECT_EQ(p.access, 16);
            EXPECT_LT(p.extras(), p.width + kFlatRowChunks * p.width);
          }
          if (in_off != out_off && n > 0) {
            EXPECT_EQ(p.extras(), n) << "streams off each other go element by element";
          }
        }
}

TEST(FlatPlan, IndicesAre64Bit) {
  const std::uintptr_t a[2] = {kBase, kBase + 16};
  const int64_t n = (int64_t{1} << 33) + 5;  // more than 2^32 elements
  const RowPlan p = make_flat_plan(n, 2, a, 2);
  EXPECT_EQ(p.origin, 0);
  EXPECT_EQ(p.rows * p.cols + p.extras(), n);
  EXPECT_EQ(p.extra_index(p.extras() - 1), n - 1);
}

TEST(TileGeometry, EveryItemOnceForAnyBlockBudget) {
  for (int64_t rows : kRows)
    for (int64_t cols : kCols)
      for (int64_t budget : {1, 3, 1000})
        for (int64_t row_multiple : {1, 3}) {
          const RowPlan plan = one_stream_plan(rows, cols, 2, kBase + 6);
          const TileGeometry g = tile_geometry(rows, plan.chunks, budget, false, row_multiple);
          SCOPED_TRACE(testing::Message() << rows << "x" << cols << " budget " << budget
                                          << " multiple " << row_multiple);
          EXPECT_EQ(g.bx * g.by, kBlockThreads);
          if (row_multiple == 1) {
            EXPECT_LE(g.blocks(), budget);
          }
          EXPECT_EQ(g.row_lanes() % row_multiple, 0);
          Coverage items(rows * plan.chunks);
          walk(plan, g, [&](int64_t, int, int64_t r, int64_t chunk) { items.touch(r * plan.chunks + chunk); });
          EXPECT_EQ(items.out_of_range, 0);
          EXPECT_EQ(items.not_once(), 0);
        }
}

// Each trip of the vector path takes rows r and r + lanes: a thread with
// many rows has two loads per stream in flight.
TEST(TileGeometry, ThreadsWalkTheirRowsTwoAtATime) {
  const TileGeometry g = tile_geometry(1 << 16, 32, 132 * 8 * kWaves, false);
  const ThreadRows tr = thread_rows(g, 5, 77);
  EXPECT_EQ(tr.lanes, g.row_lanes());
  EXPECT_LT(tr.first_row + tr.lanes, int64_t{1} << 16) << "the thread's trip has a second row";
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
      const RowPlan plan = one_stream_plan(rows, cols, 2, kBase + 2);
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
      const ReduceLayout l = reduce_layout(ReduceMode::by_column, rows, cols, g, 1);
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
        const ReduceLayout lc = reduce_layout(ReduceMode::by_row_channel, rows * channels, cols, gc, channels);
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
      // by_row_group: a thread per row, groups of `group` consecutive rows;
      // the lanes past the last row write nothing (write_row_partials).
      for (int64_t group : {1, 4, 7}) {
        const int64_t n = rows * group;
        const TileGeometry gg = reduction_geometry(n, cols, 4, ReduceMode::by_row_group, group);
        EXPECT_GE(gg.row_lanes(), n);
        const ReduceLayout lg = reduce_layout(ReduceMode::by_row_group, n, cols, gg, group);
        EXPECT_EQ(lg.segments, rows);
        Coverage gslots(lg.floats());
        for (int64_t lane = 0; lane < n; ++lane)
          for (int64_t bxi = 0; bxi < gg.gx; ++bxi) {
            const int64_t i = lane * gg.gx + bxi;
            gslots.touch(i);
            EXPECT_EQ(i / lg.segment_length, lane / group);
          }
        EXPECT_EQ(gslots.out_of_range, 0);
        EXPECT_EQ(gslots.not_once(), 0);
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
        EXPECT_LE(reduce_layout(ReduceMode::by_column, rows, cols, g, 1).floats() * 4 +
                      kWorkspaceAlignment,
                  bytes);
      }
      for (int64_t channels : {3, 64}) {
        const int64_t pbytes = prelu_backward_workspace(DType::f32, rows, channels, cols);
        const PreluLayout layout = prelu_layout(rows, channels, cols);
        const TileGeometry g = reduction_geometry(layout.rows, layout.cols, 4, layout.reduce, channels);
        EXPECT_EQ(reduce_layout(layout.reduce, layout.rows, layout.cols, g, channels).floats() * 4 +
                      kWorkspaceAlignment,
                  pbytes);
      }
    }
  EXPECT_EQ(bias_backward_workspace(DType::f32, 0, 10), 0);
  EXPECT_EQ(prelu_backward_workspace(DType::f32, 4, 0, 10), 0);
}

// ---------------------------------------------------------------- the calls' streams

// Byte address of element (r, c) of a stream, as the engine forms it.
std::uintptr_t address(const void* base, int64_t stride, int64_t r, int64_t c, int elem) {
  return reinterpret_cast<std::uintptr_t>(base) + static_cast<std::uintptr_t>((r * stride + c) * elem);
}

// Walks a request's plan (as the kernel would on a device of 37 blocks); for
// every element (r, c) calls f(r, c, whether its chunk takes the vector path).
template <class F>
void walk_elements(const RowRequest& req, int elem, F&& f) {
  const RowCall c = plan_rows(req, 37);
  walk(c.plan, c.geometry, [&](int64_t, int, int64_t r, int64_t chunk) {
    const ColumnSpan s = c.plan.chunk_columns(chunk);
    const bool vector = c.plan.access > 0 && s.count == c.plan.width;
    if (vector) {
      for (int k = 0; k < kMaxInputs; ++k) {
        if (c.in[k] != nullptr) {
          EXPECT_EQ(address(c.in[k], c.in_stride[k], r, s.begin, elem) % c.plan.access, 0u);
        }
      }
      for (int k = 0; k < kMaxOutputs; ++k) {
        if (c.out[k] != nullptr) {
          EXPECT_EQ(address(c.out[k], c.out_stride[k], r, s.begin, elem) % c.plan.access, 0u);
        }
      }
    }
    for (int j = 0; j < s.count; ++j) f(r, s.begin + j, vector);
  });
}

TEST(RowRequests, GluHalvesForOddAndEvenWidths) {
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
          const RowRequest f = glu_forward_request(glu, dtype, x, y, rows, d);
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
            EXPECT_EQ(packed, rows * d) << "aligned GLU rows of whole chunks move as vectors";
          }
          if (misalign == 0 && d * elem % 8 == 0) {
            EXPECT_GT(packed, 0) << "8-byte-aligned GLU halves still take the vector path";
          }
          // Backward writes both halves of dx where it reads both halves of x.
          const auto dx = reinterpret_cast<void*>(kBase + (1 << 25) + misalign * elem);
          const RowRequest bw = glu_backward_request(glu, dtype, x, y, dx, rows, d);
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

TEST(RowRequests, BiasIsReadAtTheElementsColumn) {
  for (int64_t rows : kRows)
    for (int64_t cols : kCols) {
      const auto x = reinterpret_cast<const void*>(kBase + 4);
      const auto bias = reinterpret_cast<const void*>(kBase + (1 << 26) + 8);
      const RowRequest c = bias_activation_forward_request(Activation::gelu(), DType::f32, x, bias, DType::f32,
                                                           const_cast<void*>(x), rows, cols,
                                                           Dropout{}, nullptr);
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

TEST(RowRequests, PreluWeightIsTheElementsChannel) {
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

// Each request is planned with the chunk width of the kernel that runs it
// (the launch refuses any other): eight fp32 elements for the forms that
// draw random values and do not reduce (one Philox block per chunk), one
// 16-byte vector otherwise.
TEST(RowRequests, ChunkWidthIsTheFormsOwn) {
  const auto p = reinterpret_cast<void*>(kBase);
  const Dropout drop{0.5f, 1, 2};
  auto width = [](const RowRequest& r) { return plan_rows(r, 1).plan.width; };
  using F32Forward = ActivationForward<device::Relu<float>, float, true>;
  using F32Backward = ActivationBackward<device::Relu<float>, float, true>;
  using HalfForward = ActivationForward<device::Relu<__half>, __half, true>;
  using F32Plain = ActivationForward<device::Relu<float>, float, false>;
  static_assert(kChunkWidth<F32Forward> == 8 && kChunkWidth<F32Backward> == 4);
  static_assert(kChunkWidth<HalfForward> == 8 && kChunkWidth<F32Plain> == 4);
  static_assert(kChunkWidth<SlopeForward<float, true>> == 8 && kChunkWidth<SlopeBackward<float, true>> == 4);
  EXPECT_EQ(width(bias_activation_forward_request(Activation::relu(), DType::f32, p, nullptr, DType::f32, p,
                                                  4, 64, drop, nullptr)),
            kChunkWidth<F32Forward>);
  EXPECT_EQ(width(bias_activation_backward_request(Activation::relu(), DType::f32, p, nullptr, DType::f32, p,
                                                   p, nullptr, 4, 64, drop, nullptr)),
            kChunkWidth<F32Backward>);
  EXPECT_EQ(width(bias_activation_forward_request(Activation::relu(), DType::f16, p, nullptr, DType::f16, p,
                                                  4, 64, drop, nullptr)),
            kChunkWidth<HalfForward>);
  EXPECT_EQ(width(activation_request(Direction::forward, Activation::relu(), DType::f32, p, nullptr, p, 1000)),
            kChunkWidth<F32Plain>);
  EXPECT_EQ(width(rrelu_request(Rrelu{0.1f, 0.3f, true, 5, 6}, DType::f32, p, nullptr, p, 1000, false)),
            (kChunkWidth<SlopeForward<float, true>>));
  EXPECT_EQ(width(rrelu_request(Rrelu{0.1f, 0.3f, true, 5, 6}, DType::f32, p, p, p, 1000, true)),
            (kChunkWidth<SlopeBackward<float, true>>));
}

TEST(RowRequests, NeutralValuesAndFlagsOfEachCall) {
  const auto p = reinterpret_cast<void*>(kBase);
  const RowRequest plain =
      bias_activation_forward_request(Activation::relu(), DType::f32, p, nullptr, DType::f32, p, 2, 3, {}, nullptr);
  EXPECT_EQ(plain.param_mode, ParamMode::none);
  EXPECT_TRUE(std::signbit(plain.param_fill)) << "no bias adds -0.0: x + -0.0 == x";
  EXPECT_EQ(plain.in[1], nullptr) << "no linear half: the plain loop";
  EXPECT_FALSE(plain.random);
  EXPECT_EQ(plain.dropout.threshold, 0u);
  EXPECT_EQ(plain.args.scale, 1.0f);
  const RowRequest dropped =
      bias_activation_forward_request(Activation::relu(), DType::f32, p, nullptr, DType::f32, p, 2, 3, Dropout{1.0f}, nullptr);
  EXPECT_EQ(plan_rows(dropped, 1).keep_threshold, 65536u) << "p = 1 keeps nothing: above every draw";
  uint8_t mask[6];
  const RowRequest masked =
      bias_activation_forward_request(Activation::relu(), DType::f32, p, nullptr, DType::f32, p, 2, 3, {}, mask);
  EXPECT_TRUE(masked.random) << "a mask is written by the dropout kernel (p = 0 keeps all)";
  EXPECT_EQ(plan_rows(masked, 1).keep_threshold, 0u);
  const RowRequest half = bias_activation_forward_request(Activation::relu(), DType::f32, p, nullptr, DType::f32,
                                                          p, 2, 3, Dropout{0.5f, 1, 2}, nullptr);
  EXPECT_TRUE(half.random);
  EXPECT_EQ(half.stream.seed, 1u);
  EXPECT_EQ(half.stream.offset, 2u);
  const RowRequest train = rrelu_request(Rrelu{0.1f, 0.3f, true, 5, 6}, DType::f32, p, nullptr, p, 9, false);
  EXPECT_TRUE(train.random);
  EXPECT_EQ(train.param_fill, 0.1f);
  EXPECT_EQ(train.args.slope.span, 0.3f - 0.1f);
  const RowRequest eval = rrelu_request(Rrelu{0.1f, 0.3f, false}, DType::f32, p, nullptr, p, 9, false);
  EXPECT_FALSE(eval.random);
  EXPECT_EQ(eval.args.slope.span, 0.0f);
  EXPECT_EQ(eval.param_fill, static_cast<float>((static_cast<double>(0.1f) + 0.3f) / 2));
  const RowRequest from_y = activation_request(Direction::backward_from_output, Activation::sigmoid(),
                                               DType::f16, p, p, p, 10);
  EXPECT_TRUE(from_y.args.from_output);
  EXPECT_TRUE(from_y.flat);
}

TEST(RowRequests, TheApiRejectsPointersNotAlignedToTheirElement) {
  alignas(16) static float buffer[64];
  const char* base = reinterpret_cast<const char*>(buffer);
  for (int off = 1; off < 4; ++off) {
    const Status s = check_activation_call(Direction::forward, Activation::relu(), DType::f32,
                                           base + off, nullptr, buffer + 32, 8);
    EXPECT_EQ(s.code(), StatusCode::misaligned_pointer) << "offset " << off;
  }
}

}  // namespace
}  // namespace cuact::detail
