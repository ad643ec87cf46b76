// What the host's softmax dispatch (host/softmax_dispatch.cpp) and the
// kernels' translation units share: the checked call, the kernels of one
// (input, output) pair by address, the plan the host makes for a call, and
// the per-dtype engines that launch it (built in softmax_kernels.cuh, one
// translation unit per dtype and output: softmax_<dtype>.cu and
// softmax_fp8_<dtype>.cu, generated from softmax_dtype.cu.in).
#pragma once

#include <cuda_runtime_api.h>

#include "cuact/softmax.h"
#include "cross_entropy_store.h"
#include "output_stage.h"
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
  int in_size = 4;             // bytes of an input element (in, grad, mask)
  int out_size = 4;            // bytes of an output element: in_size, or 1 (fp8 codes)
  QuantizedStore quantized;    // out_size 1: the output stage's scale, amax, scale_inv
  CrossEntropyStore cross_entropy;  // a cross-entropy call (targets set): the epilogue's arguments
  SoftmaxLayout layout;
  SoftmaxAlgorithm requested = SoftmaxAlgorithm::automatic;
};

struct SoftmaxLaunchResult {
  cudaError_t error = cudaSuccess;  // a device query or the launch failed
  const char* refusal = nullptr;    // static text: the forced algorithm cannot take the row
  SoftmaxAlgorithm algorithm = SoftmaxAlgorithm::automatic;  // what ran (or would run)
};

// One direction's kernels of one (input, output) pair, by address: the
// register variants by log2 span, block_per_row's cached kernels by block
// size (kBlockThreadCandidates), and one each of the others.
struct SoftmaxKernels {
  const void* registers[kRegisterConfigs] = {};
  const void* blocks[kBlockCandidates] = {};
  const void* cluster = nullptr;
  const void* register_cluster = nullptr;
  const void* streaming = nullptr;
  const void* middle = nullptr;
};

// What a call launches: the kernel, the settings the plan adds to the call's
// arguments, and the launch shape (clusters of `cluster_ranks` blocks when
// > 0, `blocks` then counting clusters); or why nothing can run.
struct SoftmaxLaunchPlan {
  SoftmaxLaunchResult result;  // the algorithm; an error or a refusal: no launch
  const void* kernel = nullptr;
  SoftmaxLayout layout;     // the call's, with the dividers and row step set
  bool vectorized = false;  // SoftmaxArgs::vectorized
  MiddlePlan middle;        // middle_dim's block shape
  int blocks = 0;
  int threads = 0;
  int64_t smem_bytes = 0;
  int cluster_ranks = 0;
};

// One (input, output) pair's kernels and the launch of a plan made for them
// (the call's arguments typed for the kernel). backward: empty where the
// output is neither the input's type nor the cross-entropy's (whose
// backward, from the saved lse, is one streaming-shaped kernel).
struct SoftmaxEngine {
  SoftmaxKernels forward;
  SoftmaxKernels backward;
  cudaError_t (*launch)(const SoftmaxCall&, const SoftmaxLaunchPlan&, cudaStream_t) = nullptr;
};

// Outputs of the input's type.
const SoftmaxEngine& softmax_engine_f32();
const SoftmaxEngine& softmax_engine_f16();
const SoftmaxEngine& softmax_engine_bf16();
// fp8 codes (forward only; compiled for the architectures from 89 on).
const SoftmaxEngine& softmax_fp8_engine_f32();
const SoftmaxEngine& softmax_fp8_engine_f16();
const SoftmaxEngine& softmax_fp8_engine_bf16();
// The cross-entropy epilogue (forward only; cross_entropy_sink.h).
const SoftmaxEngine& softmax_cross_entropy_engine_f32();
const SoftmaxEngine& softmax_cross_entropy_engine_f16();
const SoftmaxEngine& softmax_cross_entropy_engine_bf16();

}  // namespace cuact::detail
