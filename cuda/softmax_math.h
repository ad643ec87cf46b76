// The softmax family's math, apart from memory: what each lane or thread
// computes on the values it holds, the operators the reductions combine
// with, and the outputs. __host__ __device__ and plain C++, so that CPU tests
// run each algorithm's per-row math exactly as the kernels run it.
//
// fp32 throughout (docs/SPEC.md: fp32 accumulation for every dtype):
// - z = fma(s, x, m): the scaled, masked input, one rounding.
// - The row max propagates NaN (fmaxf would drop it), so a NaN row stays NaN.
// - A row whose max is -inf is empty (fully masked): shift 0, sum 0, and the
//   outputs are 0 (softmax) or -inf (log_softmax) without a 0/0 or inf - inf.
// - Per-thread sums are compensated (Neumaier), so a thread's share of a long
//   row adds O(1) roundings, not O(length); the cross-thread tree adds
//   log2(threads). This keeps the accuracy rule independent of the algorithm.
#pragma once

#include <cstdint>

#include "cuact/device/config.h"
#include "cuact/device/float_math.cuh"

namespace cuact::detail {

using device::is_inf;
using device::is_nan;
using device::max_nan;  // NaN from either side (one FMNMX.NAN on the device)
using device::reciprocal_at_least_1;

// ---------------------------------------------------------------- the forward's exp and log

using device::kLn2;
using device::kLog2e;

// exp(d) for the forward's terms, d = z - shift <= 8 (d <= 0 but in the
// online sums): the hardware 2^x of d*log2(e), two instructions after the
// subtraction (ex2.approx.ftz). Its error, 2^-22 relative plus about
// 1.4*|d|*2^-24 from d's and the product's roundings, lies inside the
// accuracy rule's allowance (64 fp32 roundings of |z| + |M|); results below
// 2^-126 flush to 0, inside its floor. -inf gives 0, NaN gives NaN; d <= 8
// never overflows. (Backward's exp(y) keeps expf: its rule has no |y| term.)
CUACT_HD float exp_approx(float d) { return device::exp2_ftz(d * kLog2e); }

// log(sum) for a row's sum >= 1 (the max term is 1): the hardware log2
// (lg2.approx.ftz, within 2^-22.6 absolute) times ln 2; inf and NaN pass.
CUACT_HD float log_of_sum(float sum) { return device::log2_approx(sum) * kLn2; }

// ---------------------------------------------------------------- operators

struct MaxNanOp {
  CUACT_HD float operator()(float a, float b) const { return max_nan(a, b); }
};
struct SumOp {
  CUACT_HD float operator()(float a, float b) const { return a + b; }
};

// The sum of v[Lo .. Hi) by pairwise (tree) addition, unrolled at compile
// time: Hi - Lo - 1 additions, and at most ceil(log2(Hi - Lo)) roundings on
// the way to the result (relative to the sum of magnitudes), against Hi - Lo
// - 1 for a running sum. NaN and inf propagate as in any sum.
template <int Lo, int Hi, int N>
CUACT_HD float tree_sum(const float (&v)[N]) {
  static_assert(0 <= Lo && Lo < Hi && Hi <= N, "a non-empty range of v");
  if constexpr (Hi - Lo == 1) {
    return v[Lo];
  } else {
    constexpr int Mid = Lo + (Hi - Lo) / 2;
    return tree_sum<Lo, Mid>(v) + tree_sum<Mid, Hi>(v);
  }
}
template <int N>
CUACT_HD float tree_sum(const float (&v)[N]) {
  return tree_sum<0, N>(v);
}

// Neumaier's compensated sum: `sum + comp` carries the rounding errors of
// the additions, so n additions cost ~2 roundings instead of ~n. The row
// loops add one pack's tree_sum at a time.
struct CompensatedSum {
  float sum = 0.0f;
  float comp = 0.0f;
  CUACT_HD void add(float v) {
    const float t = sum + v;
    comp += fabsf(sum) >= fabsf(v) ? (sum - t) + v : (v - t) + sum;
    sum = t;
  }
  CUACT_HD void scale(float r) {
    sum *= r;
    comp *= r;
  }
  // NaN and inf stay (comp would be NaN for them: inf - inf).
  CUACT_HD float value() const { return is_nan(sum) || is_inf(sum) ? sum : sum + comp; }
};

// z = s*x + m, rounded once; hidden columns are -inf and never read.
CUACT_HD float softmax_input(float scale, float x, float mask) { return fmaf(scale, x, mask); }

// The shift subtracted before exp: the row max, or 0 for an empty row (all
// -inf), where max - max would be NaN.
CUACT_HD float exp_shift(float row_max) { return row_max == -INFINITY ? 0.0f : row_max; }

// ---------------------------------------------------------------- forward outputs

// What a row's outputs need: y = exp(z - shift) * (1/sum) (softmax) or
// z - (shift + log(sum)) (log_softmax), both one fma of the held value v (e
// or z): y = v * mul + add. log_softmax rounds shift + log(sum) once more
// than (z - shift) - log(sum) would, an error of half an ulp of |M| + log(sum),
// inside the accuracy rule's allowance of fp32 roundings of |z| + |M|.
struct RowNormalizer {
  float shift = 0.0f;
  float mul = 0.0f;
  float add = 0.0f;
  bool empty = false;  // every z is -inf (sum 0): the row's lse is -inf
};

// From the shift and sum = sum_j exp(z_j - shift), for softmax (mul =
// 1/sum) or log_softmax (add = -(shift + log(sum)): the only logarithm of
// the row). An empty row (sum 0) gives outputs 0 (softmax: mul 0) and -inf
// (log_softmax: z is -inf, add -0). A NaN sum gives NaN.
CUACT_HD RowNormalizer make_normalizer(float shift, float sum, bool log) {
  RowNormalizer n;
  n.shift = shift;
  n.empty = sum == 0.0f;
  if (log) {
    n.mul = 1.0f;
    n.add = sum == 0.0f ? -0.0f : -(shift + log_of_sum(sum));
  } else if (sum != 0.0f) {
    n.mul = reciprocal_at_least_1(sum) /* a row sum is >= 1 */;
  }
  return n;
}

// softmax: v holds e = exp(z - shift); log_softmax: v holds z.
CUACT_HD float softmax_output(float v, const RowNormalizer& n) { return fmaf(v, n.mul, n.add); }

// ---------------------------------------------------------------- a lane's registers
// (warp_per_row)

// A lane's part of a row in registers, C values (padding slots hold -inf).
template <int C>
CUACT_HD float lane_max(const float (&z)[C]) {
  float m = -INFINITY;
  CUACT_UNROLL
  for (int i = 0; i < C; ++i) m = max_nan(m, z[i]);
  return m;
}

// Sum of exp(z - shift) over the lane's values; for softmax the values are
// replaced by their exponentials (the outputs need them), log_softmax keeps z.
template <int C>
CUACT_HD float lane_exp_sum(float (&v)[C], float shift, bool log) {
  float e[C];
  CUACT_UNROLL
  for (int i = 0; i < C; ++i) {
    e[i] = exp_approx(v[i] - shift);
    if (!log) v[i] = e[i];
  }
  return tree_sum(e);
}

template <int C>
CUACT_HD void lane_outputs(float (&v)[C], const RowNormalizer& n) {
  CUACT_UNROLL
  for (int i = 0; i < C; ++i) v[i] = softmax_output(v[i], n);
}

// ---------------------------------------------------------------- streaming: online max and sum

// One thread's running (reference, sum of exp(z - reference)) over the
// elements it has seen. The reference moves only when a value exceeds it by
// more than kOnlineRescaleMargin (or is NaN): each rescale then shrinks the
// earlier sum by at least e^-8, so the rounding of the rescales cannot pile
// up on the part of the sum that matters. Terms stay <= e^8: no overflow.
inline constexpr float kOnlineRescaleMargin = 8.0f;

struct MaxSum {
  float max;  // the reference (<= the true max when finite)
  float sum;  // sum of exp(z - max)
};

struct OnlineSoftmax {
  float ref = -INFINITY;
  CompensatedSum sum;

