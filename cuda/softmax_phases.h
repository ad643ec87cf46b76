// A row's work as each lane or thread does it, phase by phase: everything a
// softmax kernel does between its reductions. The kernels
// (softmax_kernels.cuh) are a row loop, these phases and the reductions
// (warp shuffles, CUB); CPU tests run the same phases for every simulated
// lane or thread with host loops in place of the reductions.
// __host__ __device__: the caches are plain pointers (shared memory in a kernel).
#pragma once

#include <cstdint>

#include "cross_entropy_sink.h"
#include "softmax_io.h"

namespace cuact::detail {

// ---------------------------------------------------------------- rows in registers: a lane's slots

// The columns lane `lane` of a `lanes`-lane row group owns (lane_slot_column), as
// its loads and stores visit them: on_pack(first slot, column) for each pack
// of P slots when vectorized, on_slot(slot, column) for each slot otherwise;
// columns past the row are skipped.
template <int C, int P, class OnPack, class OnSlot>
CUACT_HD void for_each_lane_column(int lanes, int lane, int64_t cols, bool vectorized,
                                   OnPack&& on_pack, OnSlot&& on_slot) {
  const RegisterConfig cfg{lanes, C, P};
  if (vectorized) {
    CUACT_UNROLL
    for (int k = 0; k < C / P; ++k) {
      const int col = lane_slot_column(cfg, lane, k * P, true);
      if (col < cols) on_pack(k * P, col);
    }
  } else {
    CUACT_UNROLL
    for (int s = 0; s < C; ++s) {
      const int col = lane_slot_column(cfg, lane, s, false);
      if (col < cols) on_slot(s, col);
    }
  }
}

// A lane loads its C slots; slots past the row are padding: -inf forward,
// y = dy = 0 backward (forward: every slot of an inactive row, one past the
// last, whose source is built on a real row). Vectorized, every pack is loaded before any is used
// (ForwardSource::lane_loads: no bounds branch between the loads, all in
// flight at once).
template <int C, int P, class T, bool Capped>
CUACT_HD void lane_load(const ForwardSource<T, Capped>& src, int lanes, int lane, int64_t cols, bool vectorized,
                        float (&v)[C], bool active = true) {
  const RegisterConfig cfg{lanes, C, P};
  if (vectorized) {
    constexpr int K = C / P;
    SoftmaxPack<T, P> xs[K], ms[K];  // ms: read only with a mask
    int shown[K];
    CUACT_UNROLL
    for (int k = 0; k < K; ++k) {
      const int col = lane_slot_column(cfg, lane, k * P, true);
      shown[k] = src.lane_shown(col, active && col < cols);
      src.template lane_loads<P>(col, shown[k], xs[k], ms[k]);
    }
    CUACT_UNROLL
    for (int k = 0; k < K; ++k) {
      float z[P];
      src.template lane_inputs<P>(xs[k], ms[k], shown[k], z);
      CUACT_UNROLL
      for (int q = 0; q < P; ++q) v[k * P + q] = z[q];
    }
    return;
  }
  CUACT_UNROLL
  for (int i = 0; i < C; ++i) v[i] = -INFINITY;
  if (!active) return;
  for_each_lane_column<C, P>(
      lanes, lane, cols, false, [](int, int) {}, [&](int s, int col) { v[s] = src.one(col); });
}

// Backward: y and dy of the lane's slots, then dy read as 0 where the
// forward hid the column, looked up for the lane's values at once
// (BackwardSource::hide: one test per lane on the common path).
template <int C, int P, class T>
CUACT_HD void lane_load(const BackwardSource<T>& src, int lanes, int lane, int64_t cols,
                        bool vectorized, float (&y)[C], float (&dy)[C]) {
  const RegisterConfig cfg{lanes, C, P};
  if (vectorized) {
    CUACT_UNROLL
    for (int k = 0; k < C / P; ++k) {
      const int col = lane_slot_column(cfg, lane, k * P, true);
      float yp[P], gp[P];
      src.template lane_pack<P>(col, col < cols, yp, gp);
      CUACT_UNROLL
      for (int q = 0; q < P; ++q) {
        y[k * P + q] = yp[q];
        dy[k * P + q] = gp[q];
      }
    }
  } else {
    CUACT_UNROLL
    for (int i = 0; i < C; ++i) y[i] = dy[i] = 0.0f;
    for_each_lane_column<C, P>(
        lanes, lane, cols, false, [](int, int) {},
        [&](int s, int col) { src.one_raw(col, y[s], dy[s]); });
  }
  // Padding slots (past the row) hold y = dy = 0: never looked up.
  src.template hide<C>(y, dy, [&](int s) { return lane_slot_column(cfg, lane, s, vectorized); });
}

template <int C, int P, class Sink>
CUACT_HD void lane_store(Sink& sink, int lanes, int lane, int64_t cols, bool vectorized,
                              const float (&v)[C]) {
  for_each_lane_column<C, P>(
      lanes, lane, cols, vectorized,
      [&](int first, int col) {
        float out[P];
        CUACT_UNROLL
        for (int q = 0; q < P; ++q) out[q] = v[first + q];
        sink.template pack<P>(col, out);
      },
      [&](int s, int col) { sink.one(col, v[s]); });
}

// ---------------------------------------------------------------- block_per_row: a thread's items

// Forward phase 1: z of the thread's items into the cache; returns their max.
template <class T, bool Capped>
CUACT_HD float block_forward_load(const ForwardSource<T, Capped>& src, const PackPlan& plan, int thread,
                                  int threads, float* cache) {
  constexpr int W = full_pack_width(sizeof(T));
  float local_max = -INFINITY;
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float z[W];
        src.template pack<W>(plan.pack_start(p), z);
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) {
          cache[cache_slot_of_pack(plan, p, q)] = z[q];
          local_max = max_nan(local_max, z[q]);
        }
      },
      [&](int64_t col) {
        const float z = src.one(col);
        cache[cache_slot_of_scalar(plan, col)] = z;
        local_max = max_nan(local_max, z);
      });
  return local_max;
}

