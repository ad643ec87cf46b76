// Builds the dispatch table for one dtype from the list of functors.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "activation_functors.cuh"
#include "activation_table.h"
#include "elementwise.cuh"

namespace cuact::detail {

// The three directions as elementwise ops over (in[, grad]).
template <class F>
struct ForwardOf {
  F f;
  __device__ auto operator()(float x) const { return f.forward(x); }
};
template <class F>
struct BackwardOf {
  F f;
  __device__ auto operator()(float x, float dy) const { return f.backward(x, dy); }
};
template <class F>
struct BackwardFromOutputOf {
  F f;
  __device__ auto operator()(float y, float dy) const { return f.backward_from_output(y, dy); }
};

template <class T, class F>
cudaError_t launch_forward(const Activation& act, const void* in, const void*, void* out,
                           int64_t n, cudaStream_t stream) {
  return launch_elementwise<T, 1>(ForwardOf<F>{F(act)}, static_cast<T*>(out),
                                  {static_cast<const T*>(in)}, n, stream);
}

template <class T, class F>
cudaError_t launch_backward(const Activation& act, const void* in, const void* grad, void* out,
                            int64_t n, cudaStream_t stream) {
  return launch_elementwise<T, 2>(BackwardOf<F>{F(act)}, static_cast<T*>(out),
                                  {static_cast<const T*>(in), static_cast<const T*>(grad)}, n,
                                  stream);
}

template <class T, class F>
cudaError_t launch_backward_from_output(const Activation& act, const void* in, const void* grad,
                                        void* out, int64_t n, cudaStream_t stream) {
  return launch_elementwise<T, 2>(BackwardFromOutputOf<F>{F(act)}, static_cast<T*>(out),
                                  {static_cast<const T*>(in), static_cast<const T*>(grad)}, n,
                                  stream);
}

template <class T, class F>
constexpr ActivationLaunchers launchers_for() {
  if constexpr (HasBackwardFromOutput<F>::value)
    return {&launch_forward<T, F>, &launch_backward<T, F>, &launch_backward_from_output<T, F>};
  else
    return {&launch_forward<T, F>, &launch_backward<T, F>, nullptr};
}

template <class T, size_t... K>
constexpr ActivationTable make_activation_table(std::index_sequence<K...>) {
  return {launchers_for<T, ActivationOpAt<K>>()...};
}

template <class T>
inline constexpr ActivationTable kActivationTable =
    make_activation_table<T>(std::make_index_sequence<kNumActivationKinds>{});

}  // namespace cuact::detail
