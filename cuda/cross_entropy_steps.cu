// The cross-entropy call's count and reduce steps (cross_entropy_steps.h):
// each thread's share into shared memory, then thread 0's fold in thread order.
#include <cuda_runtime.h>

#include "cross_entropy_steps.h"

namespace cuact::detail {

__global__ void __launch_bounds__(kCrossEntropyStepThreads)
    cross_entropy_count_kernel(CrossEntropyStore ce, int64_t rows, int64_t vocab) {
  __shared__ CountShare shares[kCrossEntropyStepThreads];
  shares[threadIdx.x] =
      count_share(ce, rows, vocab, static_cast<int>(threadIdx.x), kCrossEntropyStepThreads);
  __syncthreads();
  if (threadIdx.x == 0) write_counts(ce, shares, kCrossEntropyStepThreads);
}

__global__ void __launch_bounds__(kCrossEntropyStepThreads)
    cross_entropy_reduce_kernel(const float* loss, int64_t rows, const float* words, bool mean,
                                bool empty_mean_is_zero, float* reduced) {
  __shared__ float shares[kCrossEntropyStepThreads];
  shares[threadIdx.x] =
      loss_share(loss, rows, static_cast<int>(threadIdx.x), kCrossEntropyStepThreads);
  __syncthreads();
  if (threadIdx.x == 0)
    write_reduced(shares, kCrossEntropyStepThreads, mean ? words[kDenominatorWord] : 0.0f, mean,
                  empty_mean_is_zero, reduced);
}

cudaError_t launch_cross_entropy_count(const CrossEntropyStore& ce, int64_t rows, int64_t vocab,
                                       cudaStream_t stream) {
  CrossEntropyStore c = ce;
  void* args[] = {&c, &rows, &vocab};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&cross_entropy_count_kernel), dim3(1),
                          dim3(kCrossEntropyStepThreads), args, 0, stream);
}

cudaError_t launch_cross_entropy_reduce(const float* loss, int64_t rows, const float* words,
                                        bool mean, bool empty_mean_is_zero, float* reduced,
                                        cudaStream_t stream) {
  void* args[] = {&loss, &rows, &words, &mean, &empty_mean_is_zero, &reduced};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&cross_entropy_reduce_kernel), dim3(1),
                          dim3(kCrossEntropyStepThreads), args, 0, stream);
}

}  // namespace cuact::detail
