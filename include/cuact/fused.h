// Fused forms: bias + activation (+ dropout), activation + dropout, the GLU
// family, PReLU and RReLU, forward and backward, in one pass over memory.
//
// Contract shared with activation.h (read it first): device buffers of one
// dtype (float, __half, __nv_bfloat16); a parameter (bias, PReLU weight) and
// its gradient (dbias, dweight) are in that dtype or, through the overloads
// taking their dtype, in f32 with f16/bf16 data (as mixed-precision training
// keeps them); element-aligned pointers (16-byte aligned data takes the
// vectorized path), 64-bit sizes (an empty call is a no-op and its pointers
// may be null), work enqueued on `stream` with no allocation and no
// synchronization (capturable into CUDA graphs), argument and launch errors
// returned as a Status. Tensors are dense and row-major.
//
// Reductions (dbias, dweight) need scratch space: ask the *_workspace_size
// function for the bytes (a function of dtype and shape alone), pass a device
// buffer of at least that size as a Workspace {data, bytes} (a struct, so a
// stream can never land in its place). It may be reused once the call's
// work on the stream is done. The sums are fp32, in an order fixed by the shape, so they
// are the same on every run and every GPU.
//
// Example (a SwiGLU feed-forward layer's gate, then its gradient):
//   cuact::Glu glu = cuact::Glu::swiglu();
//   cuact::glu_forward(glu, d_h, d_y, tokens, ffn, stream);        // h [tokens, 2*ffn] -> y [tokens, ffn]
//   cuact::glu_backward(glu, d_h, d_dy, d_dh, tokens, ffn, stream); // dh [tokens, 2*ffn]
#pragma once

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cuact/activation.h"
#include "cuact/dtype.h"
#include "cuact/status.h"

namespace cuact {

// Device scratch space for a reduction: `bytes` at `data` (empty: none).
struct Workspace {
  void* data = nullptr;
  size_t bytes = 0;
};

// ---------------------------------------------------------------- dropout

// Inverted dropout with a counter-based generator (Philox4x32-10). Element e
// of a call (its row-major index) draws the 16-bit value
//   half e % 2 of philox4x32_10(counter {e/8 (64 bit), offset (64 bit)}, key seed)[(e/2) % 4]
// and is kept iff it is >= ceil(p * 2^16) (so p acts rounded up to a multiple
// of 2^-16); kept values are scaled by 1/(1 - p) rounded to fp32,
// dropped ones are exactly 0 (whatever the input, NaN included). The same
// (seed, offset, shape) gives the same mask on every GPU, launch and run, and
// backward regenerates it. Use a new offset (or seed) for each call that needs
// a fresh mask: different offsets never share a counter.
//
// For CUDA graphs (a captured call replays its arguments): set device_state
// and device_used to two device buffers of two uint64 each. The forward call
// then copies device_state's {seed, offset} to device_used when it runs (not
// when it is enqueued), draws from that pair and advances device_state's
// offset by one; the backward call draws from device_used. A graph captured
// once and replayed N times draws N different masks, each reproducible from
// the state before its replay, and each replay's backward regenerates that
// replay's forward mask. seed and offset are then unused. (An empty call
// returns before that step: it neither takes nor advances the state.)
struct Dropout {
  float p = 0.0f;        // drop probability in [0, 1]; 0: no dropout, 1: all zeros
  uint64_t seed = 0;
  uint64_t offset = 0;
  uint64_t* device_state = nullptr;  // {seed, offset} on the device: forward reads and advances it
  uint64_t* device_used = nullptr;   // {seed, offset} on the device: forward writes, backward reads
};

// ---------------------------------------------------------------- bias + activation (+ dropout)

// y[r, c] = dropout(act(x[r, c] + bias[c])) over a [rows, cols] tensor.
// bias [cols] may be null (no bias). The sum x + bias is computed in fp32 and
// the activation applies to that fp32 value. mask, if not null, receives
// [rows, cols] bytes: 1 where the element was kept, 0 where dropped. y may be x.
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               void* y, int64_t rows, int64_t cols, const Dropout& dropout = {},
                               uint8_t* mask = nullptr, cudaStream_t stream = nullptr);

