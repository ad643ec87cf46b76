// Cross-entropy as a softmax epilogue (docs/DESIGN.md, "A softmax
// epilogue"): the softmax kernels run the row as log_softmax does (the
// source applies the logit scale and the soft cap) and hand each result,
// lp_j = z_j - lse, to this sink, which
//   - writes dlogits_j = (p_j * coef - keep * w_t [j = t] - spread * w_j)
//     * g * dz_j/dx_j (the fused mode; p_j = exp(lp_j), dz/dx = s or, capped,
//     s * (1 - (z_j / cap)^2) with z_j = lp_j + lse; each term times g * s
//     once a row),
//   - adds the row's loss terms of its columns, keep * w_t * (-lp_t) and
//     spread * w_j * (-lp_j), to its partial,
// and, after the row's stores, every thread's partial is all-reduced over
// the row (finish_row) and the row's leader writes loss, lse and z-loss.
// Nothing reads the logits after the stores: dlogits may overwrite them.
// Host and device (the CPU tests run it in the simulated kernels).
#pragma once

#include <cmath>
#include <cstdint>

#include "cross_entropy_store.h"
#include "softmax_io.h"

namespace cuact::detail {

// A class weight (f32, f16 or bf16), widened.
CUACT_HD float class_weight(const void* weight, DType dtype, int64_t c) {
  switch (dtype) {
    case DType::f16: return to_float(static_cast<const __half*>(weight)[c]);
    case DType::bf16: return to_float(static_cast<const __nv_bfloat16*>(weight)[c]);
    default: return static_cast<const float*>(weight)[c];
  }
}

// The row's target, as read from either index type.
CUACT_HD int64_t target_of(const CrossEntropyStore& ce, int64_t row) {
  return ce.targets_i64 ? static_cast<const int64_t*>(ce.targets)[row]
                        : static_cast<const int32_t*>(ce.targets)[row];
}

// The log_softmax normalizer of a row whose lse is known (the backward's
// saved lse): lp = z - lse.
CUACT_HD RowNormalizer saved_lse_normalizer(float lse) {
  RowNormalizer n;
  n.mul = 1.0f;
  n.add = -lse;
  return n;
}

template <class T>
struct RowSink<CrossEntropyRows<T>> {
  static constexpr bool kRowTotal = true;  // finish_row all-reduces `partial`
  T* out;           // the row's dlogits from the sink's first column (null: not written)
  const void* weight;
  DType weight_dtype;
  int64_t first = 0;  // the sink's first column in the row (a cluster block's slice)
  int64_t target;     // the row's target column, counted from the sink's first column
  float coef = 0.0f, at_target = 0.0f, spread = 0.0f;  // dloss/dz's terms (0: an uncounted row)
  float grad = 0.0f;      // dlogits' factor g * s (the fused mode's g)
  float coef_g = 0.0f, at_target_g = 0.0f, spread_g = 0.0f;  // the terms times grad (begin)
  float fill = 0.0f;      // dlogits of an uncounted row: 0 (ignored) or NaN (a bad target)
  float inv_cap = 0.0f;   // 1 / softcap (0: none)
  float lse = 0.0f;
  float z_loss = 0.0f;    // the call's z-loss coefficient
  bool counted = false, smoothing = false;
  float* loss;          // this row's words (each null where not asked for)
  float* lse_out;
  float* z_loss_out;
  float partial = 0.0f;  // the loss terms of this thread's columns

