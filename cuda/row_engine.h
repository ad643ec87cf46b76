// The row engine: what one thread of a launch does (its chunks of columns,
// each over its rows; the flat call's leftover elements), and how a block
// turns its threads' sums into partials. Host and device: the
// kernel (row_kernel.cuh) calls these, and CPU tests run them on host buffers
// for every thread of a grid. The plan and the tiles are row_plan.h's; the
// per-element math is a form's (forms.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "expert_rows.h"
#include "fast_divider.h"
#include "forms.h"
#include "output_stage.h"
#include "philox.h"
#include "row_plan.h"
#include "vec.h"

namespace cuact::detail {

// Where a call's parameter vector is indexed: by column (bias, PReLU weight
// with inner == 1), by the channel row % channels (PReLU weight otherwise;
// the tiles keep a thread's rows in one channel) or by the group row /
// channels (the MoE GLU's row weights; a thread keeps one row).
enum class ParamMode : int { none, by_column, by_row_channel, by_row_group };

// One launch as the kernel takes it (by value). Stream k of the form is
// in[k] / out[k] with its row stride in elements; an optional input the call
// lacks is null. The parameter is fp32 or the input type (param_f32); dbias
// and dweight are summed in fp32 either way. A quantized output (Code8) is
// stored through `quantized` (output_stage.h).
struct RowCall {
  RowPlan plan;
  TileGeometry geometry;
  const void* in[kMaxInputs] = {};
  int64_t in_stride[kMaxInputs] = {};
  void* out[kMaxOutputs] = {};
  int64_t out_stride[kMaxOutputs] = {};
  const void* param = nullptr;
  bool param_f32 = false;
  ParamMode param_mode = ParamMode::none;
  float param_fill = 0.0f;  // what an absent parameter reads
  FastDivider channels;     // by_row_channel: param[row % channels]; by_row_group: param[row / channels]
  uint8_t* mask = nullptr;  // [rows, cols] bytes, 1 where dropout kept the element
  RandomStream random;
  const uint64_t* random_from = nullptr;  // set: {seed, offset} read here when the kernel runs
  uint32_t keep_threshold = 0;  // dropout keeps draw >= keep_threshold (2^16 when p == 1: none)
  ReduceMode reduce = ReduceMode::none;
  float* partials = nullptr;
  QuantizedStore quantized;
  ExpertRowMap experts;  // the MoE forms' valid rows (expert_rows.h); inactive: every row
  // From a thread's row to its next (row_lanes() rows on), per stream and in
  // element indices: set with the geometry (set_row_gaps), so that the
  // kernels' row loop reads them instead of recomputing 64-bit products.
  int64_t in_gap[kMaxInputs] = {};
  int64_t out_gap[kMaxOutputs] = {};
  int64_t e_gap = 0;
};

// The call's random stream: the planned one, or one made from the pair in
// device memory (a graph-safe call: read when the kernel runs).
CUACT_HD RandomStream stream_of(const RowCall& c) {
  return c.random_from != nullptr ? RandomStream(c.random_from[0], c.random_from[1]) : c.random;
}

CUACT_HD void set_row_gaps(RowCall& c) {
  const int64_t lanes = c.geometry.row_lanes();
  for (int k = 0; k < kMaxInputs; ++k) c.in_gap[k] = lanes * c.in_stride[k];
  for (int k = 0; k < kMaxOutputs; ++k) c.out_gap[k] = lanes * c.out_stride[k];
  c.e_gap = lanes * c.plan.cols;
}

// Whether a form walks logical rows through an expert row map (the MoE GLU
// forms, kExpertRows): their row loops map every row (the identity where
// the call has no map); the other forms' loops are untouched by maps.
template <class Form, class = void>
inline constexpr bool kMapsRows = false;
template <class Form>
inline constexpr bool kMapsRows<Form, std::void_t<decltype(Form::kExpertRows)>> = Form::kExpertRows;

// The widest element of a form's streams: it sets the chunk's bytes.
template <class Form>
inline constexpr int kWidestElement = static_cast<int>(
    sizeof(typename Form::In) > sizeof(typename Form::Out) ? sizeof(typename Form::In)
                                                           : sizeof(typename Form::Out));

// Elements per chunk of a form (the plan's width for its calls: row_plan.h,
// chunk_bytes_for), the same on every stream.
template <class Form>
using StageOf = OutputStage<typename Form::Out>;

template <class Form>
inline constexpr int kChunkWidth =
    chunk_bytes_for(Form::kRandom, Form::kReduces, kWidestElement<Form>, StageOf<Form>::kChunk) /
    kWidestElement<Form>;

// A thread's running sums: per column of its chunk (by_column) or one
// (by_row_channel); and the max |result| a quantized output stage keeps.
template <int W>
struct Accumulator {
  float column[W] = {};
  float row = 0.0f;
  float amax = 0.0f;
  CUACT_HD void add(ReduceMode mode, int j, float term) {
    if (mode == ReduceMode::by_column) column[j] += term;
    else row += term;
  }
};

// v[k] = v[k + 1], v[W - 1] = x: walks a register array without indexing it.
template <int W>
CUACT_HD void shift_in(float (&v)[W], float x) {
  CUACT_UNROLL
  for (int k = 0; k + 1 < W; ++k) v[k] = v[k + 1];
  v[W - 1] = x;
}

template <class T>
CUACT_HD float param_at(const RowCall& c, int64_t index) {
  return c.param_f32 ? static_cast<const float*>(c.param)[index]
                     : device::to_float(static_cast<const T*>(c.param)[index]);
}

// The parameter of each column of a chunk, for the thread's rows (first_row's
// channel): 16-byte loads where the parameter is aligned there, else one by one.
template <class T, int W>
CUACT_HD void chunk_params(const RowCall& c, const ColumnSpan& span, int64_t first_row,
                           float (&p)[W]) {
  CUACT_UNROLL
  for (int j = 0; j < W; ++j) p[j] = c.param_fill;
  if (c.param_mode == ParamMode::by_column) {
    const int bytes = c.param_f32 ? 4 : static_cast<int>(sizeof(T));
    const char* at = static_cast<const char*>(c.param) + span.begin * bytes;
    if (span.count == W && aligned_to(at, kVecBytes)) {
      if (c.param_f32) {
        CUACT_UNROLL
        for (int q = 0; q < W / 4; ++q) {
          const Vec<float, 4> v = load_vec<float, 4>(reinterpret_cast<const float*>(at) + 4 * q, true);
          CUACT_UNROLL
          for (int j = 0; j < 4; ++j) p[4 * q + j] = element(v, j);
        }
      } else {
        widen(load_vec<T, W>(reinterpret_cast<const T*>(at), true), p);
      }
    } else {
      CUACT_NO_UNROLL
      for (int j = 0; j < W; ++j)
        shift_in(p, j < span.count ? param_at<T>(c, span.begin + j) : c.param_fill);
    }
  } else if (c.param_mode != ParamMode::none && first_row < c.plan.rows) {
    const auto row = static_cast<uint64_t>(first_row);
    const float v = param_at<T>(c, static_cast<int64_t>(c.param_mode == ParamMode::by_row_group
                                                            ? c.channels.quotient(row)
                                                            : c.channels.remainder(row)));
    CUACT_UNROLL
    for (int j = 0; j < W; ++j) p[j] = v;
  }
}

// The mask bytes of four elements from bits 0..3 of `bits` (byte j = bit j):
// one multiply spreads the bits to bytes 0..3 (bit j lands at 8j + j), one
// AND keeps them.
CUACT_HD uint32_t mask_bytes4(uint32_t bits) { return ((bits & 0xfu) * 0x00204081u) & 0x01010101u; }

// W mask bytes (bit j of `kept` for element j), as one word when aligned.
template <int W>
CUACT_HD void store_mask(uint8_t* m, unsigned kept) {
  static_assert(W == 4 || W == 8, "one mask word per chunk");
  using Word = std::conditional_t<W == 8, uint64_t, uint32_t>;
  Word bytes = mask_bytes4(kept);
  if constexpr (W == 8) bytes |= static_cast<Word>(mask_bytes4(kept >> 4)) << 32;
  if (aligned_to(m, sizeof(Word))) {
#ifdef __CUDA_ARCH__
    *reinterpret_cast<Word*>(m) = bytes;  // little-endian: byte j is element j
#else
    std::memcpy(m, &bytes, sizeof(bytes));
#endif
    return;
  }
  CUACT_UNROLL
  for (int j = 0; j < W; ++j) m[j] = static_cast<uint8_t>(bytes >> (8 * j));
}

// Whether the call has input stream k: every stream but a form's optional
// one; that one where the call has it (the row paths are compiled for both
// cases, WithOptional, so that neither tests for it per element).
template <class Form, bool WithOptional>
CUACT_HD constexpr bool present(int k) {
  return k != Form::kOptionalInput || WithOptional;
}
template <class Form>
CUACT_HD bool present_in(const RowCall& c, int k) {
  return k != Form::kOptionalInput || c.in[k] != nullptr;
}

// Dropout's decision for a draw: kept iff draw >= threshold (a threshold of
// 2^16, p == 1, keeps none); forms without random draws keep everything.
struct KeepRule {
  uint32_t threshold = 0;
  CUACT_HD bool keeps(uint32_t draw) const { return draw >= threshold; }
};
CUACT_HD KeepRule keep_rule(const RowCall& c) { return {c.keep_threshold}; }

// One element through the form: its inputs, parameter and draw in, outputs out.
template <class Form>
CUACT_HD ElementOut apply_form(const Form& form, KeepRule keep, const float (&in)[kMaxInputs],
                               float param, uint32_t draw) {
  ElementIn e{{in[0], in[1], in[2]}, param, draw, true};
  if constexpr (Form::kRandom) e.kept = keep.keeps(draw);
  return form(e);
}

// The same, out of line (arguments by value): the paths other than the
// vector path share one copy of the form's math.
template <class Form>
CUACT_HD_NOINLINE ElementOut apply_form_out_of_line(Form form, KeepRule keep, float in0, float in1,
                                                   float in2, float param, uint32_t draw) {
  const float in[kMaxInputs] = {in0, in1, in2};
  return apply_form(form, keep, in, param, draw);
}

// The vector path: chunk at column `col` (whole, aligned in every stream)
// over the thread's rows, r and r + lanes in one trip; every input vector of
// both rows is loaded before the math, and row 0's stores come after every
// load of the trip (outputs may alias inputs). Plan access 16: one 16-byte
// access per vector; 8 (streams only 8-byte aligned, e.g. an odd GLU half):
// two 8-byte ones.
// Mapped: the thread's rows are logical rows of an expert row map (each
// trip places its pointers from their physical rows); a call without a map
// runs the loop that steps its pointers, whatever its form.
template <bool WithOptional, bool Mapped, class Form>
CUACT_HD void vector_rows(const Form& form, const StageOf<Form>& stage, const RowCall& c,
                          int64_t col, const ThreadRows& tr,
                          const float (&param)[kChunkWidth<Form>],
                          Accumulator<kChunkWidth<Form>>& acc, const RowSegments& map) {
  using T = typename Form::In;
  using U = typename Form::Out;
  constexpr int W = kChunkWidth<Form>, I = Form::kInputs, O = Form::kOutputs;
  constexpr int kChunkBytes = W * kWidestElement<Form>;  // every stream's accesses follow it
  constexpr bool kMap = Mapped;
  static_assert(!kMap || (!Form::kRandom && !Form::kMask), "mapped rows draw nothing");
  const int64_t rows = kMap ? map.rows(c.plan.rows) : c.plan.rows, lanes = tr.lanes;
  const bool wide = c.plan.access == 16;
  const T* in[I];
  U* out[O];
  const int64_t first = c.plan.origin + col;
  CUACT_UNROLL
  for (int k = 0; k < I; ++k) {
    in[k] = present<Form, WithOptional>(k) ? static_cast<const T*>(c.in[k]) + first + tr.first_row * c.in_stride[k]
                                : nullptr;
  }
  CUACT_UNROLL
  for (int k = 0; k < O; ++k) {
    out[k] = static_cast<U*>(c.out[k]) + first + tr.first_row * c.out_stride[k];
  }
  uint64_t e0 = static_cast<uint64_t>(first + tr.first_row * c.plan.cols);
  const auto e_gap = static_cast<uint64_t>(c.e_gap);
  // From a trip's first row to its second: the call's gaps, or, for a
  // mapped form, the distance of the two rows' physical rows (each trip
  // places its pointers from them).
  int64_t row_gap = 0;  // mapped: the trip's second physical row less its first
  RowCursor cursor;     // mapped: the thread's rows only increase
  auto in_gap = [&](int k) { return kMap ? row_gap * c.in_stride[k] : c.in_gap[k]; };
  auto out_gap = [&](int k) { return kMap ? row_gap * c.out_stride[k] : c.out_gap[k]; };
  RandomStream random;
  if constexpr (Form::kRandom) {
    random = stream_of(c);
    random.pin_keys();
  }
  for (int64_t r = tr.first_row; r < rows; r += 2 * lanes) {
    // The second row of the trip, or the first again past the last row (its
    // results are not stored): both loads are unconditional.
    const bool second = r + lanes < rows;
    if constexpr (kMap) {
      const int64_t p0 = cursor.row(map, r);
      row_gap = second ? cursor.row(map, r + lanes) - p0 : 0;
      CUACT_UNROLL
      for (int k = 0; k < I; ++k)
        if (present<Form, WithOptional>(k)) in[k] = static_cast<const T*>(c.in[k]) + first + p0 * c.in_stride[k];
      CUACT_UNROLL
      for (int k = 0; k < O; ++k) out[k] = static_cast<U*>(c.out[k]) + first + p0 * c.out_stride[k];
      e0 = static_cast<uint64_t>(first + p0 * c.plan.cols);
    }
    Vec<T, W> v0[I] = {}, v1[I] = {};  // absent streams stay zero (and unused)
    CUACT_UNROLL
    for (int k = 0; k < I; ++k) {
      if (present<Form, WithOptional>(k)) {
        v0[k] = load_vec<T, W, kChunkBytes>(in[k], wide);
        v1[k] = load_vec<T, W, kChunkBytes>(second ? in[k] + in_gap(k) : in[k], wide);
      }
    }
    auto row = [&](const Vec<T, W>(&v)[I], uint64_t e, U* const (&o)[O]) {
      uint32_t draws[W / 2] = {};
      if constexpr (Form::kRandom) chunk_draws<W>(random, e, draws);
      float y[O][W];
      CUACT_UNROLL
      for (int j = 0; j < W; ++j) {
        float a[kMaxInputs] = {};
        CUACT_UNROLL
        for (int k = 0; k < I; ++k)
          a[k] = present<Form, WithOptional>(k) ? element(v[k], j) : Form::fill(k);
        const ElementOut res = apply_form(form, keep_rule(c), a, param[j], half_of(draws[j / 2], j & 1));
        CUACT_UNROLL
        for (int k = 0; k < O; ++k) y[k][j] = res.out[k];
        if constexpr (Form::kReduces) acc.add(c.reduce, j, res.term);
      }
      CUACT_UNROLL
      for (int k = 0; k < O; ++k) {
        const Vec<U, W> packed = stage.pack(y[k], acc.amax);
        if (stage.writes()) store_vec<U, W, kChunkBytes>(o[k], packed, wide);
      }
      if constexpr (Form::kMask) {
        // The mask's bits from the draws (the forms' own decision, KeepRule),
        // only where the call writes the mask.
        if (c.mask != nullptr) {
          unsigned kept = 0;
          CUACT_UNROLL
          for (int j = 0; j < W; ++j)
            kept |= static_cast<unsigned>(keep_rule(c).keeps(half_of(draws[j / 2], j & 1))) << j;
          store_mask<W>(c.mask + e, kept);
        }
      }
    };
    if constexpr (Form::kRandom && !Form::kReduces) {
      // Forward forms that draw random values (dropout, RReLU): the two rows
      // unrolled, so that the generator's work of both rows schedules
      // together and no row loop is paid per row (their backward forms are
      // at the memory limit rolled, and stay so: build time).
      row(v0, e0, out);
      if (second) {
        U* o1[O];
        CUACT_UNROLL
        for (int k = 0; k < O; ++k) o1[k] = out[k] + out_gap(k);
        row(v1, e0 + e_gap, o1);
      }
    } else {
      // The two rows through one copy of the math (a rolled loop: half the
      // code, the same loads in flight); the second row moves into v0.
      const int count = second ? 2 : 1;
      uint64_t e = e0;
      U* o[O];
      CUACT_UNROLL
      for (int k = 0; k < O; ++k) o[k] = out[k];
      CUACT_NO_UNROLL
      for (int h = 0; h < count; ++h) {
        row(v0, e, o);
        CUACT_UNROLL
        for (int k = 0; k < I; ++k) v0[k] = v1[k];
        CUACT_UNROLL
        for (int k = 0; k < O; ++k) o[k] += out_gap(k);
        e += e_gap;
      }
    }
    if constexpr (!kMap) {
      CUACT_UNROLL
      for (int k = 0; k < I; ++k)
        if (present<Form, WithOptional>(k)) in[k] += 2 * in_gap(k);
      CUACT_UNROLL
      for (int k = 0; k < O; ++k) out[k] += 2 * out_gap(k);
      e0 += 2 * e_gap;
    }
  }
}

// The first count / 2 bytes of a chunk's packed codes (count even) at p:
// 4-byte stores where p allows them and the chunk is whole, else byte by
// byte.
template <int W, class V>
CUACT_HD void store_packed(uint8_t* p, const V& codes, int count) {
  if (count == W && aligned_to(p, 4)) {
    CUACT_UNROLL
    for (int w = 0; w < W / 8; ++w) {
#ifdef __CUDA_ARCH__
      __stwb(reinterpret_cast<unsigned int*>(p) + w, codes.w[w]);
#else
      std::memcpy(p + 4 * w, &codes.w[w], 4);
#endif
    }
    return;
  }
  CUACT_UNROLL
  for (int b = 0; b < W / 2; ++b)
    if (2 * b < count) p[b] = static_cast<uint8_t>(codes.w[b / 4] >> (8 * (b % 4)));
}

// Moves v[k + 1] to v[k] and v[0] to the end.
template <int W>
CUACT_HD void rotate(float (&v)[W]) {
  shift_in(v, v[0]);
}

// The inputs of the chunk `span` of row r of a block-scaled call, vector
// accesses (the plan has them), and the chunk's results from them.
template <bool WithOptional, class Form>
CUACT_HD void load_chunk(const RowCall& c, const ColumnSpan& span, int64_t r,
                         Vec<typename Form::In, kChunkWidth<Form>> (&v)[Form::kInputs]) {
  using T = typename Form::In;
  constexpr int W = kChunkWidth<Form>, I = Form::kInputs;
  constexpr int kChunkBytes = W * kWidestElement<Form>;
  CUACT_UNROLL
  for (int k = 0; k < I; ++k)
    if (present<Form, WithOptional>(k))
      v[k] = load_vec<T, W, kChunkBytes>(static_cast<const T*>(c.in[k]) + span.begin + r * c.in_stride[k],
                                         c.plan.access == 16);
}
template <bool WithOptional, class Form>
CUACT_HD void vector_results(const Form& form, const RowCall& c,
                             const Vec<typename Form::In, kChunkWidth<Form>> (&v)[Form::kInputs],
                             const float (&param)[kChunkWidth<Form>],
                             float (&y)[Form::kOutputs][kChunkWidth<Form>]) {
  constexpr int W = kChunkWidth<Form>, I = Form::kInputs, O = Form::kOutputs;
  static_assert(!Form::kRandom && !Form::kReduces, "block-scaled forms draw and sum nothing");
  CUACT_UNROLL
  for (int j = 0; j < W; ++j) {
    float a[kMaxInputs] = {};
    CUACT_UNROLL
    for (int k = 0; k < I; ++k) a[k] = present<Form, WithOptional>(k) ? element(v[k], j) : Form::fill(k);
    const ElementOut res = apply_form(form, keep_rule(c), a, param[j], 0);
    CUACT_UNROLL
    for (int k = 0; k < O; ++k) y[k][j] = res.out[k];
  }
}

// The results of the chunk `span` of row r of a block-scaled call element
// by element, with the form out of line.
template <bool WithOptional, class Form>
CUACT_HD void element_results(const Form& form, const RowCall& c, const ColumnSpan& span, int64_t r,
                              float (&param)[kChunkWidth<Form>],
                              float (&y)[Form::kOutputs][kChunkWidth<Form>]) {
  using T = typename Form::In;
  constexpr int W = kChunkWidth<Form>, I = Form::kInputs, O = Form::kOutputs;
  // A rolled loop; the parameters and the results shift by one slot per
  // column (shift_in), so that no register array is indexed; after W steps
  // the parameters are back in place.
  CUACT_NO_UNROLL
  for (int j = 0; j < W; ++j) {
    float a[kMaxInputs] = {};
    CUACT_UNROLL
    for (int k = 0; k < I; ++k)
      a[k] = present<Form, WithOptional>(k) && j < span.count
                 ? device::to_float(static_cast<const T*>(c.in[k])[span.begin + r * c.in_stride[k] + j])
                 : Form::fill(k);
    const ElementOut res = apply_form(form, keep_rule(c), a, param[0], 0);
    CUACT_UNROLL
    for (int k = 0; k < O; ++k) shift_in(y[k], res.out[k]);
    rotate(param);
  }
}

// Output k's codes of the chunk `span` of row r: whole vectors where the
// plan has them (`vector`), else the span's `count` codes one by one.
template <class Form>
CUACT_HD void store_chunk(const RowCall& c, const ColumnSpan& span, int64_t r, int k, bool vector,
                          const Vec<typename Form::Out, kChunkWidth<Form>>& codes) {
  using U = typename Form::Out;
  constexpr int W = kChunkWidth<Form>;
  constexpr int kChunkBytes = W * kWidestElement<Form>;
  if constexpr (StageOf<Form>::kPacked) {  // NVFP4: two codes a byte, element e at byte e / 2
    store_packed<W>(reinterpret_cast<uint8_t*>(c.out[k]) + (span.begin + r * c.out_stride[k]) / 2,
                    codes, vector ? W : span.count);
  } else {
    U* o = static_cast<U*>(c.out[k]) + span.begin + r * c.out_stride[k];
    if (vector) {
      store_vec<U, W, kChunkBytes>(o, codes, c.plan.access == 16);
    } else {
      CUACT_UNROLL
      for (int j = 0; j < W; ++j)
        if (j < span.count) o[j] = U{static_cast<uint8_t>(codes.w[j / 4] >> (8 * (j % 4)))};
    }
  }
}

// A block-scaled output's unit of chunks `first`, ..., `first + n - 1` of
// each of the thread's rows, one row a trip (a chunk of 32 already keeps 2
// to 8 loads per stream in flight). A unit of one chunk holds whole blocks
// (of 16 or 32): its results go to the stage, which writes the blocks'
// scales. A unit of n > 1 chunks is one block (fp8 blocks of 64 and 128:
// row_plan.h's group), in two passes: the results' max |result| (the
// block's scale), then the results again (recomputed from the inputs,
// which the first pass brought into the cache) and their codes; twice the
// math for one read of the inputs from memory. One copy of the chunk's
// code serves every pass and unit, so that the registers are one chunk's.
// Vector: every chunk of the unit is whole and the plan has vector accesses
// (block_unit decides; a loop of each kind, as the other forms' vector and
// element loops).
template <bool WithOptional, bool Vector, class Form>
CUACT_HD void block_rows(const Form& form, const StageOf<Form>& stage, const RowCall& c,
                         int64_t first, int n, const ThreadRows& tr, float& amax) {
  using T = typename Form::In;
  constexpr int W = kChunkWidth<Form>, O = Form::kOutputs;
  static_assert(O == 1, "a block-scaled form has one output");
  bool grouped = false;
  if constexpr (!StageOf<Form>::kPacked) grouped = n > 1;
  // A grouped unit runs its chunks twice: trips [0, n) find the block's
  // max, trips [n, 2n) store.
  const int trips = grouped ? 2 * n : n;
  // NVFP4's units are one chunk: its parameters are loaded once for every
  // row. fp8 units may be groups, whose chunks load theirs for each row
  // (kept across rows, they would hold 32 registers through the math).
  constexpr bool kKeepParams = StageOf<Form>::kPacked;
  constexpr bool vector = Vector;
  float param[W];
  if constexpr (kKeepParams) chunk_params<T, W>(c, c.plan.chunk_columns(first), tr.first_row, param);
  for (int64_t r = tr.first_row; r < c.plan.rows; r += tr.lanes) {
    float block_max = 0.0f, multiplier = 0.0f;
    CUACT_NO_UNROLL
    for (int t = 0; t < trips; ++t) {
      const ColumnSpan span = c.plan.chunk_columns(first + (t < n ? t : t - n));
      float y[O][W];
      if constexpr (Vector) {
        // The inputs' loads first: in flight while the parameters load.
        Vec<T, W> v[Form::kInputs] = {};
        load_chunk<WithOptional, Form>(c, span, r, v);
        if constexpr (!kKeepParams) chunk_params<T, W>(c, span, tr.first_row, param);
        vector_results<WithOptional>(form, c, v, param, y);
      } else {
        if constexpr (!kKeepParams) chunk_params<T, W>(c, span, tr.first_row, param);
        element_results<WithOptional>(form, c, span, r, param, y);
      }
      if constexpr (StageOf<Form>::kPacked) {
        store_chunk<Form>(c, span, r, 0, vector,
                          stage.chunk(y[0], vector ? W : span.count, r, span.begin, amax));
      } else if (t < trips - n) {  // grouped, first pass
        block_max = fmaxf(block_max, stage.chunk_max(y[0], span.count, amax));
        if (t == n - 1) {
          const BlockScaleBits scale = stage.scale_of(block_max);
          stage.store_scale(r, c.plan.chunk_columns(first).begin / stage.q.block, scale.bits);
          multiplier = scale.multiplier;
        }
      } else {
        // One copy of the codes' math: a unit of one chunk finds its blocks' multipliers.
        float m0 = multiplier, m1 = multiplier;
        if (!grouped) stage.chunk_scales(y[0], vector ? W : span.count, r, span.begin, amax, m0, m1);
        store_chunk<Form>(c, span, r, 0, vector, stage.codes(y[0], m0, m1));
      }
    }
  }
}

// A head, a tail, and every chunk of a call whose streams fit no common
// boundary, over the thread's rows: element by element in a rolled loop, the
// form out of line. The parameters and the column sums rotate by one slot per
// column, so the current column's are always slot 0 (registers, no
// indexing); after W steps they are back in place.
template <bool WithOptional, class Form>
CUACT_HD void chunk_rows(const Form& form, const StageOf<Form>& stage, const RowCall& c,
                         const ColumnSpan& span, const ThreadRows& tr,
                         const float (&param)[kChunkWidth<Form>],
                         Accumulator<kChunkWidth<Form>>& acc, const RowSegments& map) {
  using T = typename Form::In;
  using U = typename Form::Out;
  constexpr int W = kChunkWidth<Form>, I = Form::kInputs, O = Form::kOutputs;
  constexpr bool kMap = kMapsRows<Form>;
  const int64_t first = c.plan.origin + span.begin;
  const int64_t rows = kMap ? map.rows(c.plan.rows) : c.plan.rows;
  RandomStream random;
  if constexpr (Form::kRandom) random = stream_of(c);
  RowCursor cursor;
  for (int64_t logical = tr.first_row; logical < rows; logical += tr.lanes) {
    const int64_t r = kMap ? cursor.row(map, logical) : logical;  // the physical row
    const uint64_t e0 = static_cast<uint64_t>(first + r * c.plan.cols);
    float p[W];
    CUACT_UNROLL
    for (int j = 0; j < W; ++j) p[j] = param[j];
    Philox4 block = {};
    CUACT_NO_UNROLL
    for (int j = 0; j < W; ++j) {
      if (j < span.count) {
        const uint64_t e = e0 + j;
        uint32_t draw = 0;
        if constexpr (Form::kRandom) {
          if (j == 0 || (e & 7) == 0) block = random.block(e >> 3);
          draw = draw_at(block, static_cast<int>(e & 7));
        }
        float a[kMaxInputs] = {};
        CUACT_UNROLL
        for (int k = 0; k < I; ++k)
          a[k] = present<Form, WithOptional>(k)
                     ? device::to_float(static_cast<const T*>(c.in[k])[first + r * c.in_stride[k] + j])
                     : Form::fill(k);
        const ElementOut res =
            apply_form_out_of_line(form, keep_rule(c), a[0], a[1], a[2], p[0], draw);
        CUACT_UNROLL
        for (int k = 0; k < O; ++k) {
          const U v = stage.one(res.out[k], acc.amax);
          if (stage.writes()) static_cast<U*>(c.out[k])[first + r * c.out_stride[k] + j] = v;
        }
        if constexpr (Form::kMask) {
          if (c.mask != nullptr) c.mask[e] = static_cast<uint8_t>(res.kept);
        }
        if constexpr (Form::kReduces) acc.add(c.reduce, 0, res.term);
      }
      rotate(p);
      if constexpr (Form::kReduces) {
        if (c.reduce == ReduceMode::by_column) rotate(acc.column);
      }
    }
  }
}

// Everything thread `thread` of block `block` does with the row view, with or
// without the form's optional input.
// A form that maps rows (kMapsRows) walks logical rows through `map`.
template <bool WithOptional, class Form>
CUACT_HD void run_tiles_with(const Form& form, const RowCall& c, int64_t block, int thread,
                             Accumulator<kChunkWidth<Form>>& acc, const RowSegments& map) {
  using T = typename Form::In;
  constexpr int W = kChunkWidth<Form>;
  const ThreadRows tr = thread_rows(c.geometry, block, thread);
  const StageOf<Form> stage = StageOf<Form>::make(c.quantized);
  // The row whose parameter a row parameter (by_row_*) reads: the thread's
  // first, physical (past the last logical row: none).
  int64_t param_row = tr.first_row;
  if constexpr (kMapsRows<Form>)
    param_row = tr.first_row < map.rows(c.plan.rows) ? map.row(tr.first_row) : c.plan.rows;
  if constexpr (StageOf<Form>::kBlockScaled) {
    static_assert(!kMapsRows<Form>, "block-scaled forms map no rows");
    // Units of whole scale blocks: a chunk, or a group of chunks (fp8 blocks of 64, 128).
    for (int64_t unit = tr.first_chunk; unit < c.plan.units(); unit += tr.chunk_step) {
      const int64_t first = unit * c.plan.group, left = c.plan.chunks - first;
      const int n = static_cast<int>(left < c.plan.group ? left : c.plan.group);
      // (Block-scaled plans start their chunks at column 0: only a row's
      // last chunk may be partial, and its unit goes element by element.)
      if (c.plan.access > 0 && c.plan.chunk_columns(first + n - 1).count == W)
        block_rows<WithOptional, true>(form, stage, c, first, n, tr, acc.amax);
      else
        block_rows<WithOptional, false>(form, stage, c, first, n, tr, acc.amax);
    }
  } else {
    for (int64_t chunk = tr.first_chunk; chunk < c.plan.chunks; chunk += tr.chunk_step) {
      const ColumnSpan span = c.plan.chunk_columns(chunk);
      float param[W];
      chunk_params<T, W>(c, span, param_row, param);
      if (c.plan.access > 0 && span.count == W) {
        if constexpr (kMapsRows<Form>) {
          if (!map.identity()) {
            vector_rows<WithOptional, true>(form, stage, c, span.begin, tr, param, acc, map);
            continue;
          }
        }
        vector_rows<WithOptional, false>(form, stage, c, span.begin, tr, param, acc, map);
      } else {
        chunk_rows<WithOptional>(form, stage, c, span, tr, param, acc, map);
      }
    }
  }
}

template <class Form>
CUACT_HD void run_tiles(const Form& form, const RowCall& c, int64_t block, int thread,
                        Accumulator<kChunkWidth<Form>>& acc, const RowSegments& map = {}) {
  if constexpr (Form::kOptionalInput >= 0) {
    if (c.in[Form::kOptionalInput] != nullptr) {
      run_tiles_with<true>(form, c, block, thread, acc, map);
      return;
    }
  }
  run_tiles_with<false>(form, c, block, thread, acc, map);
}

// A flat call's elements outside the row view (its head before the first
// 16-byte boundary and its tail): thread `thread` of `threads` takes every
// threads-th. Flat calls have no parameter vector and do not reduce; amax
// takes a quantized output's |results|.
template <class Form>
CUACT_HD void run_extras(const Form& form, const RowCall& c, int64_t thread, int64_t threads,
                         float& amax) {
  using T = typename Form::In;
  using U = typename Form::Out;
  constexpr int I = Form::kInputs, O = Form::kOutputs;
  const StageOf<Form> stage = StageOf<Form>::make(c.quantized);
  RandomStream random;
  if constexpr (Form::kRandom) {
    if (c.plan.extras() > thread) random = stream_of(c);
  }
  if constexpr (!StageOf<Form>::kBlockScaled) {  // (block-scaled calls are row views: no extras)
    for (int64_t i = thread; i < c.plan.extras(); i += threads) {
      const int64_t e = c.plan.extra_index(i);
      float a[kMaxInputs] = {};
      CUACT_UNROLL
      for (int k = 0; k < I; ++k)
        a[k] = present_in<Form>(c, k) ? device::to_float(static_cast<const T*>(c.in[k])[e]) : Form::fill(k);
      uint32_t draw = 0;
      if constexpr (Form::kRandom) draw = random.draw(static_cast<uint64_t>(e));
      const ElementOut res =
          apply_form_out_of_line(form, keep_rule(c), a[0], a[1], a[2], c.param_fill, draw);
      CUACT_UNROLL
      for (int k = 0; k < O; ++k) {
        const U v = stage.one(res.out[k], amax);
        if (stage.writes()) static_cast<U*>(c.out[k])[e] = v;
      }
      if constexpr (Form::kMask) {
        if (c.mask != nullptr) c.mask[e] = static_cast<uint8_t>(res.kept);
      }
    }
  }
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

// by_row_channel, and by_row_group (a lane per row: lanes past the last row
// have no partial).
CUACT_HD void write_row_partials(const float* sums, const RowPlan& plan, const TileGeometry& g,
                                 ReduceMode mode, int64_t channels, int64_t block, int first,
                                 int step, float* partials) {
  const auto b = static_cast<uint32_t>(block), gx = static_cast<uint32_t>(g.gx);
  const int64_t bxi = b % gx, byi = b / gx;
  for (int ty = first; ty < g.by; ty += step) {
    const int64_t lane = byi * g.by + ty;
    if (mode == ReduceMode::by_row_group && lane >= plan.rows) continue;
    float s = 0.0f;
    for (int tx = 0; tx < g.bx; ++tx) s += sums[ty * g.bx + tx];
    partials[mode == ReduceMode::by_row_group ? lane * g.gx + bxi
                                              : channel_partial_index(lane, bxi, g, channels)] = s;
  }
}

// A block's partials from its threads' sums, whatever the mode: the
// kernels' (row_kernel.cuh) and the CPU emulation's one code.
template <int W>
CUACT_HD void write_block_partials(const float* sums, const RowPlan& plan, const TileGeometry& g,
                                   ReduceMode mode, int64_t channels, int64_t block, int first,
                                   int step, float* partials) {
  if (mode == ReduceMode::by_column)
    write_column_partials<W>(sums, plan, g, block, first, step, partials);
  else
    write_row_partials(sums, plan, g, mode, channels, block, first, step, partials);
}

}  // namespace cuact::detail
