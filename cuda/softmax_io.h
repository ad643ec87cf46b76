// The softmax kernels' memory side: how a row is read and written, apart
// from the math (Oneflow's load/store idea). The forward source applies the
// scale, the additive mask and the causal mask as it loads, so one kernel
// family serves every option; the kernels never see the options.
// __host__ __device__: CPU tests run the same loads on host buffers.
//
// Pack loads read N consecutive elements starting at a column that is a
// multiple of N in a row whose base is N-element aligned (the plans ensure
// it): one 16-byte (or narrower) access per buffer.
#pragma once

#include <vector_types.h>

#include <cstdint>
#include <cstring>

#include "cuact/device/convert.cuh"
#include "cross_entropy_store.h"
#include "output_stage.h"
#include "softmax_launch.h"
#include "softmax_math.h"
#include "softmax_plan.h"

namespace cuact::detail {

using device::narrow;
using device::to_float;

template <class T, int N>
struct alignas(sizeof(T) * N) SoftmaxPack {
  T v[N];
};

// 16-byte packs move as one uint4; the store goes through __stwb (a plain
// write-back store, st.global.wb.v4), because an aggregate store may be
// split into four scalar stores where the compiler loses the alignment. On
// the host (CPU tests): memcpy, which keeps strict aliasing intact.
template <class T, int N>
CUACT_HD SoftmaxPack<T, N> load_softmax_pack(const T* p) {
  SoftmaxPack<T, N> v;
#ifdef __CUDA_ARCH__
  if constexpr (sizeof(v) == sizeof(uint4)) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    memcpy(&v, &u, sizeof(v));
  } else {
    v = *reinterpret_cast<const SoftmaxPack<T, N>*>(p);
  }
#else
  std::memcpy(static_cast<void*>(&v), p, sizeof(v));
#endif
  return v;
}

template <class T, int N>
CUACT_HD void store_softmax_pack(T* p, const SoftmaxPack<T, N>& v) {
#ifdef __CUDA_ARCH__
  if constexpr (sizeof(v) == sizeof(uint4)) {
    uint4 u;
    memcpy(&u, &v, sizeof(v));
    __stwb(reinterpret_cast<uint4*>(p), u);
  } else {
    *reinterpret_cast<SoftmaxPack<T, N>*>(p) = v;
  }
#else
  std::memcpy(static_cast<void*>(p), &v, sizeof(v));
#endif
}

// One call's buffers and options as the kernels take them (by value). O is
// the output's element type: T, or Code8 where the forward's probabilities
// are quantized, or CrossEntropyRows<T> where the forward's log-probabilities
// become a cross-entropy's loss and dlogits (the epilogue slot: RowSink<O>
// below and cross_entropy_sink.h).
template <class T, class O = T>
struct SoftmaxArgs {
  const T* in = nullptr;    // x (forward) or y (backward)
  const T* grad = nullptr;  // dy (backward)
  O* out = nullptr;         // y (forward) or dx (backward)
  const T* mask = nullptr;  // optional (backward reads it only where hiding_matters)
  SoftmaxLayout layout;
  float scale = 1.0f;       // s, or -s for softmin
  bool log = false;         // log_softmax
  bool vectorized = false;  // register kernels: rows start on pack boundaries; middle_dim: packs
  MiddlePlan middle;        // middle_dim: the block's shape
  QuantizedStore quantized;  // O = Code8: the output stage's scale, amax, scale_inv
  CrossEntropyStore cross_entropy;  // O = CrossEntropyRows<T>: targets, options, outputs
};

// The kernels' arguments for a call, before its plan (host): the plan sets
// `vectorized`, `middle` and the layout's dividers and row step.
template <class T, class O = T>
SoftmaxArgs<T, O> softmax_args(const SoftmaxCall& call) {
  SoftmaxArgs<T, O> a;
  a.in = static_cast<const T*>(call.in);
  a.grad = static_cast<const T*>(call.grad);
  a.out = static_cast<O*>(call.out);
  a.mask = static_cast<const T*>(call.mask);
  a.layout = call.layout;
  a.layout.has_mask = a.mask != nullptr;
  a.scale = call.scale;
  a.log = call.log;
  a.quantized = call.quantized;
  a.cross_entropy = call.cross_entropy;
  return a;
}

