// expect: no matching function
// bias_activation_backward's stream passed where the workspace stands (the
// parameters with defaults before the stream): it must not compile.
#include <cuda_bf16.h>

#include <cuact/cuact.h>

void misuse(const __nv_bfloat16* x, const __nv_bfloat16* dy, __nv_bfloat16* dx,
            cudaStream_t stream) {
  cuact::bias_activation_backward(cuact::Activation::gelu(), x, nullptr, dy, dx, nullptr, 4, 8,
                                  cuact::Dropout{0.1f, 1, 2}, stream);
}
