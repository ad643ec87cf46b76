// expect: no matching function
// prelu_backward's stream passed where the workspace stands: it must not compile.
#include <cuda_fp16.h>

#include <cuact/cuact.h>

void misuse(const __half* x, const __half* w, const __half* dy, __half* dx, cudaStream_t stream) {
  cuact::prelu_backward(x, w, dy, dx, nullptr, 2, 8, 3, stream);
}
