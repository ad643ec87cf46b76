// The softmax kernels and their one dispatch. Each kernel does memory and
// the row loop; the math is softmax_math.h, the loads and stores with the
// scale and masks are softmax_io.h, the index plans softmax_plan.h. Kind
// (softmax / log_softmax), scale, mask and causal are run-time arguments;
// templates are only what speed needs: the dtype, the register variant
// (lanes and registers per row), the cached kernel's block size.
//
//   warp_per_row   softmax_{forward,backward}_register_kernel<T, log2 span>  11 + 11
//     block_per_row, rows of <= 16384 in registers: the same, spans 2^11..2^14  4 + 4
//   block_per_row  softmax_{forward,backward}_block_kernel<T, threads>        4 + 4
//     (rows cached in shared memory)
//   streaming      softmax_{forward,backward}_streaming_kernel<T>             1 + 1
//   cluster_per_row softmax_{forward,backward}_cluster_kernel<T>              1 + 1 (sm_90+)
//     rows of <= 16384 * R on pack boundaries in registers:
//                  softmax_{forward,backward}_register_cluster_kernel<T>     1 + 1 (sm_90+)
//   middle_dim     softmax_{forward,backward}_middle_kernel<T>               1 + 1
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cooperative_groups.h>
#include <cub/block/block_reduce.cuh>
#include <type_traits>
#include <utility>

#include "device_limits.h"
#include "softmax_launch.h"
#include "softmax_middle.h"
#include "softmax_phases.h"

namespace cuact::detail {

// ---------------------------------------------------------------- reductions

// What a middle_dim thread folds with the others along dim: the forward's
// online (max, sum) pairs, the backward's sums.
template <bool Backward>
using RowStat = std::conditional_t<Backward, float, MaxSum>;

// All-reduce over the G lanes of a register kernel's row group; every lane
// ends with the same value (an xor butterfly of a commutative op gives
// every lane the same operands in the same order). G <= 32: the butterfly
// within the warp (all 32 lanes of the warp call it). G > 32 (the group is
// the block): each warp's butterfly, then every warp's butterfly over the
// warps' values from shared memory, lane l taking warp l % kWarps's. Two
// sets of slots alternate (turn): a set is written again only two
// reductions later, after every thread has passed the barrier that follows
// its reads of the set. One barrier a reduction.
template <int G>
struct GroupReduce {
  static constexpr int kWarps = G > 32 ? G / 32 : 1;
  float (*slots)[kWarps];  // __shared__ float[2][kWarps] (unused for G <= 32)
  int turn = 0;

  template <class Op>
  __device__ __forceinline__ float all(float v, Op op) {
    constexpr int kLanes = G < 32 ? G : 32;
    CUACT_UNROLL
    for (int offset = kLanes / 2; offset > 0; offset /= 2)
      v = op(v, __shfl_xor_sync(0xffffffffu, v, offset, kLanes));
    if constexpr (G > 32) {
      float* s = slots[turn];
      turn ^= 1;
      if (threadIdx.x % 32 == 0) s[threadIdx.x / 32] = v;
      __syncthreads();
      v = s[threadIdx.x % kWarps];
      CUACT_UNROLL
      for (int offset = kWarps / 2; offset > 0; offset /= 2)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, offset, kWarps));
    }
    return v;
  }
};

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

// ---------------------------------------------------------------- rows in registers
// (warp_per_row, and block_per_row up to kRegisterMaxCols)

// A block's row groups (RegisterConfig) work on rows_per_block() rows at
// once: body(row, active, lane, walk) runs for each row a lane's group
// owns, rows past the end included (inactive), so every lane of a warp
// (G <= 32) or of the block (G > 32) reaches the reductions. A lane's row
// advances by gridDim.x * rows_per_block() a trip, the layout's row_step
// (the launch sets it), along which `walk` follows the row's mask row and
// causal index (or recomputes it, RegisterConfig::walks_row_spec).
template <int LOG2_SPAN, class T, class Body>
__device__ __forceinline__ void for_each_register_row(const SoftmaxArgs<T>& a, Body&& body) {
  constexpr RegisterConfig c = register_config_for_span(LOG2_SPAN, sizeof(T));
  constexpr bool kWalk = c.walks_row_spec();
  constexpr int kUnits = c.block_threads() / c.unit_threads();  // per block
  const int lane = threadIdx.x % c.lanes;
  // A block-wide group (G > 32): one unit a block, so the row (and the walk)
  // is the same for the whole block.
  const int group = c.lanes > 32 ? 0 : (threadIdx.x % c.unit_threads()) / c.lanes;
  const int64_t first_unit = c.lanes > 32 ? static_cast<int64_t>(blockIdx.x)
                                          : static_cast<int64_t>(blockIdx.x) * kUnits +
                                                threadIdx.x / c.unit_threads();
  RowSpecWalk walk(a.layout, first_unit * c.rows_per_unit() + group);
  for_each_row_group(first_unit, static_cast<int64_t>(gridDim.x) * kUnits, c.rows_per_unit(),
                     a.layout.rows, [&](int64_t first_row) {
                       const int64_t row = first_row + group;
                       if constexpr (!kWalk) walk = RowSpecWalk(a.layout, row);
                       body(row, row < a.layout.rows, lane, walk);
                       if constexpr (kWalk) walk.advance(a.layout);
                     });
}

