// The current recipe's scale step (output_stage.h, scale_from_amax): one
// thread, enqueued between the amax pass and the store pass (amax null: an
// empty call, amax 0).
#include <cuda_runtime.h>

#include "kernel_table.h"
#include "output_stage.h"

namespace cuact::detail {

__global__ void scale_from_amax_kernel(const float* amax, Fp8 format, int margin, bool power_of_two,
                                       float* scale, float* scale_inv) {
  const float s = scale_from_amax(amax != nullptr ? *amax : 0.0f, format, margin, power_of_two);
  *scale = s;
  if (scale_inv != nullptr) *scale_inv = 1.0f / s;
}

cudaError_t launch_scale_from_amax(const float* amax, Fp8 format, int margin, bool power_of_two,
                                   float* scale, float* scale_inv, cudaStream_t stream) {
  void* args[] = {&amax, &format, &margin, &power_of_two, &scale, &scale_inv};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&scale_from_amax_kernel), dim3(1), dim3(1),
                          args, 0, stream);
}

}  // namespace cuact::detail
