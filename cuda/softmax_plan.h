// The softmax kernels' plans, kept apart from the kernels so that CPU tests
// walk exactly what the kernels do: which rows a row loop visits, which
// columns a lane or thread owns, where the shared-memory cache keeps them,
// and which algorithm and launch shape a row length gets.
//
// The algorithms (SoftmaxAlgorithm) and their plans:
// - the row in registers (warp_per_row; block_per_row up to 16384 columns;
//   cluster_per_row's register kernel): a group of G lanes per row (1..32
//   within a warp, or a whole block), C columns per lane (G*C = the row
//   length rounded up to a power of two). With packs (P columns per
//   16-byte-or-narrower load) lane g owns packs g, g+G, g+2G...; without,
//   lane g owns columns g, g+G, g+2G...: both are coalesced across the
//   lanes. A register cluster's block r does this on its slice of 16384
//   columns.
// - block_per_row cached, streaming: one block per row; the row's PackPlan
//   (below: scalar head, 16-byte packs, scalar tail) is shared out to
//   the block's threads as in the elementwise engine. The cached kernel
//   keeps the row in shared memory, packs transposed (slot q*packs + p) so
//   that neighbouring threads hit neighbouring banks.
// - cluster_per_row cached: a thread-block cluster of R blocks per row;
//   block r takes the slice cluster_row_slice(row plan, r, R) and runs the
//   cached block code on it as on a row of its own (its buffers advanced to
//   the slice's first column).
// - middle_dim: see softmax_middle.h and MiddlePlan below.
#pragma once

#include <cstdint>

#include "cuact/softmax.h"
#include "cuact/device/config.h"
#include "fast_divider.h"

namespace cuact::detail {

// ---------------------------------------------------------------- a row's packs

// A row of n elements split into [head scalars][packs of `width` elements][tail
// scalars]: the head runs up to the first 16-byte boundary, the packs are
// 16-byte aligned in every buffer, the tail is what is left. When the buffers
// do not share their offset modulo 16 bytes, no pack lines up in all of them
// and every element is a scalar (the correct, slower fallback).
inline constexpr int kPackBytes = 16;

struct PackPlan {
  int64_t n = 0;
  int64_t head = 0;   // scalar elements before the first pack
  int64_t packs = 0;  // whole packs
  int width = 1;      // elements per pack