// Resident blocks the register kernels are compiled for: forward 8 (at
// most 64 registers a thread) up to 512 columns, 4 (128) at 1024; past 1024
// columns both directions 64 registers (16384 / span blocks of span / 16
// threads). Left to itself, ptxas keeps up to 168 registers at 1024 columns
// (384 threads an SM) and may spill a predicate at 512.
CUACT_HD constexpr int register_min_blocks(int log2_span, bool backward) {
  if (log2_span > 10) return kRegisterMaxCols >> log2_span;
  if (backward) return 1;
  return log2_span < 10 ? 8 : 4;
}
template <class T, int LOG2_SPAN>
CUACT_HD constexpr int register_block_threads() {
  return register_config_for_span(LOG2_SPAN, sizeof(T)).block_threads();
}

// One row of a register kernel, as lane `lane` of `lanes` does it, on the
// row's columns from `first` on (a register cluster's block: its slice);
// reduce(v, op) all-reduces over the row's lanes (a warp's group, the
// block, or a cluster's blocks). Forward: load, max, sum of exponentials,
// outputs, store. An inactive row (one past the last, or a slice past the
// row's end) loads padding (from a real row's first columns) and stores
// nothing; its lanes still take part in the reductions.
template <int C, int P, class T, class Reduce>
__device__ __forceinline__ void register_forward_row(const SoftmaxArgs<T>& a, int64_t row,
                                                     bool active, int lanes, int lane,
                                                     const SoftmaxRowSpec& spec, Reduce&& reduce,
                                                     int64_t first = 0) {
  float v[C];
  ForwardSource<T> src(a, active ? row : a.layout.rows - 1, spec);
  if (active) src.advance(first);
  const int64_t cols = a.layout.cols - (active ? first : 0);
  lane_load<C, P>(src, lanes, lane, cols, a.vectorized, v, active);
  const float shift = exp_shift(reduce(lane_max(v), MaxNanOp{}));
  const float sum = reduce(lane_exp_sum(v, shift, a.log), SumOp{});
  lane_outputs(v, make_normalizer(shift, sum, a.log));
  if (active) {
    RowSink<T> sink(a, row);
    sink.advance(first);
    lane_store<C, P>(sink, lanes, lane, cols, a.vectorized, v);
  }
}

// Backward: load y and dy, the row's sum, dx, store.
template <int C, int P, class T, class Reduce>
__device__ __forceinline__ void register_backward_row(const SoftmaxArgs<T>& a, int64_t row,
                                                      bool active, int lanes, int lane,
                                                      Reduce&& reduce, int64_t first = 0) {
  float y[C], g[C];
  const int64_t cols = a.layout.cols - first;
  if (active) {
    BackwardSource<T> src(a, row);
    src.advance(first);
    lane_load<C, P>(src, lanes, lane, cols, a.vectorized, y, g);
  } else {
    CUACT_UNROLL
    for (int i = 0; i < C; ++i) y[i] = g[i] = 0.0f;
  }
  const float reduced = reduce(lane_backward_sum(y, g, a.log), SumOp{});
  lane_backward_outputs(y, g, reduced, a.scale, a.log);
  if (active) {
    RowSink<T> sink(a, row);
    sink.advance(first);
    lane_store<C, P>(sink, lanes, lane, cols, a.vectorized, g);
  }
}

// A register kernel's rows, either direction.
template <bool Backward, int LOG2_SPAN, class T>
__device__ __forceinline__ void register_rows(const SoftmaxArgs<T>& a) {
  constexpr RegisterConfig kCfg = register_config_for_span(LOG2_SPAN, sizeof(T));
  constexpr int G = kCfg.lanes, C = kCfg.cols_per_lane, P = kCfg.pack;
  __shared__ float slots[2][GroupReduce<G>::kWarps];
  GroupReduce<G> group{slots};
  auto reduce = [&](float v, auto op) { return group.all(v, op); };
  for_each_register_row<LOG2_SPAN>(a, [&](int64_t row, bool active, int lane,
                                          const RowSpecWalk& walk) {
    if constexpr (Backward)
      register_backward_row<C, P>(a, row, active, G, lane, reduce);
    else
      register_forward_row<C, P>(a, row, active, G, lane, walk.spec(a.layout), reduce);
  });
}