// dx[r, c] = dy[r, c] * m/(1 - p) * act'(x[r, c] + bias[c]) (the mask m regenerated
// from `dropout`, which must equal the forward's), and, if dbias is not null,
// dbias[c] = sum over r of dx[r, c], accumulated in fp32 before dx is rounded,
// in the same pass. dbias needs `workspace` (its bytes from
// bias_activation_backward_workspace_size); without dbias it may be empty.
// dx may be x or dy.
Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                const void* dy, void* dx, void* dbias, int64_t rows, int64_t cols,
                                const Dropout& dropout = {}, Workspace workspace = {},
                                cudaStream_t stream = nullptr);

// The same with bias and dbias in bias_dtype: the data's dtype or f32.
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, void* y, int64_t rows, int64_t cols,
                               const Dropout& dropout = {}, uint8_t* mask = nullptr,
                               cudaStream_t stream = nullptr);
Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, void* dx, void* dbias,
                                int64_t rows, int64_t cols, const Dropout& dropout = {},
                                Workspace workspace = {}, cudaStream_t stream = nullptr);

// The workspace bias_activation_backward needs for dbias, in bytes.
Status bias_activation_backward_workspace_size(DType dtype, int64_t rows, int64_t cols,
                                               size_t* workspace_bytes);

// activation + dropout over n elements: bias_activation_* with one row and no bias.
Status activation_dropout_forward(const Activation& act, DType dtype, const void* x, void* y,
                                  int64_t n, const Dropout& dropout, uint8_t* mask = nullptr,
                                  cudaStream_t stream = nullptr);
Status activation_dropout_backward(const Activation& act, DType dtype, const void* x,
                                   const void* dy, void* dx, int64_t n, const Dropout& dropout,
                                   cudaStream_t stream = nullptr);

// ---------------------------------------------------------------- GLU family

// Which half of each row of x the activation applies to.
enum class GatedHalf { first, second };

// x [rows, 2d] = [a | b] -> y [rows, d]: y = act(a) * b (gated = first, the
// SwiGLU/GeGLU order) or y = a * act(b) (gated = second, PyTorch's glu).
//
// Clamps (the MoE experts' clamped SwiGLU of gpt-oss and Transformer Engine),
// for any gate: with g the gated half and u the other,
//   g' = min(g, limit), u' = clamp(u, -limit, limit), y = act(g') * (u' + offset).
// NaN passes through both clamps. limit > 0 (+inf, the default: no clamp);
// offset finite (0, the default, adds nothing: a zero u keeps its sign).
// Gradient: d g = 0 where g > limit, d u = 0 where |u| > limit; at the limit
// itself the gradient passes (a choice: the clamp has no derivative there);
// NaN propagates.
// Clamped and weighted GLUs (below) are built for the gates identity, relu,
// sigmoid, silu, gelu and gelu_tanh (others: StatusCode::unsupported), with
// outputs of the data's dtype (the quantized outputs refuse clamps for now).
//
// Layout: split halves (interleave 0, the default), or interleaved: the row
// alternates blocks of `interleave` columns of each half, the gated half's
// block first when gated = first (gpt-oss: interleave 1, x = [g0 u0 g1 u1
// ...]; Transformer Engine's glu_interleave_size), the other's first when
// second; interleave must divide d. y [rows, d] keeps the gated half's order.
// Interleaved calls run the same kernels over the view [rows * d / k, 2k]:
// at the memory limit where k is a multiple of the 16-byte vector's
// elements; k = 1 goes element by element (correct, not fast).
struct Glu {
  Activation act = Activation::sigmoid();
  GatedHalf gated = GatedHalf::second;
  float limit = HUGE_VALF;
  float offset = 0.0f;
  int64_t interleave = 0;

