// The launcher of the reductions' second step (sum_partials.cuh), one unit
// for every output type.
#include "kernel_table.h"
#include "sum_partials.cuh"

namespace cuact::detail {

template <class T>
cudaError_t launch_sum_partials(const float* partials, ReduceLayout layout,
                                const ExpertRowMap& experts, T* out, cudaStream_t stream) {
  constexpr int64_t kWarps = kBlockThreads / 32;
  const int64_t wanted = (layout.segments + kWarps - 1) / kWarps;
  const int64_t blocks = wanted < (int64_t{1} << 20) ? wanted : (int64_t{1} << 20);
  ExpertRowMap map = experts;
  void* args[] = {&partials, &layout, &map, &out};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&sum_partials_kernel<T>),
                          dim3(static_cast<unsigned>(blocks)), dim3(kBlockThreads), args, 0, stream);
}

template cudaError_t launch_sum_partials<float>(const float*, ReduceLayout,
                                                const ExpertRowMap&, float*, cudaStream_t);
template cudaError_t launch_sum_partials<__half>(const float*, ReduceLayout,
                                                 const ExpertRowMap&, __half*, cudaStream_t);
template cudaError_t launch_sum_partials<__nv_bfloat16>(const float*, ReduceLayout,
                                                        const ExpertRowMap&, __nv_bfloat16*,
                                                        cudaStream_t);

}  // namespace cuact::detail