  CUACT_HD RowSink(const SoftmaxArgs<T, CrossEntropyRows<T>>& a, int64_t row, float* = nullptr) {
    const CrossEntropyStore& ce = a.cross_entropy;
    out = ce.dlogits == nullptr ? nullptr
                                : static_cast<T*>(ce.dlogits) + row * a.layout.out_stride;
    weight = ce.weight;
    weight_dtype = ce.weight_dtype;
    target = target_of(ce, row);
    const bool ignored = target == ce.ignore_index;
    const bool valid = target >= 0 && target < a.layout.cols;
    counted = !ignored && valid;
    fill = ignored ? 0.0f : NAN;
    loss = ce.loss == nullptr ? nullptr : ce.loss + row;
    lse_out = ce.lse == nullptr ? nullptr : ce.lse + row;
    z_loss_out = ce.z_loss_rows == nullptr ? nullptr : ce.z_loss_rows + row;
    z_loss = ce.z_loss;
    smoothing = ce.spread > 0.0f;  // uniform over the call
    inv_cap = ce.inv_softcap;
    if (!counted) return;
    const float wt = weight == nullptr ? 1.0f : class_weight(weight, weight_dtype, target);
    at_target = ce.keep * wt;
    spread = ce.spread;
    // W: the weights' sum (the count step's word; C without weights), read
    // only where smoothing uses it.
    const float total_weight = !smoothing        ? 0.0f
                               : weight == nullptr ? static_cast<float>(a.layout.cols)
                                                   : ce.words[kWeightSumWord];
    coef = fmaf(spread, total_weight, at_target);  // + 2 z_loss lse, at the store (begin)
    grad = a.scale;
    if (ce.mean) grad *= ce.words[kInverseDenominatorWord];
    if (ce.upstream != nullptr) grad *= ce.upstream[ce.upstream_per_row ? row : 0];
  }

  CUACT_HD void advance(int64_t by) {
    if (out != nullptr) out += by;
    first += by;
    target -= by;
  }

  // The row's normalizer, once, before the first result (the kernels'
  // stores call `begin` through lane_store / the store phases): lse, the
  // z-loss's share of coef, and dloss/dz's terms times g * s.
  CUACT_HD void begin(const RowNormalizer& n) {
    // Every z -inf: lse -inf, which makes a counted row's coef (and so its
    // dlogits, 0 * coef) and its z-loss (finish) NaN (docs/SPEC.md).
    lse = n.empty ? -INFINITY : -n.add;
    if (!counted) return;
    coef = fmaf(2.0f * z_loss, lse, coef);
    coef_g = coef * grad;
    at_target_g = at_target * grad;
    spread_g = spread * grad;
  }

  // A pack of N results from column col: the loss terms into `partial`, the
  // dlogits stored. Every per-row choice (counted, weights, smoothing, cap,
  // dlogits written) is a branch per pack; the target is found by one
  // subtraction per pack, so a column costs its exponential, a few fma and
  // its share of the store.
  template <int N>
  CUACT_HD void pack(int64_t col, const float (&lp)[N]) {
    float d[N];
    if (!counted) {
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) d[q] = fill;
    } else {
      const int64_t at = target - col;  // the target's slot in this pack, if it is here
      const int hit = at >= 0 && at < N ? static_cast<int>(at) : -1;
      float w[N];
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) w[q] = 1.0f;
      if (weight != nullptr)
        CUACT_UNROLL
        for (int q = 0; q < N; ++q) w[q] = class_weight(weight, weight_dtype, first + col + q);
      if (hit >= 0) {
        float lp_t = 0.0f;
        CUACT_UNROLL
        for (int q = 0; q < N; ++q) lp_t = q == hit ? lp[q] : lp_t;
        partial = fmaf(at_target, -lp_t, partial);
      }
      if (smoothing)
        CUACT_UNROLL
        for (int q = 0; q < N; ++q) partial = fmaf(spread * w[q], -lp[q], partial);
      if (out == nullptr) return;
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) {
        d[q] = fmaf(exp_approx(lp[q]), coef_g, -spread_g * w[q]);
        if (q == hit) d[q] -= at_target_g;
      }
      if (inv_cap != 0.0f)  // dz/dx's (1 - (z / cap)^2), z recovered as lp + lse
        CUACT_UNROLL
        for (int q = 0; q < N; ++q) {
          const float c = (lp[q] + lse) * inv_cap;
          d[q] *= 1.0f - c * c;
        }
    }
    if (out == nullptr) return;
    SoftmaxPack<T, N> v;
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) v.v[q] = narrow<T>(d[q]);
    store_softmax_pack<T, N>(out + col, v);
  }

  CUACT_HD void one(int64_t col, float lp) {
    const float v[1] = {lp};
    pack<1>(col, v);
  }

  // The leader's words, from the row's total of the partials.
  CUACT_HD void finish(float total) const {
    const float zl = !counted ? 0.0f : lse == -INFINITY ? NAN : z_loss * lse * lse;
    if (lse_out != nullptr) *lse_out = lse;
    if (z_loss_out != nullptr) *z_loss_out = zl;
    if (loss != nullptr) *loss = counted ? total + zl : fill;
  }
};

}  // namespace cuact::detail
