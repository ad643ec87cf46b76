// docs/API.md, the cross-entropy example.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include <cuact/cuact.h>

extern float* d_loss;
extern void* d_logits;
extern const int64_t* d_targets;
extern void* d_workspace;
extern int64_t rows, vocab;
extern cudaStream_t stream;
