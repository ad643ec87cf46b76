// The row engine's kernel: one generic kernel that runs a form over a call's
// row view (row_engine.h) with the block partial sums a reducing form needs,
// and its launch. Templates are only what speed needs: the form (its
// functor, stream types and whether it draws random words).
#pragma once

#include <cuda_runtime.h>

#include "expert_rows.cuh"
#include "row_engine.h"

namespace cuact::detail {

// The block's partials from its threads' sums (in shared memory): out of
// line, one copy per chunk width shared by every reducing kernel.
template <int W>
__device__ __noinline__ void write_partials_of_block(const float* sums, RowPlan plan,
                                                    TileGeometry g, ReduceMode mode,
                                                    int64_t channels, float* partials) {
  write_block_partials<W>(sums, plan, g, mode, channels, blockIdx.x, static_cast<int>(threadIdx.x),
                          static_cast<int>(blockDim.x), partials);
}

// At least 2 resident blocks per SM (at most 128 registers): every thread
// keeps two 16-byte loads per input stream in flight, so 512 threads already
// cover the memory latency, and ptxas never trades spills for occupancy.
// Block-scaled fp8 forms keep four (16-bit inputs) or eight (f32) per
// stream in flight, a chunk of 32, so one block covers the latency, and
// their registers may pass 128 (a chunk's inputs, parameters and results
// alone are 80-96).
template <class Form>
inline constexpr int kMinResidentBlocks = StageOf<Form>::kBlockScaled && !StageOf<Form>::kPacked ? 1 : 2;

template <class Form>
__global__ void __launch_bounds__(kBlockThreads, kMinResidentBlocks<Form>)
    rows_kernel(Form form, RowCall c) {
  constexpr int W = kChunkWidth<Form>;
  Accumulator<W> acc;
  if constexpr (kMapsRows<Form>) {
    __shared__ SharedRowSegments shared;
    load_row_segments(c.experts, c.experts.group, shared.prefix, shared.get());
    run_tiles(form, c, blockIdx.x, static_cast<int>(threadIdx.x), acc, *shared.get());
  } else {
    run_tiles(form, c, blockIdx.x, static_cast<int>(threadIdx.x), acc);
  }
  if (c.plan.extras() > 0)
    run_extras(form, c, static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
               static_cast<int64_t>(gridDim.x) * blockDim.x, acc.amax);
  if constexpr (StageOf<Form>::kQuantized) {
    if (c.quantized.amax != nullptr || c.quantized.scale_inv != nullptr)  // uniform over the grid
      fold_amax(c.quantized, acc.amax);
  }
  if constexpr (Form::kReduces) {
    if (c.reduce == ReduceMode::none) return;  // uniform over the grid
    __shared__ float sums[kBlockThreads * W];
    if (c.reduce == ReduceMode::by_column) {
#pragma unroll
      for (int j = 0; j < W; ++j) sums[threadIdx.x * W + j] = acc.column[j];
    } else {
      sums[threadIdx.x] = acc.row;
    }
    __syncthreads();
    write_partials_of_block<W>(sums, c.plan, c.geometry, c.reduce,
                               static_cast<int64_t>(c.channels.divisor), c.partials);
  }
}

// Enqueues one launch of `form` over the call (geometry and plan already set).
template <class Form>
cudaError_t launch_rows(const Form& form, const RowCall& call, cudaStream_t stream) {
  if (!launchable(call.geometry)) return cudaErrorInvalidConfiguration;
  // A plan made for other element types or another chunk width is refused.
  if (call.plan.width != kChunkWidth<Form> || call.plan.in_size != sizeof(typename Form::In) ||
      call.plan.out_size != sizeof(typename Form::Out))
    return cudaErrorInvalidValue;
  void* args[] = {const_cast<Form*>(&form), const_cast<RowCall*>(&call)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&rows_kernel<Form>),
                          dim3(static_cast<unsigned>(call.geometry.blocks())), dim3(kBlockThreads),
                          args, 0, stream);
}

}  // namespace cuact::detail
