// How each fused entry point maps onto the row engine: the FusedCall (streams,
// strides, parameter, neutral fills, random stream, reduction) and which
// launcher of the dispatch table runs it. Arguments are checked before these
// are built. The GPU tests build calls here too, to force launch geometries.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuact/fused.h"
#include "fused_table.h"

namespace cuact::detail {

enum class FusedOp { activation_forward, activation_backward, gated_backward, slope_forward,
                     slope_backward };

struct FusedLaunch {
  FusedOp op = FusedOp::activation_forward;
  FusedCall call;
};

FusedLaunch bias_activation_forward_launch(const Activation& act, DType dtype, const void* x,
                                           const void* bias, void* y, int64_t rows, int64_t cols,
                                           const Dropout& dropout, uint8_t* mask);
FusedLaunch bias_activation_backward_launch(const Activation& act, DType dtype, const void* x,
                                            const void* bias, const void* dy, void* dx,
                                            void* dbias, int64_t rows, int64_t cols,
                                            const Dropout& dropout, void* workspace);
FusedLaunch glu_forward_launch(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows,
                               int64_t d);
FusedLaunch glu_backward_launch(const Glu& glu, DType dtype, const void* x, const void* dy,
                                void* dx, int64_t rows, int64_t d);
FusedLaunch prelu_forward_launch(DType dtype, const void* x, const void* weight, void* y,
                                 int64_t outer, int64_t channels, int64_t inner);
FusedLaunch prelu_backward_launch(DType dtype, const void* x, const void* weight, const void* dy,
                                  void* dx, void* dweight, int64_t outer, int64_t channels,
                                  int64_t inner, void* workspace);
FusedLaunch rrelu_launch(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* out,
                         int64_t n, bool backward);

// PReLU's [outer, C, inner] as a row plan: one row per (outer, c) with the
// weight by row channel, or, when inner == 1, one row per outer with the
// weight by column.
struct PreluLayout {
  int64_t rows, cols;
  ParamMode param;
  ReduceMode reduce;
};
PreluLayout prelu_layout(int64_t outer, int64_t channels, int64_t inner);

// Workspace bytes of the reducing calls (0 when there is nothing to reduce).
int64_t bias_backward_workspace(DType dtype, int64_t rows, int64_t cols);
int64_t prelu_backward_workspace(DType dtype, int64_t outer, int64_t channels, int64_t inner);

// Enqueues a launch whose arguments were checked (rows, cols > 0); maps the CUDA result.
Status run_fused(DType dtype, const FusedLaunch& launch, cudaStream_t stream);

}  // namespace cuact::detail
