// The row engine's kernel: one generic kernel that walks a RowPlan in tiles
// and applies a form (fused_forms.h) chunk by chunk, with the block partial
// sums a reducing form needs. launch_rows sizes the grid and enqueues it, and
// for a reducing call the kernel that sums the partials (fused_reduce.cu).
#pragma once

#include <cuda_runtime.h>

#include "device_limits.h"
#include "fused_launch.h"
#include "fused_table.h"
#include "row_engine.h"

namespace cuact::detail {

// The block's partials from its threads' sums (in shared memory): out of
// line, one copy per pack width shared by every reducing kernel.
template <int W>
__device__ __noinline__ void write_block_partials(const float* sums, RowPlan plan, TileGeometry g,
                                                 ReduceMode mode, int64_t channels,
                                                 float* partials) {
  const int t = static_cast<int>(threadIdx.x), step = static_cast<int>(blockDim.x);
  if (mode == ReduceMode::by_column)
    write_column_partials<W>(sums, plan, g, blockIdx.x, t, step, partials);
  else
    write_channel_partials(sums, g, channels, blockIdx.x, t, step, partials);
}

// At least 3 resident blocks per SM (at most 80 registers): 768 threads keep
// enough 16-byte loads in flight, and ptxas never trades spills for occupancy.
template <class T, class Form>
__global__ void __launch_bounds__(kBlockThreads, 3)
    fused_rows_kernel(Form form, RowArgs<T> args, RowPlan plan, TileGeometry g) {
  constexpr int W = Pack<T>::kWidth;
  Accumulator<W> acc;
  for_each_tile_item(plan, g, blockIdx.x, static_cast<int>(threadIdx.x),
                     [&](int64_t r, int64_t chunk) { process_chunk(form, args, plan, r, chunk, acc); });
  if constexpr (Form::kReduces) {
    if (args.reduce == ReduceMode::none) return;  // uniform over the grid
    __shared__ float sums[kBlockThreads * W];
    if (args.reduce == ReduceMode::by_column) {
#pragma unroll
      for (int j = 0; j < W; ++j) sums[threadIdx.x * W + j] = acc.column[j];
    } else {
      sums[threadIdx.x] = acc.row;
    }
    __syncthreads();
    write_block_partials<W>(sums, plan, g, args.reduce, args.channels, args.partials);
  }
}

// Sums each segment of a reducing launch's partials into out (fp32, rounded
// once to T). Defined in fused_reduce.cu, one copy per dtype for every form
// (so the per-dtype kernel units do not compile CUB).
template <class T>
cudaError_t launch_sum_partials(const float* partials, ReduceLayout layout, T* out,
                                cudaStream_t stream);
extern template cudaError_t launch_sum_partials<float>(const float*, ReduceLayout, float*,
                                                       cudaStream_t);
extern template cudaError_t launch_sum_partials<__half>(const float*, ReduceLayout, __half*,
                                                        cudaStream_t);
extern template cudaError_t launch_sum_partials<__nv_bfloat16>(const float*, ReduceLayout,
                                                               __nv_bfloat16*, cudaStream_t);

// Blocks of kBlockThreads that fill the current device kWaves times.
inline cudaError_t device_block_limit(int64_t* blocks) {
  int sm_count = 0, threads_per_sm = 0;
  if (const cudaError_t err = current_device_occupancy(&sm_count, &threads_per_sm);
      err != cudaSuccess)
    return err;
  const int64_t resident = static_cast<int64_t>(sm_count) * (threads_per_sm / kBlockThreads);
  *blocks = (resident > 0 ? resident : 1) * kWaves;
  return cudaSuccess;
}

// Enqueues `kernel` (a fused_rows_kernel<T, Form>, `form` its first argument)
// for one fused call and, for a reducing call, the sum of its partials. One
// instance per dtype, whatever the form.
template <class T>
cudaError_t enqueue_rows(const void* kernel, const void* form, bool form_reduces,
                         const FusedCall& c, cudaStream_t stream) {
  int64_t device_blocks = 0;
  if (!(form_reduces && c.reduce != ReduceMode::none) && c.max_blocks <= 0) {
    if (const cudaError_t err = device_block_limit(&device_blocks); err != cudaSuccess) return err;
  }
  RowLaunch<T> l = make_row_launch<T>(c, form_reduces, device_blocks);
  if (!launchable(l.geometry)) return cudaErrorInvalidConfiguration;
  void* args[] = {const_cast<void*>(form), &l.args, &l.plan, &l.geometry};
  const cudaError_t err = cudaLaunchKernel(kernel, dim3(static_cast<unsigned>(l.geometry.blocks())),
                                           dim3(kBlockThreads), args, 0, stream);
  if (err != cudaSuccess || !l.reduces) return err;
  return launch_sum_partials(l.args.partials, l.layout, static_cast<T*>(c.reduce_out), stream);
}

template <class T, class Form>
cudaError_t launch_rows(const Form& form, const FusedCall& c, cudaStream_t stream) {
  return enqueue_rows<T>(reinterpret_cast<const void*>(&fused_rows_kernel<T, Form>), &form,
                         Form::kReduces, c, stream);
}

}  // namespace cuact::detail
