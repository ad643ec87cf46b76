// The softmax kernels and their one dispatch. Each kernel does memory and
// the row loop; the math is softmax_math.h, the loads and stores with the
// scale and masks are softmax_io.h, the index plans softmax_plan.h. Kind
// (softmax / log_softmax), scale, mask and causal are run-time arguments;
// templates are only what speed needs: the dtype, the warp variant (lanes
// and registers per row), the block size.
//
//   warp_per_row   softmax_{forward,backward}_warp_kernel<T, log2 row span>   11 + 11
//   block_per_row  softmax_{forward,backward}_block_kernel<T, threads>        4 + 4
//   streaming      softmax_{forward,backward}_streaming_kernel<T>             1 + 1
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <utility>

#include "softmax_launch.h"
#include "softmax_phases.h"

namespace cuact::detail {

// ---------------------------------------------------------------- reductions

// All-reduce over the G lanes of a row group (xor butterfly: every lane ends
// with the same value). All 32 lanes of the warp must call it.
template <int G, class Op>
__device__ __forceinline__ float group_all_reduce(float v, Op op) {
  CUACT_UNROLL
  for (int offset = G / 2; offset > 0; offset /= 2)
    v = op(v, __shfl_xor_sync(0xffffffffu, v, offset, G));
  return v;
}

// All-reduce over the block with CUB, the result broadcast through `slot`.
// Ends with a barrier, so temp and slot may be reused at once.
template <int B, class V, class Op>
__device__ __forceinline__ V block_all_reduce(typename cub::BlockReduce<V, B>::TempStorage& temp,
                                              V& slot, V v, Op op) {
  const V r = cub::BlockReduce<V, B>(temp).Reduce(v, op);
  if (threadIdx.x == 0) slot = r;
  __syncthreads();
  const V out = slot;
  __syncthreads();
  return out;
}

template <class V>
__device__ __forceinline__ V* softmax_row_cache() {
  extern __shared__ __align__(16) unsigned char cuact_softmax_row_cache[];
  return reinterpret_cast<V*>(cuact_softmax_row_cache);
}

// ---------------------------------------------------------------- warp_per_row

// The lanes of a warp work on 32/G rows at once (a row group of G lanes
// each): body(row, active, lane) runs for each row a lane's group owns, rows
// past the end included (inactive), so every lane reaches the shuffles.
template <int LOG2_SPAN, class T, class Body>
__device__ __forceinline__ void for_each_warp_row(const SoftmaxArgs<T>& a, Body&& body) {
  constexpr int G = warp_config_for_span(LOG2_SPAN, sizeof(T)).lanes;
  constexpr int kWarps = kWarpBlockThreads / 32;
  const int lane = threadIdx.x % G;
  const int group = (threadIdx.x % 32) / G;
  for_each_row_group(
      static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32,
      static_cast<int64_t>(gridDim.x) * kWarps,
      warp_config_for_span(LOG2_SPAN, sizeof(T)).rows_per_warp(), a.layout.rows,
      [&](int64_t first_row) {
        const int64_t row = first_row + group;
        body(row, row < a.layout.rows, lane);
      });
}

template <class T, int LOG2_SPAN>
__global__ void __launch_bounds__(kWarpBlockThreads) softmax_forward_warp_kernel(SoftmaxArgs<T> a) {
  constexpr WarpConfig kCfg = warp_config_for_span(LOG2_SPAN, sizeof(T));
  constexpr int G = kCfg.lanes, C = kCfg.cols_per_lane, P = kCfg.pack;
  for_each_warp_row<LOG2_SPAN>(a, [&](int64_t row, bool active, int lane) {
    float v[C];
    if (active) {
      warp_lane_load<G, C, P>(ForwardSource<T>(a, row), lane, a.layout.cols, a.vectorized, v);
    } else {
      CUACT_UNROLL
      for (int i = 0; i < C; ++i) v[i] = -INFINITY;
    }
    const float shift = exp_shift(group_all_reduce<G>(lane_max(v), MaxNanOp{}));
    const float sum = group_all_reduce<G>(lane_exp_sum(v, shift, a.log), SumOp{});
    lane_outputs(v, make_normalizer(shift, sum), a.log);
    if (active) warp_lane_store<G, C, P>(RowSink<T>(a, row), lane, a.layout.cols, a.vectorized, v);
  });
}

template <class T, int LOG2_SPAN>
__global__ void __launch_bounds__(kWarpBlockThreads)
    softmax_backward_warp_kernel(SoftmaxArgs<T> a) {
  constexpr WarpConfig kCfg = warp_config_for_span(LOG2_SPAN, sizeof(T));
  constexpr int G = kCfg.lanes, C = kCfg.cols_per_lane, P = kCfg.pack;
  for_each_warp_row<LOG2_SPAN>(a, [&](int64_t row, bool active, int lane) {
    float y[C], g[C];
    if (active) {
      warp_lane_load<G, C, P>(BackwardSource<T>(a, row), lane, a.layout.cols, a.vectorized, y, g);
    } else {
      CUACT_UNROLL
      for (int i = 0; i < C; ++i) y[i] = g[i] = 0.0f;
    }
    const float reduced = group_all_reduce<G>(lane_backward_sum(y, g, a.log), SumOp{});
    lane_backward_outputs(y, g, reduced, a.scale, a.log);
    if (active) warp_lane_store<G, C, P>(RowSink<T>(a, row), lane, a.layout.cols, a.vectorized, g);
  });
}

// ---------------------------------------------------------------- block_per_row

// Reads each row once into the shared-memory cache (fp32 z forward; y and dy
// in the data's dtype backward), then computes from the cache.
template <class T, int B>
__global__ void __launch_bounds__(B) softmax_forward_block_kernel(SoftmaxArgs<T> a) {
  __shared__ typename cub::BlockReduce<float, B>::TempStorage temp;
  __shared__ float slot;
  float* cache = softmax_row_cache<float>();
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    const ForwardSource<T> src(a, row);
    const RowSink<T> sink(a, row);
    const PackPlan plan = row_pack_plan(src, sink, a.layout.cols);
    const float local_max = block_forward_load(src, plan, threadIdx.x, B, cache);
    const float shift = exp_shift(block_all_reduce<B>(temp, slot, local_max, MaxNanOp{}));
    const float local_sum = block_forward_exp_sum<T>(plan, threadIdx.x, B, cache, shift, a.log);
    const RowNormalizer n =
        make_normalizer(shift, block_all_reduce<B>(temp, slot, local_sum, SumOp{}));
    block_forward_store(sink, plan, threadIdx.x, B, cache, n, a.log);
    __syncthreads();  // the next row's plan may give these slots to other threads
  }
}

