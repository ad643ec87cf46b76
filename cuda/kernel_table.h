// The one dispatch table of the row engine: for every data type, form,
// output store and activation in its list, the launcher of an explicitly
// instantiated kernel. Declared here
// for the host (host/row_calls.cpp); built in kernel_table.cuh, one
// translation unit per data type and group of forms (kernel_table.cu.in).
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>

#include "cuact/device/activations.cuh"
#include "forms.h"
#include "row_engine.h"

namespace cuact::detail {

inline constexpr std::size_t kActivations = device::AllActivations::size;

// What a form takes besides its functor (the call's run-time choices).
struct FormArgs {
  float scale = 1.0f;        // dropout: 1/(1 - p) in fp32
  bool from_output = false;  // backward: in[0] is the saved output y
  SlopeRule slope;           // PReLU, RReLU
  GluClamp glu;              // the MoE GLU forms' clamps
};

// The activation forms of a call (the kernels and the CPU emulation build them here).
template <class F, class T, bool Dropout, class O = T>
CUACT_HD ActivationForward<F, T, Dropout, O> forward_form(const F& f, const FormArgs& a) {
  return {f, a.scale};
}
template <class F, class T, bool Dropout, class O = T>
CUACT_HD ActivationBackward<F, T, Dropout, O> backward_form(const F& f, const FormArgs& a) {
  return {f, a.scale, a.from_output};
}
template <class F, class T>
CUACT_HD GatedBackward<F, T> gated_backward_form(const F& f, const FormArgs&) {
  return {f};
}
template <class F, class T>
CUACT_HD MoeGluForward<F, T> moe_glu_forward_form(const F& f, const FormArgs& a) {
  return {f, a.glu};
}
template <class F, class T>
CUACT_HD MoeGluBackward<F, T> moe_glu_backward_form(const F& f, const FormArgs& a) {
  return {f, a.glu};
}

// Enqueues one form of one activation; `params` points to the functor's Params.
using RowLauncher = cudaError_t (*)(const void* params, const FormArgs& args, const RowCall& call,
                                    cudaStream_t stream);
using ActivationLaunchers = std::array<RowLauncher, kActivations>;

// Per data type T (kernel_table_<dtype>_<group>.cu):
//   y = act(x + bias) [* gate], with or without dropout (and its mask)
template <class T> const ActivationLaunchers& forward_launchers(bool dropout);
//   dx = act'(x + bias) * dy [* m/(1-p)] (dbias), or from the saved output
template <class T> const ActivationLaunchers& backward_launchers(bool dropout);
//   the GLU gradient, both halves
template <class T> const ActivationLaunchers& gated_backward_launchers();
//   PReLU / RReLU (random: slopes drawn from the random stream)
template <class T> RowLauncher slope_launcher(bool backward, bool random);
//   the MoE GLU forward or backward (clamps, row weights, d weight): null
//   for the gates moe_glu_gate does not list
template <class T> const ActivationLaunchers& moe_glu_launchers(bool backward);
// Quantized outputs (fp8 codes through the output stage; the fp32 functor):
//   y = act(x + bias) [* gate], with or without dropout
template <class T> const ActivationLaunchers& quantized_forward_launchers(bool dropout);
//   dx = act'(x + bias) * dy (dbias from the unquantized products), or from y
template <class T> const ActivationLaunchers& quantized_backward_launchers();
// Block-scaled outputs (fp8 codes and a scale per block of 16 or 32 along a row):
//   y = act(x + bias) [* gate]
template <class T> const ActivationLaunchers& block_forward_launchers();
//   the same into NVFP4 (e2m1 codes, e4m3 scales per 16)
template <class T> const ActivationLaunchers& nvfp4_forward_launchers();

// The current recipe's scale step (one thread): step.run(*amax), amax null
// read as 0.
cudaError_t launch_scale_step(const float* amax, const ScaleStep& step, cudaStream_t stream);

// The second step of a reduction (dbias, dweight): each segment of fp32
// partials summed, rounded once to R (sum_partials.cu); over expert rows,
// segment t is written to logical token t's row (expert_rows.h).
template <class R>
cudaError_t launch_sum_partials(const float* partials, ReduceLayout layout,
                                const ExpertRowMap& experts, R* out, cudaStream_t stream);

}  // namespace cuact::detail