  CUACT_HD int64_t pack_start(int64_t p) const { return head + p * width; }
  CUACT_HD int64_t scalar_count() const { return n - packs * width; }
  // The s-th scalar element: the head first, then the tail after the packs.
  CUACT_HD int64_t scalar_index(int64_t s) const { return s < head ? s : s + packs * width; }
  // Work items one thread handles per loop trip: the longer of the two loops.
  CUACT_HD int64_t work_items() const {
    return packs > scalar_count() ? packs : scalar_count();
  }
};

// `addresses` are the byte addresses of every buffer the kernel touches, each
// aligned to elem_size (the API checks this first).
CUACT_HD PackPlan make_pack_plan(int64_t n, int elem_size, const std::uintptr_t* addresses,
                                 int count) {
  PackPlan plan;
  plan.n = n;
  plan.width = kPackBytes / elem_size;
  const std::uintptr_t offset = addresses[0] % kPackBytes;
  for (int i = 1; i < count; ++i) {
    if (addresses[i] % kPackBytes != offset) {
      plan.head = n;  // no common alignment: all scalars
      return plan;
    }
  }
  const int64_t head = static_cast<int64_t>((kPackBytes - offset) % kPackBytes) / elem_size;
  plan.head = head < n ? head : n;
  plan.packs = (n - plan.head) / plan.width;
  return plan;
}


// ---------------------------------------------------------------- rows, mask, causal

// A row loop's step in RowSpecWalk's terms (its parts of the step).
struct RowStep {
  uint64_t repeat_rem = 0, mask_row = 0, query = 0;
};

// The run-time shape and options of one call, as the kernels see them.
// Build it with make_softmax_layout (host). Element (o, c, j) of a buffer is
// at o * stride + c * inner + j (cuact::SoftmaxShape): `rows` counts o,
// `cols` counts c; the row kernels take inner == 1.
struct SoftmaxLayout {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t inner = 1;
  // Elements from one row (o) to the next, per buffer, resolved (never 0).
  int64_t in_stride = 0, grad_stride = 0, out_stride = 0, mask_stride = 0;
  bool has_mask = false;
  bool causal = false;
  int64_t causal_offset = 0;
  FastDivider mask_row_repeat;  // mask row = (row / repeat) % mask_rows
  FastDivider mask_rows;
  FastDivider causal_rows;  // query index = row % causal_rows
  FastDivider inner_groups;  // middle_dim: a thread's groups of inner positions per o
  RowStep row_step;  // the register kernels' row step (set_row_step)
};

// mask_rows == 0: no mask; causal_rows == 0: no causal mask. Dense rows;
// set the strides and inner after for other shapes.
inline SoftmaxLayout make_softmax_layout(int64_t rows, int64_t cols, int64_t mask_rows,
                                         int64_t mask_row_repeat, int64_t causal_rows,
                                         int64_t causal_offset) {
  SoftmaxLayout l;
  l.rows = rows;
  l.cols = cols;
  l.in_stride = l.grad_stride = l.out_stride = l.mask_stride = cols;
  l.has_mask = mask_rows > 0;
  if (l.has_mask) {
    l.mask_rows = FastDivider(static_cast<uint64_t>(mask_rows));
    l.mask_row_repeat = FastDivider(static_cast<uint64_t>(mask_row_repeat));
  }
  l.causal = causal_rows > 0;
  if (l.causal) l.causal_rows = FastDivider(static_cast<uint64_t>(causal_rows));
  l.causal_offset = causal_offset;
  return l;
}

// What a data row needs besides its data: its mask row and how many of its
// columns take part (the causal mask hides [visible, cols)).
struct SoftmaxRowSpec {
  int64_t mask_row = -1;  // -1: no mask
  int64_t visible = 0;    // columns [0, visible) are read; the rest are -inf
};

// A row's place in the mask and causal patterns, kept by additions along a
// row loop: a lane's row advances by the same step every trip
// (SoftmaxLayout::row_step, set with the grid), so the divisions run once,
// before the loop, and a trip adds and compares.
struct RowSpecWalk {
  uint64_t repeat_rem = 0;  // row % mask_row_repeat
  uint64_t mask_row = 0;    // (row / mask_row_repeat) % mask_rows
  uint64_t query = 0;       // row % causal_rows

  CUACT_HD RowSpecWalk(const SoftmaxLayout& l, int64_t row) {
    const uint64_t r = static_cast<uint64_t>(row);
    if (l.has_mask) {
      repeat_rem = l.mask_row_repeat.remainder(r);
      mask_row = l.mask_rows.remainder(l.mask_row_repeat.quotient(r));
    }
    if (l.causal) query = l.causal_rows.remainder(r);
  }

  // The row `l.row_step` rows on. Each sum stays below twice its divisor
  // (every part is a remainder), so one subtraction wraps it.
  CUACT_HD void advance(const SoftmaxLayout& l) {
    if (l.has_mask) {
      repeat_rem += l.row_step.repeat_rem;
      const bool carry = repeat_rem >= l.mask_row_repeat.divisor;
      if (carry) repeat_rem -= l.mask_row_repeat.divisor;
      mask_row += l.row_step.mask_row + (carry ? 1 : 0);
      if (mask_row >= l.mask_rows.divisor) mask_row -= l.mask_rows.divisor;
    }
    if (l.causal) {
      query += l.row_step.query;
      if (query >= l.causal_rows.divisor) query -= l.causal_rows.divisor;
    }
  }