// An output address in the units of the input's elements: a pack of N
// elements is aligned on every stream exactly when each address, so
// scaled, is a multiple of N input elements (the plans check one element
// size).
template <class T, class O>
CUACT_HD std::uintptr_t pack_address(const O* p) {
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  if constexpr (sizeof(O) == sizeof(T)) return a;
  else return a / sizeof(O) * sizeof(T);
}

// Forward: z = s*x + m for the visible columns, -inf (not read) for the rest.
// Capped (the cross-entropy's source): z = cap * tanh(z * (1 / cap)) where
// the call's cap > 0 (Gemma's soft cap; no mask there), tanh as tanh_fast
// (float_math.cuh: MUFU operations; tanhf's longer code makes ptxas spill).
template <class T, bool Capped = false>
struct ForwardSource {
  using Elem = T;
  const T* x;
  const T* mask;  // this row's mask, or null
  bool masked;    // the call has a mask (a kernel argument: a uniform test)
  int64_t visible;
  float scale;
  float cap = 0.0f, inv_cap = 0.0f;

  template <class O>
  CUACT_HD ForwardSource(const SoftmaxArgs<T, O>& a, int64_t row)
      : ForwardSource(a, row, softmax_row_spec(a.layout, row)) {}
  template <class O>
  CUACT_HD ForwardSource(const SoftmaxArgs<T, O>& a, int64_t row, const SoftmaxRowSpec& spec) {
    x = a.in + row * a.layout.in_stride;
    masked = a.layout.has_mask;
    mask = masked ? a.mask + spec.mask_row * a.layout.mask_stride : nullptr;
    visible = spec.visible;
    scale = a.scale;
    if constexpr (Capped) {
      cap = a.cross_entropy.softcap;
      inv_cap = a.cross_entropy.inv_softcap;
    }
  }

  CUACT_HD float capped(float z) const {
    if constexpr (Capped) return cap > 0.0f ? cap * device::tanh_fast(z * inv_cap) : z;
    return z;
  }

  CUACT_HD float one(int64_t col) const {
    if (col >= visible) return -INFINITY;
    return capped(softmax_input(scale, to_float(x[col]), mask ? to_float(mask[col]) : 0.0f));
  }

