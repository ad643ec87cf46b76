// The softmax kernels' plans walked on the CPU exactly as the kernels walk
// them (cuda/softmax_plan.h): the one dispatch decision, every warp variant's
// lane/slot-to-column map, the row loops, the block and streaming per-row
// plans with the shared-memory cache slots, the mask-row and causal index
// arithmetic; for every row length of the test grid, every element is read
// and written exactly once and nothing outside the row is touched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "device_limits.h"
#include "softmax_accuracy.h"
#include "softmax_io.h"
#include "softmax_plan.h"

namespace cuact::detail {
namespace {

using test::softmax_test_cols;

constexpr std::uintptr_t kBase = 0x7f0000000000;  // 16-byte aligned

// Shared memory one block may opt in to: H100/H200 (sm_90) and A100 (sm_80).
constexpr int64_t kH100Optin = 232448;
constexpr int64_t kA100Optin = 166912;

TEST(SoftmaxFastDivider, MatchesIntegerDivision) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> divisors = {
      1, 2, 3, 5, 7, 64, 100, 4099, (1ull << 31) - 1, 1ull << 32, (1ull << 62) + 1, 1ull << 63};
  for (int i = 0; i < 200; ++i) divisors.push_back(1 + (rng() >> (1 + rng() % 63)));
  std::vector<uint64_t> numbers = {0,          1,     2,        3, 63, 64, 65, (1ull << 62) - 1,
                                   1ull << 62, ~0ull, ~0ull - 1};
  for (int i = 0; i < 200; ++i) numbers.push_back(rng() >> (rng() % 64));
  for (uint64_t d : divisors) {
    const FastDivider f(d);
    for (uint64_t n : numbers) {
      ASSERT_EQ(f.quotient(n), n / d) << n << " / " << d;
      ASSERT_EQ(f.remainder(n), n % d) << n << " % " << d;
    }
    for (uint64_t k = 0; k < 4; ++k) {  // around the multiples of d
      const uint64_t m = d * (k + 1);
      if (m / (k + 1) != d) continue;
      for (uint64_t n : {m - 1, m, m + 1}) ASSERT_EQ(f.quotient(n), n / d) << n << " / " << d;
    }
  }
}

TEST(SoftmaxRowSpec, MaskRowAndCausalVisibleColumns) {
  for (int64_t mask_rows : {int64_t{0}, int64_t{1}, int64_t{7}})
    for (int64_t repeat : {1, 3})
      for (int64_t q : {int64_t{0}, int64_t{1}, int64_t{5}})
        for (int64_t offset : {-7, -1, 0, 2, 1000}) {
          const int64_t cols = 9;
          const SoftmaxLayout l = make_softmax_layout(4099, cols, mask_rows, repeat, q, offset);
          for (int64_t row :
               {int64_t{0}, int64_t{1}, int64_t{4}, int64_t{5}, int64_t{17}, int64_t{4098}}) {
            const SoftmaxRowSpec s = softmax_row_spec(l, row);
            EXPECT_EQ(s.mask_row, mask_rows > 0 ? (row / repeat) % mask_rows : -1);
            const int64_t expect =
                q > 0 ? std::max<int64_t>(0, std::min<int64_t>(cols, row % q + offset + 1)) : cols;
            EXPECT_EQ(s.visible, expect) << "row " << row << " q " << q << " offset " << offset;
          }
        }
  // 64-bit rows and the largest offsets the API allows.
  const int64_t big = (int64_t{1} << 62) - 1;
  const SoftmaxLayout l = make_softmax_layout(int64_t{1} << 40, 3, 1000003, 7, 999983, -big);
  const int64_t row = (int64_t{1} << 40) - 5;
  EXPECT_EQ(softmax_row_spec(l, row).mask_row, (row / 7) % 1000003);
  EXPECT_EQ(softmax_row_spec(l, row).visible, 0);
  const SoftmaxLayout h = make_softmax_layout(int64_t{1} << 40, 3, 0, 1, 999983, big);
  EXPECT_EQ(softmax_row_spec(h, row).visible, 3);
}

// ---------------------------------------------------------------- the dispatch decision

struct DeviceCase {
  const char* name;
  int64_t optin;
  int max_cluster_ranks;  // 0: no thread-block clusters
};
const DeviceCase kDevices[] = {{"H100", kH100Optin, 16}, {"A100", kA100Optin, 0}};

TEST(SoftmaxDispatch, AutomaticChoiceForEveryRowLength) {
  for (const DeviceCase& d : kDevices)
    for (bool backward : {false, true})
      for (int elem : {2, 4})
        for (int64_t cols : softmax_test_cols()) {
          const int64_t per_col = block_cache_bytes_per_col(backward, elem);
          const int64_t capacity = d.optin - kBlockStaticSmemSlack;
          const int width = 16 / elem;
          const SoftmaxChoice c = choose_softmax_algorithm(SoftmaxAlgorithm::automatic, cols, per_col,
                                                           capacity, width, d.max_cluster_ranks);
          SCOPED_TRACE(testing::Message() << d.name << " backward=" << backward << " elem=" << elem
                                          << " cols=" << cols);
          EXPECT_EQ(c.refusal, nullptr);
          const int64_t largest_slice = cluster_slice_capacity(cols, 16, width);
          if (cols <= 1024) {
            EXPECT_EQ(c.algorithm, SoftmaxAlgorithm::warp_per_row);
          } else if (cols * per_col <= capacity) {
            EXPECT_EQ(c.algorithm, SoftmaxAlgorithm::block_per_row);
          } else if (d.max_cluster_ranks == 16 && largest_slice * per_col <= capacity) {
            EXPECT_EQ(c.algorithm, SoftmaxAlgorithm::cluster_per_row);
          } else {
            EXPECT_EQ(c.algorithm, SoftmaxAlgorithm::streaming);
          }
        }
  // The thresholds on an H100, stated: forward caches fp32 (4 B/column),
  // backward y and dy in the dtype; clusters of up to 16 blocks of 226 KiB.
  const int64_t cap = kH100Optin - kBlockStaticSmemSlack;
  auto pick = [&](int64_t cols, int64_t per_col, int width = 4, int ranks = 16) {
    return choose_softmax_algorithm(SoftmaxAlgorithm::automatic, cols, per_col, cap, width, ranks)
        .algorithm;
  };
  EXPECT_EQ(pick(1024, 4), SoftmaxAlgorithm::warp_per_row);
  EXPECT_EQ(pick(1025, 4), SoftmaxAlgorithm::block_per_row);
  EXPECT_EQ(pick(57856, 4), SoftmaxAlgorithm::block_per_row);  // 226 KiB of fp32
  EXPECT_EQ(pick(57857, 4), SoftmaxAlgorithm::cluster_per_row);
  EXPECT_EQ(pick(57857, 4, 4, 0), SoftmaxAlgorithm::streaming);  // no clusters (A100)
  EXPECT_EQ(pick(32768, 8), SoftmaxAlgorithm::cluster_per_row);  // f32 backward: y and dy
  EXPECT_EQ(pick(28928, 8), SoftmaxAlgorithm::block_per_row);
  EXPECT_EQ(pick(151936, 4), SoftmaxAlgorithm::cluster_per_row);  // a vocabulary row
  EXPECT_EQ(pick(262144, 8), SoftmaxAlgorithm::cluster_per_row);
  // 16 slices of at most ceil(231408 / 16) packs of 4 and 3 more columns: 57855 fp32.
  EXPECT_EQ(pick(925635, 4), SoftmaxAlgorithm::cluster_per_row);
  EXPECT_EQ(pick(925636, 4), SoftmaxAlgorithm::streaming);
  EXPECT_EQ(pick(int64_t{1} << 24, 4), SoftmaxAlgorithm::streaming);
}

TEST(SoftmaxDispatch, ForcedAlgorithmsRunOrSayWhyNot) {
  const int64_t cap = kH100Optin - kBlockStaticSmemSlack;
  for (int64_t cols : softmax_test_cols()) {
    auto forced = [&](SoftmaxAlgorithm a, int ranks = 16) {
      return choose_softmax_algorithm(a, cols, 4, cap, 4, ranks);
    };
    const SoftmaxChoice w = forced(SoftmaxAlgorithm::warp_per_row);
    EXPECT_EQ(w.algorithm, SoftmaxAlgorithm::warp_per_row);
    EXPECT_EQ(w.refusal == nullptr, cols <= kWarpMaxCols) << cols;
    const SoftmaxChoice b = forced(SoftmaxAlgorithm::block_per_row);
    EXPECT_EQ(b.refusal == nullptr, cols <= kRegisterMaxCols || cols * 4 <= cap) << cols;
    const SoftmaxChoice c = forced(SoftmaxAlgorithm::cluster_per_row);
    EXPECT_EQ(c.algorithm, SoftmaxAlgorithm::cluster_per_row);
    EXPECT_EQ(c.refusal == nullptr, cluster_slice_capacity(cols, 2, 4) * 4 <= cap) << cols;
    EXPECT_NE(forced(SoftmaxAlgorithm::cluster_per_row, 0).refusal, nullptr);  // no clusters
    const SoftmaxChoice s = forced(SoftmaxAlgorithm::streaming);
    EXPECT_EQ(s.algorithm, SoftmaxAlgorithm::streaming);
    EXPECT_EQ(s.refusal, nullptr);
  }
}

// inner > 1 always runs middle_dim (a forced row algorithm is refused);
// middle_dim forced on rows runs unless the call has a mask or causal.
TEST(SoftmaxDispatch, MiddleDimensionChoice) {
  const int64_t cap = kH100Optin - kBlockStaticSmemSlack;
  const SoftmaxAlgorithm rows_algorithms[] = {
      SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
      SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming};
  for (int64_t cols : {1, 100, 5000, 1 << 20}) {
    auto choose = [&](SoftmaxAlgorithm a, int64_t inner, bool options) {
      return choose_softmax_for_shape(a, inner, options, cols, 4, cap, 4, 16);
    };
    const SoftmaxChoice automatic = choose(SoftmaxAlgorithm::automatic, 8, false);
    EXPECT_EQ(automatic.algorithm, SoftmaxAlgorithm::middle_dim);
    EXPECT_EQ(automatic.refusal, nullptr);
    for (SoftmaxAlgorithm a : rows_algorithms) {
      EXPECT_NE(choose(a, 2, false).refusal, nullptr);
      const SoftmaxChoice on_rows = choose(a, 1, false);
      const SoftmaxChoice direct = choose_softmax_algorithm(a, cols, 4, cap, 4, 16);
      EXPECT_EQ(on_rows.algorithm, direct.algorithm);
      EXPECT_EQ(on_rows.refusal == nullptr, direct.refusal == nullptr);
    }
    EXPECT_EQ(choose(SoftmaxAlgorithm::automatic, 1, true).algorithm,
              choose_softmax_algorithm(SoftmaxAlgorithm::automatic, cols, 4, cap, 4, 16).algorithm);
    EXPECT_EQ(choose(SoftmaxAlgorithm::middle_dim, 1, false).refusal, nullptr);
    EXPECT_NE(choose(SoftmaxAlgorithm::middle_dim, 1, true).refusal, nullptr);
  }
}

// The cluster kernels run only where the device has clusters and the kernel
// image loaded for it is sm_90 code: an sm_80-only build on an H100 (its
// compute_80 code JIT-compiled, ptxVersion 80, empty cluster kernels) takes
// the next algorithm, and a forced cluster_per_row is refused, never launched.
TEST(SoftmaxDispatch, ClusterPathOnlyWhereTheLoadedImageHasSm90Code) {
  EXPECT_TRUE(cluster_kernels_usable(1, 90));
  EXPECT_TRUE(cluster_kernels_usable(1, 100));
  EXPECT_FALSE(cluster_kernels_usable(1, 80));  // sm_80-only build on an H100
  EXPECT_FALSE(cluster_kernels_usable(0, 90));  // A100
  const int64_t cap = kH100Optin - kBlockStaticSmemSlack;
  for (int ptx : {80, 86, 90}) {
    const int ranks = cluster_kernels_usable(1, ptx) ? 16 : 0;  // as max_cluster_ranks gives
    const SoftmaxChoice automatic =
        choose_softmax_algorithm(SoftmaxAlgorithm::automatic, 151936, 4, cap, 4, ranks);
    const SoftmaxChoice forced =
        choose_softmax_algorithm(SoftmaxAlgorithm::cluster_per_row, 151936, 4, cap, 4, ranks);
    if (ptx >= 90) {
      EXPECT_EQ(automatic.algorithm, SoftmaxAlgorithm::cluster_per_row);
      EXPECT_EQ(forced.refusal, nullptr);
    } else {
      EXPECT_EQ(automatic.algorithm, SoftmaxAlgorithm::streaming) << ptx;
      EXPECT_NE(forced.refusal, nullptr) << ptx;
    }
  }
}

// Every column of a row lies in exactly one block's slice, each slice after
// the first starts where the row's packs line up, and no slice is longer
// than the capacity the launch gives each block, for every alignment.
TEST(SoftmaxClusterPlan, SlicesPartitionTheRowWithinCapacity) {
  for (int elem : {2, 4})
    for (int64_t cols : softmax_test_cols())
      for (int offset = 0; offset < 16 / elem; ++offset)
        for (bool mismatched : {false, true})
          for (int ranks : kClusterSizes) {
            const std::uintptr_t a[3] = {static_cast<std::uintptr_t>(offset * elem),
                                         static_cast<std::uintptr_t>(offset * elem),
                                         static_cast<std::uintptr_t>((offset + mismatched) * elem)};
            const PackPlan row = softmax_row_plan(cols, elem, a, 3);
            const int width = 16 / elem;
            SCOPED_TRACE(testing::Message() << "elem " << elem << " cols " << cols << " offset "
                                            << offset << " mismatched " << mismatched << " ranks "
                                            << ranks);
            int64_t next = 0;
            for (int r = 0; r < ranks; ++r) {
              const RowSlice s = cluster_row_slice(row, r, ranks);
              ASSERT_EQ(s.begin, next);
              ASSERT_GE(s.end, s.begin);
              EXPECT_LE(s.length(), cluster_slice_capacity(cols, ranks, width));
              if (r > 0 && row.packs > 0) {
                EXPECT_EQ((s.begin - row.head) % width, 0);
              }
              // The slice's own plan (addresses advanced to it) starts with a pack.
              const std::uintptr_t sa[3] = {a[0] + s.begin * elem, a[1] + s.begin * elem,
                                            a[2] + s.begin * elem};
              const PackPlan own = softmax_row_plan(s.length(), elem, sa, 3);
              if (r > 0 && row.packs > 0) {
                EXPECT_EQ(own.head, 0);
              }
              next = s.end;
            }
            EXPECT_EQ(next, cols);
          }
}

TEST(SoftmaxClusterPlan, ClusterSizeKeepsTheMostBlocksBusy) {
  // {2, 4, 8, 16}: resident clusters of each -> index chosen for `rows` rows.
  EXPECT_EQ(choose_cluster_size(1000, {0, 0, 0, 0}), -1);
  EXPECT_EQ(choose_cluster_size(1000, {66, 33, 16, 8}), 0);  // ties: the smaller cluster
  EXPECT_EQ(choose_cluster_size(1000, {0, 33, 16, 8}), 1);
  EXPECT_EQ(choose_cluster_size(1, {66, 33, 16, 8}), 3);  // one row: the widest cluster
  EXPECT_EQ(choose_cluster_size(8, {66, 33, 16, 8}), 3);
  EXPECT_EQ(choose_cluster_size(8, {66, 33, 16, 0}), 2);
  EXPECT_EQ(smallest_cluster_for(151936, 4, 231424, 4, 16), 4);
  EXPECT_EQ(smallest_cluster_for(151936, 4, 231424, 4, 2), 0);
}

TEST(SoftmaxDispatch, BlockSizeMaximizesResidentThreads) {
  // {128, 256, 512, 1024}: resident blocks per SM of each -> index chosen.
  EXPECT_EQ(choose_block_threads({16, 8, 4, 2}), 0);  // all 2048 threads: smallest wins
  EXPECT_EQ(choose_block_threads({1, 1, 1, 1}), 3);   // one block of a big row: 1024 threads
  EXPECT_EQ(choose_block_threads({3, 3, 3, 2}), 3);   // 2048 > 1536
  EXPECT_EQ(choose_block_threads({5, 5, 3, 1}), 2);   // 1536 > 1280 > 1024
  EXPECT_EQ(choose_block_threads({0, 0, 0, 0}), -1);  // does not fit
  EXPECT_EQ(choose_block_threads({2, 0, 0, 0}), 0);
}

TEST(SoftmaxDispatch, GridCoversRowsOrCapsAtWaves) {
  EXPECT_EQ(softmax_grid(1, 132, 16, 8), 1);
  EXPECT_EQ(softmax_grid(1000, 132, 16, 8), 1000);
  EXPECT_EQ(softmax_grid(int64_t{1} << 40, 132, 16, 8), 132 * 16 * 8);
  EXPECT_EQ(softmax_grid(int64_t{1} << 40, 132, 1, 1), 132);
  EXPECT_GE(softmax_grid(5, 0, 0, 1), 1);  // nonsense attributes still launch
}

// ---------------------------------------------------------------- warp_per_row

TEST(SoftmaxRegisterPlan, VariantsCoverEveryLengthWithinTheRegisterBudget) {
  for (int elem : {2, 4})
    for (int index = 0; index < kRegisterConfigs; ++index) {
      const RegisterConfig c = register_config_for_span(index, elem);
      SCOPED_TRACE(testing::Message() << "elem=" << elem << " index=" << index);
      EXPECT_EQ(c.span(), 1 << index);
      EXPECT_TRUE(c.lanes >= 1 && c.lanes <= 1024 && (c.lanes & (c.lanes - 1)) == 0);
      EXPECT_EQ(c.lanes <= 32, index <= 10);  // warp groups up to 1024 columns
      EXPECT_LE(c.cols_per_lane, index <= 10 ? 32 : kRegisterBlockValues);  // registers per lane
      EXPECT_EQ(c.pack, std::min(c.cols_per_lane, full_pack_width(elem)));
      EXPECT_EQ(c.cols_per_lane % c.pack, 0);
      // A unit (a warp, or the block of a block-wide group) holds whole rows,
      // and the block whole units.
      EXPECT_EQ(c.rows_per_unit() * c.lanes, c.unit_threads());
      EXPECT_EQ(c.block_threads() % c.unit_threads(), 0);
      EXPECT_EQ(c.rows_per_block() * c.lanes, c.block_threads());
      EXPECT_LE(c.block_threads(), 1024);
      // Short rows keep whole 16-byte packs per lane; only the longest use all 32 lanes.
      if (c.span() >= full_pack_width(elem)) {
        EXPECT_EQ(c.pack, full_pack_width(elem));
      }
    }
  for (int64_t cols = 1; cols <= kRegisterMaxCols; ++cols) {
    const int index = register_config_index(cols);
    ASSERT_LT(index, kRegisterConfigs);
    ASSERT_GE(int64_t{1} << index, cols);
    ASSERT_TRUE(index == 0 || (int64_t{1} << (index - 1)) < cols) << cols;
  }
}

// Every column of the row in exactly one (lane, slot); the other slots are
// padding past the row; packs start on a pack boundary.
void walk_warp(int elem, int64_t cols, bool vectorized) {
  const RegisterConfig c = register_config_for_span(register_config_index(cols), elem);
  std::vector<int> hits(static_cast<size_t>(c.span()), 0);
  for (int lane = 0; lane < c.lanes; ++lane)
    for (int slot = 0; slot < c.cols_per_lane; ++slot) {
      const int col = lane_slot_column(c, lane, slot, vectorized);
      ASSERT_GE(col, 0);
      ASSERT_LT(col, c.span());
      ++hits[col];
      if (vectorized && slot % c.pack == 0) {
        ASSERT_EQ(col % c.pack, 0);
        // a pack lies wholly inside or wholly outside the row
        ASSERT_EQ(col < cols, col + c.pack - 1 < cols) << col;
      }
    }
  for (int64_t col = 0; col < c.span(); ++col) ASSERT_EQ(hits[col], 1) << "column " << col;
  // Coalescing: lane-neighbours read neighbouring columns (or packs).
  if (c.lanes > 1) {
    const int step = vectorized ? c.pack : 1;
    EXPECT_EQ(lane_slot_column(c, 1, 0, vectorized) - lane_slot_column(c, 0, 0, vectorized), step);
  }
}

TEST(SoftmaxRegisterPlan, EverySlotMapsToOneColumnForEveryLength) {
  for (int elem : {2, 4})
    for (int64_t cols : softmax_test_cols()) {
      if (cols > kRegisterMaxCols) continue;
      const RegisterConfig c = register_config_for_span(register_config_index(cols), elem);
      SCOPED_TRACE(testing::Message() << "elem=" << elem << " cols=" << cols);
      walk_warp(elem, cols, false);
      if (cols % c.pack == 0) walk_warp(elem, cols, true);
    }
}

TEST(SoftmaxRegisterPlan, PacksOnlyWhereEveryRowStartsOnABoundary) {
  const RegisterConfig c = register_config_for_span(register_config_index(1000), 2);  // f16, P = 8
  ASSERT_EQ(c.pack, 8);
  const std::uintptr_t aligned[3] = {kBase, kBase + 4096, kBase + 8192};
  const std::uintptr_t one_off[3] = {kBase, kBase + 4096 + 2, kBase + 8192};
  const int64_t dense[3] = {1000, 1000, 1000}, dense_odd[3] = {1001, 1001, 1001};
  const int64_t padded[3] = {1000, 1024, 1000}, padded_odd[3] = {1000, 1028, 1000};
  EXPECT_TRUE(register_rows_vectorizable(c, 1000, 2, aligned, dense, 3));  // 2000-byte rows
  EXPECT_FALSE(register_rows_vectorizable(c, 1001, 2, aligned, dense_odd, 3));  // rows drift
  EXPECT_FALSE(register_rows_vectorizable(c, 1000, 2, one_off, dense, 3));  // one buffer misaligned
  EXPECT_TRUE(register_rows_vectorizable(c, 1000, 2, aligned, padded, 3));  // a stride of whole packs
  EXPECT_FALSE(register_rows_vectorizable(c, 1000, 2, aligned, padded_odd, 3));  // one that drifts
  const RegisterConfig tiny = register_config_for_span(register_config_index(3), 4);  // C = P = 4
  const int64_t three[3] = {3, 3, 3}, one_col[3] = {1, 1, 1};
  EXPECT_FALSE(register_rows_vectorizable(tiny, 3, 4, aligned, three, 3));
  const RegisterConfig one = register_config_for_span(0, 4);  // a column per row: scalar
  EXPECT_FALSE(register_rows_vectorizable(one, 1, 4, aligned, one_col, 3));
}

TEST(SoftmaxRegisterPlan, RowGroupsVisitEveryRowOnce) {
  for (int64_t rows : {1, 3, 64, 4099})
    for (int per_group : {1, 2, 8, 32})
      for (int64_t warps : {1, 7, 1000}) {
        std::vector<int> hits(static_cast<size_t>(rows), 0);
        for (int64_t w = 0; w < warps; ++w)
          for_each_row_group(w, warps, per_group, rows, [&](int64_t first) {
            for (int g = 0; g < per_group; ++g)
              if (first + g < rows) ++hits[first + g];  // the kernel's `active` lanes
          });
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_EQ(hits[r], 1) << "rows " << rows << " per group " << per_group << " warps "
                                << warps << " row " << r;
      }
}

// The row loop's mask row and causal index by additions (RowSpecWalk
// advanced by the layout's row step) equal the divisions of
// softmax_row_spec at every row a lane visits: every step from 1 past the
// row count, mask repeats and mask row counts with and without carries,
// causal patterns with offsets; and near 2^62, where a sum of two
// remainders must not overflow.
TEST(SoftmaxRowWalk, AdditionsFollowTheDivisionsForEveryStep) {
  int64_t compared = 0;
  for (int64_t repeat : {1, 3, 7})
    for (int64_t mask_rows : {0, 1, 2, 5})
      for (int64_t causal_rows : {0, 1, 4, 9})
        for (int64_t offset : {-3, 0, 5})
          for (int64_t step : {1, 2, 3, 7, 64, 199, 200, 1000}) {
            const int64_t rows = 200, cols = 12;
            SoftmaxLayout l = make_softmax_layout(rows, cols, mask_rows, repeat, causal_rows, offset);
            set_row_step(l, step);
            for (int64_t first = 0; first < std::min(step, rows); ++first) {
              RowSpecWalk w(l, first);
              for (int64_t row = first; row < rows; row += step) {
                const SoftmaxRowSpec got = w.spec(l), want = softmax_row_spec(l, row);
                ASSERT_EQ(got.mask_row, want.mask_row) << row << " step " << step;
                ASSERT_EQ(got.visible, want.visible) << row << " step " << step;
                w.advance(l);
                ++compared;
              }
            }
          }
  EXPECT_GT(compared, 100000);
  const int64_t big = int64_t{1} << 61;
  SoftmaxLayout l = make_softmax_layout(int64_t{1} << 62, 8, (int64_t{1} << 40) + 1,
                                        (int64_t{1} << 21) + 3, big + 12345, -7);
  const int64_t step = (int64_t{1} << 58) + 999;
  set_row_step(l, step);
  RowSpecWalk w(l, 77);
  for (int64_t row = 77; row < (int64_t{1} << 62); row += step) {
    const SoftmaxRowSpec got = w.spec(l), want = softmax_row_spec(l, row);
    ASSERT_EQ(got.mask_row, want.mask_row) << row;
    ASSERT_EQ(got.visible, want.visible) << row;
    w.advance(l);
  }
}

// block_per_row keeps a row in registers where the row is at most 16384
// long and vectorizable (or the cache cannot hold it), in the variant of
// its length (2048 for shorter rows); otherwise the shared-memory cache.
// Longer rows on pack boundaries go to the register cluster that holds
// them, before the shared-memory block.
TEST(SoftmaxDispatch, RowsInRegistersOrTheCache) {
  EXPECT_TRUE(block_row_in_registers(2048, true, true));
  EXPECT_TRUE(block_row_in_registers(kRegisterMaxCols, true, true));
  EXPECT_FALSE(block_row_in_registers(kRegisterMaxCols + 8, true, true));
  EXPECT_FALSE(block_row_in_registers(3000, false, true));  // misaligned: the cache's packs
  EXPECT_TRUE(block_row_in_registers(3000, false, false));  // unless the cache cannot hold it
  EXPECT_FALSE(block_row_in_registers(kRegisterMaxCols + 8, false, false));
  EXPECT_EQ(block_register_index(1), kRegisterBlockIndex);
  EXPECT_EQ(block_register_index(1025), kRegisterBlockIndex);
  EXPECT_EQ(block_register_index(2049), 12);
  EXPECT_EQ(block_register_index(kRegisterMaxCols), kRegisterConfigs - 1);
  // Longer rows on pack boundaries: a cluster's registers, slices of 16384.
  EXPECT_EQ(cluster_register_ranks(16385, 16), 2);
  EXPECT_EQ(cluster_register_ranks(32768, 16), 2);
  EXPECT_EQ(cluster_register_ranks(32769, 16), 4);
  EXPECT_EQ(cluster_register_ranks(262144, 16), 16);
  EXPECT_EQ(cluster_register_ranks(262145, 16), 0);
  EXPECT_EQ(cluster_register_ranks(262144, 8), 0);  // portable clusters only
  EXPECT_EQ(cluster_register_ranks(40000, 0), 0);   // no clusters, or misaligned rows
  const int64_t cap = kH100Optin - kBlockStaticSmemSlack;
  auto automatic = [&](int64_t cols, int register_ranks) {
    return choose_softmax_algorithm(SoftmaxAlgorithm::automatic, cols, 4, cap, 4, 16,
                                    register_ranks)
        .algorithm;
  };
  EXPECT_EQ(automatic(16384, 16), SoftmaxAlgorithm::block_per_row);
  EXPECT_EQ(automatic(20000, 16), SoftmaxAlgorithm::cluster_per_row);  // registers
  EXPECT_EQ(automatic(20000, 0), SoftmaxAlgorithm::block_per_row);     // the cache
  EXPECT_EQ(automatic(262144, 16), SoftmaxAlgorithm::cluster_per_row);
  EXPECT_EQ(automatic(300000, 16), SoftmaxAlgorithm::cluster_per_row);  // cached slices
  EXPECT_EQ(choose_softmax_algorithm(SoftmaxAlgorithm::cluster_per_row, 100, 4, cap, 4, 0, 16)
                .refusal,
            nullptr);
  // The register cluster's blocks hold 16384 columns in either direction.
  for (bool backward : {false, true})
    EXPECT_EQ(register_cluster_threads(backward) * register_cluster_values(backward),
              kRegisterMaxCols);
  for (int elem : {2, 4}) {
    const RegisterConfig c = register_config_for_span(kRegisterBlockIndex, elem);
    EXPECT_EQ(c.lanes, 128);
    EXPECT_EQ(c.block_threads(), 128);
    EXPECT_EQ(c.rows_per_block(), 1);
    EXPECT_EQ(register_config_for_span(kRegisterConfigs - 1, elem).block_threads(), 1024);
  }
}

// The occupancy rules the launch plan applies to cached kernel facts
// (resident_blocks), on an H100's limits, worked by hand: registers by the
// warp in units of 256, the runtime's 1 KB a block, the thread and block
// limits. (The GPU suite compares them with the driver's calculator.)
TEST(SoftmaxOccupancy, ResidentBlocksByTheOccupancyRules) {
  DeviceLimits h100;
  h100.threads_per_sm = 2048;
  h100.regs_per_sm = 65536;
  h100.smem_per_sm = 233472;
  h100.blocks_per_sm = 32;
  h100.reserved_smem_per_block = 1024;
  EXPECT_EQ(resident_blocks(h100, 256, 32, 0), 8);      // threads: 2048 / 256
  EXPECT_EQ(resident_blocks(h100, 1024, 64, 0), 1);     // registers: 65536 / (1024 * 64)
  EXPECT_EQ(resident_blocks(h100, 128, 64, 0), 8);
  EXPECT_EQ(resident_blocks(h100, 128, 33, 0), 12);     // 33 -> 40 a thread (1280 a warp): 51 warps
  EXPECT_EQ(resident_blocks(h100, 128, 255, 0), 2);     // 8192 a warp: 8 warps
  EXPECT_EQ(resident_blocks(h100, 32, 16, 0), 32);      // the block limit
  EXPECT_EQ(resident_blocks(h100, 256, 32, 100 * 1024), 2);  // 233472 / (102400 + 1024)
  EXPECT_EQ(resident_blocks(h100, 256, 32, 232448), 1);
  EXPECT_EQ(resident_blocks(h100, 256, 32, 233472), 0);      // past the SM with the reserve
  EXPECT_EQ(resident_blocks(h100, 4096, 16, 0), 0);          // more threads than an SM holds
}

// ---------------------------------------------------------------- block_per_row and streaming

// Offsets (in elements past a 16-byte boundary) of the three buffers of a row's plan.
struct Offsets {
  int in, second, out;
};

void walk_row_plan(int elem, int64_t cols, int threads, Offsets o, bool expect_packs) {
  const std::uintptr_t addresses[3] = {kBase + o.in * elem, kBase + (1 << 30) + o.second * elem,
                                       kBase + (2 << 30) + o.out * elem};
  const PackPlan plan = softmax_row_plan(cols, elem, addresses, 3);
  std::vector<int> hits(static_cast<size_t>(cols), 0), slots(static_cast<size_t>(cols), 0);
  int64_t outside = 0, misaligned = 0;
  for (int t = 0; t < threads; ++t)
    for_each_row_item(
        plan, t, threads,
        [&](int64_t p) {
          const int64_t first = plan.pack_start(p);
          for (const std::uintptr_t a : addresses)
            if ((a + first * elem) % kPackBytes != 0) ++misaligned;
          for (int q = 0; q < plan.width; ++q) {
            if (first + q < 0 || first + q >= cols)
              ++outside;
            else
              ++hits[first + q];
            const int64_t s = cache_slot_of_pack(plan, p, q);
            if (s < 0 || s >= cols)
              ++outside;
            else
              ++slots[s];
          }
        },
        [&](int64_t col) {
          if (col < 0 || col >= cols)
            ++outside;
          else
            ++hits[col];
          const int64_t s = cache_slot_of_scalar(plan, col);
          if (s < 0 || s >= cols)
            ++outside;
          else
            ++slots[s];
        });
  EXPECT_EQ(outside, 0);
  EXPECT_EQ(misaligned, 0);
  int64_t not_once = 0, slots_not_once = 0;
  for (int64_t i = 0; i < cols; ++i) {
    not_once += hits[i] != 1;
    slots_not_once += slots[i] != 1;
  }
  EXPECT_EQ(not_once, 0) << "columns read zero or several times";
  EXPECT_EQ(slots_not_once, 0) << "cache slots not a bijection";
  if (expect_packs && cols >= 2 * plan.width) {
    EXPECT_GT(plan.packs, 0);
  }
  if (!expect_packs) {
    EXPECT_EQ(plan.packs, 0);
  }
  // Threads t and t+1 write neighbouring slots for the same lane of a pack
  // (no shared-memory bank conflicts).
  if (plan.packs >= 2) {
    EXPECT_EQ(cache_slot_of_pack(plan, 1, 0) - cache_slot_of_pack(plan, 0, 0), 1);
  }
}

TEST(SoftmaxRowPlan, EveryColumnOnceForEveryLengthThreadCountAndOffset) {
  const Offsets layouts[] = {{0, 0, 0}, {1, 1, 1}, {3, 3, 3}, {1, 0, 1}, {0, 0, 2}};
  for (int elem : {2, 4})
    for (int64_t cols : softmax_test_cols())
      for (int threads : {128, 512, 1024})
        for (const Offsets& o : layouts) {
          if (cols > 70000 && threads != 512) continue;  // same plan, slower to walk
          const bool shared = o.in == o.second && o.in == o.out;
          SCOPED_TRACE(testing::Message()
                       << "elem=" << elem << " cols=" << cols << " threads=" << threads
                       << " offsets=" << o.in << "," << o.second << "," << o.out);
          walk_row_plan(elem, cols, threads, o, shared);
          if (HasFailure()) return;
        }
}

TEST(SoftmaxRowPlan, RowsOfAnAlignedTensorShareTheSamePlanShape) {
  // cols = 4097 f16: every row starts at a different offset; the plan still
  // uses packs in each, with a head of up to 7 scalars.
  SoftmaxArgs<__half> a;  // addresses only: nothing is read
  a.in = reinterpret_cast<const __half*>(kBase);
  a.out = reinterpret_cast<__half*>(kBase + (1 << 30));
  a.layout = make_softmax_layout(100, 4097, 0, 1, 0, 0);
  for (int64_t row = 0; row < 100; ++row) {
    const ForwardSource<__half> src(a, row);
    const RowSink<__half> sink(a, row);
    const PackPlan plan = row_pack_plan(src, sink, 4097);
    EXPECT_LT(plan.head, 8);
    EXPECT_GE(plan.packs, (4097 - 14) / 8) << row;
  }
}

}  // namespace
}  // namespace cuact::detail
