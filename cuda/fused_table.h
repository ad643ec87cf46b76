// The fused forms' dispatch table: (dtype, activation kind, direction) ->
// the launcher of an explicitly instantiated row-engine kernel, plus the
// slope forms (PReLU, RReLU) per dtype. Declared here for the host API; built
// in fused_table.cuh, one translation unit per dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>

#include "cuact/activation.h"
#include "fused_forms.h"
#include "row_plan.h"

namespace cuact::detail {

// One fused launch whose arguments have been checked (rows > 0, cols > 0), in
// untyped pointers: the streams of the row plan, the parameter, the mask, the
// random stream, the form's parameters and the reduction.
struct FusedCall {
  int64_t rows = 0, cols = 0;
  const void* in[kMaxInStreams] = {};
  int64_t in_stride[kMaxInStreams] = {};
  float in_fill[kMaxInStreams] = {};  // what an absent stream reads (exact in every dtype)
  void* out[kMaxOutStreams] = {};
  int64_t out_stride[kMaxOutStreams] = {};
  const void* param = nullptr;
  ParamMode param_mode = ParamMode::none;
  float param_fill = 0.0f;  // what an absent parameter reads
  int64_t channels = 1;
  uint8_t* mask = nullptr;
  bool use_random = false;
  RandomStream random;
  Activation act;       // activation forms
  DropoutRule dropout;  // activation forms
  SlopeRule slope;      // slope forms
  ReduceMode reduce = ReduceMode::none;  // backward forms: sums into reduce_out
  void* reduce_out = nullptr;
  void* workspace = nullptr;  // at least reduction_workspace_bytes(...)
  int64_t max_blocks = 0;     // 0: sized to the current device; > 0: at most this many (tests)
};

using FusedLauncher = cudaError_t (*)(const FusedCall& call, cudaStream_t stream);

struct FusedLaunchers {
  FusedLauncher forward = nullptr;         // bias / GLU / dropout (ActivationForwardForm)
  FusedLauncher backward = nullptr;        // bias / dropout (ActivationBackwardForm)
  FusedLauncher gated_backward = nullptr;  // GLU (GatedBackwardForm)
};

struct FusedTable {
  std::array<FusedLaunchers, kNumActivationKinds> activation;
  FusedLaunchers slope;  // PReLU and RReLU: forward and backward
};

const FusedTable& fused_table(DType dtype);

// The per-dtype tables (cuda/fused_table_<dtype>.cu).
const FusedTable& fused_table_f32();
const FusedTable& fused_table_f16();
const FusedTable& fused_table_bf16();

}  // namespace cuact::detail
