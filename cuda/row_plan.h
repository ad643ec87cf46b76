// The row engine's index plan, kept apart from the kernel so that CPU tests
// walk exactly the assignment it makes.
//
// Every call works on a [rows, cols] view of its buffers ("streams"): element
// (r, c) of stream s sits at base_s + origin + r * stride_s + c (strides in
// elements; inputs and outputs each their own element type). Bias + activation is [rows,
// cols] with stride cols; the two halves of a GLU input share stride 2d (the
// second half at base + d); PReLU's [outer, C, inner] is [outer*C, inner]. A
// flat buffer of n elements is one view too: [rows, cols] of whole 16-byte
// chunks (`origin` elements past its start), plus `extra_head` elements before
// the view and `extra_tail` after it, which go element by element.
//
// Each row splits into the same chunks of W columns (W = 16 bytes of the
// widest stream's type, 32 for the fp32 forms of chunk_bytes_for; a narrower
// stream moves the same W elements in fewer bytes): a head up to the first
// boundary of the access width in stream 0,
// then whole chunks, then the tail. When every stream's whole chunks sit on
// that boundary in every row, they move as vectors: one 16-byte access each
// (access 16), or two 8-byte ones where only 8-byte alignment holds (an odd
// GLU half such as d = 3420 in bf16: access 8); head, tail and a call whose
// streams fit no common boundary (access 0) go element by element. Chunks
// depend on columns only, so a thread that keeps its chunk while it walks
// rows sees the same columns every time: the bias stays in registers, and so
// do column sums (dbias).
//
// Threads are laid out in tiles: a block is bx threads along chunks by by
// threads along rows, the grid gx by gy blocks. A thread walks its chunks
// (bxi*bx + tx + k*gx*bx) and, for each, its rows two at a time: r and r + RY
// (RY = gy*by rows apart) in one trip, so that every input stream has two
// independent loads in flight.
#pragma once

#include <climits>
#include <cstdint>

#include "cuact/device/config.h"
#include "fast_divider.h"

namespace cuact::detail {

// Columns [begin, begin + count) of one chunk.
struct ColumnSpan {
  int64_t begin = 0;
  int count = 0;
};

struct RowPlan {
  int64_t rows = 0;
  int64_t cols = 0;
  int width = 1;       // W: elements per chunk
  int head = 0;        // columns before the first chunk boundary (0 <= head < W)
  int64_t chunks = 0;  // chunks per row
  int access = 0;      // bytes per vector access of a whole chunk on the widest stream: 16, 8,
                       // or 0 (element by element); narrower streams move the same elements
  int in_size = 0;     // element bytes of the input streams and of the output streams: the
  int out_size = 0;    // launch checks them against the form's types (row_kernel.cuh)
  int64_t origin = 0;       // elements of every stream before the view
  int64_t extra_head = 0;   // flat calls: elements [0, extra_head), element by element
  int64_t extra_tail = 0;   // flat calls: the elements after the view
  int group = 1;            // block-scaled calls: chunks per scale block (block / chunk width
                            // for blocks of 64 and 128, else 1); a thread takes whole groups

  // The units the tile geometry spreads over a row: its chunks, or its groups of chunks.
  CUACT_HD int64_t units() const { return (chunks + group - 1) / group; }

