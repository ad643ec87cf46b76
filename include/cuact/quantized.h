// Activations whose output is quantized on the way to memory: fp8 codes
// (cuact/fp8.h) with one scale per tensor, in the same pass as the
// activation (forward, bias + activation (+ dropout), GLU) or its gradient
// (dact, dact + dbias). docs/SPEC.md ("Quantized outputs") states the rules.
//
// GPUs of compute capability 8.9 or newer (fp8 conversion is an instruction
// there); the library builds these kernels for the architectures of its list
// from 89 on, and an older GPU gets StatusCode::unsupported.
//
// Contract shared with activation.h and fused.h (read them first): inputs in
// f32, f16 or bf16; the output is one byte per element; it must not overlap
// any input (an fp8 output in place of a wider input is refused); work is
// enqueued on `stream`, nothing synchronizes or allocates: the scale, the
// amax and 1/scale stay in device memory, so a call can be captured in a
// CUDA graph.
//
// The results are computed in fp32 (the fp32 kernels' functors, whatever the
// input dtype), multiplied by the scale in fp32 and rounded once to the
// format (to nearest even, saturated to its largest finite value; NaN stays
// NaN). Accuracy: within one fp8 ulp of the correctly rounded f(x) * scale,
// and equal to it unless f(x) * scale lies within the fp32 result's error
// of a rounding boundary (docs/ACCURACY.md).
//
// Example (TE's delayed scaling: the scale from the last steps' amax):
//   cuact::QuantizedOutput y{d_codes, cuact::Fp8::e4m3, d_scale, d_amax, d_scale_inv};
//   cuact::activation_forward(cuact::Activation::gelu(), cuact::DType::bf16, d_x, y, n, {}, stream);
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuact/activation.h"
#include "cuact/dtype.h"
#include "cuact/fp8.h"
#include "cuact/fused.h"
#include "cuact/softmax.h"
#include "cuact/status.h"

namespace cuact {

// How a quantized output's scale is found.
enum class Scaling {
  // The scale is given (`scale`, read when the kernel runs); the call writes
  // the amax of this call's results for the next steps' scale. One pass.
  delayed,
  // The call finds this tensor's amax first (a pass that reads the inputs and
  // writes nothing else), derives scale = largest / amax / 2^margin (1 where
  // amax is 0, NaN or inf; rounded down to a power of two on request) into
  // `scale`, then quantizes: two passes over the inputs.
  current,
};

// One output of a dtype other than the inputs': data, dtype, scale, amax,
// scale_inv, as Transformer Engine's and torchao's fp8 tensors name them.
// Every pointer is device memory; the float words are 4-byte aligned.
struct QuantizedOutput {
  void* data = nullptr;        // the codes, one byte per element, laid out as the result
  Fp8 dtype = Fp8::e4m3;
  float* scale = nullptr;      // delayed: read (required); current: written (required)
  float* amax = nullptr;       // written: max |result| before scaling, NaN results
                               // excluded (optional; current without it: workspace)
  float* scale_inv = nullptr;  // written: 1 / scale in fp32 (optional)
  Scaling scaling = Scaling::delayed;
  int margin = 0;              // current: 0 <= margin <= 64
  bool power_of_two = false;   // current: the scale rounded down to a power of two
};

// Workspace bytes a call with this output needs besides its reduction's
// (fused.h): 16 for the current recipe without an amax word, else 0.
Status quantized_workspace_size(const QuantizedOutput& out, size_t* workspace_bytes);

// y[i] = f(x[i]) quantized (forward), dx[i] = dy[i] * f'(x[i]) quantized
// (backward; backward_from_output: from the saved y, in the input dtype).
// The workspace is quantized_workspace_size's.
Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, const QuantizedOutput& out, int64_t n,
                  Workspace workspace = {}, cudaStream_t stream = nullptr);

// y[r, c] = dropout(act(x[r, c] + bias[c])) quantized; as fused.h's
// bias_activation_forward (bias and mask optional).
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const QuantizedOutput& y, int64_t rows,
                               int64_t cols, const Dropout& dropout = {}, uint8_t* mask = nullptr,
                               Workspace workspace = {}, cudaStream_t stream = nullptr);

// dx = dy * act'(x + bias) quantized and, if dbias is not null, dbias[c] =
// sum over r of the unquantized products (fp32 sums, as fused.h's). No
// dropout. The workspace holds the reduction's partials, then the amax word
// where the current recipe needs one: its bytes from the overload of
// bias_activation_backward_workspace_size below.
Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, const QuantizedOutput& dx,
                                void* dbias, int64_t rows, int64_t cols, Workspace workspace = {},
                                cudaStream_t stream = nullptr);
Status bias_activation_backward_workspace_size(DType dtype, int64_t rows, int64_t cols,
                                               const QuantizedOutput& dx, size_t* workspace_bytes);

