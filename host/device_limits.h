// What the launches need to know of a device and of a kernel on it, queried
// once per device (and per kernel) and cached: calls from any number of
// host threads, on whichever device is current on each, read the caches
// without a driver query after the first.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuact/device/config.h"

namespace cuact::detail {

struct DeviceLimits {
  int device = 0;  // the ordinal
  int sm_count = 0;
  int threads_per_sm = 0;
  int smem_optin = 0;      // shared memory one block may opt in to, bytes
  int cluster_launch = 0;  // 1: thread-block clusters (sm_90+)
  int major = 0, minor = 0;  // compute capability
  int regs_per_sm = 0;
  int smem_per_sm = 0;
  int blocks_per_sm = 0;
  int reserved_smem_per_block = 0;  // the runtime's own shared memory per block
};

// The limits of the calling thread's current device (device_limits.cpp).
// Errors (no device, no driver) are returned and not cached.
cudaError_t current_device_limits(DeviceLimits* limits);

// What a launch needs of one kernel on one device (cudaFuncAttributes),
// asked the first time (device, kernel) meets: registers a thread, static
// shared memory, the dynamic shared memory a block may use (the kernel is
// then opted in to all of it: always that same value, so concurrent
// callers cannot lower it under each other's launches), and the virtual
// architecture of the image loaded for the device.
struct KernelFacts {
  int registers = 0;
  int static_smem = 0;
  int dynamic_smem_room = 0;
  int ptx_version = 0;       // major * 10 + minor of the loaded image's PTX
  int max_cluster_ranks = 0;  // cluster kernels: the largest cluster it runs in, else 0
};

// `cluster_threads` > 0: a cluster kernel of that block size; the first
// query also allows it non-portable cluster sizes and asks the largest
// cluster it can run in (0 without clusters, or where the loaded image is
// not sm_90 code: cluster_kernels_usable).
cudaError_t kernel_facts(const void* kernel, const DeviceLimits& device, int cluster_threads,
                         KernelFacts* facts);

// Clusters of `ranks` blocks of `threads` with `smem_bytes` of dynamic
// shared memory each resident at once (the driver's occupancy calculator:
// clusters depend on how the device groups its SMs), remembered per
// (device, kernel, ranks, threads, bytes) up to a bound, asked beyond it.
cudaError_t active_clusters(const void* kernel, const DeviceLimits& device, int ranks, int threads,
                            int64_t smem_bytes, int* clusters);

// Resident blocks of `threads` a block on one SM, for a kernel of
// `registers` a thread and `smem_bytes` of shared memory a block (static and
// dynamic), by the occupancy rules: registers allocated per warp in units of
// 256, the runtime's reserved shared memory per block, the SM's thread and
// block limits. 0 where a block does not fit.
CUACT_HD constexpr int resident_blocks(const DeviceLimits& d, int threads, int registers,
                                       int64_t smem_bytes) {
  if (threads <= 0 || threads > d.threads_per_sm) return 0;
  const int warps = (threads + 31) / 32;
  const int warp_regs = ((registers > 0 ? registers : 1) * 32 + 255) / 256 * 256;
  const int by_regs = d.regs_per_sm / warp_regs / warps;
  const int by_threads = d.threads_per_sm / (warps * 32);
  const int64_t per_block = smem_bytes + d.reserved_smem_per_block;
  const int64_t by_smem = per_block > 0 ? d.smem_per_sm / per_block : d.blocks_per_sm;
  int blocks = by_regs < by_threads ? by_regs : by_threads;
  if (by_smem < blocks) blocks = static_cast<int>(by_smem);
  return blocks < d.blocks_per_sm ? blocks : d.blocks_per_sm;
}

}  // namespace cuact::detail
