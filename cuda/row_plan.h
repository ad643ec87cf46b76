// The fused forms' index plan: the engine's row-structured form, kept apart
// from the kernel so that CPU tests walk exactly the assignment it makes.
//
// A fused call works on a [rows, cols] grid of elements. Every buffer it reads
// or writes (a "stream") holds element (r, c) at base + r * stride + c, so one
// plan covers bias + activation (stride cols), the two halves of a GLU input
// (stride 2d, the second half at base + d) and its [rows, d] output, and
// PReLU's [outer, C, inner] layout. Parameters (bias, PReLU weights) are
// indexed by column or by the channel of a row.
//
// Each row splits into the same chunks of columns: a head up to the first
// 16-byte boundary of the reference stream's row 0, then runs of W = 16 bytes
// of elements, then the tail. A chunk of W columns whose address is 16-byte
// aligned in every stream of that row moves as 128-bit packs; any other chunk
// (head, tail, a row whose streams are aligned differently: odd GLU widths,
// misaligned pointers) moves element by element in the same thread. Chunks
// depend on columns only, so a thread that keeps its chunk while it walks rows
// sees the same columns every time: column sums (dbias) stay in registers.
//
// Threads are laid out in tiles: a block is bx threads along chunks by by
// threads along rows, the grid gx by gy blocks, both walked grid-stride.
#pragma once

#include <cstdint>

#include "pack_plan.h"

namespace cuact::detail {

// Columns [begin, begin + count) of one chunk.
struct ColumnSpan {
  int64_t begin = 0;
  int count = 0;
};

struct RowPlan {
  int64_t rows = 0;
  int64_t cols = 0;
  int width = 1;       // W: elements per pack
  int head = 0;        // columns before the first pack boundary (0 <= head < W)
  int64_t chunks = 0;  // chunks per row

  CUACT_HD ColumnSpan chunk_columns(int64_t j) const {
    int64_t begin = j * width;
    if (head > 0) {
      if (j == 0) return {0, head};
      begin = head + (j - 1) * width;
    }
    const int64_t left = cols - begin;
    return {begin, static_cast<int>(left < width ? left : width)};
  }
};

// The most chunks a row of `cols` columns can have, whatever the alignment.
CUACT_HD int64_t max_row_chunks(int64_t cols, int width) {
  return cols <= 0 ? 0 : (cols - 1 + width - 1) / width + 1;
}

// `reference_address`: the byte address of element (0, 0) of the stream the
// chunks align to (aligned to elem_size).
CUACT_HD RowPlan make_row_plan(int64_t rows, int64_t cols, int elem_size,
                               std::uintptr_t reference_address) {
  RowPlan plan;
  plan.rows = rows;
  plan.cols = cols;
  plan.width = kPackBytes / elem_size;
  const int64_t head =
      static_cast<int64_t>((kPackBytes - reference_address % kPackBytes) % kPackBytes) / elem_size;
  plan.head = static_cast<int>(head < cols ? head : cols);
  plan.chunks = cols <= 0 ? 0 : (plan.head > 0) + (cols - plan.head + plan.width - 1) / plan.width;
  return plan;
}

CUACT_HD bool pack_aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % kPackBytes == 0;
}

// ---------------------------------------------------------------- tiles

struct TileGeometry {
  int bx = 1, by = 1;      // threads per block along chunks and along rows
  int64_t gx = 1, gy = 1;  // blocks along chunks and along rows

  CUACT_HD int64_t blocks() const { return gx * gy; }
  // Threads along rows in the whole grid: a thread's rows are r0, r0 + row_lanes(), ...
  CUACT_HD int64_t row_lanes() const { return gy * by; }
};

CUACT_HD int64_t pow2_at_least(int64_t v, int64_t cap) {
  int64_t p = 1;
  while (p < v && p < cap) p *= 2;
  return p;
}