template <class T, int LOG2_SPAN>
__global__ void __launch_bounds__(register_block_threads<T, LOG2_SPAN>(),
                                  register_min_blocks(LOG2_SPAN, false))
    softmax_forward_register_kernel(SoftmaxArgs<T> a) {
  register_rows<false, LOG2_SPAN>(a);
}

template <class T, int LOG2_SPAN>
__global__ void __launch_bounds__(register_block_threads<T, LOG2_SPAN>(),
                                  register_min_blocks(LOG2_SPAN, true))
    softmax_backward_register_kernel(SoftmaxArgs<T> a) {
  register_rows<true, LOG2_SPAN>(a);
}

// ---------------------------------------------------------------- block_per_row, cached

// One row through the shared-memory cache (fp32 z forward; y and dy in the
// data's dtype backward), as thread threadIdx.x of B does it on the row's
// pack plan (a whole row, or a cluster block's slice); reduce(v, op)
// all-reduces over the row's threads (GroupReduce over the block, then the
// cluster's blocks). The forward keeps three passes (z and the max, the
// exponentials and their sum, the outputs): folding the first two into an
// online (max, sum) computes every exponential twice, which costs more than
// the pass it saves.
template <int B, class T, class Reduce>
__device__ __forceinline__ void cached_forward_row(const ForwardSource<T>& src,
                                                   const RowSink<T>& sink, const PackPlan& plan,
                                                   float* cache, bool log, Reduce&& reduce) {
  const float shift =
      exp_shift(reduce(block_forward_load(src, plan, threadIdx.x, B, cache), MaxNanOp{}));
  const float sum =
      reduce(block_forward_exp_sum<T>(plan, threadIdx.x, B, cache, shift, log), SumOp{});
  block_forward_store(sink, plan, threadIdx.x, B, cache, make_normalizer(shift, sum, log));
}

template <int B, class T, class Reduce>
__device__ __forceinline__ void cached_backward_row(const BackwardSource<T>& src,
                                                    const RowSink<T>& sink, const PackPlan& plan,
                                                    T* y_cache, T* dy_cache, float scale, bool log,
                                                    Reduce&& reduce) {
  const float reduced =
      reduce(block_backward_load(src, plan, threadIdx.x, B, y_cache, dy_cache, log), SumOp{});
  block_backward_store(sink, plan, threadIdx.x, B, y_cache, dy_cache, reduced, scale, log);
}

// Reads each row once into the cache, then computes from it.
template <bool Backward, int B, class T>
__device__ __forceinline__ void cached_rows(const SoftmaxArgs<T>& a) {
  __shared__ float slots[2][GroupReduce<B>::kWarps];
  GroupReduce<B> block{slots};
  auto reduce = [&](float v, auto op) { return block.all(v, op); };
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    const RowSink<T> sink(a, row);
    if constexpr (Backward) {
      const BackwardSource<T> src(a, row);
      T* y_cache = softmax_row_cache<T>();
      cached_backward_row<B>(src, sink, row_pack_plan(src, sink, a.layout.cols), y_cache,
                             y_cache + a.layout.cols, a.scale, a.log, reduce);
    } else {
      const ForwardSource<T> src(a, row);
      cached_forward_row<B>(src, sink, row_pack_plan(src, sink, a.layout.cols),
                            softmax_row_cache<float>(), a.log, reduce);
    }
    __syncthreads();  // the next row's plan may give these slots to other threads
  }
}

template <class T, int B>
__global__ void __launch_bounds__(B) softmax_forward_block_kernel(SoftmaxArgs<T> a) {
  cached_rows<false, B>(a);
}

template <class T, int B>
__global__ void __launch_bounds__(B) softmax_backward_block_kernel(SoftmaxArgs<T> a) {
  cached_rows<true, B>(a);
}

// ---------------------------------------------------------------- cluster_per_row

// Thread-block clusters and distributed shared memory exist from sm_90; the
// sm_80 build of these kernels is empty and never launched (the dispatch
// asks the device for cluster support first).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define CUACT_HAVE_CLUSTERS 1
#endif

#ifdef CUACT_HAVE_CLUSTERS
// All-reduce of one value per block over the cluster: thread 0 of each block
// publishes its block's value in slots[turn], the cluster waits, then in
// every warp lane l reads rank l % R's value (distributed shared memory)
// and the warp folds them by an xor butterfly over R lanes (R a power of
// two <= 16), so every thread of every block gets the same result. The two
// slots alternate (turn flips): a slot is written again only two
// reductions later, when every block has passed the barrier that follows
// the reads of its previous value.
template <class Op>
__device__ __forceinline__ float cluster_all_reduce(float (&slots)[2], int& turn,
                                                    float block_value, Op op) {
  namespace cg = cooperative_groups;
  const cg::cluster_group cluster = cg::this_cluster();
  float* slot = &slots[turn];
  turn ^= 1;
  if (threadIdx.x == 0) *slot = block_value;
  cluster.sync();
  const int ranks = static_cast<int>(cluster.num_blocks());
  float v = *cluster.map_shared_rank(slot, threadIdx.x % ranks);
  for (int offset = ranks / 2; offset > 0; offset /= 2)
    v = op(v, __shfl_xor_sync(0xffffffffu, v, offset, ranks));
  return v;
}
#endif

