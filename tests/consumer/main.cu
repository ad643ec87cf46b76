// Calls cuact the way an application does: on its own stream, checking the
// status. Without a GPU the call must report no_device, not crash.
#include <cuact/cuact.h>

#include <cstdio>

int main() {
  float* x = nullptr;
  const int64_t n = 1 << 10;
  if (cudaMalloc(&x, n * sizeof(float)) != cudaSuccess) {
    const cuact::Status s = cuact::activation_forward(cuact::Activation::gelu(),
                                                      reinterpret_cast<const float*>(16),
                                                      reinterpret_cast<float*>(1 << 20), n);
    std::printf("no GPU: %s\n", s.message().c_str());
    return s.code() == cuact::StatusCode::no_device ? 0 : 1;
  }
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  cudaMemsetAsync(x, 0, n * sizeof(float), stream);
  const cuact::Status s = cuact::activation_forward(cuact::Activation::silu(), x, x, n, stream);
  cudaStreamSynchronize(stream);
  std::printf("silu in place: %s\n", s.message().c_str());
  cudaStreamDestroy(stream);
  cudaFree(x);
  return s.ok() ? 0 : 1;
}
