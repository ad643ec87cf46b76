// The launch of the generator state's step (random_state.cu).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace cuact::detail {

// used = *state, state's offset + 1, on `stream` (device buffers of two uint64).
cudaError_t launch_take_random_state(uint64_t* state, uint64_t* used, cudaStream_t stream);

}  // namespace cuact::detail
