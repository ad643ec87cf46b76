// Builds the dispatch table's arrays for one data type from the functor list
// (include/cuact/device/activations.cuh) and the forms (forms.h).
#pragma once

#include <utility>

#include "kernel_table.h"
#include "row_kernel.cuh"

namespace cuact::detail {

template <std::size_t K, class T>
using FunctorAt = device::ActivationAt<K, T>;

template <class F>
CUACT_HD F functor_from(const void* params) {
  return F(*static_cast<const typename F::Params*>(params));
}

template <class T, class F, bool Dropout, class O = T>
cudaError_t launch_forward(const void* params, const FormArgs& a, const RowCall& c, cudaStream_t s) {
  return launch_rows(forward_form<F, T, Dropout, O>(functor_from<F>(params), a), c, s);
}

template <class T, class F, bool Dropout, class O = T>
cudaError_t launch_backward(const void* params, const FormArgs& a, const RowCall& c, cudaStream_t s) {
  return launch_rows(backward_form<F, T, Dropout, O>(functor_from<F>(params), a), c, s);
}

template <class T, class F>
cudaError_t launch_gated_backward(const void* params, const FormArgs& a, const RowCall& c,
                                  cudaStream_t s) {
  return launch_rows(gated_backward_form<F, T>(functor_from<F>(params), a), c, s);
}

template <class T, class F, bool Backward>
cudaError_t launch_moe_glu(const void* params, const FormArgs& a, const RowCall& c, cudaStream_t s) {
  if constexpr (Backward)
    return launch_rows(moe_glu_backward_form<F, T>(functor_from<F>(params), a), c, s);
  else
    return launch_rows(moe_glu_forward_form<F, T>(functor_from<F>(params), a), c, s);
}

template <class T, bool Backward, bool Random>
cudaError_t launch_slope(const void*, const FormArgs& a, const RowCall& c, cudaStream_t s) {
  if constexpr (Backward)
    return launch_rows(SlopeBackward<T, Random>{a.slope}, c, s);
  else
    return launch_rows(SlopeForward<T, Random>{a.slope}, c, s);
}

// The launcher of activation K for each form (a function per K: g++ cannot
// expand a pack through the functor list's alias template directly).
template <class T, bool Dropout, std::size_t K>
constexpr RowLauncher forward_at() {
  return &launch_forward<T, FunctorAt<K, T>, Dropout>;
}
template <class T, bool Dropout, std::size_t K>
constexpr RowLauncher backward_at() {
  return &launch_backward<T, FunctorAt<K, T>, Dropout>;
}
// Quantized outputs compute with the fp32 functor (the stage rounds once more).
template <class T, bool Dropout, std::size_t K>
constexpr RowLauncher quantized_forward_at() {
  return &launch_forward<T, FunctorAt<K, float>, Dropout, Code8>;
}
template <class T, std::size_t K>
constexpr RowLauncher quantized_backward_at() {
  return &launch_backward<T, FunctorAt<K, float>, false, Code8>;
}
// Block-scaled outputs (fp8 codes with a scale per block; the fp32 functor).
template <class T, std::size_t K>
constexpr RowLauncher block_forward_at() {
  return &launch_forward<T, FunctorAt<K, float>, false, BlockCode8>;
}
template <class T, std::size_t K>
constexpr RowLauncher nvfp4_forward_at() {
  return &launch_forward<T, FunctorAt<K, float>, false, BlockCode4>;
}
template <class T, std::size_t K>
constexpr RowLauncher gated_at() {
  return &launch_gated_backward<T, FunctorAt<K, T>>;
}

template <class T, bool Backward, std::size_t K>
constexpr RowLauncher moe_glu_at() {
  if constexpr (moe_glu_gate(static_cast<ActivationKind>(K)))
    return &launch_moe_glu<T, FunctorAt<K, T>, Backward>;
  else
    return nullptr;
}

template <class T, bool Dropout, std::size_t... K>
constexpr ActivationLaunchers forward_array(std::index_sequence<K...>) {
  return {forward_at<T, Dropout, K>()...};
}
template <class T, bool Dropout, std::size_t... K>
constexpr ActivationLaunchers backward_array(std::index_sequence<K...>) {
  return {backward_at<T, Dropout, K>()...};
}
template <class T, bool Dropout, std::size_t... K>
constexpr ActivationLaunchers quantized_forward_array(std::index_sequence<K...>) {
  return {quantized_forward_at<T, Dropout, K>()...};
}
template <class T, std::size_t... K>
constexpr ActivationLaunchers quantized_backward_array(std::index_sequence<K...>) {
  return {quantized_backward_at<T, K>()...};
}
template <class T, std::size_t... K>
constexpr ActivationLaunchers block_forward_array(std::index_sequence<K...>) {
  return {block_forward_at<T, K>()...};
}
template <class T, std::size_t... K>
constexpr ActivationLaunchers nvfp4_forward_array(std::index_sequence<K...>) {
  return {nvfp4_forward_at<T, K>()...};
}
template <class T, bool Backward, std::size_t... K>
constexpr ActivationLaunchers moe_glu_array(std::index_sequence<K...>) {
  return {moe_glu_at<T, Backward, K>()...};
}
template <class T, std::size_t... K>
constexpr ActivationLaunchers gated_array(std::index_sequence<K...>) {
  return {gated_at<T, K>()...};
}

template <class T>
const ActivationLaunchers& forward_launchers(bool dropout) {
  static constexpr ActivationLaunchers plain = forward_array<T, false>(std::make_index_sequence<kActivations>{});
  static constexpr ActivationLaunchers dropped = forward_array<T, true>(std::make_index_sequence<kActivations>{});
  return dropout ? dropped : plain;
}

template <class T>
const ActivationLaunchers& backward_launchers(bool dropout) {
  static constexpr ActivationLaunchers plain = backward_array<T, false>(std::make_index_sequence<kActivations>{});
  static constexpr ActivationLaunchers dropped = backward_array<T, true>(std::make_index_sequence<kActivations>{});
  return dropout ? dropped : plain;
}

template <class T>
const ActivationLaunchers& gated_backward_launchers() {
  static constexpr ActivationLaunchers table = gated_array<T>(std::make_index_sequence<kActivations>{});
  return table;
}

template <class T>
const ActivationLaunchers& quantized_forward_launchers(bool dropout) {
  static constexpr ActivationLaunchers plain =
      quantized_forward_array<T, false>(std::make_index_sequence<kActivations>{});
  static constexpr ActivationLaunchers dropped =
      quantized_forward_array<T, true>(std::make_index_sequence<kActivations>{});
  return dropout ? dropped : plain;
}

template <class T>
const ActivationLaunchers& quantized_backward_launchers() {
  static constexpr ActivationLaunchers table =
      quantized_backward_array<T>(std::make_index_sequence<kActivations>{});
  return table;
}

template <class T>
const ActivationLaunchers& block_forward_launchers() {
  static constexpr ActivationLaunchers table =
      block_forward_array<T>(std::make_index_sequence<kActivations>{});
  return table;
}

template <class T>
const ActivationLaunchers& nvfp4_forward_launchers() {
  static constexpr ActivationLaunchers table =
      nvfp4_forward_array<T>(std::make_index_sequence<kActivations>{});
  return table;
}

template <class T>
const ActivationLaunchers& moe_glu_launchers(bool backward) {
  static constexpr ActivationLaunchers forward =
      moe_glu_array<T, false>(std::make_index_sequence<kActivations>{});
  static constexpr ActivationLaunchers gradient =
      moe_glu_array<T, true>(std::make_index_sequence<kActivations>{});
  return backward ? gradient : forward;
}

template <class T>
RowLauncher slope_launcher(bool backward, bool random) {
  if (backward) return random ? &launch_slope<T, true, true> : &launch_slope<T, true, false>;
  return random ? &launch_slope<T, false, true> : &launch_slope<T, false, false>;
}

}  // namespace cuact::detail
