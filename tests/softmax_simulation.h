// The softmax kernels run on the host, for CPU tests of each algorithm's
// per-row code. The simulation builds the call as the host API does
// (make_softmax_call, softmax_args, register_args_vectorized) and runs the
// kernels' own plans, loads, stores and per-lane / per-thread phases
// (cuda/softmax_phases.h) for every lane or thread of a row; only the
// reductions are host loops: the warp butterfly in the kernel's exact order,
// CUB's block reduction in its documented order (warp trees, then the warp
// aggregates in turn), a cluster's block values by the butterfly over ranks.
#pragma once

#include <cstdint>

#include "cuact/softmax.h"

namespace cuact::test {

// Runs a forced `algorithm` (not automatic) over host buffers in dtype, the
// arguments already checked. block_threads: the block_per_row block size;
// cluster_ranks: the cluster_per_row cluster size; middle_y: middle_dim's
// threads along dim (0: as the launch plans it for an H100).
void simulate_softmax(SoftmaxAlgorithm algorithm, Direction direction, const Softmax& op,
                      DType dtype, const void* in, const void* grad, void* out,
                      const SoftmaxShape& shape, int block_threads = 256, int cluster_ranks = 4,
                      int middle_y = 0);
void simulate_softmax(SoftmaxAlgorithm algorithm, Direction direction, const Softmax& op,
                      DType dtype, const void* in, const void* grad, void* out, int64_t rows,
                      int64_t cols, int block_threads = 256, int cluster_ranks = 4);

}  // namespace cuact::test