#ifdef CUACT_HAVE_CLUSTERS
// The row loop of a cluster kernel: each cluster takes rows cluster,
// cluster + clusters, ...; body(row, rank, ranks, spec) runs one row in
// block `rank` of the cluster (spec: the row's, along a RowSpecWalk). Ends with the cluster barrier that keeps every
// block alive while another may still read its slots.
template <class T, class Body>
__device__ __forceinline__ void for_each_cluster_row(const SoftmaxArgs<T>& a, Body&& body) {
  const cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int ranks = static_cast<int>(cluster.num_blocks());
  RowSpecWalk walk(a.layout, blockIdx.x / ranks);  // step: the clusters (row_step)
  for (int64_t row = blockIdx.x / ranks; row < a.layout.rows; row += gridDim.x / ranks) {
    body(row, rank, ranks, walk.spec(a.layout));
    walk.advance(a.layout);
    __syncthreads();  // the next row's plan may give the cache's slots to other threads
  }
  cluster.sync();
}
#endif

#ifdef CUACT_HAVE_CLUSTERS
// Block `rank` caches its slice of the row (cluster_slice_plan) as
// block_per_row caches a row; the row's max and sum combine over the cluster.
template <bool Backward, class T>
__device__ __forceinline__ void cached_cluster_rows(const SoftmaxArgs<T>& a) {
  constexpr int B = kClusterBlockThreads;
  __shared__ float slots[2][GroupReduce<B>::kWarps];
  __shared__ float cluster_slots[2];
  GroupReduce<B> block{slots};
  int turn = 0;
  auto reduce = [&](float v, auto op) {
    return cluster_all_reduce(cluster_slots, turn, block.all(v, op), op);
  };
  for_each_cluster_row(a, [&](int64_t row, int rank, int ranks, const SoftmaxRowSpec& spec) {
    RowSink<T> sink(a, row);
    if constexpr (Backward) {
      BackwardSource<T> src(a, row);
      const PackPlan plan = cluster_slice_plan(src, sink, a.layout.cols, rank, ranks);
      T* y_cache = softmax_row_cache<T>();
      cached_backward_row<B>(src, sink, plan, y_cache, y_cache + plan.n /* the slice's dy */,
                             a.scale, a.log, reduce);
    } else {
      ForwardSource<T> src(a, row, spec);
      const PackPlan plan = cluster_slice_plan(src, sink, a.layout.cols, rank, ranks);
      cached_forward_row<B>(src, sink, plan, softmax_row_cache<float>(), a.log, reduce);
    }
  });
}
#endif

template <class T>
__global__ void __launch_bounds__(kClusterBlockThreads)
    softmax_forward_cluster_kernel(SoftmaxArgs<T> a) {
#ifdef CUACT_HAVE_CLUSTERS
  cached_cluster_rows<false>(a);
#endif
}

template <class T>
__global__ void __launch_bounds__(kClusterBlockThreads)
    softmax_backward_cluster_kernel(SoftmaxArgs<T> a) {
#ifdef CUACT_HAVE_CLUSTERS
  cached_cluster_rows<true>(a);
#endif
}

// The row in registers over a cluster: R blocks of register_cluster_threads
// (rows of up to 16384 * R columns on pack boundaries); block r
// runs the register kernels' row code on columns [16384 r, 16384 (r + 1))
// (a multiple of the pack: the slice stays on pack boundaries), the
// block's all-reduce, then the cluster's (cluster_all_reduce). Compiled for
// one block an SM (forward: up to 128 registers a thread).
#ifdef CUACT_HAVE_CLUSTERS
template <bool Backward, class T>
__device__ __forceinline__ void register_cluster_rows(const SoftmaxArgs<T>& a) {
  constexpr int B = register_cluster_threads(Backward), C = register_cluster_values(Backward);
  constexpr int P = full_pack_width(sizeof(T));
  __shared__ float slots[2][GroupReduce<B>::kWarps];
  __shared__ float cluster_slots[2];
  GroupReduce<B> block{slots};
  int turn = 0;
  auto reduce = [&](float v, auto op) {
    return cluster_all_reduce(cluster_slots, turn, block.all(v, op), op);
  };
  for_each_cluster_row(a, [&](int64_t row, int rank, int, const SoftmaxRowSpec& spec) {
    const int64_t first = int64_t{rank} * kRegisterMaxCols;
    const bool active = first < a.layout.cols;
    if constexpr (Backward)
      register_backward_row<C, P>(a, row, active, B, threadIdx.x, reduce, first);
    else
      register_forward_row<C, P>(a, row, active, B, threadIdx.x, spec, reduce, first);
  });
}
#endif

