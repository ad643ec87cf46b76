// The names docs/API.md's quantized-output example uses (bf16 data, fp8 codes,
// the scale / amax / scale_inv words and fp32 dbias on the device).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include <cuact/cuact.h>

extern __nv_bfloat16 *d_x, *d_b, *d_dy, *d_db;
extern uint8_t* d_codes;
extern float *d_scale, *d_amax, *d_scale_inv;
extern void* d_ws;
extern int64_t n, rows, cols;
extern cudaStream_t stream;
