// The names README.md's first example uses.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>

extern __nv_bfloat16 *d_x, *d_y, *d_dy, *d_dx;
extern int64_t n;
extern cudaStream_t stream;
