// The generator state's step of a graph-safe dropout call (philox.h,
// take_random_state): one thread, enqueued before the call's kernel.
#include <cuda_runtime.h>

#include <cstdint>

#include "philox.h"
#include "random_state.h"

namespace cuact::detail {

__global__ void take_random_state_kernel(uint64_t* state, uint64_t* used) {
  take_random_state(state, used);
}

cudaError_t launch_take_random_state(uint64_t* state, uint64_t* used, cudaStream_t stream) {
  void* args[] = {&state, &used};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&take_random_state_kernel), dim3(1),
                          dim3(1), args, 0, stream);
}

}  // namespace cuact::detail