  static Glu glu() { return {Activation::sigmoid(), GatedHalf::second}; }      // a * sigmoid(b)
  static Glu swiglu(float beta = 1.0f) { return {Activation::silu(beta), GatedHalf::first}; }
  static Glu geglu() { return {Activation::gelu(), GatedHalf::first}; }        // gelu(a) * b
  static Glu geglu_tanh() { return {Activation::gelu_tanh(), GatedHalf::first}; }
  static Glu reglu() { return {Activation::relu(), GatedHalf::first}; }        // relu(a) * b
  // gpt-oss's SwiGLU: g' * sigmoid(alpha * g') * (u' + 1), g' and u' clamped
  // at 7 (TE's clamped_swiglu; offset 0 for its plain form).
  static Glu clamped_swiglu(float alpha = 1.702f, float limit = 7.0f, float offset = 1.0f,
                            int64_t interleave = 0) {
    return {Activation::silu(alpha), GatedHalf::first, limit, offset, interleave};
  }
};

// y = act(gated half) * other half, row by row. Any d and rows (d need not
// be a multiple of the vector width). y must not overlap x.
Status glu_forward(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows, int64_t d,
                   cudaStream_t stream = nullptr);

// dx [rows, 2d] from x [rows, 2d] and dy [rows, d], both halves in one pass:
// d gated = dy * other * act'(gated), d other = dy * act(gated). dx may be x.
Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy, void* dx,
                    int64_t rows, int64_t d, cudaStream_t stream = nullptr);

// Weighted GLU (an MoE expert's output scaled by its routing weight, as
// Megatron's weighted_swiglu and TE's scaled_swiglu): weight [rows] in
// weight_dtype (f32, or the data's dtype), y[r] = glu(x[r]) * weight[r]
// (fp32 products, one rounding to the dtype at the end).
Status glu_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                   DType weight_dtype, void* y, int64_t rows, int64_t d,
                   cudaStream_t stream = nullptr);

// Its gradient: dx as glu_backward's with dy * weight[r] for dy, and, if
// dweight is not null, dweight[r] = sum over the row of glu(x[r]) * dy[r]
// (in weight_dtype), accumulated in fp32 in the same pass in an order fixed
// by the shape (the same bits on every run). dweight needs `workspace` (its
// bytes from glu_backward_workspace_size). dx may be x.
Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                    DType weight_dtype, const void* dy, void* dx, void* dweight, int64_t rows,
                    int64_t d, Workspace workspace = {}, cudaStream_t stream = nullptr);

// The workspace the weighted glu_backward needs for dweight, in bytes: for a
// GLU of split halves, or for `glu`'s layout (an interleaved call's is
// larger: 4 bytes per block of `interleave` columns and more).
Status glu_backward_workspace_size(DType dtype, int64_t rows, int64_t d, size_t* workspace_bytes);
Status glu_backward_workspace_size(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                                   size_t* workspace_bytes);

// The rows of an MoE layer's expert buffers a GLU call reads and writes, in
// device memory, read by the kernels when they run (no host synchronization;
// a call can be captured in a CUDA graph). int32 entries:
//   masked (counts set): x [experts, capacity, 2d] with rows = experts *
//     capacity; expert e's valid rows are its first counts[e] (vLLM's
//     masked_m, DeepGEMM's masked layout). At most 1024 experts.
//   grouped (offsets set, [experts + 1], a prefix sum of the counts): x
//     [rows, 2d], expert e's rows [offsets[e], offsets[e + 1]); the valid
//     rows are [offsets[0], offsets[experts]).
// Only valid rows are read, and only theirs of y (forward), dx and dweight
// (backward) are written: every other row is left untouched. The threads
// are spread over the valid rows, so a batch whose tokens all go to one
// expert runs as fast as a balanced one.
// Bad values on the device: a count outside [0, capacity] is clamped to it;
// offsets[0] and offsets[experts] are clamped to [0, rows] (the end to at
// least the start), and the offsets between are only checked to be
// nondecreasing; each of these sets *error to 1 (error: an optional int32 in
// device memory, never cleared by cuact).
struct ExpertRows {
  const int32_t* counts = nullptr;
  const int32_t* offsets = nullptr;
  int64_t experts = 0;
  int32_t* error = nullptr;
};

