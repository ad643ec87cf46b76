// The softmax kernels run on the host, for CPU checks of each algorithm's
// per-row code (the CPU tests, and cuact-bench without a GPU). The
// simulation builds the call as the host API does (make_softmax_call,
// softmax_args, register_args_vectorized) and runs the kernels' own plans,
// loads, stores and per-lane / per-thread phases (cuda/softmax_phases.h) for
// every lane or thread of a row; only the reductions are host loops: the warp
// butterfly in the kernel's exact order, CUB's block reduction in its
// documented order (warp trees, then the warp aggregates in turn), a
// cluster's block values by the butterfly over ranks. Free of GoogleTest: a
// plan that breaks the kernels' own invariants throws std::logic_error.
#pragma once

#include <cstdint>

#include "cuact/cross_entropy.h"
#include "cuact/quantized.h"
#include "cuact/softmax.h"

namespace cuact::test {

// Runs `algorithm` over host buffers in dtype, the arguments already
// checked, and returns the algorithm it ran. A forced algorithm runs as
// forced (the caller checks that it takes the row); automatic runs what the
// dispatch picks on the simulated device, an H100 (its opt-in shared memory,
// clusters of up to 16 blocks). The simulated launch: block_threads, the
// block size of block_per_row's cached rows; cluster_ranks, the cluster size
// of cluster_per_row's cached rows (rows on pack boundaries take the
// register cluster that holds them); middle_y: middle_dim's threads along
// dim (0: as the launch plans it for an H100).
SoftmaxAlgorithm simulate_softmax(SoftmaxAlgorithm algorithm, Direction direction,
                                  const Softmax& op, DType dtype, const void* in, const void* grad,
                                  void* out, const SoftmaxShape& shape, int block_threads = 256,
                                  int cluster_ranks = 4, int middle_y = 0);
SoftmaxAlgorithm simulate_softmax(SoftmaxAlgorithm algorithm, Direction direction,
                                  const Softmax& op, DType dtype, const void* in, const void* grad,
                                  void* out, int64_t rows, int64_t cols, int block_threads = 256,
                                  int cluster_ranks = 4);

// The forward with a quantized output (cuact/quantized.h's
// softmax_forward) through the same kernels' code with the fp8 sink: the
// codes, and the amax, scale and scale_inv words as the device's passes and
// scale step leave them (host words here).
SoftmaxAlgorithm simulate_softmax_quantized(SoftmaxAlgorithm algorithm, const Softmax& op,
                                            DType dtype, const void* x, const QuantizedOutput& y,
                                            const SoftmaxShape& shape, int block_threads = 256,
                                            int cluster_ranks = 4, int middle_y = 0);

// The cross-entropy forward (cuact/cross_entropy.h) as the device runs it:
// the count step, the rows through the softmax kernels' code with the
// cross-entropy sink (algorithm as above; middle_dim never applies), and the
// reduce step, on host buffers (the workspace too), the arguments already
// checked.
SoftmaxAlgorithm simulate_cross_entropy(SoftmaxAlgorithm algorithm, const CrossEntropy& ce,
                                        DType dtype, const void* logits, int64_t rows,
                                        int64_t vocab, int64_t row_stride, const void* targets,
                                        IndexType target_type, const CrossEntropyOutputs& out,
                                        Workspace workspace, int block_threads = 256,
                                        int cluster_ranks = 4);

// The backward from the saved lse (cross_entropy_backward) likewise: the
// count step, then cross_entropy_backward_kernel's rows.
void simulate_cross_entropy_backward(const CrossEntropy& ce, DType dtype, const void* logits,
                                     int64_t rows, int64_t vocab, int64_t row_stride,
                                     const void* targets, IndexType target_type, const float* lse,
                                     const float* dloss, void* dlogits, Workspace workspace);

}  // namespace cuact::test
