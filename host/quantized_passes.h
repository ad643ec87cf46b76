// How a call with a quantized output runs, whichever engine computes it
// (the row engine, softmax): the recipe from the public descriptor, and the
// passes it takes. Delayed: one pass with the given scale. Current: the
// amax pass (the results' max |value| only, nothing written, no scale
// yet), the scale step (scale_from_amax into scale and scale_inv; NVFP4:
// its tensor scale), then the store pass. The amax word is cleared first:
// the kernels fold into it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuact/quantized.h"
#include "cuact/status.h"
#include "cuda_status.h"
#include "output_stage.h"

namespace cuact::detail {

// Why a quantized call is refused on a GPU the library has no fp8 kernels for.
inline constexpr const char* kNoFp8KernelForDevice =
    "fp8 outputs have no kernel for this GPU: the library builds them for the architectures "
    "of its list from compute capability 8.9 on";

struct QuantizedRecipe {
  QuantizedStore store;  // as the single (or the store) pass's kernels see it
  bool current = false;  // Scaling::current (block-scaled: NVFP4's tensor scale found)
  int margin = 0;
  bool power_of_two = false;
};

// The recipe of `out`; the current recipe without an amax word takes the
// (4-byte aligned) word in the workspace after `reduction_bytes`.
QuantizedRecipe quantized_recipe(const QuantizedOutput& out, void* workspace,
                                 int64_t reduction_bytes);
// The recipe of a block-scaled output of a [rows, cols] result: one pass,
// its store's block fields set (the amax, if any, cleared first).
QuantizedRecipe block_recipe(const BlockScaledOutput& out, int64_t rows, int64_t cols);
// The scale matrix of a [rows, cols] result: groups per row, and the
// entries its layout spans.
int64_t block_groups(const BlockScaledOutput& out, int64_t cols);
// The workspace bytes of a quantized output (quantized_workspace_size).
int64_t quantized_workspace(const QuantizedOutput& out);

// The stores of the passes: first only (delayed), or first the amax pass
// and second the store pass (current).
struct QuantizedPasses {
  QuantizedStore first;
  bool two = false;
  QuantizedStore second;
};
QuantizedPasses quantized_passes(const QuantizedRecipe& q);

// Enqueues a quantized call: the amax cleared, pass(first), and for the
// current recipe the scale step and pass(second). pass(store) enqueues one
// pass with that store and returns its Status.
template <class Pass>
Status run_quantized_passes(const QuantizedRecipe& q, cudaStream_t stream, Pass&& pass);

// The scale step of the current recipe (output_stage.h's ScaleStep: the
// per-tensor scale, or NVFP4's tensor scale), and its launch on the device
// (cuda/scale_step.cu; amax null reads as 0).
ScaleStep scale_step_of(const QuantizedRecipe& q);
cudaError_t enqueue_scale_step(const QuantizedRecipe& q, cudaStream_t stream);
Status cleared_amax(const QuantizedRecipe& q, cudaStream_t stream);

template <class Pass>
Status run_quantized_passes(const QuantizedRecipe& q, cudaStream_t stream, Pass&& pass) {
  if (Status s = cleared_amax(q, stream); !s.ok()) return s;
  const QuantizedPasses passes = quantized_passes(q);
  if (Status s = pass(passes.first); !s.ok() || !passes.two) return s;
  if (const cudaError_t err = enqueue_scale_step(q, stream); err != cudaSuccess)
    return status_from_cuda(err, "launching the scale step failed");
  return pass(passes.second);
}

}  // namespace cuact::detail