  template <int N>
  CUACT_HD void pack(int64_t col, float (&z)[N]) const {
    if (col >= visible) {  // the whole pack is hidden: nothing is read
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) z[q] = -INFINITY;
      return;
    }
    const SoftmaxPack<T, N> xv = load_softmax_pack<T, N>(x + col);
    float m[N];
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) m[q] = 0.0f;
    if (mask) {
      const SoftmaxPack<T, N> mv = load_softmax_pack<T, N>(mask + col);
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) m[q] = to_float(mv.v[q]);
    }
    CUACT_UNROLL
    for (int q = 0; q < N; ++q)
      z[q] = col + q < visible ? capped(softmax_input(scale, to_float(xv.v[q]), m[q])) : -INFINITY;
  }

  // The register kernels (cols <= 16 * kRegisterMaxCols, so 32-bit columns)
  // read a lane's packs in three steps, so that a lane issues every load
  // before any math. lane_shown: how many columns of the pack at `col`
  // take part (<= 0: none; in_row false: the pack is padding past the row,
  // or the row is one past the last). lane_loads: unconditional loads, so
  // that no bounds branch lies between them; a pack that shows nothing
  // reads the row's first pack instead (always there: cols >= N, and the
  // source of an inactive row is built on a real row). lane_inputs: z, or
  // -inf where hidden (the mask's test is uniform, one per call; the
  // visibility test one compare and select per element).
  CUACT_HD int lane_shown(int col, bool in_row) const {
    return in_row ? static_cast<int>(visible) - col : 0;  // visible <= cols
  }
  template <int N>
  CUACT_HD void lane_loads(int col, int shown, SoftmaxPack<T, N>& xv,
                           SoftmaxPack<T, N>& mv) const {
    const int at = shown > 0 ? col : 0;
    xv = load_softmax_pack<T, N>(x + at);
    if (masked) mv = load_softmax_pack<T, N>(mask + at);
  }
  template <int N>
  CUACT_HD void lane_inputs(const SoftmaxPack<T, N>& xv, const SoftmaxPack<T, N>& mv, int shown,
                            float (&z)[N]) const {
    if (masked) {
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) z[q] = softmax_input(scale, to_float(xv.v[q]), to_float(mv.v[q]));
    } else {
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) z[q] = scale * to_float(xv.v[q]);  // = s*x + 0 but for -0
    }
    if constexpr (Capped)
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) z[q] = capped(z[q]);
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) z[q] = q < shown ? z[q] : -INFINITY;
  }

  // Makes column `first` of the row column 0 (a cluster block's slice).
  CUACT_HD void advance(int64_t first) {
    x += first;
    if (mask) mask += first;
    visible -= first;  // may go negative: the whole slice is hidden
  }
  // The two input addresses whose alignment decides the row's packs (x twice
  // without a mask: a fixed count keeps the kernel's array in registers).
  CUACT_HD void addresses(std::uintptr_t (&a)[3]) const {
    a[0] = reinterpret_cast<std::uintptr_t>(x);
    a[1] = reinterpret_cast<std::uintptr_t>(mask ? mask : x);
  }
};

// Where the forward hid columns of a row (from the source's first column
// on): causal hides [visible, cols), a -inf mask entry its column.
template <class T>
struct HiddenColumns {
  const T* mask;  // the row's mask, or null
  int64_t visible;

  CUACT_HD bool hides(int64_t col) const {
    return col >= visible || (mask != nullptr && to_float(mask[col]) == -INFINITY);
  }
};

// Backward: the row's y and dy, widened; dy reads 0 at the columns the
// forward hid (softmax_math.h: decided by the mask and causal settings, and
// looked up only where hiding_matters). The loads come raw (pack_raw,
// one_raw) or with the look-up done (pack, one); the register kernels
// look up a lane's values at once (lane_load), the block cache its thread's
// (block_backward_load).
template <class T>
struct BackwardSource {
  using Elem = T;
  const T* y;
  const T* dy;
  bool log;
  // The look-up's way to the row's hidden columns, used only on the rare
  // path (hidden_columns): the call's layout (kernel arguments), the mask,
  // the row and the first column (a cluster block's slice).
  SoftmaxLayout layout;
  const T* mask;
  int64_t row;
  int64_t first = 0;

  template <class O>  // (the output's type plays no part)
  CUACT_HD BackwardSource(const SoftmaxArgs<T, O>& a, int64_t r)
      : y(a.in + r * a.layout.in_stride),
        dy(a.grad + r * a.layout.grad_stride),
        log(a.log),
        layout(a.layout),
        mask(a.mask),
        row(r) {}

  CUACT_HD void advance(int64_t f) {
    y += f;
    dy += f;
    first += f;
  }

  // The row's hidden columns, numbered from the source's first column (the
  // row's place in the mask and causal patterns, by division: rare path only).
  CUACT_HD HiddenColumns<T> hidden_columns() const {
    const SoftmaxRowSpec spec = softmax_row_spec(layout, row);
    HiddenColumns<T> h;
    h.mask = layout.has_mask ? mask + spec.mask_row * layout.mask_stride + first : nullptr;
    h.visible = spec.visible - first;  // may go negative: the whole slice is hidden
    return h;
  }

