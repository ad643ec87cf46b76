#include "device_limits.h"

#include <atomic>
#include <map>
#include <mutex>
#include <tuple>

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
              {&l->minor, cudaDevAttrComputeCapabilityMinor},
              {&l->regs_per_sm, cudaDevAttrMaxRegistersPerMultiprocessor},
              {&l->smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor},
              {&l->blocks_per_sm, cudaDevAttrMaxBlocksPerMultiprocessor},
              {&l->reserved_smem_per_block, cudaDevAttrReservedSharedMemoryPerBlock}};
  l->device = device;
  for (const auto& a : asks)
    if (const cudaError_t err = cudaDeviceGetAttribute(a.out, a.attr, device); err != cudaSuccess)
      return err;
  return cudaSuccess;
}

// The kernels' facts and cluster occupancies, under one mutex (asked on the
// launch paths of long rows only, whose kernels run far longer than a lock).
struct KernelCache {
  std::mutex mutex;
  std::map<std::pair<int, const void*>, KernelFacts> facts;
  std::map<std::tuple<int, const void*, int, int, int64_t>, int> clusters;
};
constexpr size_t kMaxRememberedClusterShapes = 4096;

KernelCache& kernel_cache() {
  static KernelCache c;
  return c;
}

cudaError_t query_kernel(const void* kernel, const DeviceLimits& d, int cluster_threads,
                         KernelFacts* f) {
  cudaFuncAttributes attr;
  if (const cudaError_t err = cudaFuncGetAttributes(&attr, kernel); err != cudaSuccess) return err;
  f->registers = attr.numRegs;
  f->static_smem = static_cast<int>(attr.sharedSizeBytes);
  f->ptx_version = attr.ptxVersion;
  f->dynamic_smem_room = d.smem_optin - f->static_smem;
  if (f->dynamic_smem_room < 0) f->dynamic_smem_room = 0;
  if (f->dynamic_smem_room > attr.maxDynamicSharedSizeBytes)
    if (const cudaError_t err = cudaFuncSetAttribute(
            kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, f->dynamic_smem_room);
        err != cudaSuccess)
      return err;
  f->max_cluster_ranks = 0;
  if (cluster_threads > 0 && d.cluster_launch != 0 && f->ptx_version >= 90) {
    if (const cudaError_t err =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
        err != cudaSuccess)
      return err;
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(16);
    config.blockDim = dim3(static_cast<unsigned>(cluster_threads));
    return cudaOccupancyMaxPotentialClusterSize(&f->max_cluster_ranks, kernel, &config);
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t kernel_facts(const void* kernel, const DeviceLimits& device, int cluster_threads,
                         KernelFacts* facts) {
  KernelCache& c = kernel_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  const auto key = std::make_pair(device.device, kernel);
  const auto it = c.facts.find(key);
  if (it != c.facts.end()) {
    *facts = it->second;
    return cudaSuccess;
  }
  KernelFacts f;
  if (const cudaError_t err = query_kernel(kernel, device, cluster_threads, &f);
      err != cudaSuccess)
    return err;
  c.facts.emplace(key, f);
  *facts = f;
  return cudaSuccess;
}

cudaError_t active_clusters(const void* kernel, const DeviceLimits& device, int ranks, int threads,
                            int64_t smem_bytes, int* clusters) {
  KernelCache& c = kernel_cache();
  const auto key = std::make_tuple(device.device, kernel, ranks, threads, smem_bytes);
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    const auto it = c.clusters.find(key);
    if (it != c.clusters.end()) {
      *clusters = it->second;
      return cudaSuccess;
    }
  }
  cudaLaunchConfig_t config = {};
  cudaLaunchAttribute attribute;
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned>(ranks);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.gridDim = dim3(static_cast<unsigned>(ranks));
  config.blockDim = dim3(static_cast<unsigned>(threads));
  config.dynamicSmemBytes = static_cast<size_t>(smem_bytes);
  config.attrs = &attribute;
  config.numAttrs = 1;
  if (const cudaError_t err = cudaOccupancyMaxActiveClusters(clusters, kernel, &config);
      err != cudaSuccess)
    return err;
  std::lock_guard<std::mutex> lock(c.mutex);
  if (c.clusters.size() < kMaxRememberedClusterShapes) c.clusters.emplace(key, *clusters);
  return cudaSuccess;
}

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