  CUACT_HD SoftmaxRowSpec spec(const SoftmaxLayout& l) const {
    SoftmaxRowSpec s;
    if (l.has_mask) s.mask_row = static_cast<int64_t>(mask_row);
    s.visible = l.cols;
    if (l.causal) {
      // Column j is hidden when j > i + offset, so i + offset + 1 columns show
      // (no overflow: |offset| <= 2^62 and i < rows < 2^62, checked by the API).
      const int64_t shown = static_cast<int64_t>(query) + l.causal_offset + 1;
      s.visible = shown < 0 ? 0 : (shown < l.cols ? shown : l.cols);
    }
    return s;
  }
};

CUACT_HD SoftmaxRowSpec softmax_row_spec(const SoftmaxLayout& l, int64_t row) {
  return RowSpecWalk(l, row).spec(l);
}

// Sets the row loop's step (host): the walk's parts of `step` rows.
inline void set_row_step(SoftmaxLayout& l, int64_t step) {
  const RowSpecWalk w(l, step);
  l.row_step.repeat_rem = w.repeat_rem;
  l.row_step.mask_row = w.mask_row;
  l.row_step.query = w.query;
}

// Grid-stride walk over row groups: group `first`, first + stride, ... while
// the group's first row is below rows. The loop condition is the same for
// every lane of a warp (the warp kernel's shuffles need all 32 lanes).
template <class F>
CUACT_HD void for_each_row_group(int64_t first, int64_t stride, int64_t rows_per_group,
                                 int64_t rows, F&& f) {
  for (int64_t g = first; g * rows_per_group < rows; g += stride) f(g * rows_per_group);
}

// ---------------------------------------------------------------- rows in registers
// (warp_per_row; block_per_row up to kRegisterMaxCols)

inline constexpr int kWarpMaxCols = 1024;        // 32 lanes x 32 registers
inline constexpr int kRegisterMaxCols = 16384;   // 1024 threads x 16 registers
inline constexpr int kWarpBlockThreads = 128;    // 4 warps per block (rows of <= 1024)
inline constexpr int kRegisterConfigs = 15;      // row lengths 2^0 .. 2^14
inline constexpr int kRegisterBlockValues = 16;  // a thread's columns past 1024

// Elements of T in one 16-byte pack.
CUACT_HD constexpr int full_pack_width(int elem_size) { return kPackBytes / elem_size; }

// One register kernel variant: a row group of G threads ("lanes") per row, C
// columns per lane in registers, P columns per pack (P = min(C, 16 bytes)).
// G <= 32: the group is part of a warp (shuffles), blocks of 128 threads
// hold 128/G rows; G > 32: the group is the whole block, one row a block.
struct RegisterConfig {
  int lanes = 1;          // G, a power of two <= 1024
  int cols_per_lane = 1;  // C, a power of two <= 32
  int pack = 1;           // P
  CUACT_HD constexpr int span() const { return lanes * cols_per_lane; }
  CUACT_HD constexpr int block_threads() const {
    return lanes > kWarpBlockThreads ? lanes : kWarpBlockThreads;
  }
  CUACT_HD constexpr int rows_per_block() const { return block_threads() / lanes; }
  // The row loop's unit, whose threads agree on the loop condition (they
  // meet in the reductions): a warp of 32/G rows, or the block of one.
  CUACT_HD constexpr int unit_threads() const { return lanes > 32 ? lanes : 32; }
  CUACT_HD constexpr int rows_per_unit() const { return unit_threads() / lanes; }
  // Whether the row loop follows the mask row and causal index by additions
  // (RowSpecWalk::advance) or divides each trip: variants of 16 or more
  // columns a lane divide (the walk's three 64-bit values would spill them
  // at their 64-register budget; their row cost is spread over more columns).
  CUACT_HD constexpr bool walks_row_spec() const { return cols_per_lane <= 8 || lanes > 32; }
};

// The variant for rows of length 2^log2_span (0..14). Short rows keep whole
// 16-byte packs per lane and use fewer lanes (several rows per warp); rows
// up to 1024 use all 32 lanes and more registers per lane; longer rows a
// block of span/16 threads with 16 columns each.
CUACT_HD constexpr RegisterConfig register_config_for_span(int log2_span, int elem_size) {
  const int span = 1 << log2_span;
  const int w = full_pack_width(elem_size);
  RegisterConfig c;
  if (span <= w) {
    c.lanes = 1;
    c.cols_per_lane = span;
  } else if (span <= 32 * w) {
    c.lanes = span / w;
    c.cols_per_lane = w;
  } else if (span <= kWarpMaxCols) {
    c.lanes = 32;
    c.cols_per_lane = span / 32;
  } else {
    c.lanes = span / kRegisterBlockValues;
    c.cols_per_lane = kRegisterBlockValues;
  }
  c.pack = c.cols_per_lane < w ? c.cols_per_lane : w;
  return c;
}

// ceil(log2(cols)) for 1 <= cols: the variant index of a row length.
CUACT_HD constexpr int register_config_index(int64_t cols) {
  int l = 0;
  while ((int64_t{1} << l) < cols) ++l;
  return l;
}

// The first variant with a block per row (span 2048, 128 threads).
inline constexpr int kRegisterBlockIndex = 11;

// Packs are used when every row starts on a pack boundary in every buffer:
// P divides cols and each buffer's row stride, and each base address is
// aligned to P elements.
CUACT_HD bool register_rows_vectorizable(const RegisterConfig& c, int64_t cols, int elem_size,
                                     const std::uintptr_t* addresses, const int64_t* strides,
                                     int count) {
  if (c.pack <= 1 || cols % c.pack != 0) return false;
  const std::uintptr_t bytes = static_cast<std::uintptr_t>(c.pack) * elem_size;
  for (int i = 0; i < count; ++i)
    if (addresses[i] % bytes != 0 || strides[i] % c.pack != 0) return false;
  return true;
}

// Column of register slot `slot` (0..C-1) of lane `lane` (0..G-1). Vectorized:
// slot = k*P + q is column (k*G + lane)*P + q (lane-consecutive packs).
// Scalar: slot s is column s*G + lane (lane-consecutive elements).
CUACT_HD constexpr int lane_slot_column(const RegisterConfig& c, int lane, int slot, bool vectorized) {
  return vectorized ? ((slot / c.pack) * c.lanes + lane) * c.pack + slot % c.pack
                    : slot * c.lanes + lane;
}

// ---------------------------------------------------------------- block_per_row, streaming

inline constexpr int kBlockCandidates = 4;
inline constexpr int kBlockThreadCandidates[kBlockCandidates] = {128, 256, 512, 1024};
// streaming: 512 threads, so that 4 blocks (2048 threads) fit an SM at 32
// registers (at 1024, ptxas trades a spill for 32 registers).
inline constexpr int kStreamingBlockThreads = 512;
// Shared memory a block_per_row kernel uses besides the row cache (CUB's
// reduction storage and a broadcast slot; both well under this).
inline constexpr int64_t kBlockStaticSmemSlack = 1024;

// The row's pack plan over every buffer the kernel touches for it.
CUACT_HD PackPlan softmax_row_plan(int64_t cols, int elem_size, const std::uintptr_t* addresses,
                                   int count) {
  return make_pack_plan(cols, elem_size, addresses, count);
}

// Thread `thread` of `threads` visits packs thread, thread + threads, ...
// (on_pack gets the pack index p; its first column is plan.pack_start(p)),
// then the head and tail scalars likewise (on_scalar gets the column).
template <class OnPack, class OnScalar>
CUACT_HD void for_each_row_item(const PackPlan& plan, int thread, int threads, OnPack&& on_pack,
                                OnScalar&& on_scalar) {
  for (int64_t p = thread; p < plan.packs; p += threads) on_pack(p);
  const int64_t scalars = plan.scalar_count();
  for (int64_t s = thread; s < scalars; s += threads) on_scalar(plan.scalar_index(s));
}

// Shared-memory slots of the block_per_row cache: packs transposed, then the
// head, with tail elements in their own columns' slots. A bijection of the
// row's columns onto [0, cols).
CUACT_HD int64_t cache_slot_of_pack(const PackPlan& plan, int64_t pack, int q) {
  return q * plan.packs + pack;
}
CUACT_HD int64_t cache_slot_of_scalar(const PackPlan& plan, int64_t column) {
  return column < plan.head ? plan.packs * plan.width + column : column;
}

// Whether `cols` columns of cache fit in cache_capacity bytes.
CUACT_HD constexpr bool block_cache_fits(int64_t cols, int64_t bytes_per_col,
                                         int64_t cache_capacity) {
  return cols <= cache_capacity / bytes_per_col;
}

// Bytes of shared memory the block_per_row cache needs per column: the fp32
// inputs z (forward), or y and dy in the data's dtype (backward).
CUACT_HD constexpr int64_t block_cache_bytes_per_col(bool backward, int elem_size) {
  return backward ? 2 * elem_size : 4;
}

// Among the block sizes of kBlockThreadCandidates, the one with the most
// resident threads per SM given each one's resident blocks (from the
// occupancy calculator; 0 = does not fit), the smaller on a tie (more blocks
// in flight, fewer idle threads on short rows). -1 when none fits.
inline int choose_block_threads(const int (&active_blocks)[kBlockCandidates]) {
  int best = -1;
  int64_t best_threads = 0;
  for (int i = 0; i < kBlockCandidates; ++i) {
    const int64_t t = static_cast<int64_t>(active_blocks[i]) * kBlockThreadCandidates[i];
    if (t > best_threads) {
      best = i;
      best_threads = t;
    }
  }
  return best;
}

// How block_per_row runs a row: in registers (the block variant of the
// register kernels: every load in flight before the row's math, no cache
// traffic) when the row is at most kRegisterMaxCols long and its rows start
// on pack boundaries, or when the shared-memory cache does not fit (then
// element by element); otherwise from the shared-memory cache, whose pack
// plan keeps 16-byte accesses at any alignment.
CUACT_HD constexpr bool block_row_in_registers(int64_t cols, bool vectorizable, bool cache_fits) {
  return cols <= kRegisterMaxCols && (vectorizable || !cache_fits);
}

// The register variant block_per_row takes for a row: a block per row
// (rows shorter than 2048 take the 2048 one).
CUACT_HD constexpr int block_register_index(int64_t cols) {
  const int i = register_config_index(cols);
  return i < kRegisterBlockIndex ? kRegisterBlockIndex : i;
}

// ---------------------------------------------------------------- cluster_per_row

inline constexpr int kClusterBlockThreads = 1024;
// Cluster sizes tried, smallest first; 16 is beyond the portable 8 (H100 and
// H200 allow it).
inline constexpr int kClusterSizeCandidates = 4;
inline constexpr int kClusterSizes[kClusterSizeCandidates] = {2, 4, 8, 16};

// Columns [begin, end) of a row that one block of a cluster caches.
struct RowSlice {
  int64_t begin = 0;
  int64_t end = 0;
  CUACT_HD int64_t length() const { return end - begin; }
};

// Block `rank` of `ranks`: the row's packs split into runs of
// ceil(packs / ranks), rank 0 also taking the scalar head and the last rank
// the scalar tail (a row without packs: its columns split alike). Every
// slice after the first starts on a pack boundary of every buffer, so its
// own pack plan has no head; some slices are empty when the row is short.
CUACT_HD RowSlice cluster_row_slice(const PackPlan& row, int rank, int ranks) {
  const bool packed = row.packs > 0;
  const int64_t unit = packed ? row.width : 1;
  const int64_t units = packed ? row.packs : row.n;
  const int64_t first = packed ? row.head : 0;
  const int64_t per = (units + ranks - 1) / ranks;
  auto edge = [&](int r) -> int64_t {
    if (r <= 0) return 0;
    if (r >= ranks) return row.n;
    const int64_t u = static_cast<int64_t>(r) * per;
    return first + (u < units ? u : units) * unit;
  };
  return {edge(rank), edge(rank + 1)};
}

// The most columns any block of a `ranks`-block cluster caches, for rows of
// `cols` columns and any alignment: an even share of the packs plus one
// pack's worth (the head or the tail).
CUACT_HD constexpr int64_t cluster_slice_capacity(int64_t cols, int ranks, int width) {
  const int64_t packs = cols / width;
  return (packs + ranks - 1) / ranks * width + width - 1;
}

// The smallest cluster size (at most max_ranks) whose blocks' caches hold a
// slice of the row, or 0.
inline int smallest_cluster_for(int64_t cols, int64_t bytes_per_col, int64_t cache_capacity,
                                int width, int max_ranks) {
  for (int ranks : kClusterSizes)
    if (ranks <= max_ranks &&
        block_cache_fits(cluster_slice_capacity(cols, ranks, width), bytes_per_col, cache_capacity))
      return ranks;
  return 0;
}

// The register cluster's blocks (softmax_*_register_cluster_kernel), a
// slice of kRegisterMaxCols columns each: forward 512 threads of 32
// columns (twice a block variant's columns a thread: the cluster's two
// reductions a row cost more), backward 1024 of 16 (y and dy of 32 columns
// would fill a thread's registers and serialize its loads).
CUACT_HD constexpr int register_cluster_threads(bool backward) { return backward ? 1024 : 512; }
CUACT_HD constexpr int register_cluster_values(bool backward) {
  return kRegisterMaxCols / register_cluster_threads(backward);
}

// The register cluster for rows of `cols` on pack boundaries: the smallest
// cluster size (at most max_ranks) whose slices hold the row, or 0.
inline int cluster_register_ranks(int64_t cols, int max_ranks) {
  for (int ranks : kClusterSizes)
    if (ranks <= max_ranks && cols <= int64_t{kRegisterMaxCols} * ranks) return ranks;
  return 0;
}

// Among candidate cluster sizes (0 resident clusters: does not fit), the one
// with the most blocks working at once on `rows` rows (a row's blocks, up
// to what is resident), the smaller on a tie. -1 when none fits.
inline int choose_cluster_size(int64_t rows, const int (&active_clusters)[kClusterSizeCandidates]) {
  int best = -1;
  int64_t best_blocks = 0;
  for (int i = 0; i < kClusterSizeCandidates; ++i) {
    const int64_t clusters = rows < active_clusters[i] ? rows : active_clusters[i];
    const int64_t blocks = clusters * kClusterSizes[i];
    if (blocks > best_blocks) {
      best = i;
      best_blocks = blocks;
    }
  }
  return best;
}

// ---------------------------------------------------------------- middle_dim

// (cuda/softmax_middle.h) A thread per column (o, a group of W neighbouring
// inner positions); a block of X columns by Y threads along dim.
inline constexpr int kMiddleBlockThreads = 256;
inline constexpr int kMiddleWaves = 4;  // the tile loop: at most 4 waves of blocks

// A block's shape: X columns by Y threads along dim (X * Y = 256, powers of two).
struct MiddlePlan {
  int x = 1;
  int y = 1;
  CUACT_HD constexpr int threads() const { return x * y; }
};

// Y: 1, doubled while the columns alone leave the device's resident threads
// (`resident_threads`) unfilled, up to the block's 256 threads and no more
// than dim; X: the rest of the block's 256 threads (a warp's lanes, at
// Y <= 8, are 32 neighbouring columns: coalesced over inner).
CUACT_HD constexpr MiddlePlan plan_middle_dim(int64_t columns, int64_t dim,
                                              int64_t resident_threads) {
  MiddlePlan p;
  while (p.y < kMiddleBlockThreads && p.y < dim && columns * p.y < resident_threads) p.y *= 2;
  p.x = kMiddleBlockThreads / p.y;
  return p;
}

// ---------------------------------------------------------------- the choice (host)

// Whether the cluster kernels can run: the device launches clusters
// (cudaDevAttrClusterLaunch) and the kernel image loaded for it was compiled
// from sm_90+ code (cudaFuncAttributes::ptxVersion, major*10 + minor). An
// image from compute_80 code (a -DCMAKE_CUDA_ARCHITECTURES=80 build, or a
// parent project's list, JIT-compiled on an H100) holds the cluster kernels as
// empty bodies: launching one would succeed and write nothing.
CUACT_HD constexpr bool cluster_kernels_usable(int device_cluster_launch, int kernel_ptx_version) {
  return device_cluster_launch != 0 && kernel_ptx_version >= 90;
}

// The one dispatch decision from the row length: warp_per_row up to 1024
// columns (the row fits in 32 registers per lane); block_per_row up to
// kRegisterMaxCols (the row in the block's registers); cluster_per_row in
// registers for rows on pack boundaries up to kRegisterMaxCols times the
// largest register cluster (max_register_ranks: 0 for other rows, or
// without clusters); block_per_row while the row's cache fits in one
// block's shared memory (`cache_capacity`: the device's opt-in maximum less
// kBlockStaticSmemSlack; then each row is read once); cluster_per_row while
// a slice fits in each block of a cluster of at most max_cluster_ranks
// blocks (0: no clusters, see cluster_kernels_usable; still read once);
// streaming beyond (reads the row twice, any length). A forced algorithm is
// kept when it can take the row; `refusal` says why not.
struct SoftmaxChoice {
  SoftmaxAlgorithm algorithm = SoftmaxAlgorithm::streaming;
  const char* refusal = nullptr;  // static text; set when a forced algorithm cannot run
};

inline SoftmaxChoice choose_softmax_algorithm(SoftmaxAlgorithm requested, int64_t cols,
                                              int64_t bytes_per_col, int64_t cache_capacity,
                                              int pack_width, int max_cluster_ranks,
                                              int max_register_ranks = 0) {
  const bool warp_ok = cols <= kWarpMaxCols;
  const bool block_registers = cols <= kRegisterMaxCols;
  const bool block_cache = block_cache_fits(cols, bytes_per_col, cache_capacity);
  const bool block_ok = block_registers || block_cache;
  const bool cluster_registers = cluster_register_ranks(cols, max_register_ranks) > 0;
  const bool cluster_ok =
      cluster_registers ||
      smallest_cluster_for(cols, bytes_per_col, cache_capacity, pack_width, max_cluster_ranks) > 0;
  SoftmaxChoice c;
  switch (requested) {
    case SoftmaxAlgorithm::warp_per_row:
      c.algorithm = requested;
      if (!warp_ok) c.refusal = "warp_per_row takes rows of at most 1024 columns";
      return c;
    case SoftmaxAlgorithm::block_per_row:
      c.algorithm = requested;
      if (!block_ok)
        c.refusal =
            "block_per_row: the row does not fit in one block's shared memory on this device";
      return c;
    case SoftmaxAlgorithm::cluster_per_row:
      c.algorithm = requested;
      if (!cluster_ok)
        c.refusal = max_cluster_ranks < kClusterSizes[0]
                        ? "cluster_per_row: needs thread-block clusters (an sm_90+ device, and sm_90 "
                          "code in the build)"
                        : "cluster_per_row: the row does not fit in a cluster's shared memory";
      return c;
    case SoftmaxAlgorithm::streaming: c.algorithm = requested; return c;
    default:
      c.algorithm = warp_ok             ? SoftmaxAlgorithm::warp_per_row
                    : block_registers   ? SoftmaxAlgorithm::block_per_row
                    : cluster_registers ? SoftmaxAlgorithm::cluster_per_row
                    : block_cache       ? SoftmaxAlgorithm::block_per_row
                    : cluster_ok        ? SoftmaxAlgorithm::cluster_per_row
                                        : SoftmaxAlgorithm::streaming;
      return c;
  }
}

// The algorithm for a call's shape: middle_dim when inner > 1 (a row
// algorithm forced there is refused) or when forced (it takes neither mask
// nor causal); otherwise the rows' choice above.
inline SoftmaxChoice choose_softmax_for_shape(SoftmaxAlgorithm requested, int64_t inner,
                                              bool row_options, int64_t cols,
                                              int64_t bytes_per_col, int64_t cache_capacity,
                                              int pack_width, int max_cluster_ranks,
                                              int max_register_ranks = 0) {
  SoftmaxChoice c;
  if (requested == SoftmaxAlgorithm::middle_dim || inner > 1) {
    c.algorithm = SoftmaxAlgorithm::middle_dim;
    if (requested != SoftmaxAlgorithm::automatic && requested != SoftmaxAlgorithm::middle_dim)
      c.refusal = "this algorithm takes rows (inner == 1); inner > 1 runs middle_dim";
    else if (row_options)
      c.refusal = "middle_dim takes neither a mask nor causal";
    return c;
  }
  return choose_softmax_algorithm(requested, cols, bytes_per_col, cache_capacity, pack_width,
                                  max_cluster_ranks, max_register_ranks);
}

// Blocks for a row loop: enough for every row group, capped at `waves` full
// waves of `resident_per_sm` blocks per SM (the kernels loop over the rest).
inline int softmax_grid(int64_t row_groups, int sm_count, int resident_per_sm, int waves) {
  int64_t cap = static_cast<int64_t>(sm_count > 0 ? sm_count : 1) *
                (resident_per_sm > 0 ? resident_per_sm : 1) * waves;
  if (cap > 0x7fffffff) cap = 0x7fffffff;
  const int64_t blocks = row_groups < cap ? row_groups : cap;
  return blocks < 1 ? 1 : static_cast<int>(blocks);
}

}  // namespace cuact::detail
