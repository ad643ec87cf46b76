// The rows of an MoE layer's expert buffers that a call reads and writes
// (cuact::ExpertRows, fused.h), as the row engine walks them: the kernel
// reads the counts or offsets from device memory when it runs (no host
// synchronization), lays the valid rows out as logical rows [0, n) and maps
// each to its physical row. Threads are spread over the logical rows, so an
// expert holding every token keeps the whole grid busy, as a balanced batch
// does.
//
// Masked: a view of experts * capacity token rows; expert e's valid rows are
// e * capacity + [0, counts[e]), counts clamped to [0, capacity]. Grouped:
// offsets [experts + 1] over `capacity` token rows; the valid rows are
// [offsets[0], offsets[experts]) (clamped to [0, capacity], the end to at
// least the start). A clamp, or decreasing offsets, sets *error to 1.
// A call's view row may be a part of a token row (an interleaved GLU: d / k
// view rows per token): `group` view rows per token, kept together.
#pragma once

#include <cstdint>
#include <vector>

#include "cuact/device/config.h"

namespace cuact::detail {

// The most experts of a masked call: the kernels hold their row prefix in
// shared memory (8 KiB).
inline constexpr int64_t kMaxMaskedExperts = 1024;

struct ExpertRowMap {
  const int32_t* counts = nullptr;   // masked: [experts]
  const int32_t* offsets = nullptr;  // grouped: [experts + 1]
  int32_t* error = nullptr;          // optional: set to 1 where a count or offset was clamped
  int64_t experts = 0;               // 0: no map, every row
  int64_t capacity = 0;              // masked: token rows per expert; grouped: token rows
  int64_t group = 1;                 // view rows per token row

  CUACT_HD bool active() const { return experts > 0; }
  CUACT_HD bool masked() const { return counts != nullptr; }
  // Segments of contiguous valid token rows: one per expert (masked) or one.
  CUACT_HD int64_t segments() const { return masked() ? experts : 1; }
};

// Segment s's valid token rows (its start in *start); bad: a clamp happened.
CUACT_HD int64_t segment_tokens(const ExpertRowMap& m, int64_t s, int64_t* start, bool& bad) {
  auto clamp = [&](int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) bad = true;
    return v < lo ? lo : v > hi ? hi : v;
  };
  if (m.masked()) {
    *start = s * m.capacity;
    return clamp(m.counts[s], 0, m.capacity);
  }
  *start = clamp(m.offsets[0], 0, m.capacity);
  return clamp(m.offsets[m.experts], *start, m.capacity) - *start;
}

// Grouped: whether offsets[e] <= offsets[e + 1].
CUACT_HD bool offsets_ordered(const ExpertRowMap& m, int64_t e) {
  return m.offsets[e] <= m.offsets[e + 1];
}

// The map as a thread uses it, in units of `scale` rows per token (a row
// kernel's view rows: the map's group; the reductions' second step: tokens,
// 1): prefix[s] = valid rows before segment s (prefix[segments] = all of
// them), in shared memory (kernels) or a host array (the emulator);
// segments 0: every row, the identity. A token's rows stay together in
// both numberings, so a logical row maps to a physical one with no division.
struct RowSegments {
  const int64_t* prefix = nullptr;
  int64_t segments = 0;
  int64_t stride = 0;  // masked: segment s starts at row base + s * stride
  int64_t base = 0;    // grouped: the first valid row

  CUACT_HD bool identity() const { return segments == 0; }
  // Logical rows: every valid one.
  CUACT_HD int64_t rows(int64_t all_rows) const { return identity() ? all_rows : prefix[segments]; }
  // The segment of logical row v < rows(), at or after segment `from`: the
  // last one starting at or before v (binary search; empty ones skipped).
  CUACT_HD int64_t segment_of(int64_t v, int64_t from = 0) const {
    int64_t lo = from, hi = segments;  // prefix[lo] <= v < prefix[hi]
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      if (prefix[mid] <= v) lo = mid;
      else hi = mid;
    }
    return lo;
  }
  // Physical row minus logical row over segment s.
  CUACT_HD int64_t shift(int64_t s) const { return base + s * stride - prefix[s]; }
  // The physical row of logical row v < rows().
  CUACT_HD int64_t row(int64_t v) const { return identity() ? v : v + shift(segment_of(v)); }
};

// A thread's walk over increasing logical rows: the segment of its last
// row, so that the next row costs a compare and an add unless it leaves it.
struct RowCursor {
  int64_t segment = 0;
  int64_t end = -1;    // the segment's logical end (-1: none found yet)
  int64_t shift = 0;
  CUACT_HD int64_t row(const RowSegments& m, int64_t v) {
    if (m.identity()) return v;
    if (v >= end) {
      segment = m.segment_of(v, end < 0 ? 0 : segment);
      end = m.prefix[segment + 1];
      shift = m.shift(segment);
    }
    return v + shift;
  }
};

// The segments on the host (the emulator's prologue; the kernels' is
// load_row_segments, expert_rows.cuh): prefix gets segments + 1 entries,
// `scale` rows per token.
inline RowSegments host_row_segments(const ExpertRowMap& m, int64_t scale,
                                     std::vector<int64_t>& prefix) {
  RowSegments s;
  if (!m.active()) return s;
  s.segments = m.segments();
  prefix.assign(static_cast<size_t>(s.segments) + 1, 0);
  bool bad = false;
  for (int64_t i = 0; i < s.segments; ++i) {
    int64_t start = 0;
    prefix[static_cast<size_t>(i) + 1] =
        prefix[static_cast<size_t>(i)] + scale * segment_tokens(m, i, &start, bad);
    if (i == 0) s.base = m.masked() ? 0 : scale * start;
  }
  if (!m.masked())
    for (int64_t e = 0; e < m.experts; ++e) bad = bad || !offsets_ordered(m, e);
  if (bad && m.error != nullptr) *m.error = 1;
  s.prefix = prefix.data();
  s.stride = m.masked() ? scale * m.capacity : 0;
  return s;
}

}  // namespace cuact::detail
