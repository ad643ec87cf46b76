// The kernels' prologue for a call over expert rows (expert_rows.h): the
// block reads the counts or offsets and keeps the row prefix in shared
// memory. Every thread of the block calls it (it synchronizes the block).
#pragma once

#include <cuda_runtime.h>

#include "expert_rows.h"

namespace cuact::detail {

// prefix: shared memory of kMaxMaskedExperts + 1 entries; *out: shared
// memory too, so that the map costs its users no registers across their
// loops (they read its fields where they need them).
// `scale`: rows per token of the map's user (RowSegments).
__device__ inline void load_row_segments(const ExpertRowMap& m, int64_t scale, int64_t* prefix,
                                         RowSegments* out) {
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  if (!m.active()) {  // uniform over the grid
    if (tid == 0) *out = RowSegments{};
    __syncthreads();
    return;
  }
  const int64_t n = m.segments();
  bool bad = false;
  for (int64_t i = tid; i < n; i += threads) {
    int64_t start = 0;
    prefix[i + 1] = scale * segment_tokens(m, i, &start, bad);
  }
  if (!m.masked())
    for (int64_t e = tid; e < m.experts; e += threads) bad = bad || !offsets_ordered(m, e);
  if (tid == 0) prefix[0] = 0;
  const bool any_bad = __syncthreads_or(bad) != 0;
  if (tid < 32) {  // warp 0: the inclusive scan of prefix[1 ..], 32 entries a step
    int64_t carry = 0;
    for (int64_t first = 0; first < n; first += 32) {
      const int64_t i = first + tid;
      int64_t v = i < n ? prefix[i + 1] : 0;
      CUACT_UNROLL
      for (int d = 1; d < 32; d *= 2) {
        const int64_t u = __shfl_up_sync(0xffffffffu, v, d);
        if (tid >= d) v += u;
      }
      if (i < n) prefix[i + 1] = carry + v;
      carry += __shfl_sync(0xffffffffu, v, 31);
    }
  }
  if (tid == 0) {
    if (any_bad && m.error != nullptr && blockIdx.x == 0) *m.error = 1;
    RowSegments s;
    bool unused = false;
    if (!m.masked()) segment_tokens(m, 0, &s.base, unused);
    s.base *= scale;
    s.prefix = prefix;
    s.segments = n;
    s.stride = m.masked() ? scale * m.capacity : 0;
    *out = s;
  }
  __syncthreads();
}

// Shared memory for a kernel's map and its prefix (RowSegments has member
// initializers, which __shared__ variables may not have: raw storage).
struct SharedRowSegments {
  alignas(RowSegments) unsigned char map[sizeof(RowSegments)];
  int64_t prefix[kMaxMaskedExperts + 1];
  __device__ RowSegments* get() { return reinterpret_cast<RowSegments*>(map); }
};

}  // namespace cuact::detail