  CUACT_HD ColumnSpan chunk_columns(int64_t j) const {
    int64_t begin = j * width;
    if (head > 0) {
      if (j == 0) return {0, head};
      begin = head + (j - 1) * width;
    }
    const int64_t left = cols - begin;
    return {begin, static_cast<int>(left < width ? left : width)};
  }
  CUACT_HD bool vector_chunk(const ColumnSpan& s) const { return access > 0 && s.count == width; }
  CUACT_HD int64_t extras() const { return extra_head + extra_tail; }
  // Extra element i as an index into the flat buffer.
  CUACT_HD int64_t extra_index(int64_t i) const {
    return i < extra_head ? i : origin + rows * cols + (i - extra_head);
  }
};

// Bytes per chunk: 16, one vector access per stream; 32 for fp32 forms that
// draw random values and do not reduce (dropout and RReLU forward), so that
// a chunk is eight elements, the draws of one Philox block (philox.h).
// Reducing forms keep 16: their workspace layout depends on the chunk width
// and is sized before the form is known (reduction_workspace_bytes).
// A block-scaled output's chunk is its stage's `block_chunk` elements (fp8:
// 32, one block of 32 or two of 16; NVFP4: 16), and its chunks start at
// column 0 of every row (block_scaled_plan).
CUACT_HD constexpr int chunk_bytes_for(bool random, bool reduces, int elem_size,
                                       int block_chunk = 0) {
  if (block_chunk > 0) return block_chunk * elem_size;
  return random && !reduces && elem_size == 4 ? 32 : 16;
}

// The most chunks a row of `cols` columns can have, whatever the alignment.
CUACT_HD int64_t max_row_chunks(int64_t cols, int width) {
  return cols <= 0 ? 0 : (cols - 1 + width - 1) / width + 1;
}

// One stream as the plan sees it: the byte address of its element (0, 0) of
// the view, its row stride in bytes, and its element size (0: the widest's).
struct StreamLayout {
  std::uintptr_t address = 0;
  int64_t stride_bytes = 0;
  int elem_size = 0;
};

// The bytes of one access of a stream of `elem_size`-byte elements when the
// widest stream's (`widest`-byte elements) are `access` bytes: every stream
// moves the same elements per access.
CUACT_HD constexpr int stream_access(int access, int elem_size, int widest) {
  return access * elem_size / widest;
}

// The chunk head of `cols` columns for access width `access` (bytes on the
// widest stream, `widest`-byte elements) over the streams (stream 0 decides
// where chunks start), or -1 when some stream's whole chunks do not sit on
// its access boundary in every row.
CUACT_HD int chunk_head(const StreamLayout* streams, int count, int widest, int64_t cols,
                        int access) {
  auto size_of = [&](int s) { return streams[s].elem_size > 0 ? streams[s].elem_size : widest; };
  const auto a0 = static_cast<std::uintptr_t>(stream_access(access, size_of(0), widest));
  const int64_t head = static_cast<int64_t>((a0 - streams[0].address % a0) % a0) / size_of(0);
  if (head >= cols) return static_cast<int>(cols);  // no whole chunk: nothing to align
  const int64_t h = head;
  for (int s = 0; s < count; ++s) {
    const int a = stream_access(access, size_of(s), widest);
    if ((streams[s].address + static_cast<std::uintptr_t>(h * size_of(s))) % static_cast<std::uintptr_t>(a) != 0)
      return -1;
    if (streams[s].stride_bytes % a != 0) return -1;
  }
  return static_cast<int>(h);
}

// The plan of a [rows, cols] view whose streams are given (every address
// aligned to its element; elem_size the widest stream's): access 16 where
// possible, else 8, else 0 (bytes on the widest stream); chunks of
// chunk_bytes (16 or 32) on the widest stream.
CUACT_HD RowPlan make_row_plan(int64_t rows, int64_t cols, int elem_size,
                               const StreamLayout* streams, int count, int chunk_bytes = 16) {
  RowPlan p;
  p.rows = rows;
  p.cols = cols;
  p.width = chunk_bytes / elem_size;
  for (int access : {16, 8}) {
    const int h = chunk_head(streams, count, elem_size, cols, access);
    if (h >= 0) {
      p.access = access;
      p.head = h;
      break;
    }
  }
  if (p.access == 0) p.head = 0;
  p.chunks = cols <= 0 ? 0 : (p.head > 0) + (cols - p.head + p.width - 1) / p.width;
  return p;
}

// A plan whose chunks start at column 0 of every row (a block-scaled output:
// each chunk is whole blocks, or `group` chunks are one block): the plan's
// head must be 0, else its chunks go element by element (access 0).
CUACT_HD RowPlan block_scaled_plan(RowPlan p, int group = 1) {
  if (p.head != 0 || p.access == 0) {
    p.access = 0;
    p.head = 0;
    p.chunks = p.cols <= 0 ? 0 : (p.cols + p.width - 1) / p.width;
  }
  p.group = group;
  return p;
}

// Chunks per row of a flat view: 32, one warp's worth of chunks.
inline constexpr int64_t kFlatRowChunks = 32;

// The plan of a flat call of n elements over streams at these addresses: a
// view of whole chunks starting at stream 0's first 16-byte (else 8-byte)
// boundary, rows of kFlatRowChunks chunks (fewer when n is small), the rest
// element by element; all of it element by element when the streams share
// no boundary.
// sizes[s] is stream s's element size (null: every stream elem_size, the widest).
CUACT_HD RowPlan make_flat_plan(int64_t n, int elem_size, const std::uintptr_t* addresses,
                                int count, int chunk_bytes = 16, const int* sizes = nullptr) {
  RowPlan p;
  p.width = chunk_bytes / elem_size;
  auto size_of = [&](int s) { return sizes != nullptr ? sizes[s] : elem_size; };
  for (int access : {16, 8}) {
    const auto a0 = static_cast<std::uintptr_t>(stream_access(access, size_of(0), elem_size));
    int64_t head = static_cast<int64_t>((a0 - addresses[0] % a0) % a0) / size_of(0);
    if (head > n) head = n;
    bool ok = true;
    for (int s = 0; s < count; ++s) {
      const auto a = static_cast<std::uintptr_t>(stream_access(access, size_of(s), elem_size));
      ok = ok && (addresses[s] + static_cast<std::uintptr_t>(head * size_of(s))) % a == 0;
    }
    if (ok) {
      p.access = access;
      p.origin = head;
      break;
    }
  }
  const int64_t body = n - p.origin;
  int64_t row_chunks = kFlatRowChunks;
  if (p.access == 0 || body < p.width) {
    row_chunks = 0;
  } else if (body < row_chunks * p.width) {
    row_chunks = body / p.width;
  }
  p.cols = row_chunks * p.width;
  p.rows = p.cols > 0 ? body / p.cols : 0;
  p.chunks = row_chunks;
  p.extra_head = p.access == 0 ? n : p.origin;
  p.extra_tail = p.access == 0 ? 0 : body - p.rows * p.cols;
  if (p.access == 0) p.origin = 0;
  return p;
}

// ---------------------------------------------------------------- tiles

struct TileGeometry {
  int bx = 1, by = 1;      // threads per block along chunks and along rows (powers of two)
  int64_t gx = 1, gy = 1;  // blocks along chunks and along rows