  template <int N>
  CUACT_HD void add(const float (&z)[N]) {
    float m = -INFINITY;
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) m = max_nan(m, z[q]);
    if (m == -INFINITY) return;                // every value -inf: adds 0
    if (!(m <= ref + kOnlineRescaleMargin)) {  // first finite value, a big rise, or NaN
      sum.scale(exp_approx(ref - m));          // 0 when ref was -inf
      ref = m;
    }
    float e[N];
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) e[q] = exp_approx(z[q] - ref);
    sum.add(tree_sum(e));
  }
  CUACT_HD MaxSum result() const { return {ref, sum.value()}; }
};

// Merges two (max, sum) pairs onto the larger max. Empty pairs (max -inf)
// merge to empty; NaN on either side gives NaN (max_nan, then exp(NaN)).
CUACT_HD MaxSum combine_max_sum(const MaxSum& a, const MaxSum& b) {
  const float m = max_nan(a.max, b.max);
  if (m == -INFINITY) return {m, 0.0f};
  const float sa = a.max == m ? a.sum : a.sum * exp_approx(a.max - m);
  const float sb = b.max == m ? b.sum : b.sum * exp_approx(b.max - m);
  return {m, sa + sb};
}

struct MaxSumOp {
  CUACT_HD MaxSum operator()(const MaxSum& a, const MaxSum& b) const {
    return combine_max_sum(a, b);
  }
};

