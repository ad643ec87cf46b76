// Builds the fused dispatch table for one dtype: for every activation
// functor, the forward and backward launchers of the row engine with that
// functor's forms; and the slope forms (PReLU, RReLU).
#pragma once

#include <utility>

#include "activation_functors.cuh"
#include "fused_forms.h"
#include "fused_table.h"
#include "row_kernels.cuh"

namespace cuact::detail {

template <class T, class F>
cudaError_t launch_activation_forward(const FusedCall& c, cudaStream_t stream) {
  return launch_rows<T>(ActivationForwardForm<F>{F(c.act), c.dropout.scale}, c, stream);
}

template <class T, class F>
cudaError_t launch_activation_backward(const FusedCall& c, cudaStream_t stream) {
  return launch_rows<T>(ActivationBackwardForm<F>{F(c.act), c.dropout.scale}, c, stream);
}

template <class T, class F>
cudaError_t launch_gated_backward(const FusedCall& c, cudaStream_t stream) {
  return launch_rows<T>(GatedBackwardForm<F>{F(c.act)}, c, stream);
}

template <class T>
cudaError_t launch_slope_forward(const FusedCall& c, cudaStream_t stream) {
  return launch_rows<T>(SlopeForwardForm{c.slope}, c, stream);
}

template <class T>
cudaError_t launch_slope_backward(const FusedCall& c, cudaStream_t stream) {
  return launch_rows<T>(SlopeBackwardForm{c.slope}, c, stream);
}

template <class T, size_t... K>
constexpr FusedTable make_fused_table(std::index_sequence<K...>) {
  return {{FusedLaunchers{&launch_activation_forward<T, ActivationOpAt<K>>,
                          &launch_activation_backward<T, ActivationOpAt<K>>,
                          &launch_gated_backward<T, ActivationOpAt<K>>}...},
          FusedLaunchers{&launch_slope_forward<T>, &launch_slope_backward<T>, nullptr}};
}

template <class T>
inline constexpr FusedTable kFusedTable =
    make_fused_table<T>(std::make_index_sequence<kNumActivationKinds>{});

}  // namespace cuact::detail
