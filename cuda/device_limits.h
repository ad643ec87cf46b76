// The current device's size, queried per call (never cached, so launches fit
// whichever device is current on the calling thread).
#pragma once

#include <cuda_runtime_api.h>

namespace cuact::detail {

inline cudaError_t current_device_occupancy(int* sm_count, int* threads_per_sm) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(sm_count, cudaDevAttrMultiProcessorCount, device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device);
  return err;
}

}  // namespace cuact::detail
