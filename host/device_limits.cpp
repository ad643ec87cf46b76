#include "device_limits.h"

#include <atomic>
#include <mutex>

namespace cuact::detail {

namespace {

constexpr int kCachedDevices = 64;

struct Cache {
  std::mutex mutex;
  std::atomic<bool> ready[kCachedDevices] = {};
  DeviceLimits limits[kCachedDevices];
};

Cache& cache() {
  static Cache c;
  return c;
}

cudaError_t query(int device, DeviceLimits* l) {
  const struct {
    int* out;
    cudaDeviceAttr attr;
  } asks[] = {{&l->sm_count, cudaDevAttrMultiProcessorCount},
              {&l->threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor},
              {&l->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin},
              {&l->cluster_launch, cudaDevAttrClusterLaunch},
              {&l->major, cudaDevAttrComputeCapabilityMajor},
              {&l->minor, cudaDevAttrComputeCapabilityMinor}};
  for (const auto& a : asks)
    if (const cudaError_t err = cudaDeviceGetAttribute(a.out, a.attr, device); err != cudaSuccess)
      return err;
  return cudaSuccess;
}

}  // namespace

cudaError_t current_device_limits(DeviceLimits* limits) {
  int device = 0;
  if (const cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  if (device < 0 || device >= kCachedDevices) return query(device, limits);
  Cache& c = cache();
  if (!c.ready[device].load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (!c.ready[device].load(std::memory_order_relaxed)) {
      DeviceLimits l;
      if (const cudaError_t err = query(device, &l); err != cudaSuccess) return err;
      c.limits[device] = l;
      c.ready[device].store(true, std::memory_order_release);
    }
  }
  *limits = c.limits[device];
  return cudaSuccess;
}

}  // namespace cuact::detail