// ---------------------------------------------------------------- backward

// What backward reduces over the row: softmax sum_j dy_j*y_j, log_softmax sum_j dy_j.
//
// Backward reads dy as 0 at a column the forward hid: one the mask hides
// (a -inf entry) or causal hides (docs/SPEC.md, "Softmax family"); there
// its dy takes no part in the row's sum and its dx comes out 0. The mask
// and causal settings decide it, not y: a visible column whose output
// saturated (y = -inf or 0 from overflow, underflow or an infinite input)
// keeps its dy. The forward leaves a hidden column y = -inf (log_softmax) or
// 0 (softmax, softmin), and reading its dy as 0 instead of dy changes dx
// only where hiding_matters: log_softmax y = -inf with dy != 0 (dx = s*dy
// when visible), softmax y = 0 with dy inf or NaN (0*dy is NaN when
// visible). So the kernels look the mask and the causal bound up only
// there, rare columns, found by one fma per element: hiding_probe folds
// y*|dy| over a lane's, a pack's or a thread's values, -inf or NaN (needs_lookup)
// whenever hiding_matters for one of them (and, harmlessly, in a few other
// cases: a NaN row, log_softmax y = -inf with dy = 0, an overflowing product).
CUACT_HD bool hiding_matters(float y, float dy, bool log) {
  return log ? y == -INFINITY && dy != 0.0f : y == 0.0f && !(fabsf(dy) < INFINITY);
}
CUACT_HD float hiding_probe(float probe, float y, float dy) { return fmaf(y, fabsf(dy), probe); }
// The one test of the common path, against -inf (NaN included).
CUACT_HD bool needs_lookup(float probe) { return !(probe > -INFINITY); }

CUACT_HD float backward_term(float y, float dy, bool log) { return log ? dy : dy * y; }

// dx from y, dy (0 where hidden) and the row's reduced sum; `scale` is s (-s for softmin).
//   softmax      dx = s * (y * (dy - sum dy*y))
//   log_softmax  dx = s * (dy - exp(y) * sum dy)
CUACT_HD float softmax_backward_output(float y, float dy, float reduced, float scale, bool log) {
  return log ? scale * (dy - expf(y) * reduced) : scale * (y * (dy - reduced));
}

template <int C>
CUACT_HD float lane_backward_sum(const float (&y)[C], const float (&dy)[C], bool log) {
  float t[C];
  CUACT_UNROLL
  for (int i = 0; i < C; ++i) t[i] = backward_term(y[i], dy[i], log);
  return tree_sum(t);
}

// dy is replaced by dx.
template <int C>
CUACT_HD void lane_backward_outputs(const float (&y)[C], float (&dy)[C], float reduced, float scale,
                                    bool log) {
  CUACT_UNROLL
  for (int i = 0; i < C; ++i) dy[i] = softmax_backward_output(y[i], dy[i], reduced, scale, log);
}

}  // namespace cuact::detail
