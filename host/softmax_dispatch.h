// The softmax family's host policy: the call made of checked arguments, the
// plan of a call (which algorithm, which variant, what launch shape, for the
// current device) over an engine's kernels, and the dispatch to the dtype's
// engine (cuda/softmax_launch.h). Kernels run what the plan says; nothing
// here is device code.
#pragma once

#include "cuact/quantized.h"
#include "cuact/softmax.h"
#include "softmax_launch.h"

namespace cuact::detail {

// The call the host API makes of checked arguments: softmin's negated
// scale, the element sizes, the layout with its strides and dividers, the
// mask and causal settings in both directions (backward: the hidden columns).
SoftmaxCall make_softmax_call(Direction direction, const Softmax& op, DType dtype, const void* in,
                              const void* grad, void* out, const SoftmaxShape& shape);

// Whether the register kernels of `cfg` may take packs: every row of every
// buffer the call reads or writes starts on a pack boundary (the output's
// address counted in input elements: pack_address).
bool register_call_vectorized(const SoftmaxCall& call, const RegisterConfig& cfg);
// Whether a middle_dim thread may own a pack of inner positions.
bool middle_call_vectorized(const SoftmaxCall& call);

// The plan of a call over `kernels` (one direction of one engine) on the
// current device: the algorithm from the shape and row length
// (choose_softmax_for_shape), then that algorithm's variant and launch
// shape. Launches nothing. The device's limits and each kernel's facts are
// queried once and cached (device_limits.h).
SoftmaxLaunchPlan plan_softmax(const SoftmaxCall& call, const SoftmaxKernels& kernels);

// The engine a call of this dtype runs on (fp8: the quantized output's;
// cross_entropy: the cross-entropy epilogue's).
const SoftmaxEngine& softmax_engine_for(DType dtype, bool quantized, bool cross_entropy = false);

// Plans the call on its engine, then launches what the plan says. A
// quantized output where the library has no kernel image for the device
// (before compute capability 8.9) is refused: kNoFp8KernelForDevice.
SoftmaxLaunchResult launch_softmax(DType dtype, const SoftmaxCall& call, cudaStream_t stream);

// The Status of a launch result: a CUDA error, a refusal (unsupported), or ok.
Status softmax_status(const SoftmaxLaunchResult& r);

}  // namespace cuact::detail