template <class T>
__global__ void __launch_bounds__(register_cluster_threads(false), 1)
    softmax_forward_register_cluster_kernel(SoftmaxArgs<T> a) {
#ifdef CUACT_HAVE_CLUSTERS
  register_cluster_rows<false>(a);
#endif
}

template <class T>
__global__ void __launch_bounds__(register_cluster_threads(true), 1)
    softmax_backward_register_cluster_kernel(SoftmaxArgs<T> a) {
#ifdef CUACT_HAVE_CLUSTERS
  register_cluster_rows<true>(a);
#endif
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
    const RowNormalizer n = make_normalizer(exp_shift(total.max), total.sum, a.log);
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

// ---------------------------------------------------------------- middle_dim

// The Y partial values of each of a block's X columns (W per thread, slot
// (ty * X + tx) * W + q) folded by a tree: at each half h, ty < h takes
// op(own, ty + h's). Every thread then reads its column's total from ty = 0.
// Begins and ends with a barrier, so the slots may be reused at once.
template <int W, class V, class Op>
__device__ __forceinline__ void middle_tree(V* slots, int x, int y, int tx, int ty, V (&v)[W],
                                            Op op) {
  CUACT_UNROLL
  for (int q = 0; q < W; ++q) slots[(ty * x + tx) * W + q] = v[q];
  __syncthreads();
  for (int half = y / 2; half > 0; half /= 2) {
    if (ty < half)
      CUACT_UNROLL
      for (int q = 0; q < W; ++q) {
        V& mine = slots[(ty * x + tx) * W + q];
        mine = op(mine, slots[((ty + half) * x + tx) * W + q]);
      }
    __syncthreads();
  }
  CUACT_UNROLL
  for (int q = 0; q < W; ++q) v[q] = slots[tx * W + q];
  __syncthreads();
}

// The tile loop of a middle_dim kernel: tile t is columns t*X .. t*X + X-1;
// body(k, active, tx, ty) for every thread, past-the-end columns inactive
// (they still reach the barriers).
template <class T, class Body>
__device__ __forceinline__ void for_each_middle_tile(const SoftmaxArgs<T>& a, Body&& body) {
  const int x = a.middle.x;
  const int tx = static_cast<int>(threadIdx.x) % x, ty = static_cast<int>(threadIdx.x) / x;
  const int64_t columns = a.layout.rows * static_cast<int64_t>(a.layout.inner_groups.divisor);
  for (int64_t tile = blockIdx.x; tile * x < columns; tile += gridDim.x) {
    const int64_t k = tile * x + tx;
    body(k, k < columns, tx, ty);
  }
}

// A middle_dim kernel's columns, either direction: pass 1 (the thread's
// part of each position's statistic), the fold over the Y threads, pass 2.
template <bool Backward, class T, int W>
__device__ __forceinline__ void middle_columns(const SoftmaxArgs<T>& a, RowStat<Backward>* slots) {
  const int y = a.middle.y;
  for_each_middle_tile(a, [&](int64_t k, bool active, int tx, int ty) {
    RowStat<Backward> s[W];
    CUACT_UNROLL
    for (int q = 0; q < W; ++q) {
      if constexpr (Backward)
        s[q] = 0.0f;
      else
        s[q] = {-INFINITY, 0.0f};
    }
    if constexpr (Backward) {
      if (active) middle_backward_sum<T, W>(a, k, ty, y, s);
      if (y > 1) middle_tree<W>(slots, a.middle.x, y, tx, ty, s, SumOp{});
      if (active) middle_backward_store<T, W>(a, k, ty, y, s);
    } else {
      if (active) middle_forward_stats<T, W>(a, k, ty, y, s);
      if (y > 1) middle_tree<W>(slots, a.middle.x, y, tx, ty, s, MaxSumOp{});
      if (active) middle_forward_store<T, W>(a, k, ty, y, s);
    }
  });
}

// A thread takes a 16-byte pack of inner positions where every buffer
// allows it (a.vectorized), one position otherwise.
template <bool Backward, class T>
__device__ __forceinline__ void middle_rows(const SoftmaxArgs<T>& a) {
  constexpr int W = full_pack_width(sizeof(T));
  __shared__ RowStat<Backward> slots[kMiddleBlockThreads * W];
  if (a.vectorized)
    middle_columns<Backward, T, W>(a, slots);
  else
    middle_columns<Backward, T, 1>(a, slots);
}

// Compiled for 4 resident blocks (64 registers a thread; ptxas, left to
// itself, spills a predicate in the fp32 forward).
template <class T>
__global__ void __launch_bounds__(kMiddleBlockThreads, 4)
    softmax_forward_middle_kernel(SoftmaxArgs<T> a) {
  middle_rows<false>(a);
}

template <class T>
__global__ void __launch_bounds__(kMiddleBlockThreads, 4)
    softmax_backward_middle_kernel(SoftmaxArgs<T> a) {
  middle_rows<true>(a);
}

// ---------------------------------------------------------------- the dispatch

template <class T>
using SoftmaxKernel = void (*)(SoftmaxArgs<T>);

template <class T, int... L>
std::array<SoftmaxKernel<T>, kRegisterConfigs> register_kernels(bool backward,
                                                        std::integer_sequence<int, L...>) {
  if (backward) return {&softmax_backward_register_kernel<T, L>...};
  return {&softmax_forward_register_kernel<T, L>...};
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

// The launch configuration of `clusters` clusters of `ranks` blocks of
// `threads`; `attribute` holds its cluster shape (and must outlive it).
inline cudaLaunchConfig_t cluster_config(int clusters, int ranks, int threads, int64_t smem_bytes,
                                         cudaStream_t stream, cudaLaunchAttribute& attribute) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(clusters) * static_cast<unsigned>(ranks));
  config.blockDim = dim3(static_cast<unsigned>(threads));
  config.dynamicSmemBytes = static_cast<size_t>(smem_bytes);
  config.stream = stream;
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned>(ranks);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return config;
}

