// The names docs/API.md's softmax example uses: attention scores
// [batch, heads, q, k] in fp16 and an additive mask [q, k].
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

#include <cuact/cuact.h>

extern const __half* d_scores;
extern __half* d_probs;
extern const __half* d_mask;
extern int64_t batch, heads, q, k, d;
extern cudaStream_t stream;
