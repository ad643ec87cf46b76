// The generic elementwise engine: applies an fp32 functor to N input buffers
// and writes one output buffer, any dtype, any length, any element-aligned
// pointers. It owns everything about memory (16-byte packs, the alignment
// fallback, 64-bit indices, the grid); the functor owns the math.
//
//   Op: float operator()(float in0, ...) const  (Arity inputs)
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>

#include "device_limits.h"
#include "numeric.cuh"
#include "pack_plan.h"

namespace cuact::detail {

template <class T, int Arity>
struct ElementwiseBuffers {
  T* out;
  const T* in[Arity];
};

template <class Op, class T, int Arity, size_t... I>
__device__ __forceinline__ T apply_at(const Op& op, const T (&values)[Arity],
                                      std::index_sequence<I...>) {
  return narrow<T>(op(to_float(values[I])...));
}

template <class T, class Op, int Arity>
__global__ void __launch_bounds__(kBlockThreads)
    elementwise_kernel(Op op, ElementwiseBuffers<T, Arity> buf, PackPlan plan) {
  using P = Pack<T>;
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t num_threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const auto lanes = std::make_index_sequence<Arity>{};
  for_each_assigned(
      plan, thread, num_threads,
      [&](int64_t first) {
        P in[Arity];
#pragma unroll
        for (int k = 0; k < Arity; ++k) in[k] = *reinterpret_cast<const P*>(buf.in[k] + first);
        P out;
#pragma unroll
        for (int j = 0; j < P::kWidth; ++j) {
          T lane[Arity];
#pragma unroll
          for (int k = 0; k < Arity; ++k) lane[k] = in[k].v[j];
          out.v[j] = apply_at(op, lane, lanes);
        }
        *reinterpret_cast<P*>(buf.out + first) = out;
      },
      [&](int64_t i) {
        T lane[Arity];
#pragma unroll
        for (int k = 0; k < Arity; ++k) lane[k] = buf.in[k][i];
        buf.out[i] = apply_at(op, lane, lanes);
      });
}

// Enqueues op over n elements on `stream` (n > 0, pointers checked by the
// caller). Returns the error of querying the current device or of the launch.
template <class T, int Arity, class Op>
cudaError_t launch_elementwise(const Op& op, T* out, const std::array<const T*, Arity>& in,
                               int64_t n, cudaStream_t stream) {
  ElementwiseBuffers<T, Arity> buf{out, {}};
  std::uintptr_t addresses[Arity + 1] = {reinterpret_cast<std::uintptr_t>(out)};
  for (int k = 0; k < Arity; ++k) {
    buf.in[k] = in[k];
    addresses[k + 1] = reinterpret_cast<std::uintptr_t>(in[k]);
  }
  const PackPlan plan = make_pack_plan(n, sizeof(T), addresses, Arity + 1);

  int sm_count = 0, threads_per_sm = 0;
  if (const cudaError_t err = current_device_occupancy(&sm_count, &threads_per_sm);
      err != cudaSuccess)
    return err;

  const LaunchGeometry g = elementwise_geometry(plan.work_items(), sm_count, threads_per_sm);
  void* args[] = {const_cast<Op*>(&op), &buf, const_cast<PackPlan*>(&plan)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&elementwise_kernel<T, Op, Arity>),
                          dim3(g.blocks), dim3(g.threads), args, 0, stream);
}

}  // namespace cuact::detail
