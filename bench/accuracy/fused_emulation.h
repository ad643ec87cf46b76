// The row engine's kernels run on the host: a CPU emulator of the fused
// forms and plain activations, for the CPU tests and for cuact-bench without
// a GPU (the accuracy rule and judges: fused_accuracy.h). Free of
// GoogleTest: what it cannot emulate throws.
#pragma once

#include <cstdint>
#include <vector>

#include "cuact/activation.h"
#include "row_calls.h"

namespace cuact::test {

// Runs a request on host buffers exactly as the row engine's kernel would:
// every block and thread of its planned grid (device_blocks: the block
// budget a device would give a launch that does not reduce) through the
// kernel's own run_tiles / run_extras and block-partial code; each segment of
// partials is then summed in fp32 (the GPU's warp-tree order differs; the
// tolerance covers it). A reducing call's workspace must be a host buffer of
// the queried size. Emulated functors (emulated_activations()): identity,
// relu, leaky_relu (a parameter), hardswish (rounding to odd), gelu,
// sigmoid (backward from the output) and silu (a parameter; SwiGLU's gate);
// the engine is the same for every functor, and fused_functor_test runs
// every functor's forms. Throws std::invalid_argument for another functor,
// std::logic_error where the plan breaks the launch's own rules.
void emulate_fused(const detail::RowRequest& request, int64_t device_blocks);
std::vector<Activation> emulated_activations();

// The block budget run_rows gives a launch that does not reduce on an H100
// SXM (132 SMs of 2048 threads).
inline constexpr int64_t kH100DeviceBlocks =
    int64_t{132} * (2048 / detail::kBlockThreads) * detail::kWaves;

}  // namespace cuact::test
