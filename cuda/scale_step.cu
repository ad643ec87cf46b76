// The current recipe's scale step (output_stage.h, ScaleStep): one thread,
// enqueued between the amax pass and the store pass (amax null: an empty
// call, amax 0).
#include <cuda_runtime.h>

#include "kernel_table.h"
#include "output_stage.h"

namespace cuact::detail {

__global__ void scale_step_kernel(const float* amax, ScaleStep step) {
  step.run(amax != nullptr ? *amax : 0.0f);
}

cudaError_t launch_scale_step(const float* amax, const ScaleStep& step, cudaStream_t stream) {
  ScaleStep s = step;
  void* args[] = {&amax, &s};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&scale_step_kernel), dim3(1), dim3(1), args,
                          0, stream);
}

}  // namespace cuact::detail
