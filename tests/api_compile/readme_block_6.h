// The names docs/API.md's block-scaled example uses (bf16 x on the device,
// the codes and the scales' bytes).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include <cuact/cuact.h>

extern __nv_bfloat16* d_x;
extern uint8_t *d_codes, *d_scales;
extern int64_t tokens;
extern cudaStream_t stream;