// y [rows, d] = act(gated half) * other half of x [rows, 2d], quantized.
Status glu_forward(const Glu& glu, DType dtype, const void* x, const QuantizedOutput& y,
                   int64_t rows, int64_t d, Workspace workspace = {},
                   cudaStream_t stream = nullptr);

// ---------------------------------------------------------------- block-scaled outputs

// fp8 codes with one scale per block of `block` consecutive results along
// each row (MXFP8: block 32, E8M0 scales; DeepSeek-style per-group fp8:
// fp32 or power-of-two scales), for a [rows, cols] result. docs/SPEC.md,
// "Block-scaled outputs", states the rule. The codes are [rows, cols] with
// row stride cols; a row's last block may be partial (its scale from the
// results it holds). The scales are a [rows, ceil(cols / block)] matrix in
// `scale_layout` (cuact/fp8.h): 1 byte an entry (E8M0: the biased exponent)
// or 4 (f32, 4-byte aligned); a swizzled layout's padding is not written.
struct BlockScaledOutput {
  void* data = nullptr;
  Fp8 dtype = Fp8::e4m3;
  int block = 32;  // 16, 32, 64 or 128 (NVFP4: 16)
  BlockScale scale_type = BlockScale::e8m0;
  void* scales = nullptr;
  ScaleLayout scale_layout = ScaleLayout::row_major;
  float* amax = nullptr;  // optional: max |result| of the whole call, NaN excluded (written)
  // NVFP4 (scale_type e4m3): the fp32 tensor scale t (device memory; the
  // codes are e2m1, two to a byte ([rows, cols / 2] bytes, cols even),
  // blocks of 16; dtype unused). Scaling::delayed: t is given (read;
  // typically the tensor's amax / (448 * 6)). Scaling::current: a first
  // pass over the inputs finds the results' amax (written to `amax`,
  // required), then t = amax / (448 * 6) is written here, then the codes:
  // two passes over the inputs, no host synchronization.
  float* tensor_scale = nullptr;
  Scaling scaling = Scaling::delayed;  // fp8 blocks: delayed only (nothing to find)

  // MXFP8 as Transformer Engine and the OCP spec define it (E8M0, rounded up).
  static BlockScaledOutput mxfp8(void* codes, void* scales, Fp8 format = Fp8::e4m3,
                                 ScaleLayout layout = ScaleLayout::row_major) {
    return {codes, format, 32, BlockScale::e8m0, scales, layout, nullptr, nullptr};
  }
  // NVFP4: e2m1 codes, e4m3 scales per 16, the tensor scale given.
  static BlockScaledOutput nvfp4(void* packed_codes, void* scales, const float* tensor_scale,
                                 ScaleLayout layout = ScaleLayout::row_major) {
    return {packed_codes, Fp8::e4m3,     16, BlockScale::e4m3, scales, layout, nullptr,
            const_cast<float*>(tensor_scale)};  // (read only: Scaling::delayed)
  }
  // NVFP4 with the tensor scale found by a first pass (Scaling::current):
  // amax and tensor_scale written.
  static BlockScaledOutput nvfp4_current(void* packed_codes, void* scales, float* tensor_scale,
                                         float* amax, ScaleLayout layout = ScaleLayout::row_major) {
    return {packed_codes, Fp8::e4m3, 16,           BlockScale::e4m3,
            scales,       layout,    amax,         tensor_scale,     Scaling::current};
  }
};

// The bytes of the scales of a [rows, cols] result (swizzled: with padding).
Status block_scales_size(const BlockScaledOutput& out, int64_t rows, int64_t cols,
                         size_t* bytes);

// y[r, c] = act(x[r, c] + bias[c]) as block-scaled codes (bias optional,
// null: act(x)); x [rows, cols] with row stride cols.
Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const BlockScaledOutput& y, int64_t rows,
                               int64_t cols, cudaStream_t stream = nullptr);
// y [rows, d] = act(gated half) * other half of x [rows, 2d], block-scaled.
Status glu_forward(const Glu& glu, DType dtype, const void* x, const BlockScaledOutput& y,
                   int64_t rows, int64_t d, cudaStream_t stream = nullptr);

// y = softmax(x) quantized: softmax, log_softmax or softmin with any of
// softmax.h's options (scale, mask, causal, algorithm) and shapes (strided
// rows, the middle dimension), each result times the scale, rounded once
// to the format. Forward only. The output's stride is counted in codes, as
// the input's in elements. FP8 attention's probabilities take the delayed
// recipe with a fixed scale (448 for e4m3: a probability is at most 1).
Status softmax_forward(const Softmax& op, DType dtype, const void* x, const QuantizedOutput& y,
                       const SoftmaxShape& shape, Workspace workspace = {},
                       cudaStream_t stream = nullptr);

}  // namespace cuact