CUACT_HD int64_t gcd64(int64_t a, int64_t b) {
  while (b != 0) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Blocks of kBlockThreads: at most 32 threads along chunks (a warp covers 512
// contiguous bytes of a row) unless there are too few rows to fill the block.
// At most max_blocks blocks, except that whole_chunks (reductions: a thread
// keeps one chunk) covers every chunk with gx. row_multiple > 1 makes
// row_lanes() a multiple of it (a thread's rows then share their channel).
CUACT_HD TileGeometry tile_geometry(int64_t rows, int64_t chunks, int64_t max_blocks,
                                   bool whole_chunks, int64_t row_multiple = 1) {
  TileGeometry g;
  const int64_t bx0 = pow2_at_least(chunks, 32);
  const int64_t by = pow2_at_least(rows, kBlockThreads / bx0);
  g.by = static_cast<int>(by);
  g.bx = static_cast<int>(kBlockThreads / by);
  if (max_blocks < 1) max_blocks = 1;
  const int64_t gx_needed = chunks <= 0 ? 1 : (chunks + g.bx - 1) / g.bx;
  const int64_t gy_needed = rows <= 0 ? 1 : (rows + g.by - 1) / g.by;
  g.gx = whole_chunks || gx_needed < max_blocks ? gx_needed : max_blocks;
  const int64_t gy_room = max_blocks / g.gx > 1 ? max_blocks / g.gx : 1;
  g.gy = gy_needed < gy_room ? gy_needed : gy_room;
  if (row_multiple > 1) {
    const int64_t q = row_multiple / gcd64(row_multiple, by);
    g.gy = (g.gy / q > 1 ? g.gy / q : 1) * q;
  }
  return g;
}

// Calls f(row, chunk) for every item of block `block`, thread `thread`: chunks
// bxi*bx + tx + k*gx*bx, and for each, rows byi*by + ty + m*gy*by.
template <class F>
CUACT_HD void for_each_tile_item(const RowPlan& plan, const TileGeometry& g, int64_t block,
                                 int thread, F&& f) {
  const int tx = thread % g.bx, ty = thread / g.bx;
  // Launches have at most INT_MAX blocks: 32-bit division suffices.
  const auto b = static_cast<uint32_t>(block), gx = static_cast<uint32_t>(g.gx);
  const int64_t bxi = b % gx, byi = b / gx;
  for (int64_t chunk = bxi * g.bx + tx; chunk < plan.chunks; chunk += g.gx * g.bx)
    for (int64_t r = byi * g.by + ty; r < plan.rows; r += g.row_lanes()) f(r, chunk);
}

// ---------------------------------------------------------------- reductions

// What a reducing call sums: per column over rows (dbias; PReLU weights when
// inner == 1), or per channel c = row % channels over whole rows (PReLU
// weights of [outer, C, inner] with inner > 1).
enum class ReduceMode : int { none, by_column, by_row_channel };

// A reducing launch writes fp32 partial sums, segment by segment (one segment
// per output value), then a second kernel sums each segment.
struct ReduceLayout {
  int64_t segments = 0;
  int64_t segment_length = 0;
  CUACT_HD int64_t floats() const { return segments * segment_length; }
};

// Every block writes one partial per column of its chunks (by_column), or
// one per row lane of the block (by_row_channel; lanes of one channel are
// contiguous, blocks along chunks innermost).
CUACT_HD ReduceLayout reduce_layout(ReduceMode mode, int64_t cols, const TileGeometry& g,
                                    int64_t channels) {
  if (mode == ReduceMode::by_column) return {cols, g.gy};
  if (mode == ReduceMode::by_row_channel) return {channels, g.row_lanes() / channels * g.gx};
  return {};
}
CUACT_HD int64_t column_partial_index(int64_t col, int64_t byi, const TileGeometry& g) {
  return col * g.gy + byi;
}
CUACT_HD int64_t channel_partial_index(int64_t lane, int64_t bxi, const TileGeometry& g,
                                       int64_t channels) {
  const int64_t per_channel = g.row_lanes() / channels;
  return (lane % channels) * per_channel * g.gx + (lane / channels) * g.gx + bxi;
}

// Reducing launches do not depend on the device: the partials (and so the
// workspace) are a function of the shape alone, and so are the sums' rounding.
inline constexpr int64_t kReductionBlocks = 1024;
inline constexpr int64_t kWorkspaceAlignment = 16;

CUACT_HD TileGeometry reduction_geometry(int64_t rows, int64_t cols, int width, ReduceMode mode,
                                         int64_t channels, int64_t max_blocks = kReductionBlocks) {
  if (max_blocks <= 0 || max_blocks > kReductionBlocks) max_blocks = kReductionBlocks;
  return tile_geometry(rows, max_row_chunks(cols, width), max_blocks, true,
                       mode == ReduceMode::by_row_channel ? channels : 1);
}

// Workspace bytes of a reducing call (0 for an empty one): the partials plus
// room to align them; -1 when they would not fit in the address space (a
// shape no call can have, but the size query must not wrap).
CUACT_HD int64_t reduction_workspace_bytes(int64_t rows, int64_t cols, int elem_size,
                                           ReduceMode mode, int64_t channels) {
  if (rows <= 0 || cols <= 0 || mode == ReduceMode::none) return 0;
  const TileGeometry g = reduction_geometry(rows, cols, kPackBytes / elem_size, mode, channels);
  const ReduceLayout layout = reduce_layout(mode, cols, g, channels);
  constexpr int64_t kMaxFloats = (INT64_MAX - kWorkspaceAlignment) / 4;
  if (layout.segment_length > 0 && layout.segments > kMaxFloats / layout.segment_length) return -1;
  return layout.floats() * 4 + kWorkspaceAlignment;
}

}  // namespace cuact::detail