// Forward phase 2: the thread's sum of exp(z - shift); softmax keeps the
// exponentials in the cache for phase 3.
template <class T>
CUACT_HD float block_forward_exp_sum(const PackPlan& plan, int thread, int threads, float* cache,
                                     float shift, bool log) {
  constexpr int W = full_pack_width(sizeof(T));
  CompensatedSum sum;
  auto exponentiate = [&](int64_t s) {
    const float e = exp_approx(cache[s] - shift);
    if (!log) cache[s] = e;
    return e;
  };
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float e[W];
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) e[q] = exponentiate(cache_slot_of_pack(plan, p, q));
        sum.add(tree_sum(e));
      },
      [&](int64_t col) { sum.add(exponentiate(cache_slot_of_scalar(plan, col))); });
  return sum.value();
}

// Forward phase 3: the outputs from the cache (T: the input's type, which
// sets the pack).
template <class T, class Sink>
CUACT_HD void block_forward_store(Sink& sink, const PackPlan& plan, int thread,
                                  int threads, const float* cache, const RowNormalizer& n) {
  constexpr int W = full_pack_width(sizeof(T));
  begin_row(sink, n);
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float y[W];
        CUACT_UNROLL
        for (int q = 0; q < W; ++q)
          y[q] = softmax_output(cache[cache_slot_of_pack(plan, p, q)], n);
        sink.template pack<W>(plan.pack_start(p), y);
      },
      [&](int64_t col) {
        sink.one(col, softmax_output(cache[cache_slot_of_scalar(plan, col)], n));
      });
}

// Backward phase 1: y and dy of the thread's items into the caches (in T,
// as loaded); returns the thread's part of the row's sum, dy read as 0
// where the forward hid the column. The look-up (BackwardSource::hide's
// rule) is rare: where the probe over the thread's items calls for it, a
// second walk over them, from the cache, zeroes the hidden dy there and
// sums again.
template <class T>
CUACT_HD float block_backward_load(const BackwardSource<T>& src, const PackPlan& plan, int thread,
                                   int threads, T* y_cache, T* dy_cache, bool log) {
  constexpr int W = full_pack_width(sizeof(T));
  CompensatedSum sum;
  float probe = 0.0f;
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        const int64_t first = plan.pack_start(p);
        const SoftmaxPack<T, W> yp = load_softmax_pack<T, W>(src.y + first);
        const SoftmaxPack<T, W> gp = load_softmax_pack<T, W>(src.dy + first);
        float t[W];
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) {
          const int64_t s = cache_slot_of_pack(plan, p, q);
          y_cache[s] = yp.v[q];
          dy_cache[s] = gp.v[q];
          const float y = to_float(yp.v[q]), g = to_float(gp.v[q]);
          probe = hiding_probe(probe, y, g);
          t[q] = backward_term(y, g, log);
        }
        sum.add(tree_sum(t));
      },
      [&](int64_t col) {
        const int64_t s = cache_slot_of_scalar(plan, col);
        y_cache[s] = src.y[col];
        dy_cache[s] = src.dy[col];
        const float y = to_float(src.y[col]), g = to_float(src.dy[col]);
        probe = hiding_probe(probe, y, g);
        sum.add(backward_term(y, g, log));
      });
  if (!needs_lookup(probe)) return sum.value();
  // Rare: the thread's items again, from the cache.
  const HiddenColumns<T> hidden = src.hidden_columns();
  const T zero = narrow<T>(0.0f);
  CompensatedSum fixed;
  auto term = [&](int64_t s, int64_t col) {
    const float y = to_float(y_cache[s]);
    float g = to_float(dy_cache[s]);
    if (hiding_matters(y, g, log) && hidden.hides(col)) {
      g = 0.0f;
      dy_cache[s] = zero;
    }
    return backward_term(y, g, log);
  };
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float t[W];
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) t[q] = term(cache_slot_of_pack(plan, p, q), plan.pack_start(p) + q);
        fixed.add(tree_sum(t));
      },
      [&](int64_t col) { fixed.add(term(cache_slot_of_scalar(plan, col), col)); });
  return fixed.value();
}