// The GLU (clamped, weighted or plain; the gates of clamped GLUs) over the
// valid rows of `experts`; weight [rows] may be null (no routing weight).
Status glu_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                   DType weight_dtype, void* y, int64_t rows, int64_t d,
                   const ExpertRows& experts, cudaStream_t stream = nullptr);
// Its gradient over the valid rows; dweight (null unless weight is given) as
// the weighted glu_backward's, on the valid rows only, with the same
// workspace (glu_backward_workspace_size of rows and d).
Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                    DType weight_dtype, const void* dy, void* dx, void* dweight, int64_t rows,
                    int64_t d, const ExpertRows& experts, Workspace workspace = {},
                    cudaStream_t stream = nullptr);

// ---------------------------------------------------------------- PReLU

// x, y [outer, channels, inner]; weight [channels]:
// y = x if x > 0 else weight[c] * x (exact: one rounding of the product). y may be x.
Status prelu_forward(DType dtype, const void* x, const void* weight, void* y, int64_t outer,
                     int64_t channels, int64_t inner, cudaStream_t stream = nullptr);

// dx = dy if x > 0 else weight[c] * dy, and, if dweight is not null,
// dweight[c] = sum of dy * x over the elements of channel c with x <= 0 (NaN
// x included), accumulated in fp32 in the same pass (needs the workspace of
// prelu_backward_workspace_size). dx may be x or dy.
Status prelu_backward(DType dtype, const void* x, const void* weight, const void* dy, void* dx,
                      void* dweight, int64_t outer, int64_t channels, int64_t inner,
                      Workspace workspace = {}, cudaStream_t stream = nullptr);

// The same with weight and dweight in weight_dtype: the data's dtype or f32.
Status prelu_forward(DType dtype, const void* x, const void* weight, DType weight_dtype, void* y,
                     int64_t outer, int64_t channels, int64_t inner, cudaStream_t stream = nullptr);
Status prelu_backward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                      const void* dy, void* dx, void* dweight, int64_t outer, int64_t channels,
                      int64_t inner, Workspace workspace = {}, cudaStream_t stream = nullptr);

Status prelu_backward_workspace_size(DType dtype, int64_t outer, int64_t channels, int64_t inner,
                                     size_t* workspace_bytes);

// ---------------------------------------------------------------- RReLU

// y = x if x >= 0 else r * x. Training: r ~ U(lower, upper) per element, from
// the generator of Dropout keyed by (seed, offset, element index): r = lower +
// (upper - lower) * u, u = draw * 2^-16 (the draw of Dropout), in fp32 (backward regenerates
// it). Eval: r = (lower + upper) / 2 rounded to fp32. lower <= upper, finite.
// device_state / device_used: the graph-safe form, as Dropout's (the forward
// takes and advances the state, the backward draws from device_used).
struct Rrelu {
  float lower = 1.0f / 8.0f;
  float upper = 1.0f / 3.0f;
  bool training = false;
  uint64_t seed = 0;
  uint64_t offset = 0;
  uint64_t* device_state = nullptr;
  uint64_t* device_used = nullptr;
};

Status rrelu_forward(const Rrelu& rrelu, DType dtype, const void* x, void* y, int64_t n,
                     cudaStream_t stream = nullptr);
// dx = dy if x >= 0 else r * dy (the same r as the forward with the same Rrelu).
Status rrelu_backward(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* dx,
                      int64_t n, cudaStream_t stream = nullptr);

// ---------------------------------------------------------------- typed overloads

// The same calls with the dtype taken from the pointer type (float, __half,
// __nv_bfloat16), e.g. cuact::glu_forward(cuact::Glu::geglu(), d_x, d_y, rows, d, stream).
// Optional pointers (bias, dbias, dweight) may be nullptr.
namespace detail {
template <class T>
struct NonDeducedOf {
  using type = T;
};
template <class T>
using NonDeduced = typename NonDeducedOf<T>::type;  // T, not deduced from nullptr
}  // namespace detail

