// The second step of the fused forms' reductions (dbias, dweight): each
// segment of per-block fp32 partials summed by one warp with CUB's warp
// reduction, rounded once to the dtype.
#pragma once

#include <cuda_runtime.h>

#include <cub/warp/warp_reduce.cuh>

#include "cuact/device/convert.cuh"
#include "row_plan.h"

namespace cuact::detail {

template <class T>
__global__ void __launch_bounds__(kBlockThreads)
    sum_partials_kernel(const float* partials, ReduceLayout layout, T* out) {
  using WarpReduce = cub::WarpReduce<float>;
  constexpr int kWarps = kBlockThreads / 32;
  __shared__ typename WarpReduce::TempStorage temp[kWarps];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * kWarps + warp; s < layout.segments;
       s += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float* p = partials + s * layout.segment_length;
    float sum = 0.0f;
    for (int64_t i = lane; i < layout.segment_length; i += 32) sum += p[i];
    sum = WarpReduce(temp[warp]).Sum(sum);
    if (lane == 0) out[s] = device::narrow<T>(sum);
    __syncwarp();
  }
}

}  // namespace cuact::detail
