// Mapping a CUDA runtime result to a cuact Status.
#pragma once

#include <cuda_runtime_api.h>

#include "cuact/status.h"

namespace cuact::detail {

// success for cudaSuccess; no_device when there is no usable device or
// driver; cuda_error otherwise. `detail` (static) says what was being done.
inline Status status_from_cuda(cudaError_t err, const char* detail) {
  switch (err) {
    case cudaSuccess: return {};
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
      return {StatusCode::no_device, "no usable CUDA device", err};
    default: return {StatusCode::cuda_error, detail, err};
  }
}

}  // namespace cuact::detail