  // dy[q] (of column col_of(q)) set to 0 where the forward hid the column:
  // one fma per value and a test against -inf on the common path, the
  // look-up only where hiding_matters.
  template <int N, class ColOf>
  CUACT_HD void hide(const float (&yv)[N], float (&dyv)[N], ColOf&& col_of) const {
    float probe = 0.0f;
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) probe = hiding_probe(probe, yv[q], dyv[q]);
    if (needs_lookup(probe)) {
      const HiddenColumns<T> h = hidden_columns();
      CUACT_UNROLL
      for (int q = 0; q < N; ++q)
        if (hiding_matters(yv[q], dyv[q], log) && h.hides(col_of(q))) dyv[q] = 0.0f;
    }
  }

  CUACT_HD void one_raw(int64_t col, float& yv, float& dyv) const {
    yv = to_float(y[col]);
    dyv = to_float(dy[col]);
  }
  CUACT_HD void one(int64_t col, float& yv, float& dyv) const {
    float a[1], b[1];
    one_raw(col, a[0], b[0]);
    hide<1>(a, b, [&](int) { return col; });
    yv = a[0];
    dyv = b[0];
  }

  template <int N>
  CUACT_HD void pack_raw(int64_t col, float (&yv)[N], float (&dyv)[N]) const {
    const SoftmaxPack<T, N> a = load_softmax_pack<T, N>(y + col);
    const SoftmaxPack<T, N> b = load_softmax_pack<T, N>(dy + col);
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) {
      yv[q] = to_float(a.v[q]);
      dyv[q] = to_float(b.v[q]);
    }
  }
  template <int N>
  CUACT_HD void pack(int64_t col, float (&yv)[N], float (&dyv)[N]) const {
    pack_raw<N>(col, yv, dyv);
    hide<N>(yv, dyv, [&](int q) { return col + q; });
  }

  CUACT_HD void addresses(std::uintptr_t (&a)[3]) const {
    a[0] = reinterpret_cast<std::uintptr_t>(y);
    a[1] = reinterpret_cast<std::uintptr_t>(dy);
  }

  // The register kernels: the pack at `col` raw, or padding (y = dy = 0)
  // past the row; unconditional loads as ForwardSource::lane_loads.
  // (Loading every pack before converting any lets ptxas serialize more of
  // them where y and dy fill a lane's registers.)
  template <int N>
  CUACT_HD void lane_pack(int col, bool in_row, float (&yv)[N], float (&dyv)[N]) const {
    const int at = in_row ? col : 0;
    float a[N], b[N];
    pack_raw<N>(at, a, b);
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) {
      yv[q] = in_row ? a[q] : 0.0f;
      dyv[q] = in_row ? b[q] : 0.0f;
    }
  }
};

// The epilogue slot: how a row's fp32 results reach memory. The kernels
// hand every result to their sink; RowSink<O> is chosen by the args' output
// type, so a new epilogue is a new sink (and its arguments), the kernels
// unchanged. Plain (O = T): each result rounded once to T.
template <class O>
struct RowSink {
  static constexpr bool kRowTotal = false;  // no per-row epilogue (finish_row)
  O* out;

  template <class T>
  CUACT_HD RowSink(const SoftmaxArgs<T, O>& a, int64_t row, float* = nullptr)
      : out(a.out + row * a.layout.out_stride) {}
  template <class T>
  CUACT_HD RowSink(const SoftmaxArgs<T, O>&, O* at, float* = nullptr) : out(at) {}

  CUACT_HD void advance(int64_t first) { out += first; }
  CUACT_HD void one(int64_t col, float v) const { out[col] = narrow<O>(v); }

  template <int N>
  CUACT_HD void pack(int64_t col, const float (&v)[N]) const {
    SoftmaxPack<O, N> p;
    CUACT_UNROLL
    for (int q = 0; q < N; ++q) p.v[q] = narrow<O>(v[q]);
    store_softmax_pack<O, N>(out + col, p);
  }
};

// Quantized (O = Code8): each result through the output stage
// (output_stage.h: times the call's scale, rounded once to the fp8 format,
// saturated), its |value| kept in the thread's running max (*amax), which
// the kernel folds into the call's amax word when its rows are done. The
// scale is read when the sink is made (once a row).
template <>
struct RowSink<Code8> {
  static constexpr bool kRowTotal = false;
  Code8* out;
  OutputStage<Code8> stage;
  float* amax;

