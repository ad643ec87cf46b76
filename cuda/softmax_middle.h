// middle_dim: softmax over the middle dimension of [outer, dim, inner]
// (cuact::SoftmaxShape), read in place, not transposed. Element (o, c, j)
// is at o * stride + c * inner + j, so neighbouring j are neighbouring
// addresses: a thread owns W neighbouring inner positions (one 16-byte pack
// when every buffer allows it, else W = 1) of one o, its "column", and walks
// c. A block is X columns (threads across inner, coalesced) times Y threads
// along dim, thread (tx, ty) taking c = ty, ty + Y, ...; the Y partial
// results of a column meet in a shared-memory tree. Forward: online max and
// sum (OnlineSoftmax), then a second pass reads x again and writes y.
// Backward: the sum, then a second pass writes dx.
// __host__ __device__: CPU tests run a thread's passes as the kernel does.
#pragma once

#include <cstdint>

#include "softmax_io.h"

namespace cuact::detail {

// Whether a thread may own one W-element pack of inner positions: W divides
// inner and every buffer's stride, and every buffer starts on a pack boundary.
CUACT_HD bool middle_dim_vectorizable(int width, int elem_size, int64_t inner,
                                      const std::uintptr_t* addresses, const int64_t* strides,
                                      int count) {
  if (width <= 1 || inner % width != 0) return false;
  for (int i = 0; i < count; ++i)
    if (addresses[i] % (static_cast<std::uintptr_t>(width) * elem_size) != 0 ||
        strides[i] % width != 0)
      return false;
  return true;
}

// Column k's buffers: base pointers at (o, 0, j) and the step to the next
// c; the output through the call's sink (the epilogue slot, softmax_io.h).
template <class T, int W, class O = T>
struct MiddleColumn {
  const T* in;
  const T* grad;
  RowSink<O> out;
  int64_t step;  // inner

  CUACT_HD MiddleColumn(const SoftmaxArgs<T, O>& a, int64_t k, float* amax = nullptr)
      : out(a, a.out + column_offset(a, k, a.layout.out_stride), amax) {
    const SoftmaxLayout& l = a.layout;
    in = a.in + column_offset(a, k, l.in_stride);
    grad = a.grad == nullptr ? nullptr : a.grad + column_offset(a, k, l.grad_stride);
    step = l.inner;
  }
  // The element offset of (o, 0, j) in a buffer of that outer stride.
  CUACT_HD static int64_t column_offset(const SoftmaxArgs<T, O>& a, int64_t k, int64_t stride) {
    const SoftmaxLayout& l = a.layout;
    const uint64_t o = l.inner_groups.quotient(static_cast<uint64_t>(k));
    const int64_t j = (k - static_cast<int64_t>(o * l.inner_groups.divisor)) * W;
    return static_cast<int64_t>(o) * stride + j;
  }

  CUACT_HD void load(const T* base, int64_t c, float (&v)[W]) const {
    const SoftmaxPack<T, W> p = load_softmax_pack<T, W>(base + c * step);
    CUACT_UNROLL
    for (int q = 0; q < W; ++q) v[q] = to_float(p.v[q]);
  }
  CUACT_HD void store(int64_t c, const float (&v)[W]) const {
    if constexpr (W == 1)
      out.one(c * step, v[0]);
    else
      out.template pack<W>(c * step, v);
  }
};

// Forward pass 1 of thread (k, ty): each of its W positions' online (max, sum)
// over c = ty, ty + y, ...
template <class T, int W, class O>
CUACT_HD void middle_forward_stats(const SoftmaxArgs<T, O>& a, int64_t k, int ty, int y,
                                   MaxSum (&stats)[W]) {
  const MiddleColumn<T, W, O> col(a, k, nullptr);
  OnlineSoftmax online[W];
  for (int64_t c = ty; c < a.layout.cols; c += y) {
    float v[W];
    col.load(col.in, c, v);
    CUACT_UNROLL
    for (int q = 0; q < W; ++q) {
      const float z[1] = {softmax_input(a.scale, v[q], 0.0f)};
      online[q].add(z);
    }
  }
  CUACT_UNROLL
  for (int q = 0; q < W; ++q) stats[q] = online[q].result();
}

// Forward pass 2: reads x again and writes y from the column's totals.
template <class T, int W, class O>
CUACT_HD void middle_forward_store(const SoftmaxArgs<T, O>& a, int64_t k, int ty, int y,
                                   const MaxSum (&total)[W], float* amax = nullptr) {
  const MiddleColumn<T, W, O> col(a, k, amax);
  RowNormalizer n[W];
  CUACT_UNROLL
  for (int q = 0; q < W; ++q) n[q] = make_normalizer(exp_shift(total[q].max), total[q].sum, a.log);
  for (int64_t c = ty; c < a.layout.cols; c += y) {
    float v[W];
    col.load(col.in, c, v);
    CUACT_UNROLL
    for (int q = 0; q < W; ++q) {
      const float z = softmax_input(a.scale, v[q], 0.0f);
      v[q] = softmax_output(a.log ? z : exp_approx(z - n[q].shift), n[q]);
    }
    col.store(c, v);
  }
}

// Backward pass 1: each position's part of the sum. (No column is hidden:
// mask and causal apply to rows, which middle_dim does not take.)
template <class T, int W, class O>
CUACT_HD void middle_backward_sum(const SoftmaxArgs<T, O>& a, int64_t k, int ty, int y,
                                  float (&sums)[W]) {
  const MiddleColumn<T, W, O> col(a, k);
  CompensatedSum sum[W];
  for (int64_t c = ty; c < a.layout.cols; c += y) {
    float yv[W], g[W];
    col.load(col.in, c, yv);
    col.load(col.grad, c, g);
    CUACT_UNROLL
    for (int q = 0; q < W; ++q) sum[q].add(backward_term(yv[q], g[q], a.log));
  }
  CUACT_UNROLL
  for (int q = 0; q < W; ++q) sums[q] = sum[q].value();
}

// Backward pass 2: dx from y, dy and the column's sums.
template <class T, int W, class O>
CUACT_HD void middle_backward_store(const SoftmaxArgs<T, O>& a, int64_t k, int ty, int y,
                                    const float (&reduced)[W]) {
  const MiddleColumn<T, W, O> col(a, k);
  for (int64_t c = ty; c < a.layout.cols; c += y) {
    float yv[W], g[W];
    col.load(col.in, c, yv);
    col.load(col.grad, c, g);
    CUACT_UNROLL
    for (int q = 0; q < W; ++q)
      g[q] = softmax_backward_output(yv[q], g[q], reduced[q], a.scale, a.log);
    col.store(c, g);
  }
}

}  // namespace cuact::detail
