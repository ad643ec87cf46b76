// The one dispatch table: (dtype, activation kind, direction) -> launcher of
// an explicitly instantiated kernel. Declared here for the host API; built in
// activation_table.cuh, one translation unit per dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>

#include "cuact/activation.h"

namespace cuact::detail {

// Enqueues one activation call whose arguments have been checked (n > 0).
// forward: (x, unused, y); backward: (x, dy, dx); backward_from_output: (y, dy, dx).
using ActivationLauncher = cudaError_t (*)(const Activation& act, const void* in,
                                           const void* grad, void* out, int64_t n,
                                           cudaStream_t stream);

struct ActivationLaunchers {
  ActivationLauncher forward;
  ActivationLauncher backward;
  ActivationLauncher backward_from_output;  // null where the functor has no such form
};

using ActivationTable = std::array<ActivationLaunchers, kNumActivationKinds>;

const ActivationTable& activation_table(DType dtype);

// The per-dtype tables (cuda/activation_table_<dtype>.cu).
const ActivationTable& activation_table_f32();
const ActivationTable& activation_table_f16();
const ActivationTable& activation_table_bf16();

}  // namespace cuact::detail
