// The second step of the fused forms' reductions (dbias, dweight): each
// segment of per-block fp32 partials summed by one warp (lane-strided sums,
// then a butterfly of shuffles: an order fixed by the segment length, so the
// same bits on every run and GPU), rounded once to the output type. Over
// expert rows (expert_rows.h), segment t is logical token t: its sum goes to
// the physical row, and segments past the valid tokens write nothing.
#pragma once

#include <cuda_runtime.h>

#include "cuact/device/convert.cuh"
#include "expert_rows.cuh"
#include "row_plan.h"

namespace cuact::detail {

template <class T>
__global__ void __launch_bounds__(kBlockThreads)
    sum_partials_kernel(const float* partials, ReduceLayout layout, ExpertRowMap experts, T* out) {
  constexpr int kWarps = kBlockThreads / 32;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  __shared__ SharedRowSegments shared;
  load_row_segments(experts, 1, shared.prefix, shared.get());
  const RowSegments& map = *shared.get();
  const int64_t segments = map.rows(layout.segments);
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * kWarps + warp; s < segments;
       s += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float* p = partials + s * layout.segment_length;
    float sum = 0.0f;
    for (int64_t i = lane; i < layout.segment_length; i += 32) sum += p[i];
    CUACT_UNROLL
    for (int step = 16; step > 0; step /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, step);
    if (lane == 0) out[map.row(s)] = device::narrow<T>(sum);
  }
}

}  // namespace cuact::detail
