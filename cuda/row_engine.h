// The engine's row-structured form: what one thread does with one chunk of
// one row (load the streams, apply a form element by element, store, and
// keep the sums a reduction needs), and how a block turns its threads' sums
// into partials. Host and device: the kernels in row_kernels.cuh call these,
// and CPU tests run them on host buffers for every thread of a grid.
//
// A form is the per-element math of a fused call (fused_forms.h); the engine
// knows nothing about it beyond this protocol:
//   static constexpr int kInputs;      streams it reads: in[0 .. kInputs - 1]
//   static constexpr int kOutputs;     streams it writes: 1 (out[0]) or 2
//   static constexpr bool kReduces;    its term is summed (dbias, dweight)
//   static constexpr bool kWords;      it reads each element's random word
//                                      (else only `kept`: word >= keep_threshold)
//   static constexpr bool kMask;       it may write the mask
//   static constexpr bool kRowParam;   its parameter may be indexed by row channel
//   FormResult<V, V2> operator()(const ElementInputs&) const;
// V, V2 are float or double (rounded once, by the store, to the dtype). The
// traits are what the form may use; run-time arguments say what a call uses.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "numeric.cuh"
#include "philox.h"
#include "row_plan.h"

namespace cuact::detail {

// Where a call's parameter vector is indexed: by column (bias, PReLU weight
// with inner == 1) or by the channel row % channels (PReLU weight otherwise).
enum class ParamMode : int { none, by_column, by_row_channel };

inline constexpr int kMaxInStreams = 3;
inline constexpr int kMaxOutStreams = 2;

// The typed buffers of one launch. An input stream the form reads but the
// call lacks (null) reads as its fill value, an absent parameter as
// param_fill (the forms' neutral values, exact in every dtype).
template <class T>
struct RowArgs {
  const T* in[kMaxInStreams] = {};
  int64_t in_stride[kMaxInStreams] = {};
  T in_fill[kMaxInStreams] = {};
  T* out[kMaxOutStreams] = {};
  int64_t out_stride[kMaxOutStreams] = {};
  const T* param = nullptr;
  ParamMode param_mode = ParamMode::none;
  float param_fill = 0.0f;
  int64_t channels = 1;     // by_row_channel: param[row % channels]
  uint8_t* mask = nullptr;  // [rows, cols], contiguous: 1 where the element was kept
  bool use_random = false;  // draw a word of `random` per element
  RandomStream random;
  uint32_t keep_threshold = 0;  // with words: kept iff word >= keep_threshold
  bool keep_all = true;         // without words: every element kept (else none)
  ReduceMode reduce = ReduceMode::none;
  float* partials = nullptr;
};

// What a form sees of element (r, c): the input streams widened to fp32, the
// parameter, the element's random word (element index r * cols + c; forms
// with kWords only) and whether that word keeps the element.
struct ElementInputs {
  float in[kMaxInStreams];
  float param;
  uint32_t word;
  bool kept;
};

template <class V, class V2 = float>
struct FormResult {
  V value;     // out[0]
  V2 second;   // out[1] (forms with two outputs)
  float term;  // summed (forms that reduce)
  bool kept;   // the mask byte (forms that write one)
};

// A thread's running sums: per column of its chunk (by_column) or one (by_row_channel).
template <int W>
struct Accumulator {
  float column[W] = {};
  float row = 0.0f;
};

// The keep bits of elements e0 .. e0 + W - 1 (bit j for element j; a chunk
// of fewer columns ignores the rest): word k
// of Philox block q is element 4q + k - (e0 % 4). One rolled Philox body and
// no word array, so it costs few registers.
template <int W>
CUACT_HD unsigned keep_bits(const RandomStream& s, uint64_t e0, uint32_t threshold) {
  static_assert(W % 4 == 0 && W <= 16, "runs of whole Philox blocks");
  const uint64_t g0 = e0 >> 2;
  const int shift = static_cast<int>(e0 & 3);
  const int blocks = W / 4 + (shift != 0);
  unsigned bits = 0;
  CUACT_NO_UNROLL
  for (int q = 0; q < blocks; ++q) {
    const Philox4 b = s.block(g0 + q);
    const unsigned four = static_cast<unsigned>(b.x >= threshold) |
                          static_cast<unsigned>(b.y >= threshold) << 1 |
                          static_cast<unsigned>(b.z >= threshold) << 2 |
                          static_cast<unsigned>(b.w >= threshold) << 3;
    const int at = 4 * q - shift;
    bits |= at >= 0 ? four << at : four >> -at;
  }
  return bits & ((1u << W) - 1u);
}

template <class T>
CUACT_HD void load_pack(const T* p, Pack<T>& v) {
#ifdef __CUDA_ARCH__
  v = *reinterpret_cast<const Pack<T>*>(p);
#else
  std::memcpy(static_cast<void*>(&v), p, sizeof(v));
#endif
}

template <class T>
CUACT_HD void store_pack(T* p, const Pack<T>& v) {
#ifdef __CUDA_ARCH__
  *reinterpret_cast<Pack<T>*>(p) = v;
#else
  std::memcpy(static_cast<void*>(p), &v, sizeof(v));
#endif
}

// W mask bytes (bit j of `kept` for element j), as one word when aligned.
template <int W>
CUACT_HD void store_mask_pack(uint8_t* m, unsigned kept) {
  static_assert(W == 4 || W == 8, "one mask word per pack");
  using Word = std::conditional_t<W == 8, uint64_t, uint32_t>;
  Word bytes = 0;
  CUACT_UNROLL
  for (int j = 0; j < W; ++j) bytes |= static_cast<Word>((kept >> j) & 1u) << (8 * j);
  if (reinterpret_cast<std::uintptr_t>(m) % sizeof(Word) == 0) {
#ifdef __CUDA_ARCH__
    *reinterpret_cast<Word*>(m) = bytes;  // little-endian: byte j is element j
#else
    std::memcpy(m, &bytes, sizeof(bytes));
#endif
    return;
  }
  CUACT_UNROLL
  for (int j = 0; j < W; ++j) m[j] = static_cast<uint8_t>((kept >> j) & 1u);
}

// The streams of one work item: element (r, begin) of every stream the form uses.
template <class T, class Form>
struct ChunkStreams {
  const T* in[Form::kInputs];
  T* out[Form::kOutputs];
};

// A chunk of W columns aligned in every stream: 128-bit loads, the form on
// each element (unrolled), 128-bit stores.
template <class T, class Form>
CUACT_HD void process_pack(const Form& form, const RowArgs<T>& a, const ChunkStreams<T, Form>& s,
                           int64_t col, int64_t e0, float row_param, unsigned kept_in,
                           Accumulator<Pack<T>::kWidth>& acc) {
  using P = Pack<T>;
  constexpr int W = P::kWidth;
  uint32_t words[W] = {};
  if constexpr (Form::kWords) {
    if (a.use_random) random_words<W>(a.random, static_cast<uint64_t>(e0), words);
  }

  P in_v[Form::kInputs];
  CUACT_UNROLL
  for (int k = 0; k < Form::kInputs; ++k) {
    if (s.in[k] != nullptr) {
      load_pack(s.in[k], in_v[k]);
    } else {
      CUACT_UNROLL
      for (int j = 0; j < W; ++j) in_v[k].v[j] = a.in_fill[k];
    }
  }
  // The parameter is not a stream: a pack where it happens to be aligned, else scalars.
  float param[W];
  CUACT_UNROLL
  for (int j = 0; j < W; ++j) param[j] = row_param;
  if (a.param_mode == ParamMode::by_column) {
    const T* p = a.param + col;
    P param_v;
    if (pack_aligned(p)) {
      load_pack(p, param_v);
    } else {
      CUACT_UNROLL
      for (int j = 0; j < W; ++j) param_v.v[j] = p[j];
    }
    CUACT_UNROLL
    for (int j = 0; j < W; ++j) param[j] = to_float(param_v.v[j]);
  }

  P out_v[Form::kOutputs];
  unsigned kept = 0;
  CUACT_UNROLL
  for (int j = 0; j < W; ++j) {
    ElementInputs e = {{0.0f, 0.0f, 0.0f}, param[j], words[j], ((kept_in >> j) & 1u) != 0};
    CUACT_UNROLL
    for (int k = 0; k < Form::kInputs; ++k) e.in[k] = to_float(in_v[k].v[j]);
    const auto result = form(e);
    out_v[0].v[j] = narrow<T>(result.value);
    if constexpr (Form::kOutputs > 1) out_v[1].v[j] = narrow<T>(result.second);
    if constexpr (Form::kMask) kept |= static_cast<unsigned>(result.kept) << j;
    if constexpr (Form::kReduces) {
      if (a.reduce == ReduceMode::by_column) acc.column[j] += result.term;
      else acc.row += result.term;
    }
  }
  // Stored after every load: outputs may alias inputs.
  CUACT_UNROLL
  for (int k = 0; k < Form::kOutputs; ++k) store_pack(s.out[k], out_v[k]);
  if constexpr (Form::kMask) {
    if (a.mask != nullptr) store_mask_pack<W>(a.mask + e0, kept);
  }
}

// Any other chunk (head, tail, streams aligned differently): element by
// element in a rolled loop. The column sums rotate by one slot per element,
// so the current column's sum is always acc.column[0] (registers, no
// indexing); after W steps they are back in place.
template <class T, class Form>
CUACT_HD void process_scalars(const Form& form, const RowArgs<T>& a,
                              const ChunkStreams<T, Form>& s, ColumnSpan span, int64_t e0,
                              float row_param, unsigned kept_in,
                              Accumulator<Pack<T>::kWidth>& acc) {
  constexpr int W = Pack<T>::kWidth;
  Philox4 block = {};
  CUACT_NO_UNROLL
  for (int j = 0; j < W; ++j) {
    if (j < span.count) {
      const uint64_t e = static_cast<uint64_t>(e0 + j);
      uint32_t word = 0;
      if constexpr (Form::kWords) {
        if (a.use_random) {
          if (j == 0 || (e & 3) == 0) block = a.random.block(e >> 2);
          word = philox_word_at(block, static_cast<int>(e & 3));
        }
      }
      ElementInputs x = {
          {0.0f, 0.0f, 0.0f},
          a.param_mode == ParamMode::by_column ? to_float(a.param[span.begin + j]) : row_param,
          word,
          ((kept_in >> j) & 1u) != 0};
      CUACT_UNROLL
      for (int k = 0; k < Form::kInputs; ++k)
        x.in[k] = to_float(s.in[k] != nullptr ? s.in[k][j] : a.in_fill[k]);
      const auto result = form(x);
      s.out[0][j] = narrow<T>(result.value);
      if constexpr (Form::kOutputs > 1) s.out[1][j] = narrow<T>(result.second);
      if constexpr (Form::kMask) {
        if (a.mask != nullptr) a.mask[e] = static_cast<uint8_t>(result.kept);
      }
      if constexpr (Form::kReduces) {
        if (a.reduce == ReduceMode::by_column) acc.column[0] += result.term;
        else acc.row += result.term;
      }
    }
    if constexpr (Form::kReduces) {
      if (a.reduce == ReduceMode::by_column) {
        const float first = acc.column[0];
        CUACT_UNROLL
        for (int k = 0; k + 1 < W; ++k) acc.column[k] = acc.column[k + 1];
        acc.column[W - 1] = first;
      }
    }
  }
}

// Chunk `chunk` of row r: everything the engine does for one work item.
template <class T, class Form>
CUACT_HD void process_chunk(const Form& form, const RowArgs<T>& a, const RowPlan& plan, int64_t r,
                            int64_t chunk, Accumulator<Pack<T>::kWidth>& acc) {
  constexpr int W = Pack<T>::kWidth;
  const ColumnSpan span = plan.chunk_columns(chunk);
  const int64_t e0 = r * plan.cols + span.begin;  // the element index of (r, span.begin)

  // A full chunk moves as packs when every stream is 16-byte aligned there.
  bool packed = span.count == W;
  ChunkStreams<T, Form> s;
  CUACT_UNROLL
  for (int k = 0; k < Form::kInputs; ++k) {
    s.in[k] = a.in[k] != nullptr ? a.in[k] + r * a.in_stride[k] + span.begin : nullptr;
    packed = packed && (s.in[k] == nullptr || pack_aligned(s.in[k]));
  }
  CUACT_UNROLL
  for (int k = 0; k < Form::kOutputs; ++k) {
    s.out[k] = a.out[k] + r * a.out_stride[k] + span.begin;
    packed = packed && pack_aligned(s.out[k]);
  }
  float row_param = a.param_fill;
  if constexpr (Form::kRowParam) {
    if (a.param_mode == ParamMode::by_row_channel) row_param = to_float(a.param[r % a.channels]);
  }
  // Dropout's decisions for the chunk, one Philox body for both paths.
  unsigned kept_in = a.keep_all ? ~0u : 0u;
  if constexpr (!Form::kWords) {
    if (a.use_random)
      kept_in = keep_bits<W>(a.random, static_cast<uint64_t>(e0), a.keep_threshold);
  }
  if (packed)
    process_pack(form, a, s, span.begin, e0, row_param, kept_in, acc);
  else
    process_scalars(form, a, s, span, e0, row_param, kept_in, acc);
}

// ---------------------------------------------------------------- block partials

// `sums` holds every thread's accumulator of one block: by_column, thread t's
// column j at sums[t * W + j]; by_row_channel, its row sum at sums[t]. These
// write the block's partials; slots first, first + step, ... (a block's
// threads share the slots on the device; a CPU walk takes them all).
template <int W>
CUACT_HD void write_column_partials(const float* sums, const RowPlan& plan, const TileGeometry& g,
                                    int64_t block, int first, int step, float* partials) {
  const auto b = static_cast<uint32_t>(block), gx = static_cast<uint32_t>(g.gx);
  const int64_t bxi = b % gx, byi = b / gx;
  for (int slot = first; slot < g.bx * W; slot += step) {
    const int tx = slot / W, j = slot % W;
    const int64_t chunk = bxi * g.bx + tx;
    if (chunk >= plan.chunks) continue;
    const ColumnSpan span = plan.chunk_columns(chunk);
    if (j >= span.count) continue;
    float s = 0.0f;
    for (int ty = 0; ty < g.by; ++ty) s += sums[ty * g.bx * W + slot];
    partials[column_partial_index(span.begin + j, byi, g)] = s;
  }
}

CUACT_HD void write_channel_partials(const float* sums, const TileGeometry& g, int64_t channels,
                                     int64_t block, int first, int step, float* partials) {
  const auto b = static_cast<uint32_t>(block), gx = static_cast<uint32_t>(g.gx);
  const int64_t bxi = b % gx, byi = b / gx;
  for (int ty = first; ty < g.by; ty += step) {
    float s = 0.0f;
    for (int tx = 0; tx < g.bx; ++tx) s += sums[ty * g.bx + tx];
    partials[channel_partial_index(byi * g.by + ty, bxi, g, channels)] = s;
  }
}

}  // namespace cuact::detail