template <class T>
Status bias_activation_forward(const Activation& act, const T* x,
                               const detail::NonDeduced<T>* bias, T* y, int64_t rows, int64_t cols,
                               const Dropout& dropout = {}, uint8_t* mask = nullptr,
                               cudaStream_t stream = nullptr) {
  return bias_activation_forward(act, DTypeOf<T>::value, x, bias, y, rows, cols, dropout, mask,
                                 stream);
}
template <class T>
Status bias_activation_backward(const Activation& act, const T* x,
                                const detail::NonDeduced<T>* bias, const T* dy, T* dx,
                                detail::NonDeduced<T>* dbias, int64_t rows, int64_t cols,
                                const Dropout& dropout = {}, Workspace workspace = {},
                                cudaStream_t stream = nullptr) {
  return bias_activation_backward(act, DTypeOf<T>::value, x, bias, dy, dx, dbias, rows, cols,
                                  dropout, workspace, stream);
}
// The workspace queries for typed calls: ..._workspace_size<T>(shape..., &bytes).
template <class T>
Status bias_activation_backward_workspace_size(int64_t rows, int64_t cols,
                                               size_t* workspace_bytes) {
  return bias_activation_backward_workspace_size(DTypeOf<T>::value, rows, cols, workspace_bytes);
}
template <class T>
Status prelu_backward_workspace_size(int64_t outer, int64_t channels, int64_t inner,
                                     size_t* workspace_bytes) {
  return prelu_backward_workspace_size(DTypeOf<T>::value, outer, channels, inner, workspace_bytes);
}
template <class T>
Status activation_dropout_forward(const Activation& act, const T* x, T* y, int64_t n,
                                  const Dropout& dropout, uint8_t* mask = nullptr,
                                  cudaStream_t stream = nullptr) {
  return activation_dropout_forward(act, DTypeOf<T>::value, x, y, n, dropout, mask, stream);
}
template <class T>
Status activation_dropout_backward(const Activation& act, const T* x, const T* dy, T* dx,
                                   int64_t n, const Dropout& dropout,
                                   cudaStream_t stream = nullptr) {
  return activation_dropout_backward(act, DTypeOf<T>::value, x, dy, dx, n, dropout, stream);
}
template <class T>
Status glu_forward(const Glu& glu, const T* x, T* y, int64_t rows, int64_t d,
                   cudaStream_t stream = nullptr) {
  return glu_forward(glu, DTypeOf<T>::value, x, y, rows, d, stream);
}
template <class T>
Status glu_backward(const Glu& glu, const T* x, const T* dy, T* dx, int64_t rows, int64_t d,
                    cudaStream_t stream = nullptr) {
  return glu_backward(glu, DTypeOf<T>::value, x, dy, dx, rows, d, stream);
}
template <class T>
Status prelu_forward(const T* x, const T* weight, T* y, int64_t outer, int64_t channels,
                     int64_t inner, cudaStream_t stream = nullptr) {
  return prelu_forward(DTypeOf<T>::value, x, weight, y, outer, channels, inner, stream);
}
template <class T>
Status prelu_backward(const T* x, const T* weight, const T* dy, T* dx,
                      detail::NonDeduced<T>* dweight, int64_t outer, int64_t channels,
                      int64_t inner, Workspace workspace = {}, cudaStream_t stream = nullptr) {
  return prelu_backward(DTypeOf<T>::value, x, weight, dy, dx, dweight, outer, channels, inner,
                        workspace, stream);
}
template <class T>
Status rrelu_forward(const Rrelu& rrelu, const T* x, T* y, int64_t n,
                     cudaStream_t stream = nullptr) {
  return rrelu_forward(rrelu, DTypeOf<T>::value, x, y, n, stream);
}
template <class T>
Status rrelu_backward(const Rrelu& rrelu, const T* x, const T* dy, T* dx, int64_t n,
                      cudaStream_t stream = nullptr) {
  return rrelu_backward(rrelu, DTypeOf<T>::value, x, dy, dx, n, stream);
}

}  // namespace cuact