  template <class T>
  CUACT_HD RowSink(const SoftmaxArgs<T, Code8>& a, int64_t row, float* thread_amax)
      : RowSink(a, a.out + row * a.layout.out_stride, thread_amax) {}
  template <class T>
  CUACT_HD RowSink(const SoftmaxArgs<T, Code8>& a, Code8* at, float* thread_amax)
      : out(at), stage(OutputStage<Code8>::make(a.quantized)), amax(thread_amax) {}

  CUACT_HD void advance(int64_t first) { out += first; }
  CUACT_HD void one(int64_t col, float v) const {
    const Code8 c = stage.one(v, *amax);
    if (stage.writes()) out[col] = c;
  }

  template <int N>
  CUACT_HD void pack(int64_t col, const float (&v)[N]) const {
    if constexpr (N % 4 == 0) {  // whole words of codes: one N-byte store
      const Vec<Code8, N> c = stage.template pack<N>(v, *amax);
      if (!stage.writes()) return;
#ifdef __CUDA_ARCH__  // st.global.wb, as every vector store of the kernels (store_softmax_pack)
      if constexpr (N == 4) {
        __stwb(reinterpret_cast<unsigned int*>(out + col), c.w[0]);
      } else if constexpr (N == 8) {
        __stwb(reinterpret_cast<uint2*>(out + col), make_uint2(c.w[0], c.w[1]));
      } else {
        static_assert(N == 16, "4, 8 or 16 codes");
        __stwb(reinterpret_cast<uint4*>(out + col), make_uint4(c.w[0], c.w[1], c.w[2], c.w[3]));
      }
#else
      std::memcpy(static_cast<void*>(out + col), c.w, N);
#endif
    } else {
      CUACT_UNROLL
      for (int q = 0; q < N; ++q) one(col + q, v[q]);
    }
  }
};

// The forward source of a call with output O (the cross-entropy's caps).
template <class T, class O>
using ForwardSourceOf = ForwardSource<T, kIsCrossEntropy<O>>;

// A row epilogue's hooks, for sinks with kRowTotal (cross-entropy): every
// thread of the row calls begin_row with the row's normalizer before its
// first store, and finish_row after its last; finish_row all-reduces the
// threads' partials over the row (reduce(v, op), as the kernel's other
// reductions) and the row's one leader writes the row's words. Plain sinks:
// nothing.
template <class Sink>
CUACT_HD void begin_row(Sink& sink, const RowNormalizer& n) {
  if constexpr (Sink::kRowTotal) sink.begin(n);
}
template <class Sink, class Reduce>
CUACT_HD void finish_row(Sink& sink, Reduce&& reduce, bool leader) {
  if constexpr (Sink::kRowTotal) {
    const float total = reduce(sink.partial, SumOp{});
    if (leader) sink.finish(total);
  }
}

// The pack plan of one row over every buffer the kernel touches for it.
template <class Source, class O>
CUACT_HD PackPlan row_pack_plan(const Source& src, const RowSink<O>& sink, int64_t cols) {
  using T = typename Source::Elem;
  std::uintptr_t a[3];
  src.addresses(a);
  a[2] = pack_address<T>(sink.out);
  return softmax_row_plan(cols, static_cast<int>(sizeof(T)), a, 3);
}

// cluster_per_row: block `rank` of `ranks` advances the row's source and sink
// to its slice (cluster_row_slice of the whole row's plan) and returns the
// slice's own plan, so that block_per_row's phases run on it unchanged.
template <class Source, class O>
CUACT_HD PackPlan cluster_slice_plan(Source& src, RowSink<O>& sink, int64_t cols, int rank,
                                     int ranks) {
  const RowSlice slice = cluster_row_slice(row_pack_plan(src, sink, cols), rank, ranks);
  src.advance(slice.begin);
  sink.advance(slice.begin);
  return row_pack_plan(src, sink, slice.length());
}

}  // namespace cuact::detail