template <class T, int B>
__global__ void __launch_bounds__(B) softmax_backward_block_kernel(SoftmaxArgs<T> a) {
  __shared__ typename cub::BlockReduce<float, B>::TempStorage temp;
  __shared__ float slot;
  T* y_cache = softmax_row_cache<T>();
  T* dy_cache = y_cache + a.layout.cols;
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    const BackwardSource<T> src(a, row);
    const RowSink<T> sink(a, row);
    const PackPlan plan = row_pack_plan(src, sink, a.layout.cols);
    const float local = block_backward_load(src, plan, threadIdx.x, B, y_cache, dy_cache, a.log);
    const float reduced = block_all_reduce<B>(temp, slot, local, SumOp{});
    block_backward_store(sink, plan, threadIdx.x, B, y_cache, dy_cache, reduced, a.scale, a.log);
    __syncthreads();  // the next row's plan may give these slots to other threads
  }
}

// ---------------------------------------------------------------- streaming

// Online softmax: one pass keeps each thread's running (reference, sum),
// merged over the block; a second pass reads the row again and writes.
template <class T>
__global__ void __launch_bounds__(kStreamingBlockThreads)
    softmax_forward_streaming_kernel(SoftmaxArgs<T> a) {
  constexpr int B = kStreamingBlockThreads;
  __shared__ typename cub::BlockReduce<MaxSum, B>::TempStorage temp;
  __shared__ MaxSum slot;
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    const ForwardSource<T> src(a, row);
    const RowSink<T> sink(a, row);
    const PackPlan plan = row_pack_plan(src, sink, a.layout.cols);
    const MaxSum local = streaming_forward_stats(src, plan, threadIdx.x, B);
    const MaxSum total = block_all_reduce<B>(temp, slot, local, MaxSumOp{});
    const RowNormalizer n = make_normalizer(exp_shift(total.max), total.sum);
    streaming_forward_store(src, sink, plan, threadIdx.x, B, n, a.log);
  }
}