// Backward phase 2: dx from the caches.
template <class T, class Sink>
CUACT_HD void block_backward_store(Sink& sink, const PackPlan& plan, int thread,
                                   int threads, const T* y_cache, const T* dy_cache, float reduced,
                                   float scale, bool log) {
  constexpr int W = full_pack_width(sizeof(T));
  auto dx_at = [&](int64_t s) {
    return softmax_backward_output(to_float(y_cache[s]), to_float(dy_cache[s]), reduced, scale,
                                   log);
  };
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float dx[W];
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) dx[q] = dx_at(cache_slot_of_pack(plan, p, q));
        sink.template pack<W>(plan.pack_start(p), dx);
      },
      [&](int64_t col) { sink.one(col, dx_at(cache_slot_of_scalar(plan, col))); });
}

// ---------------------------------------------------------------- streaming: a thread's items,
// read twice

// Forward pass 1: the thread's online (reference, sum).
template <class T, bool Capped>
CUACT_HD MaxSum streaming_forward_stats(const ForwardSource<T, Capped>& src, const PackPlan& plan,
                                        int thread, int threads) {
  constexpr int W = full_pack_width(sizeof(T));
  OnlineSoftmax online;
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float z[W];
        src.template pack<W>(plan.pack_start(p), z);
        online.add(z);
      },
      [&](int64_t col) {
        const float z[1] = {src.one(col)};
        online.add(z);
      });
  return online.result();
}

// Forward pass 2: reads z again and writes the outputs.
template <class T, bool Capped, class Sink>
CUACT_HD void streaming_forward_store(const ForwardSource<T, Capped>& src, Sink& sink,
                                      const PackPlan& plan, int thread, int threads,
                                      const RowNormalizer& n, bool log) {
  constexpr int W = full_pack_width(sizeof(T));
  begin_row(sink, n);
  auto output = [&](float z) { return softmax_output(log ? z : exp_approx(z - n.shift), n); };
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float z[W];
        src.template pack<W>(plan.pack_start(p), z);
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) z[q] = output(z[q]);
        sink.template pack<W>(plan.pack_start(p), z);
      },
      [&](int64_t col) { sink.one(col, output(src.one(col))); });
}

// Backward pass 1: the thread's part of the row's sum.
template <class T>
CUACT_HD float streaming_backward_sum(const BackwardSource<T>& src, const PackPlan& plan,
                                      int thread, int threads, bool log) {
  constexpr int W = full_pack_width(sizeof(T));
  CompensatedSum sum;
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float y[W], g[W];
        src.template pack<W>(plan.pack_start(p), y, g);
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) g[q] = backward_term(y[q], g[q], log);
        sum.add(tree_sum(g));
      },
      [&](int64_t col) {
        float y, g;
        src.one(col, y, g);
        sum.add(backward_term(y, g, log));
      });
  return sum.value();
}

// Backward pass 2: reads y and dy again and writes dx.
template <class T, class Sink>
CUACT_HD void streaming_backward_store(const BackwardSource<T>& src, Sink& sink,
                                       const PackPlan& plan, int thread, int threads, float reduced,
                                       float scale, bool log) {
  constexpr int W = full_pack_width(sizeof(T));
  for_each_row_item(
      plan, thread, threads,
      [&](int64_t p) {
        float y[W], g[W];
        src.template pack<W>(plan.pack_start(p), y, g);
        CUACT_UNROLL
        for (int q = 0; q < W; ++q) g[q] = softmax_backward_output(y[q], g[q], reduced, scale, log);
        sink.template pack<W>(plan.pack_start(p), g);
      },
      [&](int64_t col) {
        float y, g;
        src.one(col, y, g);
        sink.one(col, softmax_backward_output(y, g, reduced, scale, log));
      });
}

}  // namespace cuact::detail