template <class T>
const void* kernel_address(SoftmaxKernel<T> kernel) {
  return reinterpret_cast<const void*>(kernel);
}

// The largest cluster the device can run the kernel in (clusters of more
// than 8 blocks allowed where the device has them), 0 without clusters or
// where the loaded image of the kernel is not sm_90 code
// (cluster_kernels_usable); from the kernel's cached facts.
template <class T>
cudaError_t max_cluster_ranks(SoftmaxKernel<T> kernel, int threads, const DeviceLimits& dev,
                              int* ranks) {
  *ranks = 0;
  if (dev.cluster_launch == 0) return cudaSuccess;
  KernelFacts f;
  if (const cudaError_t err = kernel_facts(kernel_address(kernel), dev, threads, &f);
      err != cudaSuccess)
    return err;
  if (cluster_kernels_usable(dev.cluster_launch, f.ptx_version)) *ranks = f.max_cluster_ranks;
  return cudaSuccess;
}

// Clusters of each size in kClusterSizes resident at once with a slice
// cache of the row (0: the cache does not fit, or the size is beyond
// max_ranks); cache_bytes: each size's cache.
template <class T>
cudaError_t cluster_occupancy(SoftmaxKernel<T> kernel, int64_t cols, int64_t bytes_per_col,
                              int max_ranks, const DeviceLimits& dev,
                              int (&active)[kClusterSizeCandidates],
                              int64_t (&cache_bytes)[kClusterSizeCandidates]) {
  constexpr int kWidth = full_pack_width(sizeof(T));
  KernelFacts f;
  if (const cudaError_t err = kernel_facts(kernel_address(kernel), dev, kClusterBlockThreads, &f);
      err != cudaSuccess)
    return err;
  for (int i = 0; i < kClusterSizeCandidates; ++i) {
    active[i] = 0;
    cache_bytes[i] = cluster_slice_capacity(cols, kClusterSizes[i], kWidth) * bytes_per_col;
    if (kClusterSizes[i] > max_ranks || cache_bytes[i] > f.dynamic_smem_room) continue;
    if (const cudaError_t err = active_clusters(kernel_address(kernel), dev, kClusterSizes[i],
                                                kClusterBlockThreads, cache_bytes[i], &active[i]);
        err != cudaSuccess)
      return err;
  }
  return cudaSuccess;
}

// Resident blocks per SM of each block_per_row size with `bytes` of row
// cache (0 where it does not fit), from the kernels' cached facts.
template <class T>
cudaError_t block_occupancy(const std::array<SoftmaxKernel<T>, kBlockCandidates>& kernels,
                            int64_t bytes, const DeviceLimits& dev,
                            int (&active)[kBlockCandidates]) {
  for (int i = 0; i < kBlockCandidates; ++i) {
    active[i] = 0;
    KernelFacts f;
    if (const cudaError_t err = kernel_facts(kernel_address(kernels[i]), dev, 0, &f);
        err != cudaSuccess)
      return err;
    if (bytes > f.dynamic_smem_room) continue;
    active[i] = resident_blocks(dev, kBlockThreadCandidates[i], f.registers, f.static_smem + bytes);
  }
  return cudaSuccess;
}

inline constexpr int kWarpWaves = 8;  // row loop: at most 8 waves of warp_per_row blocks

