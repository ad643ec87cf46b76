#include "quantized_passes.h"

#include "kernel_table.h"

namespace cuact::detail {

QuantizedRecipe quantized_recipe(const QuantizedOutput& out, void* workspace,
                                 int64_t reduction_bytes) {
  QuantizedRecipe q;
  q.store.format = out.dtype;
  q.store.scale = out.scale;
  q.store.amax = out.amax;
  q.store.scale_inv = out.scale_inv;
  q.current = out.scaling == Scaling::current;
  q.margin = out.margin;
  q.power_of_two = out.power_of_two;
  if (q.current && q.store.amax == nullptr) {
    const auto at = reinterpret_cast<std::uintptr_t>(workspace) +
                    static_cast<std::uintptr_t>(reduction_bytes);
    q.store.amax = reinterpret_cast<float*>((at + 3) / 4 * 4);
  }
  return q;
}

int64_t block_groups(const BlockScaledOutput& out, int64_t cols) {
  return (cols + out.block - 1) / out.block;
}

QuantizedRecipe block_recipe(const BlockScaledOutput& out, int64_t rows, int64_t cols) {
  QuantizedRecipe q;
  q.store.format = out.dtype;
  q.store.amax = out.amax;
  q.store.block = out.block;
  q.store.scale_type = out.scale_type;
  q.store.scales = out.scales;
  q.store.layout = out.scale_layout;
  q.store.scale_rows = rows;
  q.store.scale_groups = block_groups(out, cols);
  q.store.tensor_scale = out.tensor_scale;
  q.current = out.scaling == Scaling::current;  // NVFP4's tensor scale found first
  return q;
}

int64_t quantized_workspace(const QuantizedOutput& out) {
  return out.scaling == Scaling::current && out.amax == nullptr ? 16 : 0;
}

QuantizedPasses quantized_passes(const QuantizedRecipe& q) {
  QuantizedPasses p;
  p.first = q.store;
  if (!q.current) return p;
  // The amax pass: nothing written; the scale is not known yet.
  p.first.writes = false;
  p.first.scale = nullptr;
  p.first.scale_inv = nullptr;
  p.two = true;
  p.second = q.store;
  p.second.amax = nullptr;       // found by the first pass
  p.second.scale_inv = nullptr;  // written by the scale step
  return p;
}

Status cleared_amax(const QuantizedRecipe& q, cudaStream_t stream) {
  if (q.store.amax == nullptr) return {};
  return status_from_cuda(cudaMemsetAsync(q.store.amax, 0, sizeof(float), stream),
                          "clearing the amax failed");
}

ScaleStep scale_step_of(const QuantizedRecipe& q) {
  ScaleStep s;
  s.format = q.store.format;
  s.margin = q.margin;
  s.power_of_two = q.power_of_two;
  s.nvfp4 = q.store.scale_type == BlockScale::e4m3;
  s.scale = const_cast<float*>(s.nvfp4 ? q.store.tensor_scale : q.store.scale);
  s.scale_inv = s.nvfp4 ? nullptr : q.store.scale_inv;
  return s;
}

cudaError_t enqueue_scale_step(const QuantizedRecipe& q, cudaStream_t stream) {
  return launch_scale_step(q.store.amax, scale_step_of(q), stream);
}

}  // namespace cuact::detail
