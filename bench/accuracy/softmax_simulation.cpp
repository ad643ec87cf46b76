#include "softmax_simulation.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cross_entropy_call.h"
#include "cross_entropy_steps.h"
#include "quantized_passes.h"
#include "softmax_dispatch.h"
#include "softmax_middle.h"
#include "softmax_phases.h"

namespace cuact::test {

namespace {

using namespace cuact::detail;

// The simulated threads' running max of a quantized output (RowSink<Code8>):
// one for the whole call, as the kernels' fold makes of theirs.
thread_local float simulated_amax = 0.0f;

// An xor butterfly over v[0 .. n): lane l takes op(own, lane l ^ offset's).
template <class V, class Op>
void butterfly(V* v, int n, Op op) {
  std::vector<V> next(static_cast<size_t>(n));
  for (int offset = n / 2; offset > 0; offset /= 2) {
    for (int l = 0; l < n; ++l) next[l] = op(v[l], v[l ^ offset]);
    for (int l = 0; l < n; ++l) v[l] = next[l];
  }
}

// The kernels' GroupReduce::all over g lanes: the butterfly within each warp
// (or the group, g < 32); for g > 32 then the butterfly over the warps'
// values, lane l taking warp l % warps's.
template <class V, class Op>
void group_reduce(std::vector<V>& v, int g, Op op) {
  const int lanes = g < 32 ? g : 32;
  for (int w = 0; w < g; w += lanes) butterfly(&v[w], lanes, op);
  if (g > 32) {
    const int warps = g / 32;
    std::vector<V> per_warp(static_cast<size_t>(warps));
    for (int w = 0; w < warps; ++w) per_warp[w] = v[32 * w];
    butterfly(per_warp.data(), warps, op);
    for (int l = 0; l < g; ++l) v[l] = per_warp[l % warps];
  }
}
template <int G, class V, class Op>
void group_reduce(std::vector<V>& v, Op op) {
  group_reduce(v, G, op);
}

// cub::BlockReduce (warp reductions; the streaming kernels): each warp's
// tree by shfl_down with offsets 1, 2, 4, 8, 16, then the warp aggregates
// in order.
template <class V, class Op>
V block_reduce(std::vector<V> v, Op op) {
  const int threads = static_cast<int>(v.size());
  for (int w = 0; w < threads; w += 32)
    for (int offset = 1; offset < 32; offset *= 2)
      for (int l = 0; l + offset < 32; l += 2 * offset) v[w + l] = op(v[w + l], v[w + l + offset]);
  V total = v[0];
  for (int w = 32; w < threads; w += 32) total = op(total, v[w]);
  return total;
}

// A sink's share of its row's epilogue total (finish_row), 0 for plain sinks.
template <class O>
float partial_of(const RowSink<O>& sink) {
  if constexpr (RowSink<O>::kRowTotal) return sink.partial;
  else return 0.0f;
}

// finish_row over simulated threads: the partials all-reduced by `reduce`
// (in the kernel's order), then the leader's words.
template <class O, class Reduce>
void finish_simulated_row(RowSink<O>& leader, std::vector<float> partials, Reduce&& reduce) {
  if constexpr (RowSink<O>::kRowTotal) {
    reduce(partials, SumOp{});
    leader.finish(partials[0]);
  }
}

// Where a simulated lane works: lane `lane` of a `lanes`-lane group on the
// row's columns from `first` on.
struct LaneSlice {
  int lanes = 1;
  int lane = 0;
  int64_t first = 0;
};

// A register kernel's rows, lane by lane (the kernels' register_*_row):
// `total` lanes, slice(l) where lane l works, `step` the row loop's step
// for the walk, reduce(values, op) the row's all-reduce in the kernel's
// order, `walks` RegisterConfig::walks_row_spec.
template <class T, class O, int C, int P, class Slice, class Reduce>
void simulate_rows_in_registers(const SoftmaxArgs<T, O>& a, bool backward, int total, bool walks,
                                int64_t step, Slice&& slice, Reduce&& reduce) {
  using Lane = std::array<float, C>;
  std::vector<Lane> v(total), g(total);
  std::vector<float> part(total), shift(total);
  auto regs = [](Lane& l) -> float (&)[C] { return *reinterpret_cast<float(*)[C]>(l.data()); };
  // The kernel's row loop: a lane's row advances by the step, its mask row
  // and causal index along the walk.
  SoftmaxArgs<T, O> walked = a;
  set_row_step(walked.layout, step);
  std::vector<RowSpecWalk> walk_of;
  for (int64_t first = 0; first < step; ++first) walk_of.emplace_back(walked.layout, first);
  for (int64_t row = 0; row < a.layout.rows; ++row) {
    RowSpecWalk& walk = walk_of[static_cast<size_t>(row % step)];
    if (!walks) walk = RowSpecWalk(walked.layout, row);
    const SoftmaxRowSpec spec = walk.spec(walked.layout);
    if (walks) walk.advance(walked.layout);
    // A lane's source and sink, advanced to its slice; a slice past the
    // row's end is inactive (padding from the row's first columns).
    auto sink = [&](const LaneSlice& s) {
      RowSink<O> k(a, row, &simulated_amax);
      k.advance(s.first);
      return k;
    };
    if (!backward) {
      for (int l = 0; l < total; ++l) {
        const LaneSlice s = slice(l);
        const bool active = s.first < a.layout.cols;
        ForwardSourceOf<T, O> src(walked, row, spec);
        if (active) src.advance(s.first);
        lane_load<C, P>(src, s.lanes, s.lane, a.layout.cols - (active ? s.first : 0),
                        a.vectorized, regs(v[l]), active);
        part[l] = lane_max(regs(v[l]));
      }
      reduce(part, MaxNanOp{});
      for (int l = 0; l < total; ++l) {
        shift[l] = exp_shift(part[l]);
        part[l] = lane_exp_sum(regs(v[l]), shift[l], a.log);
      }
      reduce(part, SumOp{});
      std::vector<RowSink<O>> sinks;  // each lane's (lane 0, at the row's start, leads)
      for (int l = 0; l < total; ++l) {
        const RowNormalizer n = make_normalizer(shift[l], part[l], a.log);
        lane_outputs(regs(v[l]), n);
        const LaneSlice s = slice(l);
        sinks.push_back(sink(s));
        begin_row(sinks.back(), n);
        if (s.first < a.layout.cols)
          lane_store<C, P>(sinks.back(), s.lanes, s.lane, a.layout.cols - s.first, a.vectorized,
                           regs(v[l]));
        part[l] = partial_of(sinks.back());
      }
      finish_simulated_row(sinks[0], part, reduce);
    } else {
      for (int l = 0; l < total; ++l) {
        const LaneSlice s = slice(l);
        for (int i = 0; i < C; ++i) v[l][i] = g[l][i] = 0.0f;
        if (s.first < a.layout.cols) {
          BackwardSource<T> src(a, row);
          src.advance(s.first);
          lane_load<C, P>(src, s.lanes, s.lane, a.layout.cols - s.first, a.vectorized,
                          regs(v[l]), regs(g[l]));
        }
        part[l] = lane_backward_sum(regs(v[l]), regs(g[l]), a.log);
      }
      reduce(part, SumOp{});
      for (int l = 0; l < total; ++l) {
        lane_backward_outputs(regs(v[l]), regs(g[l]), part[l], a.scale, a.log);
        const LaneSlice s = slice(l);
        RowSink<O> k = sink(s);
        if (s.first < a.layout.cols)
          lane_store<C, P>(k, s.lanes, s.lane, a.layout.cols - s.first, a.vectorized, regs(g[l]));
      }
    }
  }
}

// A register kernel variant; the row loop as for a grid of 3 blocks.
template <class T, class O, int L>
void simulate_registers(const SoftmaxArgs<T, O>& a, bool backward) {
  constexpr RegisterConfig cfg = register_config_for_span(L, sizeof(T));
  simulate_rows_in_registers<T, O, cfg.cols_per_lane, cfg.pack>(
      a, backward, cfg.lanes, cfg.walks_row_spec(), int64_t{3} * cfg.rows_per_block(),
      [](int l) { return LaneSlice{cfg.lanes, l, 0}; },
      [](std::vector<float>& v, auto op) { group_reduce<cfg.lanes>(v, op); });
}

// The register cluster of `ranks` blocks: block r's lanes on its slice of
// kRegisterMaxCols columns; each block's all-reduce, then the butterfly
// over the blocks' values (cluster_all_reduce).
template <class T, class O, bool Backward>
void simulate_register_cluster(SoftmaxArgs<T, O> a, int ranks) {
  constexpr int B = register_cluster_threads(Backward), W = full_pack_width(sizeof(T));
  a.vectorized = true;
  simulate_rows_in_registers<T, O, register_cluster_values(Backward), W>(
      a, Backward, B * ranks, true, 3,  // a grid of 3 clusters
      [](int l) { return LaneSlice{B, l % B, int64_t{l / B} * kRegisterMaxCols}; },
      [&](std::vector<float>& v, auto op) {
        std::vector<float> block(B), per_block(static_cast<size_t>(ranks));
        for (int r = 0; r < ranks; ++r) {
          std::copy(v.begin() + r * B, v.begin() + (r + 1) * B, block.begin());
          group_reduce<B>(block, op);
          per_block[r] = block[0];
        }
        butterfly(per_block.data(), ranks, op);
        std::fill(v.begin(), v.end(), per_block[0]);
      });
}

template <class T, class O, int... L>
void simulate_register_variant(int index, const SoftmaxArgs<T, O>& a, bool backward,
                           std::integer_sequence<int, L...>) {
  ((index == L ? simulate_registers<T, O, L>(a, backward) : void()), ...);
}

// The register kernel `index` as the launch sets it up (vectorized or not).
template <class T, class O>
void simulate_register_kernel(int index, SoftmaxArgs<T, O> a, const SoftmaxCall& call) {
  a.vectorized = register_call_vectorized(call, register_config_for_span(index, sizeof(T)));
  simulate_register_variant<T, O>(index, a, call.backward,
                                  std::make_integer_sequence<int, kRegisterConfigs>{});
}

// An H100's block cache capacity (its opt-in shared memory less the slack)
// and largest cluster.
constexpr int64_t kSimulatedCacheCapacity = 232448 - kBlockStaticSmemSlack;
constexpr int kSimulatedMaxClusterRanks = 16;

template <class T, class O>
void simulate_block(const SoftmaxArgs<T, O>& a, bool backward, int threads) {
  const int64_t cols = a.layout.cols;
  std::vector<float> cache(static_cast<size_t>(cols));
  std::vector<T> y_cache(static_cast<size_t>(cols)), dy_cache(static_cast<size_t>(cols));
  std::vector<float> part(static_cast<size_t>(threads));
  for (int64_t row = 0; row < a.layout.rows; ++row) {
    RowSink<O> sink(a, row, &simulated_amax);
    if (!backward) {
      const ForwardSourceOf<T, O> src(a, row);
      const PackPlan plan = row_pack_plan(src, sink, cols);
      for (int t = 0; t < threads; ++t)
        part[t] = block_forward_load(src, plan, t, threads, cache.data());
      group_reduce(part, threads, MaxNanOp{});
      const float shift = exp_shift(part[0]);
      for (int t = 0; t < threads; ++t)
        part[t] = block_forward_exp_sum<T>(plan, t, threads, cache.data(), shift, a.log);
      group_reduce(part, threads, SumOp{});
      const RowNormalizer n = make_normalizer(shift, part[0], a.log);
      std::vector<RowSink<O>> sinks(static_cast<size_t>(threads), sink);  // each thread's
      for (int t = 0; t < threads; ++t) {
        block_forward_store<T>(sinks[t], plan, t, threads, cache.data(), n);
        part[t] = partial_of(sinks[t]);
      }
      finish_simulated_row(sinks[0], part, [&](std::vector<float>& v, auto op) {
        group_reduce(v, threads, op);
      });
    } else {
      const BackwardSource<T> src(a, row);
      const PackPlan plan = row_pack_plan(src, sink, cols);
      for (int t = 0; t < threads; ++t)
        part[t] =
            block_backward_load(src, plan, t, threads, y_cache.data(), dy_cache.data(), a.log);
      group_reduce(part, threads, SumOp{});
      const float reduced = part[0];
      for (int t = 0; t < threads; ++t)
        block_backward_store(sink, plan, t, threads, y_cache.data(), dy_cache.data(), reduced,
                             a.scale, a.log);
    }
  }
}

// cluster_per_row: every block of the cluster runs block_per_row's phases on
// its slice; the blocks' reduced values fold by the butterfly over ranks of
// the kernel's cluster_all_reduce.
template <class T, class O>
void simulate_cluster(const SoftmaxArgs<T, O>& a, bool backward, int ranks) {
  constexpr int B = kClusterBlockThreads;
  const int64_t cols = a.layout.cols;
  const int64_t capacity = cluster_slice_capacity(cols, ranks, full_pack_width(sizeof(T)));
  // Each block's shared memory, sized as the launch sizes it.
  std::vector<std::vector<float>> cache(static_cast<size_t>(ranks),
                                        std::vector<float>(static_cast<size_t>(capacity)));
  std::vector<std::vector<T>> yd_cache(static_cast<size_t>(ranks),
                                       std::vector<T>(static_cast<size_t>(2 * capacity)));
  std::vector<float> part(B);
  auto fold = [&](std::vector<float> per_block, auto op) {
    butterfly(per_block.data(), ranks, op);
    return per_block[0];
  };
  for (int64_t row = 0; row < a.layout.rows; ++row) {
    std::vector<PackPlan> plans;
    std::vector<ForwardSourceOf<T, O>> fsrc;
    std::vector<BackwardSource<T>> bsrc;
    std::vector<RowSink<O>> sinks;
    for (int r = 0; r < ranks; ++r) {
      RowSink<O> sink(a, row, &simulated_amax);
      if (!backward) {
        ForwardSourceOf<T, O> src(a, row);
        plans.push_back(cluster_slice_plan(src, sink, cols, r, ranks));
        fsrc.push_back(src);
      } else {
        BackwardSource<T> src(a, row);
        plans.push_back(cluster_slice_plan(src, sink, cols, r, ranks));
        bsrc.push_back(src);
      }
      sinks.push_back(sink);
      // The launch sizes each block's cache by cluster_slice_capacity: a
      // slice plan past it would be a kernel writing out of its cache.
      if (plans.back().n > capacity)
        throw std::logic_error("cluster_slice_plan exceeds the cache cluster_slice_capacity sizes");
    }
    std::vector<float> per_block(static_cast<size_t>(ranks));
    if (!backward) {
      for (int r = 0; r < ranks; ++r) {
        for (int t = 0; t < B; ++t)
          part[t] = block_forward_load(fsrc[r], plans[r], t, B, cache[r].data());
        group_reduce(part, B, MaxNanOp{});
        per_block[r] = part[0];
      }
      const float shift = exp_shift(fold(per_block, MaxNanOp{}));
      for (int r = 0; r < ranks; ++r) {
        for (int t = 0; t < B; ++t)
          part[t] = block_forward_exp_sum<T>(plans[r], t, B, cache[r].data(), shift, a.log);
        group_reduce(part, B, SumOp{});
        per_block[r] = part[0];
      }
      const RowNormalizer n = make_normalizer(shift, fold(per_block, SumOp{}), a.log);
      std::vector<RowSink<O>> mine;  // each thread's of each block (rank 0's thread 0 leads)
      for (int r = 0; r < ranks; ++r) {
        for (int t = 0; t < B; ++t) {
          mine.push_back(sinks[r]);
          block_forward_store<T>(mine.back(), plans[r], t, B, cache[r].data(), n);
          part[t] = partial_of(mine.back());
        }
        group_reduce(part, B, SumOp{});
        per_block[r] = part[0];
      }
      finish_simulated_row(mine[0], per_block, [&](std::vector<float>& v, auto op) {
        v[0] = fold(v, op);
      });
    } else {
      for (int r = 0; r < ranks; ++r) {
        T* y_cache = yd_cache[r].data();
        for (int t = 0; t < B; ++t)
          part[t] = block_backward_load(bsrc[r], plans[r], t, B, y_cache, y_cache + plans[r].n,
                                        a.log);
        group_reduce(part, B, SumOp{});
        per_block[r] = part[0];
      }
      const float reduced = fold(per_block, SumOp{});
      for (int r = 0; r < ranks; ++r) {
        const T* y_cache = yd_cache[r].data();
        for (int t = 0; t < B; ++t)
          block_backward_store(sinks[r], plans[r], t, B, y_cache, y_cache + plans[r].n, reduced,
                               a.scale, a.log);
      }
    }
  }
}

template <class T, class O>
void simulate_streaming(const SoftmaxArgs<T, O>& a, bool backward) {
  constexpr int B = kStreamingBlockThreads;
  const int64_t cols = a.layout.cols;
  for (int64_t row = 0; row < a.layout.rows; ++row) {
    RowSink<O> sink(a, row, &simulated_amax);
    if (!backward) {
      const ForwardSourceOf<T, O> src(a, row);
      const PackPlan plan = row_pack_plan(src, sink, cols);
      std::vector<MaxSum> part(B);
      for (int t = 0; t < B; ++t) part[t] = streaming_forward_stats(src, plan, t, B);
      const MaxSum total = block_reduce(part, MaxSumOp{});
      const RowNormalizer n = make_normalizer(exp_shift(total.max), total.sum, a.log);
      std::vector<RowSink<O>> sinks(B, sink);  // each thread's
      std::vector<float> partials(B);
      for (int t = 0; t < B; ++t) {
        streaming_forward_store(src, sinks[t], plan, t, B, n, a.log);
        partials[t] = partial_of(sinks[t]);
      }
      finish_simulated_row(sinks[0], partials, [&](std::vector<float>& v, auto op) {
        group_reduce(v, B, op);
      });
    } else {
      const BackwardSource<T> src(a, row);
      const PackPlan plan = row_pack_plan(src, sink, cols);
      std::vector<float> part(B);
      for (int t = 0; t < B; ++t) part[t] = streaming_backward_sum(src, plan, t, B, a.log);
      const float reduced = block_reduce(part, SumOp{});
      for (int t = 0; t < B; ++t)
        streaming_backward_store(src, sink, plan, t, B, reduced, a.scale, a.log);
    }
  }
}

// The middle_tree of the kernel: at each half h, ty < h takes op(own, ty + h's).
template <class V, class Op>
void middle_tree(std::vector<V>& v, Op op) {
  const int y = static_cast<int>(v.size());
  for (int half = y / 2; half > 0; half /= 2)
    for (int ty = 0; ty < half; ++ty) v[ty] = op(v[ty], v[ty + half]);
}

// middle_dim: every thread of a column (Y of them) runs pass 1, the tree
// folds their values per position q, every thread runs pass 2.
template <class T, class O, int W>
void simulate_middle_width(const SoftmaxArgs<T, O>& a, bool backward) {
  const int y = a.middle.y;
  const int64_t columns = a.layout.rows * static_cast<int64_t>(a.layout.inner_groups.divisor);
  for (int64_t k = 0; k < columns; ++k) {
    if (!backward) {
      std::vector<std::vector<MaxSum>> part(W, std::vector<MaxSum>(static_cast<size_t>(y)));
      for (int ty = 0; ty < y; ++ty) {
        MaxSum s[W];
        middle_forward_stats<T, W>(a, k, ty, y, s);
        for (int q = 0; q < W; ++q) part[q][ty] = s[q];
      }
      MaxSum total[W];
      for (int q = 0; q < W; ++q) {
        middle_tree(part[q], MaxSumOp{});
        total[q] = part[q][0];
      }
      for (int ty = 0; ty < y; ++ty) middle_forward_store<T, W>(a, k, ty, y, total, &simulated_amax);
    } else {
      std::vector<std::vector<float>> part(W, std::vector<float>(static_cast<size_t>(y)));
      for (int ty = 0; ty < y; ++ty) {
        float s[W];
        middle_backward_sum<T, W>(a, k, ty, y, s);
        for (int q = 0; q < W; ++q) part[q][ty] = s[q];
      }
      float total[W];
      for (int q = 0; q < W; ++q) {
        middle_tree(part[q], SumOp{});
        total[q] = part[q][0];
      }
      for (int ty = 0; ty < y; ++ty) middle_backward_store<T, W>(a, k, ty, y, total);
    }
  }
}

// The launch's set-up of a middle_dim call (vectorized, the groups, the plan).
template <class T, class O>
void simulate_middle(SoftmaxArgs<T, O> a, const SoftmaxCall& call, int middle_y) {
  const bool backward = call.backward;
  a.vectorized = middle_call_vectorized(call);
  const int64_t width = a.vectorized ? full_pack_width(sizeof(T)) : 1;
  const int64_t groups = a.layout.inner / width;
  a.layout.inner_groups = FastDivider(static_cast<uint64_t>(groups));
  a.middle = plan_middle_dim(a.layout.rows * groups, a.layout.cols, int64_t{132} * 2048);
  if (middle_y > 0) a.middle = {kMiddleBlockThreads / middle_y, middle_y};
  if (a.vectorized)
    simulate_middle_width<T, O, full_pack_width(sizeof(T))>(a, backward);
  else
    simulate_middle_width<T, O, 1>(a, backward);
}

// The dispatch's choice (plan_softmax) on the simulated H100: the register
// cluster for rows on pack boundaries, cached clusters of up to 16 blocks.
template <class T, class O>
SoftmaxAlgorithm simulated_dispatch(const SoftmaxArgs<T, O>& a, const SoftmaxCall& call) {
  const bool backward = call.backward;
  constexpr int kElem = static_cast<int>(sizeof(T));
  const RegisterConfig cluster_cfg{register_cluster_threads(backward),
                                   register_cluster_values(backward), full_pack_width(kElem)};
  const int register_ranks =
      register_call_vectorized(call, cluster_cfg) ? kSimulatedMaxClusterRanks : 0;
  return choose_softmax_for_shape(SoftmaxAlgorithm::automatic, a.layout.inner,
                                  a.layout.has_mask || a.layout.causal, a.layout.cols,
                                  block_cache_bytes_per_col(backward, kElem),
                                  kSimulatedCacheCapacity, full_pack_width(kElem),
                                  kSimulatedMaxClusterRanks, register_ranks)
      .algorithm;
}

template <class T, class O = T>
SoftmaxAlgorithm simulate(SoftmaxAlgorithm algorithm, const SoftmaxCall& call, int block_threads,
                          int cluster_ranks, int middle_y) {
  SoftmaxArgs<T, O> a = softmax_args<T, O>(call);
  simulated_amax = 0.0f;
  if (algorithm == SoftmaxAlgorithm::automatic) algorithm = simulated_dispatch(a, call);
  switch (algorithm) {
    case SoftmaxAlgorithm::middle_dim:
      if constexpr (!kIsCrossEntropy<O>) simulate_middle(a, call, middle_y);
      break;
    case SoftmaxAlgorithm::warp_per_row:
      simulate_register_kernel(register_config_index(a.layout.cols), a, call);
      break;
    case SoftmaxAlgorithm::block_per_row: {
      // As the launch plans it: the row in registers, or the shared-memory cache.
      const int index = block_register_index(a.layout.cols);
      const int64_t per_col = block_cache_bytes_per_col(call.backward, sizeof(T));
      if (index < kRegisterConfigs &&
          block_row_in_registers(
              a.layout.cols,
              register_call_vectorized(call, register_config_for_span(index, sizeof(T))),
              block_cache_fits(a.layout.cols, per_col, kSimulatedCacheCapacity)))
        simulate_register_kernel(index, a, call);
      else
        simulate_block(a, call.backward, block_threads);
      break;
    }
    case SoftmaxAlgorithm::cluster_per_row: {
      // As the launch plans it on an H100: rows on pack boundaries in the
      // register cluster that holds them, the others cached in slices.
      const RegisterConfig cluster_cfg{register_cluster_threads(call.backward),
                                       register_cluster_values(call.backward),
                                       full_pack_width(sizeof(T))};
      const int ranks = register_call_vectorized(call, cluster_cfg)
                            ? cluster_register_ranks(a.layout.cols, kSimulatedMaxClusterRanks)
                            : 0;
      if (ranks > 0)
        call.backward ? simulate_register_cluster<T, O, true>(a, ranks)
                      : simulate_register_cluster<T, O, false>(a, ranks);
      else
        simulate_cluster(a, call.backward, cluster_ranks);
      break;
    }
    default: simulate_streaming(a, call.backward); break;
  }
  // The kernels' epilogue after their rows (fold_amax): the amax word and 1 / scale.
  if constexpr (std::is_same_v<O, Code8>) {
    const QuantizedStore& q = call.quantized;
    if (q.amax != nullptr) *q.amax = std::max(*q.amax, simulated_amax);
    if (q.scale_inv != nullptr && q.writes) *q.scale_inv = 1.0f / (q.scale ? *q.scale : 1.0f);
  }
  return algorithm;
}

}  // namespace

SoftmaxAlgorithm simulate_softmax(SoftmaxAlgorithm algorithm, Direction direction,
                                  const Softmax& op, DType dtype, const void* in, const void* grad,
                                  void* out, const SoftmaxShape& shape, int block_threads,
                                  int cluster_ranks, int middle_y) {
  const SoftmaxCall call = make_softmax_call(direction, op, dtype, in, grad, out, shape);
  switch (dtype) {
    case DType::f16:
      return simulate<__half>(algorithm, call, block_threads, cluster_ranks, middle_y);
    case DType::bf16:
      return simulate<__nv_bfloat16>(algorithm, call, block_threads, cluster_ranks, middle_y);
    default: return simulate<float>(algorithm, call, block_threads, cluster_ranks, middle_y);
  }
}

SoftmaxAlgorithm simulate_softmax_quantized(SoftmaxAlgorithm algorithm, const Softmax& op,
                                            DType dtype, const void* x, const QuantizedOutput& y,
                                            const SoftmaxShape& shape, int block_threads,
                                            int cluster_ranks, int middle_y) {
  SoftmaxCall call = make_softmax_call(Direction::forward, op, dtype, x, nullptr, y.data, shape);
  call.out_size = 1;
  // The device's steps (run_quantized_passes): the amax cleared, the passes,
  // the scale step between them; the recipe's amax word is host memory here
  // (a current call without one needs a host workspace word: `fallback`).
  float fallback = 0.0f;
  const QuantizedRecipe recipe = quantized_recipe(y, &fallback, 0);
  if (recipe.store.amax != nullptr) *recipe.store.amax = 0.0f;
  const QuantizedPasses passes = quantized_passes(recipe);
  auto pass = [&](const QuantizedStore& store) {
    call.quantized = store;
    switch (dtype) {
      case DType::f16:
        return simulate<__half, Code8>(algorithm, call, block_threads, cluster_ranks, middle_y);
      case DType::bf16:
        return simulate<__nv_bfloat16, Code8>(algorithm, call, block_threads, cluster_ranks,
                                              middle_y);
      default: return simulate<float, Code8>(algorithm, call, block_threads, cluster_ranks, middle_y);
    }
  };
  const SoftmaxAlgorithm ran = pass(passes.first);
  if (!passes.two) return ran;
  const QuantizedStore& q = recipe.store;
  const float scale = scale_from_amax(*q.amax, q.format, recipe.margin, recipe.power_of_two);
  *const_cast<float*>(q.scale) = scale;
  if (q.scale_inv != nullptr) *q.scale_inv = 1.0f / scale;
  return pass(passes.second);
}

SoftmaxAlgorithm simulate_softmax(SoftmaxAlgorithm algorithm, Direction direction,
                                  const Softmax& op, DType dtype, const void* in, const void* grad,
                                  void* out, int64_t rows, int64_t cols, int block_threads,
                                  int cluster_ranks) {
  return simulate_softmax(algorithm, direction, op, dtype, in, grad, out,
                          SoftmaxShape::rows(rows, cols), block_threads, cluster_ranks);
}

namespace {

// The count step as its kernel runs it (every thread's share, then the fold).
void simulate_count(const CrossEntropyCall& c, int64_t rows) {
  constexpr int kThreads = kCrossEntropyStepThreads;
  std::vector<CountShare> shares(kThreads);
  for (int t = 0; t < kThreads; ++t)
    shares[t] = count_share(c.rows.cross_entropy, rows, c.vocab, t, kThreads);
  write_counts(c.rows.cross_entropy, shares.data(), kThreads);
}

// cross_entropy_backward_kernel's rows: each thread's sink over its items,
// the normalizer from the saved lse.
template <class T>
void simulate_backward_rows(const SoftmaxCall& call) {
  using O = CrossEntropyRows<T>;
  constexpr int B = kStreamingBlockThreads;
  const SoftmaxArgs<T, O> a = softmax_args<T, O>(call);
  for (int64_t row = 0; row < a.layout.rows; ++row) {
    const ForwardSourceOf<T, O> src(a, row);
    const RowSink<O> sink(a, row);
    const PackPlan plan = row_pack_plan(src, sink, a.layout.cols);
    for (int t = 0; t < B; ++t) {
      RowSink<O> mine = sink;
      streaming_forward_store(src, mine, plan, t, B,
                              saved_lse_normalizer(a.cross_entropy.lse[row]), true);
    }
  }
}

}  // namespace

void simulate_cross_entropy_backward(const CrossEntropy& ce, DType dtype, const void* logits,
                                     int64_t rows, int64_t vocab, int64_t row_stride,
                                     const void* targets, IndexType target_type, const float* lse,
                                     const float* dloss, void* dlogits, Workspace workspace) {
  const CrossEntropyCall c = make_cross_entropy_backward_call(
      ce, dtype, logits, rows, vocab, row_stride, targets, target_type, lse, dloss, dlogits,
      workspace);
  if (c.count) simulate_count(c, rows);
  switch (dtype) {
    case DType::f16: simulate_backward_rows<__half>(c.rows); break;
    case DType::bf16: simulate_backward_rows<__nv_bfloat16>(c.rows); break;
    default: simulate_backward_rows<float>(c.rows);
  }
}

SoftmaxAlgorithm simulate_cross_entropy(SoftmaxAlgorithm algorithm, const CrossEntropy& ce,
                                        DType dtype, const void* logits, int64_t rows,
                                        int64_t vocab, int64_t row_stride, const void* targets,
                                        IndexType target_type, const CrossEntropyOutputs& out,
                                        Workspace workspace, int block_threads,
                                        int cluster_ranks) {
  const CrossEntropyCall c = make_cross_entropy_call(ce, dtype, logits, rows, vocab, row_stride,
                                                     targets, target_type, out, workspace);
  const CrossEntropyStore& store = c.rows.cross_entropy;
  constexpr int kThreads = kCrossEntropyStepThreads;
  if (c.count) simulate_count(c, rows);
  SoftmaxAlgorithm ran = algorithm;
  if (rows > 0) {
    switch (dtype) {
      case DType::f16:
        ran = simulate<__half, CrossEntropyRows<__half>>(algorithm, c.rows, block_threads,
                                                         cluster_ranks, 0);
        break;
      case DType::bf16:
        ran = simulate<__nv_bfloat16, CrossEntropyRows<__nv_bfloat16>>(
            algorithm, c.rows, block_threads, cluster_ranks, 0);
        break;
      default:
        ran = simulate<float, CrossEntropyRows<float>>(algorithm, c.rows, block_threads,
                                                       cluster_ranks, 0);
    }
  }
  if (c.reduce) {
    std::vector<float> shares(kThreads);
    for (int t = 0; t < kThreads; ++t) shares[t] = loss_share(store.loss, rows, t, kThreads);
    write_reduced(shares.data(), kThreads, c.mean ? store.words[kDenominatorWord] : 0.0f, c.mean,
                  c.empty_mean_is_zero, c.reduced);
  }
  return ran;
}

}  // namespace cuact::test