// What a call launches: the kernel, its arguments and its shape (clusters
// of `cluster_ranks` blocks when > 0), or why nothing can run.
template <class T>
struct SoftmaxLaunchPlan {
  SoftmaxLaunchResult result;  // the algorithm; an error or a refusal: no launch
  SoftmaxKernel<T> kernel = nullptr;
  SoftmaxArgs<T> args;
  int blocks = 0;
  int threads = 0;
  int64_t smem_bytes = 0;
  int cluster_ranks = 0;
};

// The one dispatch's plan: the algorithm from the shape and row length
// (choose_softmax_for_shape), then that algorithm's variant and launch shape
// for the current device. Launches nothing (softmax_selected_algorithm asks
// it alone). The device's limits and each kernel's facts are queried once
// and cached (device_limits.h); block occupancy comes from them
// (resident_blocks), cluster occupancy from the driver once per shape.
template <class T>
SoftmaxLaunchPlan<T> plan_softmax(const SoftmaxCall& call) {
  SoftmaxLaunchPlan<T> p;
  SoftmaxArgs<T>& a = p.args;
  SoftmaxLaunchResult& r = p.result;
  a = softmax_args<T>(call);
  const int64_t rows = a.layout.rows, cols = a.layout.cols;
  constexpr int kElem = static_cast<int>(sizeof(T));

  DeviceLimits dev;  // cached per device (device_limits.h)
  if ((r.error = current_device_limits(&dev)) != cudaSuccess) return p;
  const int64_t per_col = block_cache_bytes_per_col(call.backward, kElem);
  const int64_t capacity = dev.smem_optin - kBlockStaticSmemSlack;
  // Clusters are asked about only for rows longer than a block's registers
  // hold: the register cluster for rows on pack boundaries, the cached one
  // for rows one block cannot cache.
  const SoftmaxKernel<T> cluster_kernel =
      call.backward ? &softmax_backward_cluster_kernel<T> : &softmax_forward_cluster_kernel<T>;
  const SoftmaxKernel<T> register_cluster_kernel = call.backward
                                                       ? &softmax_backward_register_cluster_kernel<T>
                                                       : &softmax_forward_register_cluster_kernel<T>;
  const int cluster_threads = register_cluster_threads(call.backward);
  const RegisterConfig cluster_cfg{cluster_threads, register_cluster_values(call.backward),
                                   full_pack_width(kElem)};
  const bool long_rows =
      call.requested == SoftmaxAlgorithm::cluster_per_row ||
      (call.requested == SoftmaxAlgorithm::automatic && a.layout.inner == 1 && cols > kRegisterMaxCols);
  int max_ranks = 0, max_register_ranks = 0;
  if (long_rows && register_args_vectorized(a, cluster_cfg, call.backward))
    if ((r.error = max_cluster_ranks<T>(register_cluster_kernel, cluster_threads, dev,
                                       &max_register_ranks)) !=
        cudaSuccess)
      return p;
  if (long_rows && (call.requested == SoftmaxAlgorithm::cluster_per_row ||
                    !block_cache_fits(cols, per_col, capacity)))
    if ((r.error = max_cluster_ranks<T>(cluster_kernel, kClusterBlockThreads, dev, &max_ranks)) !=
        cudaSuccess)
      return p;
  const SoftmaxChoice choice = choose_softmax_for_shape(
      call.requested, a.layout.inner, a.layout.has_mask || a.layout.causal, cols, per_col,
      capacity, full_pack_width(kElem), max_ranks, max_register_ranks);
  r.algorithm = choice.algorithm;
  r.refusal = choice.refusal;
  if (r.refusal != nullptr) return p;

  if (choice.algorithm == SoftmaxAlgorithm::middle_dim) {
    a.vectorized = middle_args_vectorized(a, call.backward);
    const int64_t width = a.vectorized ? full_pack_width(kElem) : 1;
    const int64_t groups = a.layout.inner / width;  // per o
    a.layout.inner_groups = FastDivider(static_cast<uint64_t>(groups));
    const int64_t columns = rows * groups;
    a.middle =
        plan_middle_dim(columns, cols, static_cast<int64_t>(dev.sm_count) * dev.threads_per_sm);
    const int64_t tiles = (columns + a.middle.x - 1) / a.middle.x;
    p.kernel =
        call.backward ? &softmax_backward_middle_kernel<T> : &softmax_forward_middle_kernel<T>;
    p.threads = a.middle.threads();
    p.blocks = softmax_grid(tiles, dev.sm_count, dev.threads_per_sm / p.threads, kMiddleWaves);
    return p;
  }

  // The row in registers: warp_per_row, or block_per_row's block variants.
  auto plan_registers = [&](int index) {
    const RegisterConfig cfg = register_config_for_span(index, kElem);
    a.vectorized = register_args_vectorized(a, cfg, call.backward);
    const int64_t groups = (rows + cfg.rows_per_block() - 1) / cfg.rows_per_block();
    p.kernel =
        register_kernels<T>(call.backward, std::make_integer_sequence<int, kRegisterConfigs>{})[index];
    p.threads = cfg.block_threads();
    p.blocks = softmax_grid(groups, dev.sm_count, dev.threads_per_sm / p.threads, kWarpWaves);
    set_row_step(a.layout, static_cast<int64_t>(p.blocks) * cfg.rows_per_block());
  };
  if (choice.algorithm == SoftmaxAlgorithm::warp_per_row) {
    plan_registers(register_config_index(cols));
    return p;
  }

  if (choice.algorithm == SoftmaxAlgorithm::block_per_row) {
    const int64_t bytes = cols * per_col;
    const int index = block_register_index(cols);
    if (index < kRegisterConfigs &&
        block_row_in_registers(
            cols, register_args_vectorized(a, register_config_for_span(index, kElem), call.backward),
            block_cache_fits(cols, per_col, capacity))) {
      plan_registers(index);
      return p;
    }
    const auto kernels = block_kernels<T>(call.backward);
    int active[kBlockCandidates];
    if ((r.error = block_occupancy<T>(kernels, bytes, dev, active)) != cudaSuccess)
      return p;
    const int best = choose_block_threads(active);
    if (best >= 0) {
      p.kernel = kernels[best];
      p.threads = kBlockThreadCandidates[best];
      p.blocks = softmax_grid(rows, dev.sm_count, active[best], 1);
      p.smem_bytes = bytes;
      return p;
    }
    if (call.requested == SoftmaxAlgorithm::block_per_row) {
      r.refusal = "block_per_row: no block size fits the row's cache on this device";
      return p;
    }
    r.algorithm = SoftmaxAlgorithm::streaming;  // fits by size, yet no block is resident
  }

  if (choice.algorithm == SoftmaxAlgorithm::cluster_per_row) {
    const int ranks = cluster_register_ranks(cols, max_register_ranks);
    if (ranks > 0) {  // the row in the cluster's registers
      int active = 0;
      if ((r.error = active_clusters(kernel_address(register_cluster_kernel), dev, ranks,
                                     cluster_threads, 0, &active)) != cudaSuccess)
        return p;
      if (active > 0) {
        a.vectorized = true;
        p.kernel = register_cluster_kernel;
        p.cluster_ranks = ranks;
        p.blocks = static_cast<int>(rows < active ? rows : active);  // clusters
        p.threads = cluster_threads;
        set_row_step(a.layout, p.blocks);
        return p;
      }
    }
    int active[kClusterSizeCandidates];
    int64_t cache_bytes[kClusterSizeCandidates];
    if ((r.error = cluster_occupancy<T>(cluster_kernel, cols, per_col, max_ranks, dev, active,
                                        cache_bytes)) != cudaSuccess)
      return p;
    const int best = choose_cluster_size(rows, active);
    if (best >= 0) {
      p.kernel = cluster_kernel;
      p.cluster_ranks = kClusterSizes[best];
      p.blocks = static_cast<int>(rows < active[best] ? rows : active[best]);  // clusters
      p.threads = kClusterBlockThreads;
      p.smem_bytes = cache_bytes[best];
      set_row_step(a.layout, p.blocks);
      return p;
    }
    if (call.requested == SoftmaxAlgorithm::cluster_per_row) {
      r.refusal = "cluster_per_row: no cluster holding the row is resident on this device";
      return p;
    }
    r.algorithm = SoftmaxAlgorithm::streaming;  // fits by size, yet no cluster is resident
  }

  p.kernel =
      call.backward ? &softmax_backward_streaming_kernel<T> : &softmax_forward_streaming_kernel<T>;
  KernelFacts f;
  if ((r.error = kernel_facts(kernel_address(p.kernel), dev, 0, &f)) != cudaSuccess) return p;
  p.threads = kStreamingBlockThreads;
  p.blocks = softmax_grid(rows, dev.sm_count,
                          resident_blocks(dev, p.threads, f.registers, f.static_smem), 1);
  return p;
}

// Plans the call, then launches what the plan says.
template <class T>
SoftmaxLaunchResult launch_softmax(const SoftmaxCall& call, cudaStream_t stream) {
  SoftmaxLaunchPlan<T> p = plan_softmax<T>(call);
  if (p.result.error != cudaSuccess || p.result.refusal != nullptr) return p.result;
  if (p.cluster_ranks > 0) {
    cudaLaunchAttribute attribute;
    const cudaLaunchConfig_t config =
        cluster_config(p.blocks, p.cluster_ranks, p.threads, p.smem_bytes, stream, attribute);
    p.result.error = cudaLaunchKernelEx(&config, p.kernel, p.args);
  } else {
    p.result.error =
        launch_softmax_kernel<T>(p.kernel, p.blocks, p.threads, p.smem_bytes, p.args, stream);
  }
  return p.result;
}

}  // namespace cuact::detail
