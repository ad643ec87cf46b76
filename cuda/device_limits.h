// What the launches need to know of a device, queried once per device and
// cached: calls from any number of host threads, on whichever device is
// current on each, read the cache without a driver query after the first.
#pragma once

#include <cuda_runtime_api.h>

namespace cuact::detail {

struct DeviceLimits {
  int sm_count = 0;
  int threads_per_sm = 0;
  int smem_optin = 0;      // shared memory one block may opt in to, bytes
  int cluster_launch = 0;  // 1: thread-block clusters (sm_90+)
  int major = 0, minor = 0;  // compute capability
};

// The limits of the calling thread's current device (host/device_limits.cpp).
// Errors (no device, no driver) are returned and not cached.
cudaError_t current_device_limits(DeviceLimits* limits);

}  // namespace cuact::detail