  CUACT_HD int64_t blocks() const { return gx * gy; }
  // Threads along rows in the whole grid: a thread's rows are r0, r0 + row_lanes(), ...
  CUACT_HD int64_t row_lanes() const { return gy * by; }
};

inline constexpr int kBlockThreads = 256;
inline constexpr int kWaves = 8;  // non-reducing launches: at most this many waves of blocks

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
// keeps one chunk) covers every chunk with gx. Rows are covered two per
// thread per trip. row_multiple > 1 makes row_lanes() a multiple of it (a
// thread's rows then share their channel).
CUACT_HD TileGeometry tile_geometry(int64_t rows, int64_t chunks, int64_t max_blocks,
                                   bool whole_chunks, int64_t row_multiple = 1) {
  TileGeometry g;
  const int64_t bx0 = pow2_at_least(chunks, 32);
  const int64_t by = pow2_at_least(rows, kBlockThreads / bx0);
  g.by = static_cast<int>(by);
  g.bx = static_cast<int>(kBlockThreads / by);
  if (max_blocks < 1) max_blocks = 1;
  const int64_t gx_needed = chunks <= 0 ? 1 : (chunks + g.bx - 1) / g.bx;
  const int64_t row_pairs = (rows + 1) / 2;
  const int64_t gy_needed = rows <= 0 ? 1 : (row_pairs + g.by - 1) / g.by;
  g.gx = whole_chunks || gx_needed < max_blocks ? gx_needed : max_blocks;
  const int64_t gy_room = max_blocks / g.gx > 1 ? max_blocks / g.gx : 1;
  g.gy = gy_needed < gy_room ? gy_needed : gy_room;
  if (row_multiple > 1) {
    const int64_t q = row_multiple / gcd64(row_multiple, by);
    g.gy = (g.gy / q > 1 ? g.gy / q : 1) * q;
  }
  return g;
}

// The rows a thread of the tile grid walks: r = first, first + 2*lanes, ...
// with r + lanes as the second row of each trip.
struct ThreadRows {
  int64_t first_chunk, chunk_step;
  int64_t first_row, lanes;
};
CUACT_HD ThreadRows thread_rows(const TileGeometry& g, int64_t block, int thread) {
  const int tx = thread % g.bx, ty = thread / g.bx;
  // Launches have at most INT_MAX blocks: 32-bit division suffices.
  const auto b = static_cast<uint32_t>(block), gx = static_cast<uint32_t>(g.gx);
  const int64_t bxi = b % gx, byi = b / gx;
  return {bxi * g.bx + tx, g.gx * g.bx, byi * g.by + ty, g.row_lanes()};
}

// ---------------------------------------------------------------- reductions

// What a reducing call sums: per column over rows (dbias; PReLU weights when
// inner == 1), per channel c = row % channels over whole rows (PReLU
// weights of [outer, C, inner] with inner > 1), or per group of `channels`
// consecutive whole rows, row / channels (the MoE GLU's row weights: one row
// of the call, or the rows of an interleaved call's view).
enum class ReduceMode : int { none, by_column, by_row_channel, by_row_group };

// A reducing launch writes fp32 partial sums, segment by segment (one segment
// per output value), then a second kernel sums each segment.
struct ReduceLayout {
  int64_t segments = 0;
  int64_t segment_length = 0;
  CUACT_HD int64_t floats() const { return segments * segment_length; }
};

// Every block writes one partial per column of its chunks (by_column), or
// one per row lane of the block (by_row_channel; lanes of one channel are
// contiguous, blocks along chunks innermost; by_row_group: a lane per row,
// lane * gx + the block's column index, so a group's rows are contiguous).
CUACT_HD ReduceLayout reduce_layout(ReduceMode mode, int64_t rows, int64_t cols,
                                    const TileGeometry& g, int64_t channels) {
  if (mode == ReduceMode::by_column) return {cols, g.gy};
  if (mode == ReduceMode::by_row_channel) return {channels, g.row_lanes() / channels * g.gx};
  if (mode == ReduceMode::by_row_group) return {rows / channels, channels * g.gx};
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
                       mode == ReduceMode::by_row_channel ? channels
                       : mode == ReduceMode::by_row_group ? rows  // a row per thread
                                                          : 1);
}

// Workspace bytes of a reducing call (0 for an empty one): the partials plus
// room to align them; -1 when they would not fit in the address space (a
// shape no call can have, but the size query must not wrap).
CUACT_HD int64_t reduction_workspace_bytes(int64_t rows, int64_t cols, int elem_size,
                                           ReduceMode mode, int64_t channels) {
  if (rows <= 0 || cols <= 0 || mode == ReduceMode::none) return 0;
  const TileGeometry g = reduction_geometry(rows, cols, 16 / elem_size, mode, channels);
  const ReduceLayout layout = reduce_layout(mode, rows, cols, g, channels);
  constexpr int64_t kMaxFloats = (INT64_MAX - kWorkspaceAlignment) / 4;
  if (layout.segment_length > 0 && layout.segments > kMaxFloats / layout.segment_length) return -1;
  return layout.floats() * 4 + kWorkspaceAlignment;
}

CUACT_HD bool launchable(const TileGeometry& g) { return g.blocks() <= INT_MAX; }

}  // namespace cuact::detail