template <class T>
__global__ void __launch_bounds__(kStreamingBlockThreads)
    softmax_backward_streaming_kernel(SoftmaxArgs<T> a) {
  constexpr int B = kStreamingBlockThreads;
  __shared__ typename cub::BlockReduce<float, B>::TempStorage temp;
  __shared__ float slot;
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    const BackwardSource<T> src(a, row);
    const RowSink<T> sink(a, row);
    const PackPlan plan = row_pack_plan(src, sink, a.layout.cols);
    const float local = streaming_backward_sum(src, plan, threadIdx.x, B, a.log);
    const float reduced = block_all_reduce<B>(temp, slot, local, SumOp{});
    streaming_backward_store(src, sink, plan, threadIdx.x, B, reduced, a.scale, a.log);
  }
}

// ---------------------------------------------------------------- the dispatch

template <class T>
using SoftmaxKernel = void (*)(SoftmaxArgs<T>);

template <class T, int... L>
std::array<SoftmaxKernel<T>, kWarpConfigs> warp_kernels(bool backward,
                                                        std::integer_sequence<int, L...>) {
  if (backward) return {&softmax_backward_warp_kernel<T, L>...};
  return {&softmax_forward_warp_kernel<T, L>...};
}

template <class T>
std::array<SoftmaxKernel<T>, kBlockCandidates> block_kernels(bool backward) {
  static_assert(kBlockCandidates == 4);
  if (backward)
    return {&softmax_backward_block_kernel<T, kBlockThreadCandidates[0]>,
            &softmax_backward_block_kernel<T, kBlockThreadCandidates[1]>,
            &softmax_backward_block_kernel<T, kBlockThreadCandidates[2]>,
            &softmax_backward_block_kernel<T, kBlockThreadCandidates[3]>};
  return {&softmax_forward_block_kernel<T, kBlockThreadCandidates[0]>,
          &softmax_forward_block_kernel<T, kBlockThreadCandidates[1]>,
          &softmax_forward_block_kernel<T, kBlockThreadCandidates[2]>,
          &softmax_forward_block_kernel<T, kBlockThreadCandidates[3]>};
}

template <class T>
cudaError_t launch_softmax_kernel(SoftmaxKernel<T> kernel, int blocks, int threads,
                                  int64_t smem_bytes, SoftmaxArgs<T> args, cudaStream_t stream) {
  void* params[] = {&args};
  return cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(blocks), dim3(threads),
                          params, static_cast<size_t>(smem_bytes), stream);
}

// The current device's limits, queried per call (nothing cached: any device,
// any thread).
struct SoftmaxDeviceFacts {
  int sm_count = 0;
  int threads_per_sm = 0;
  int smem_optin = 0;  // shared memory one block may opt in to
};

