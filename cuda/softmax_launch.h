// The softmax family's per-dtype launchers, declared for the host API
// (host/softmax_api.cpp); built in softmax_kernels.cuh, one translation unit
// per dtype (softmax_<dtype>.cu, generated from softmax_dtype.cu.in).
#pragma once

#include <cuda_runtime_api.h>

#include "cuact/softmax.h"
#include "softmax_plan.h"

namespace cuact::detail {

// One checked call (outer > 0, dim > 0, pointers valid for the direction).
struct SoftmaxCall {
  bool backward = false;
  bool log = false;    // log_softmax
  float scale = 1.0f;  // s, already negated for softmin
  const void* in = nullptr;
  const void* grad = nullptr;
  void* out = nullptr;
  const void* mask = nullptr;  // forward: added; backward: where the forward hid columns
  SoftmaxLayout layout;
  SoftmaxAlgorithm requested = SoftmaxAlgorithm::automatic;
};

struct SoftmaxLaunchResult {
  cudaError_t error = cudaSuccess;  // a device query or the launch failed
  const char* refusal = nullptr;    // static text: the forced algorithm cannot take the row
  SoftmaxAlgorithm algorithm = SoftmaxAlgorithm::automatic;  // what ran (or would run)
};

// The call the host API makes of checked arguments (host/softmax_api.cpp):
// softmin's negated scale, the layout with its strides and dividers, the
// mask and causal settings in both directions (backward: the hidden columns).
SoftmaxCall make_softmax_call(Direction direction, const Softmax& op, const void* in,
                              const void* grad, void* out, const SoftmaxShape& shape);

SoftmaxLaunchResult launch_softmax_f32(const SoftmaxCall& call, cudaStream_t stream);
SoftmaxLaunchResult launch_softmax_f16(const SoftmaxCall& call, cudaStream_t stream);
SoftmaxLaunchResult launch_softmax_bf16(const SoftmaxCall& call, cudaStream_t stream);

// The algorithm the call would run (its plan alone; nothing is launched).
SoftmaxLaunchResult plan_softmax_f32(const SoftmaxCall& call);
SoftmaxLaunchResult plan_softmax_f16(const SoftmaxCall& call);
SoftmaxLaunchResult plan_softmax_bf16(const SoftmaxCall& call);

}  // namespace cuact::detail
