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
//
// Each forward kernel also takes an output O: T, Code8 (fp8 codes) or
// CrossEntropyRows<T> (the cross-entropy epilogue: no middle_dim kernel).
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cooperative_groups.h>
#include <cub/block/block_reduce.cuh>
#include <type_traits>
#include <utility>

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
template <int LOG2_SPAN, class T, class O, class Body>
__device__ __forceinline__ void for_each_register_row(const SoftmaxArgs<T, O>& a, Body&& body) {
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
// (384 threads an SM) and may spill a predicate at 512. An epilogue with a
// row total (cross-entropy: its per-row state and partial) gets half the
// blocks up to 1024 columns, where 64 registers spill.
CUACT_HD constexpr int register_min_blocks(int log2_span, bool backward, bool row_total = false) {
  if (log2_span > 10) return kRegisterMaxCols >> log2_span;
  if (backward) return 1;
  return (log2_span < 10 ? 8 : 4) / (row_total ? 2 : 1);
}
template <class T, int LOG2_SPAN>
CUACT_HD constexpr int register_block_threads() {
  return register_config_for_span(LOG2_SPAN, sizeof(T)).block_threads();
}

// One row of a register kernel, as lane `lane` of `lanes` does it, on the
// row's columns from `first` on (a register cluster's block: its slice);
// reduce(v, op) all-reduces over the row's lanes (a warp's group, the
// block, or a cluster's blocks). Forward: load, max, sum of exponentials,
// outputs, store (and a row epilogue's total: finish_row, led by the
// row's first lane). An inactive row (one past the last, or a slice past the
// row's end) loads padding (from a real row's first columns) and stores
// nothing; its lanes still take part in the reductions.
template <int C, int P, class T, class O, class Reduce>
__device__ __forceinline__ void register_forward_row(const SoftmaxArgs<T, O>& a, int64_t row,
                                                     bool active, int lanes, int lane,
                                                     const SoftmaxRowSpec& spec, Reduce&& reduce,
                                                     float* amax, int64_t first = 0) {
  float v[C];
  ForwardSourceOf<T, O> src(a, active ? row : a.layout.rows - 1, spec);
  if (active) src.advance(first);
  const int64_t cols = a.layout.cols - (active ? first : 0);
  lane_load<C, P>(src, lanes, lane, cols, a.vectorized, v, active);
  const float shift = exp_shift(reduce(lane_max(v), MaxNanOp{}));
  const float sum = reduce(lane_exp_sum(v, shift, a.log), SumOp{});
  const RowNormalizer n = make_normalizer(shift, sum, a.log);
  lane_outputs(v, n);
  if constexpr (RowSink<O>::kRowTotal) {  // every lane reaches the epilogue's reduction
    RowSink<O> sink(a, active ? row : a.layout.rows - 1, amax);
    sink.advance(first);
    begin_row(sink, n);
    if (active) lane_store<C, P>(sink, lanes, lane, cols, a.vectorized, v);
    finish_row(sink, reduce, active && lane == 0 && first == 0);
  } else if (active) {
    RowSink<O> sink(a, row, amax);
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
template <bool Backward, int LOG2_SPAN, class T, class O>
__device__ __forceinline__ void register_rows(const SoftmaxArgs<T, O>& a) {
  constexpr RegisterConfig kCfg = register_config_for_span(LOG2_SPAN, sizeof(T));
  constexpr int G = kCfg.lanes, C = kCfg.cols_per_lane, P = kCfg.pack;
  __shared__ float slots[2][GroupReduce<G>::kWarps];
  GroupReduce<G> group{slots};
  auto reduce = [&](float v, auto op) { return group.all(v, op); };
  float amax = 0.0f;  // a quantized output's running max (output_stage.h)
  for_each_register_row<LOG2_SPAN>(a, [&](int64_t row, bool active, int lane,
                                          const RowSpecWalk& walk) {
    if constexpr (Backward)
      register_backward_row<C, P>(a, row, active, G, lane, reduce);
    else
      register_forward_row<C, P>(a, row, active, G, lane, walk.spec(a.layout), reduce, &amax);
  });
  fold_output(a, amax);
}

template <class T, int LOG2_SPAN, class O = T>
__global__ void __launch_bounds__(register_block_threads<T, LOG2_SPAN>(),
                                  register_min_blocks(LOG2_SPAN, false, RowSink<O>::kRowTotal))
    softmax_forward_register_kernel(SoftmaxArgs<T, O> a) {
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
// the pass it saves. `leader`: the thread that ends a row epilogue (finish_row).
template <int B, class T, bool Capped, class O, class Reduce>
__device__ __forceinline__ void cached_forward_row(const ForwardSource<T, Capped>& src,
                                                   RowSink<O>& sink, const PackPlan& plan,
                                                   float* cache, bool log, Reduce&& reduce,
                                                   bool leader) {
  const float shift =
      exp_shift(reduce(block_forward_load(src, plan, threadIdx.x, B, cache), MaxNanOp{}));
  const float sum =
      reduce(block_forward_exp_sum<T>(plan, threadIdx.x, B, cache, shift, log), SumOp{});
  block_forward_store<T>(sink, plan, threadIdx.x, B, cache, make_normalizer(shift, sum, log));
  finish_row(sink, reduce, leader);
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
template <bool Backward, int B, class T, class O>
__device__ __forceinline__ void cached_rows(const SoftmaxArgs<T, O>& a) {
  __shared__ float slots[2][GroupReduce<B>::kWarps];
  GroupReduce<B> block{slots};
  auto reduce = [&](float v, auto op) { return block.all(v, op); };
  float amax = 0.0f;
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    RowSink<O> sink(a, row, &amax);
    if constexpr (Backward) {
      const BackwardSource<T> src(a, row);
      T* y_cache = softmax_row_cache<T>();
      cached_backward_row<B>(src, sink, row_pack_plan(src, sink, a.layout.cols), y_cache,
                             y_cache + a.layout.cols, a.scale, a.log, reduce);
    } else {
      const ForwardSourceOf<T, O> src(a, row);
      cached_forward_row<B>(src, sink, row_pack_plan(src, sink, a.layout.cols),
                            softmax_row_cache<float>(), a.log, reduce, threadIdx.x == 0);
    }
    __syncthreads();  // the next row's plan may give these slots to other threads
  }
  fold_output(a, amax);
}

// Resident blocks a block-wide kernel is compiled for: an epilogue with a
// row total, 64 registers (1024 / B blocks; left to itself, ptxas aims at
// more blocks and spills); the others 0, ptxas's own choice (an explicit 1
// makes it spill in the fp32 block kernel on sm_80).
template <class O, int B>
inline constexpr int kRowTotalMinBlocks = RowSink<O>::kRowTotal ? (1024 / B > 0 ? 1024 / B : 1) : 0;

template <class T, int B, class O = T>
__global__ void __launch_bounds__(B, (kRowTotalMinBlocks<O, B>))
    softmax_forward_block_kernel(SoftmaxArgs<T, O> a) {
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
template <class T, class O, class Body>
__device__ __forceinline__ void for_each_cluster_row(const SoftmaxArgs<T, O>& a, Body&& body) {
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
template <bool Backward, class T, class O>
__device__ __forceinline__ void cached_cluster_rows(const SoftmaxArgs<T, O>& a) {
  constexpr int B = kClusterBlockThreads;
  __shared__ float slots[2][GroupReduce<B>::kWarps];
  __shared__ float cluster_slots[2];
  GroupReduce<B> block{slots};
  int turn = 0;
  auto reduce = [&](float v, auto op) {
    return cluster_all_reduce(cluster_slots, turn, block.all(v, op), op);
  };
  float amax = 0.0f;
  for_each_cluster_row(a, [&](int64_t row, int rank, int ranks, const SoftmaxRowSpec& spec) {
    RowSink<O> sink(a, row, &amax);
    if constexpr (Backward) {
      BackwardSource<T> src(a, row);
      const PackPlan plan = cluster_slice_plan(src, sink, a.layout.cols, rank, ranks);
      T* y_cache = softmax_row_cache<T>();
      cached_backward_row<B>(src, sink, plan, y_cache, y_cache + plan.n /* the slice's dy */,
                             a.scale, a.log, reduce);
    } else {
      ForwardSourceOf<T, O> src(a, row, spec);
      const PackPlan plan = cluster_slice_plan(src, sink, a.layout.cols, rank, ranks);
      cached_forward_row<B>(src, sink, plan, softmax_row_cache<float>(), a.log, reduce,
                            rank == 0 && threadIdx.x == 0);
    }
  });
  fold_output(a, amax);
}
#endif

template <class T, class O = T>
__global__ void __launch_bounds__(kClusterBlockThreads,
                                  (kRowTotalMinBlocks<O, kClusterBlockThreads>))
    softmax_forward_cluster_kernel(SoftmaxArgs<T, O> a) {
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
template <bool Backward, class T, class O>
__device__ __forceinline__ void register_cluster_rows(const SoftmaxArgs<T, O>& a) {
  constexpr int B = register_cluster_threads(Backward), C = register_cluster_values(Backward);
  constexpr int P = full_pack_width(sizeof(T));
  __shared__ float slots[2][GroupReduce<B>::kWarps];
  __shared__ float cluster_slots[2];
  GroupReduce<B> block{slots};
  int turn = 0;
  auto reduce = [&](float v, auto op) {
    return cluster_all_reduce(cluster_slots, turn, block.all(v, op), op);
  };
  float amax = 0.0f;
  for_each_cluster_row(a, [&](int64_t row, int rank, int, const SoftmaxRowSpec& spec) {
    const int64_t first = int64_t{rank} * kRegisterMaxCols;
    const bool active = first < a.layout.cols;
    if constexpr (Backward)
      register_backward_row<C, P>(a, row, active, B, threadIdx.x, reduce, first);
    else
      register_forward_row<C, P>(a, row, active, B, threadIdx.x, spec, reduce, &amax, first);
  });
  fold_output(a, amax);
}
#endif

template <class T, class O = T>
__global__ void __launch_bounds__(register_cluster_threads(false), 1)
    softmax_forward_register_cluster_kernel(SoftmaxArgs<T, O> a) {
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
template <class T, class O = T>
__global__ void __launch_bounds__(kStreamingBlockThreads,
                                  (kRowTotalMinBlocks<O, kStreamingBlockThreads>))
    softmax_forward_streaming_kernel(SoftmaxArgs<T, O> a) {
  constexpr int B = kStreamingBlockThreads;
  __shared__ typename cub::BlockReduce<MaxSum, B>::TempStorage temp;
  __shared__ MaxSum slot;
  float amax = 0.0f;
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    const ForwardSourceOf<T, O> src(a, row);
    const PackPlan plan = row_pack_plan(src, RowSink<O>(a, row, &amax), a.layout.cols);
    const MaxSum local = streaming_forward_stats(src, plan, threadIdx.x, B);
    const MaxSum total = block_all_reduce<B>(temp, slot, local, MaxSumOp{});
    const RowNormalizer n = make_normalizer(exp_shift(total.max), total.sum, a.log);
    // The sink made after the first pass, so that its row state does not
    // stay live across it (the cross-entropy's spills on sm_90 otherwise).
    RowSink<O> sink(a, row, &amax);
    streaming_forward_store(src, sink, plan, threadIdx.x, B, n, a.log);
    if constexpr (RowSink<O>::kRowTotal) {
      __shared__ float slots[2][GroupReduce<B>::kWarps];
      GroupReduce<B> block{slots};  // (the next row's block_all_reduce has barriers first)
      finish_row(sink, [&](float v, auto op) { return block.all(v, op); }, threadIdx.x == 0);
    }
  }
  fold_output(a, amax);
}

// The cross-entropy's backward from the forward's saved lse: no reduction,
// so only the streaming forward's second pass, with the row's normalizer
// made from lse (lp = z - lse), the sink writing dlogits times the upstream
// gradient. One read of the logits, one write of dlogits (in place allowed).
template <class T>
__global__ void __launch_bounds__(kStreamingBlockThreads,
                                  (kRowTotalMinBlocks<CrossEntropyRows<T>, kStreamingBlockThreads>))
    cross_entropy_backward_kernel(SoftmaxArgs<T, CrossEntropyRows<T>> a) {
  constexpr int B = kStreamingBlockThreads;
  for (int64_t row = blockIdx.x; row < a.layout.rows; row += gridDim.x) {
    const ForwardSourceOf<T, CrossEntropyRows<T>> src(a, row);
    RowSink<CrossEntropyRows<T>> sink(a, row);
    const PackPlan plan = row_pack_plan(src, sink, a.layout.cols);
    streaming_forward_store(src, sink, plan, threadIdx.x, B,
                            saved_lse_normalizer(a.cross_entropy.lse[row]), true);
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
template <class T, class O, class Body>
__device__ __forceinline__ void for_each_middle_tile(const SoftmaxArgs<T, O>& a, Body&& body) {
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
template <bool Backward, class T, int W, class O>
__device__ __forceinline__ void middle_columns(const SoftmaxArgs<T, O>& a, RowStat<Backward>* slots,
                                               float* amax) {
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
      if (active) middle_forward_store<T, W>(a, k, ty, y, s, amax);
    }
  });
}

// A thread takes a 16-byte pack of inner positions where every buffer
// allows it (a.vectorized), one position otherwise.
template <bool Backward, class T, class O>
__device__ __forceinline__ void middle_rows(const SoftmaxArgs<T, O>& a) {
  constexpr int W = full_pack_width(sizeof(T));
  __shared__ RowStat<Backward> slots[kMiddleBlockThreads * W];
  float amax = 0.0f;
  if (a.vectorized)
    middle_columns<Backward, T, W>(a, slots, &amax);
  else
    middle_columns<Backward, T, 1>(a, slots, &amax);
  fold_output(a, amax);
}

// Compiled for 4 resident blocks (64 registers a thread; ptxas, left to
// itself, spills a predicate in the fp32 forward).
template <class T, class O = T>
__global__ void __launch_bounds__(kMiddleBlockThreads, 4)
    softmax_forward_middle_kernel(SoftmaxArgs<T, O> a) {
  middle_rows<false>(a);
}

template <class T>
__global__ void __launch_bounds__(kMiddleBlockThreads, 4)
    softmax_backward_middle_kernel(SoftmaxArgs<T> a) {
  middle_rows<true>(a);
}

// ---------------------------------------------------------------- the kernel sets

// A quantized output's epilogue after the block's rows: the threads' running
// maxima folded into the call's amax word (fold_amax, output_stage.h). Every
// thread of the block calls it; plain outputs do nothing.
template <class T, class O>
__device__ __forceinline__ void fold_output(const SoftmaxArgs<T, O>& a, float amax) {
  if constexpr (std::is_same_v<O, Code8>) {
    if (a.quantized.amax != nullptr || a.quantized.scale_inv != nullptr)  // uniform
      fold_amax(a.quantized, amax);
  } else {
    (void)a;
    (void)amax;
  }
}

template <class T, class O, int... L>
void set_forward_register_kernels(SoftmaxKernels& k, std::integer_sequence<int, L...>) {
  const void* kernels[] = {reinterpret_cast<const void*>(&softmax_forward_register_kernel<T, L, O>)...};
  for (int i = 0; i < kRegisterConfigs; ++i) k.registers[i] = kernels[i];
}
template <class T, int... L>
void set_backward_register_kernels(SoftmaxKernels& k, std::integer_sequence<int, L...>) {
  const void* kernels[] = {reinterpret_cast<const void*>(&softmax_backward_register_kernel<T, L>)...};
  for (int i = 0; i < kRegisterConfigs; ++i) k.registers[i] = kernels[i];
}

// Every forward kernel of input T and output O, by address, for the host's
// plan (host/softmax_dispatch.cpp).
template <class T, class O>
SoftmaxKernels forward_softmax_kernels() {
  static_assert(kBlockCandidates == 4);
  SoftmaxKernels k;
  set_forward_register_kernels<T, O>(k, std::make_integer_sequence<int, kRegisterConfigs>{});
  k.blocks[0] = reinterpret_cast<const void*>(&softmax_forward_block_kernel<T, kBlockThreadCandidates[0], O>);
  k.blocks[1] = reinterpret_cast<const void*>(&softmax_forward_block_kernel<T, kBlockThreadCandidates[1], O>);
  k.blocks[2] = reinterpret_cast<const void*>(&softmax_forward_block_kernel<T, kBlockThreadCandidates[2], O>);
  k.blocks[3] = reinterpret_cast<const void*>(&softmax_forward_block_kernel<T, kBlockThreadCandidates[3], O>);
  k.cluster = reinterpret_cast<const void*>(&softmax_forward_cluster_kernel<T, O>);
  k.register_cluster = reinterpret_cast<const void*>(&softmax_forward_register_cluster_kernel<T, O>);
  k.streaming = reinterpret_cast<const void*>(&softmax_forward_streaming_kernel<T, O>);
  if constexpr (!kIsCrossEntropy<O>)  // (a cross-entropy's rows are the last dimension)
    k.middle = reinterpret_cast<const void*>(&softmax_forward_middle_kernel<T, O>);
  return k;
}

// Every backward kernel of T (outputs of T only).
template <class T>
SoftmaxKernels backward_softmax_kernels() {
  SoftmaxKernels k;
  set_backward_register_kernels<T>(k, std::make_integer_sequence<int, kRegisterConfigs>{});
  k.blocks[0] = reinterpret_cast<const void*>(&softmax_backward_block_kernel<T, kBlockThreadCandidates[0]>);
  k.blocks[1] = reinterpret_cast<const void*>(&softmax_backward_block_kernel<T, kBlockThreadCandidates[1]>);
  k.blocks[2] = reinterpret_cast<const void*>(&softmax_backward_block_kernel<T, kBlockThreadCandidates[2]>);
  k.blocks[3] = reinterpret_cast<const void*>(&softmax_backward_block_kernel<T, kBlockThreadCandidates[3]>);
  k.cluster = reinterpret_cast<const void*>(&softmax_backward_cluster_kernel<T>);
  k.register_cluster = reinterpret_cast<const void*>(&softmax_backward_register_cluster_kernel<T>);
  k.streaming = reinterpret_cast<const void*>(&softmax_backward_streaming_kernel<T>);
  k.middle = reinterpret_cast<const void*>(&softmax_backward_middle_kernel<T>);
  return k;
}

// Launches what the host's plan chose, with the call's arguments typed for
// the kernel (input T, output O) and the plan's settings.
template <class T, class O>
cudaError_t launch_softmax_plan(const SoftmaxCall& call, const SoftmaxLaunchPlan& p,
                                cudaStream_t stream) {
  SoftmaxArgs<T, O> args = softmax_args<T, O>(call);
  args.layout = p.layout;
  args.vectorized = p.vectorized;
  args.middle = p.middle;
  void* params[] = {&args};
  if (p.cluster_ranks == 0)
    return cudaLaunchKernel(p.kernel, dim3(static_cast<unsigned>(p.blocks)),
                            dim3(static_cast<unsigned>(p.threads)), params,
                            static_cast<size_t>(p.smem_bytes), stream);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(p.blocks) * static_cast<unsigned>(p.cluster_ranks));
  config.blockDim = dim3(static_cast<unsigned>(p.threads));
  config.dynamicSmemBytes = static_cast<size_t>(p.smem_bytes);
  config.stream = stream;
  cudaLaunchAttribute attribute;
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned>(p.cluster_ranks);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelExC(&config, p.kernel, params);
}

// The engine of one (input, output) pair: its kernels and their launch.
template <class T, class O>
const SoftmaxEngine& softmax_engine() {
  static const SoftmaxEngine engine = [] {
    SoftmaxEngine e;
    e.forward = forward_softmax_kernels<T, O>();
    if constexpr (std::is_same_v<T, O>) e.backward = backward_softmax_kernels<T>();
    if constexpr (kIsCrossEntropy<O>)  // the backward from lse: one kernel, planned as streaming
      e.backward.streaming = reinterpret_cast<const void*>(&cross_entropy_backward_kernel<T>);
    e.launch = &launch_softmax_plan<T, O>;
    return e;
  }();
  return engine;
}

}  // namespace cuact::detail