inline cudaError_t query_softmax_device(SoftmaxDeviceFacts* f) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(&f->sm_count, cudaDevAttrMultiProcessorCount, device);
  if (err == cudaSuccess)
    err =
        cudaDeviceGetAttribute(&f->threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(&f->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  return err;
}

// Resident blocks per SM of each block_per_row size with `bytes` of row
// cache (0 where it does not fit). Where the cache needs more than a
// kernel's current dynamic shared memory limit, the limit is raised to the
// device's opt-in maximum: always that same value, so concurrent callers
// cannot lower it under each other's launches.
template <class T>
cudaError_t block_occupancy(const std::array<SoftmaxKernel<T>, kBlockCandidates>& kernels,
                            int64_t bytes, int smem_optin, int (&active)[kBlockCandidates]) {
  for (int i = 0; i < kBlockCandidates; ++i) {
    active[i] = 0;
    const void* k = reinterpret_cast<const void*>(kernels[i]);
    cudaFuncAttributes attr;
    cudaError_t err = cudaFuncGetAttributes(&attr, k);
    if (err != cudaSuccess) return err;
    const int64_t room =
        static_cast<int64_t>(smem_optin) - static_cast<int64_t>(attr.sharedSizeBytes);
    if (bytes > room) continue;
    if (bytes > attr.maxDynamicSharedSizeBytes) {
      err = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(room));
      if (err != cudaSuccess) return err;
    }
    err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&active[i], k, kBlockThreadCandidates[i],
                                                        static_cast<size_t>(bytes));
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

inline constexpr int kWarpWaves = 8;  // row loop: at most 8 waves of warp_per_row blocks

// The one dispatch: the algorithm from the row length (choose_softmax_algorithm),
// then that algorithm's variant and launch shape for the current device.
template <class T>
SoftmaxLaunchResult launch_softmax(const SoftmaxCall& call, cudaStream_t stream) {
  SoftmaxArgs<T> a = softmax_args<T>(call);
  const int64_t rows = a.layout.rows, cols = a.layout.cols;
  constexpr int kElem = static_cast<int>(sizeof(T));

  SoftmaxLaunchResult r;
  SoftmaxDeviceFacts dev;
  if ((r.error = query_softmax_device(&dev)) != cudaSuccess) return r;
  const int64_t per_col = block_cache_bytes_per_col(call.backward, kElem);
  const SoftmaxChoice choice = choose_softmax_algorithm(call.requested, cols, per_col,
                                                        dev.smem_optin - kBlockStaticSmemSlack);
  r.algorithm = choice.algorithm;
  r.refusal = choice.refusal;
  if (r.refusal != nullptr) return r;

  if (choice.algorithm == SoftmaxAlgorithm::warp_per_row) {
    const int index = warp_config_index(cols);
    const WarpConfig cfg = warp_config_for_span(index, kElem);
    a.vectorized = warp_args_vectorized(a, cfg, call.backward);
    if (call.dry_run) return r;
    const int64_t groups = (rows + cfg.rows_per_block() - 1) / cfg.rows_per_block();
    const int blocks =
        softmax_grid(groups, dev.sm_count, dev.threads_per_sm / kWarpBlockThreads, kWarpWaves);
    const auto kernels =
        warp_kernels<T>(call.backward, std::make_integer_sequence<int, kWarpConfigs>{});
    r.error = launch_softmax_kernel<T>(kernels[index], blocks, kWarpBlockThreads, 0, a, stream);
    return r;
  }

  if (choice.algorithm == SoftmaxAlgorithm::block_per_row) {
    const int64_t bytes = cols * per_col;
    const auto kernels = block_kernels<T>(call.backward);
    int active[kBlockCandidates];
    if ((r.error = block_occupancy<T>(kernels, bytes, dev.smem_optin, active)) != cudaSuccess)
      return r;
    const int best = choose_block_threads(active);
    if (best >= 0) {
      if (call.dry_run) return r;
      const int blocks = softmax_grid(rows, dev.sm_count, active[best], 1);
      r.error = launch_softmax_kernel<T>(kernels[best], blocks, kBlockThreadCandidates[best], bytes,
                                         a, stream);
      return r;
    }
    if (call.requested == SoftmaxAlgorithm::block_per_row) {
      r.refusal = "block_per_row: no block size fits the row's cache on this device";
      return r;
    }
    r.algorithm = SoftmaxAlgorithm::streaming;  // fits by size, yet no block is resident
  }

  const SoftmaxKernel<T> kernel =
      call.backward ? &softmax_backward_streaming_kernel<T> : &softmax_forward_streaming_kernel<T>;
  int active = 0;
  r.error = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &active, reinterpret_cast<const void*>(kernel), kStreamingBlockThreads, 0);
  if (r.error != cudaSuccess || call.dry_run) return r;
  const int blocks = softmax_grid(rows, dev.sm_count, active, 1);
  r.error = launch_softmax_kernel<T>(kernel, blocks, kStreamingBlockThreads, 0, a, stream);
  return r;
}

}  // namespace cuact::detail
