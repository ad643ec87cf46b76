#include "softmax_dispatch.h"

#include <cstdint>

#include "cuda_status.h"
#include "device_limits.h"
#include "quantized_passes.h"
#include "softmax_checks.h"
#include "softmax_middle.h"

namespace cuact::detail {

SoftmaxCall make_softmax_call(Direction direction, const Softmax& op, DType dtype, const void* in,
                              const void* grad, void* out, const SoftmaxShape& shape) {
  SoftmaxCall c;
  c.backward = direction == Direction::backward;
  c.log = op.kind == SoftmaxKind::log_softmax;
  c.scale = op.kind == SoftmaxKind::softmin ? -op.scale : op.scale;
  c.in = in;
  c.grad = grad;
  c.out = out;
  c.in_size = c.out_size = static_cast<int>(dtype_size(dtype));
  // Both directions: backward finds the columns the forward hid from them.
  const bool masked = op.mask != nullptr;
  c.mask = op.mask;
  c.layout = make_softmax_layout(shape.outer, shape.dim, masked ? op.mask_rows : 0,
                                 op.mask_row_repeat, op.causal ? op.causal_rows : 0,
                                 op.causal_offset);
  const SoftmaxShape r = resolved_strides(shape);
  c.layout.inner = r.inner;
  c.layout.in_stride = r.in_stride;
  c.layout.grad_stride = r.grad_stride;
  c.layout.out_stride = r.out_stride;
  c.layout.mask_stride = resolved_mask_stride(op, shape.dim);
  c.requested = op.algorithm;
  return c;
}

namespace {

std::uintptr_t address_of(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// The output's address in input elements (pack_address's rule).
std::uintptr_t out_address(const SoftmaxCall& c) {
  return address_of(c.out) / static_cast<std::uintptr_t>(c.out_size) *
         static_cast<std::uintptr_t>(c.in_size);
}

}  // namespace

bool register_call_vectorized(const SoftmaxCall& call, const RegisterConfig& cfg) {
  const SoftmaxLayout& l = call.layout;
  std::uintptr_t addresses[3] = {address_of(call.in), out_address(call), 0};
  int64_t strides[3] = {l.in_stride, l.out_stride, 0};
  int count = 2;
  if (call.backward) {
    addresses[count] = address_of(call.grad);
    strides[count++] = l.grad_stride;
  } else if (call.mask != nullptr) {
    addresses[count] = address_of(call.mask);
    strides[count++] = l.mask_stride;
  }
  return register_rows_vectorizable(cfg, l.cols, call.in_size, addresses, strides, count);
}

bool middle_call_vectorized(const SoftmaxCall& call) {
  const SoftmaxLayout& l = call.layout;
  const std::uintptr_t addresses[3] = {address_of(call.in), out_address(call),
                                       address_of(call.backward ? call.grad : call.in)};
  const int64_t strides[3] = {l.in_stride, l.out_stride,
                              call.backward ? l.grad_stride : l.in_stride};
  return middle_dim_vectorizable(full_pack_width(call.in_size), call.in_size, l.inner, addresses,
                                 strides, 3);
}

namespace {

// The largest cluster the device can run the kernel in (clusters of more
// than 8 blocks allowed where the device has them), 0 without clusters or
// where the loaded image of the kernel is not sm_90 code
// (cluster_kernels_usable); from the kernel's cached facts.
cudaError_t max_cluster_ranks(const void* kernel, int threads, const DeviceLimits& dev,
                              int* ranks) {
  *ranks = 0;
  if (dev.cluster_launch == 0) return cudaSuccess;
  KernelFacts f;
  if (const cudaError_t err = kernel_facts(kernel, dev, threads, &f); err != cudaSuccess) return err;
  if (cluster_kernels_usable(dev.cluster_launch, f.ptx_version)) *ranks = f.max_cluster_ranks;
  return cudaSuccess;
}

// Clusters of each size in kClusterSizes resident at once with a slice
// cache of the row (0: the cache does not fit, or the size is beyond
// max_ranks); cache_bytes: each size's cache.
cudaError_t cluster_occupancy(const void* kernel, int64_t cols, int64_t bytes_per_col, int width,
                              int max_ranks, const DeviceLimits& dev,
                              int (&active)[kClusterSizeCandidates],
                              int64_t (&cache_bytes)[kClusterSizeCandidates]) {
  KernelFacts f;
  if (const cudaError_t err = kernel_facts(kernel, dev, kClusterBlockThreads, &f);
      err != cudaSuccess)
    return err;
  for (int i = 0; i < kClusterSizeCandidates; ++i) {
    active[i] = 0;
    cache_bytes[i] = cluster_slice_capacity(cols, kClusterSizes[i], width) * bytes_per_col;
    if (kClusterSizes[i] > max_ranks || cache_bytes[i] > f.dynamic_smem_room) continue;
    if (const cudaError_t err = active_clusters(kernel, dev, kClusterSizes[i],
                                                kClusterBlockThreads, cache_bytes[i], &active[i]);
        err != cudaSuccess)
      return err;
  }
  return cudaSuccess;
}

// Resident blocks per SM of each block_per_row size with `bytes` of row
// cache (0 where it does not fit), from the kernels' cached facts.
cudaError_t block_occupancy(const void* const (&kernels)[kBlockCandidates], int64_t bytes,
                            const DeviceLimits& dev, int (&active)[kBlockCandidates]) {
  for (int i = 0; i < kBlockCandidates; ++i) {
    active[i] = 0;
    KernelFacts f;
    if (const cudaError_t err = kernel_facts(kernels[i], dev, 0, &f); err != cudaSuccess)
      return err;
    if (bytes > f.dynamic_smem_room) continue;
    active[i] = resident_blocks(dev, kBlockThreadCandidates[i], f.registers, f.static_smem + bytes);
  }
  return cudaSuccess;
}

constexpr int kWarpWaves = 8;  // row loop: at most 8 waves of warp_per_row blocks

}  // namespace

SoftmaxLaunchPlan plan_softmax(const SoftmaxCall& call, const SoftmaxKernels& k) {
  SoftmaxLaunchPlan p;
  SoftmaxLaunchResult& r = p.result;
  p.layout = call.layout;
  p.layout.has_mask = call.mask != nullptr;
  const int64_t rows = p.layout.rows, cols = p.layout.cols;
  const int elem = call.in_size;
  const int width = full_pack_width(elem);

  DeviceLimits dev;  // cached per device (device_limits.h)
  if ((r.error = current_device_limits(&dev)) != cudaSuccess) return p;
  const int64_t per_col = block_cache_bytes_per_col(call.backward, elem);
  const int64_t capacity = dev.smem_optin - kBlockStaticSmemSlack;
  // Clusters are asked about only for rows longer than a block's registers
  // hold: the register cluster for rows on pack boundaries, the cached one
  // for rows one block cannot cache.
  const int cluster_threads = register_cluster_threads(call.backward);
  const RegisterConfig cluster_cfg{cluster_threads, register_cluster_values(call.backward), width};
  const bool long_rows =
      call.requested == SoftmaxAlgorithm::cluster_per_row ||
      (call.requested == SoftmaxAlgorithm::automatic && p.layout.inner == 1 &&
       cols > kRegisterMaxCols);
  int max_ranks = 0, max_register_ranks = 0;
  if (long_rows && register_call_vectorized(call, cluster_cfg))
    if ((r.error = max_cluster_ranks(k.register_cluster, cluster_threads, dev,
                                     &max_register_ranks)) != cudaSuccess)
      return p;
  if (long_rows && (call.requested == SoftmaxAlgorithm::cluster_per_row ||
                    !block_cache_fits(cols, per_col, capacity)))
    if ((r.error = max_cluster_ranks(k.cluster, kClusterBlockThreads, dev, &max_ranks)) !=
        cudaSuccess)
      return p;
  const SoftmaxChoice choice = choose_softmax_for_shape(
      call.requested, p.layout.inner, p.layout.has_mask || p.layout.causal, cols, per_col,
      capacity, width, max_ranks, max_register_ranks);
  r.algorithm = choice.algorithm;
  r.refusal = choice.refusal;
  if (r.refusal != nullptr) return p;

  if (choice.algorithm == SoftmaxAlgorithm::middle_dim) {
    p.vectorized = middle_call_vectorized(call);
    const int64_t groups = p.layout.inner / (p.vectorized ? width : 1);  // per o
    p.layout.inner_groups = FastDivider(static_cast<uint64_t>(groups));
    const int64_t columns = rows * groups;
    p.middle =
        plan_middle_dim(columns, cols, static_cast<int64_t>(dev.sm_count) * dev.threads_per_sm);
    const int64_t tiles = (columns + p.middle.x - 1) / p.middle.x;
    p.kernel = k.middle;
    p.threads = p.middle.threads();
    p.blocks = softmax_grid(tiles, dev.sm_count, dev.threads_per_sm / p.threads, kMiddleWaves);
    return p;
  }

  // The row in registers: warp_per_row, or block_per_row's block variants.
  auto plan_registers = [&](int index) {
    const RegisterConfig cfg = register_config_for_span(index, elem);
    p.vectorized = register_call_vectorized(call, cfg);
    const int64_t groups = (rows + cfg.rows_per_block() - 1) / cfg.rows_per_block();
    p.kernel = k.registers[index];
    p.threads = cfg.block_threads();
    p.blocks = softmax_grid(groups, dev.sm_count, dev.threads_per_sm / p.threads, kWarpWaves);
    set_row_step(p.layout, static_cast<int64_t>(p.blocks) * cfg.rows_per_block());
  };
  if (choice.algorithm == SoftmaxAlgorithm::warp_per_row) {
    plan_registers(register_config_index(cols));
    return p;
  }

  if (choice.algorithm == SoftmaxAlgorithm::block_per_row) {
    const int64_t bytes = cols * per_col;
    const int index = block_register_index(cols);
    if (index < kRegisterConfigs &&
        block_row_in_registers(cols,
                               register_call_vectorized(call, register_config_for_span(index, elem)),
                               block_cache_fits(cols, per_col, capacity))) {
      plan_registers(index);
      return p;
    }
    int active[kBlockCandidates];
    if ((r.error = block_occupancy(k.blocks, bytes, dev, active)) != cudaSuccess) return p;
    const int best = choose_block_threads(active);
    if (best >= 0) {
      p.kernel = k.blocks[best];
      p.threads = kBlockThreadCandidates[best];
      p.blocks = softmax_grid(rows, dev.sm_count, active[best], 1);
      p.smem_bytes = bytes;
      return p;
    }
    if (call.requested == SoftmaxAlgorithm::block_per_row) {
      r.refusal = "block_per_row: no block size fits the row's cache on this device";
      return p;
    }
    r.algorithm = SoftmaxAlgorithm::streaming;  // fits by size, yet no block is resident
  }

  if (choice.algorithm == SoftmaxAlgorithm::cluster_per_row) {
    const int ranks = cluster_register_ranks(cols, max_register_ranks);
    if (ranks > 0) {  // the row in the cluster's registers
      int active = 0;
      if ((r.error = active_clusters(k.register_cluster, dev, ranks, cluster_threads, 0,
                                     &active)) != cudaSuccess)
        return p;
      if (active > 0) {
        p.vectorized = true;
        p.kernel = k.register_cluster;
        p.cluster_ranks = ranks;
        p.blocks = static_cast<int>(rows < active ? rows : active);  // clusters
        p.threads = cluster_threads;
        set_row_step(p.layout, p.blocks);
        return p;
      }
    }
    int active[kClusterSizeCandidates];
    int64_t cache_bytes[kClusterSizeCandidates];
    if ((r.error = cluster_occupancy(k.cluster, cols, per_col, width, max_ranks, dev, active,
                                     cache_bytes)) != cudaSuccess)
      return p;
    const int best = choose_cluster_size(rows, active);
    if (best >= 0) {
      p.kernel = k.cluster;
      p.cluster_ranks = kClusterSizes[best];
      p.blocks = static_cast<int>(rows < active[best] ? rows : active[best]);  // clusters
      p.threads = kClusterBlockThreads;
      p.smem_bytes = cache_bytes[best];
      set_row_step(p.layout, p.blocks);
      return p;
    }
    if (call.requested == SoftmaxAlgorithm::cluster_per_row) {
      r.refusal = "cluster_per_row: no cluster holding the row is resident on this device";
      return p;
    }
    r.algorithm = SoftmaxAlgorithm::streaming;  // fits by size, yet no cluster is resident
  }

  p.kernel = k.streaming;
  KernelFacts f;
  if ((r.error = kernel_facts(p.kernel, dev, 0, &f)) != cudaSuccess) return p;
  p.threads = kStreamingBlockThreads;
  p.blocks = softmax_grid(rows, dev.sm_count,
                          resident_blocks(dev, p.threads, f.registers, f.static_smem), 1);
  return p;
}

const SoftmaxEngine& softmax_engine_for(DType dtype, bool quantized, bool cross_entropy) {
  if (cross_entropy) {
    switch (dtype) {
      case DType::f16: return softmax_cross_entropy_engine_f16();
      case DType::bf16: return softmax_cross_entropy_engine_bf16();
      default: return softmax_cross_entropy_engine_f32();
    }
  }
  switch (dtype) {
    case DType::f16: return quantized ? softmax_fp8_engine_f16() : softmax_engine_f16();
    case DType::bf16: return quantized ? softmax_fp8_engine_bf16() : softmax_engine_bf16();
    default: return quantized ? softmax_fp8_engine_f32() : softmax_engine_f32();
  }
}

SoftmaxLaunchResult launch_softmax(DType dtype, const SoftmaxCall& call, cudaStream_t stream) {
  const bool quantized = call.out_size != call.in_size;
  const SoftmaxEngine& engine =
      softmax_engine_for(dtype, quantized, call.cross_entropy.targets != nullptr);
  SoftmaxLaunchPlan p = plan_softmax(call, call.backward ? engine.backward : engine.forward);
  if (p.result.error == cudaSuccess && p.result.refusal == nullptr)
    p.result.error = engine.launch(call, p, stream);
  if (quantized && (p.result.error == cudaErrorNoKernelImageForDevice ||
                    p.result.error == cudaErrorInvalidDeviceFunction)) {
    p.result.error = cudaSuccess;
    p.result.refusal = kNoFp8KernelForDevice;
  }
  return p.result;
}

Status softmax_status(const SoftmaxLaunchResult& r) {
  if (r.error != cudaSuccess)
    return status_from_cuda(r.error, "launching the softmax kernel failed");
  if (r.refusal != nullptr) return {StatusCode::unsupported, r.refusal};
  return {};
}

}  // namespace cuact::detail
