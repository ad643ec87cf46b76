// The names docs/API.md's fused example uses (bf16 data, a uint8 keep-mask).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include <cuact/cuact.h>

extern __nv_bfloat16 *d_h, *d_y, *d_dy, *d_dh, *d_x, *d_b, *d_dx, *d_db;
extern uint8_t* d_mask;
extern void* d_ws;
extern float *d_route, *d_droute;  // an MoE expert's routing weights [tokens] and their gradient
extern const int32_t* d_counts;  // tokens per expert of a masked expert buffer
extern int64_t tokens, ffn, rows, cols, experts, capacity;
extern uint64_t seed, step;
extern cudaStream_t stream;
