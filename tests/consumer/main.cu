// Calls cuact the way an application does: on its own stream, checking the
// status. Without a GPU the call must report no_device, not crash. Also uses
// the installed header-only functors in its own kernel (and on the host).
#include <cuact/cuact.h>
#include <cuact/reference.h>
#include <cuact/device/activations.cuh>

#include <cmath>
#include <cstdio>

// bias + GELU in the application's own kernel, with cuact's math.
__global__ void own_bias_gelu(const __nv_bfloat16* x, float bias, __nv_bfloat16* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const cuact::device::Gelu<__nv_bfloat16> gelu{{}};
  if (i < n) y[i] = cuact::device::narrow<__nv_bfloat16>(gelu.forward(cuact::device::to_float(x[i]) + bias));
}

int main() {
  // The functors run on the host too: gelu(0) = 0, relu(-1) = 0, gelu(1) ~ 0.8413,
  // as the CPU reference (cuact::reference) says.
  const cuact::device::Gelu<float> gelu{{}};
  const float g1 = gelu.forward(1.0f);
  const double r1 = cuact::reference::forward(cuact::Activation::gelu(), 1.0);
  if (gelu.forward(0.0f) != 0.0f || cuact::device::Relu<float>{{}}.forward(-1.0f) != 0.0f ||
      !(g1 > 0.8413f && g1 < 0.8414f) || !(std::fabs(g1 - r1) < 1e-6)) {
    std::printf("device functors on the host: wrong values\n");
    return 1;
  }
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
  auto* h = reinterpret_cast<__nv_bfloat16*>(x);  // the same memory as n bf16 values
  own_bias_gelu<<<(n + 255) / 256, 256, 0, stream>>>(h, 0.5f, h, static_cast<int>(n));
  const bool own_ok = cudaGetLastError() == cudaSuccess;
  cudaStreamSynchronize(stream);
  std::printf("silu in place: %s\n", s.message().c_str());
  cudaStreamDestroy(stream);
  cudaFree(x);
  std::printf("own kernel with cuact's functor: %s\n", own_ok ? "launched" : "launch failed");
  return s.ok() && own_ok ? 0 : 1;
}
