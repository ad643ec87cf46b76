// Where the public activation descriptor meets the device functors, in one
// place: which functor a kind is, and its parameters built from the
// descriptor (reciprocals of parameters the functors multiply by, once per
// call). Host code only.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "cuact/activation.h"
#include "cuact/device/activations.cuh"

namespace cuact::detail {

static_assert(device::AllActivations::size == kNumActivationKinds,
              "one device functor per ActivationKind, in the same order");

// The functor of kind K for results rounded to Out.
template <std::size_t K, class Out>
using Functor = device::ActivationAt<K, Out>;

// A functor's parameters from the descriptor (the fields of its kind).
template <class P>
P params_from(const Activation& a);
template <>
inline device::NoParams params_from(const Activation&) { return {}; }
template <>
inline device::HardtanhParams params_from(const Activation& a) { return {a.lower, a.upper}; }
template <>
inline device::LeakyReluParams params_from(const Activation& a) { return {a.alpha}; }
template <>
inline device::ShrinkParams params_from(const Activation& a) { return {a.lambda}; }
template <>
inline device::ThresholdParams params_from(const Activation& a) { return {a.cutoff, a.value}; }
template <>
inline device::AlphaParams params_from(const Activation& a) { return {a.alpha}; }
template <>
inline device::CeluParams params_from(const Activation& a) { return {a.alpha, 1.0f / a.alpha}; }
template <>
inline device::SiluParams params_from(const Activation& a) { return {a.beta}; }
template <>
inline device::SoftplusParams params_from(const Activation& a) {
  return {a.beta, 1.0f / a.beta, a.cutoff};
}

template <std::size_t K>
using ParamsOf = typename Functor<K, float>::Params;

// Calls fn(std::integral_constant<std::size_t, K>{}) for the functor index K
// of `kind` (nothing for an unknown kind).
template <class Fn, std::size_t... K>
void visit_kind(ActivationKind kind, Fn&& fn, std::index_sequence<K...>) {
  ((static_cast<std::size_t>(kind) == K ? (fn(std::integral_constant<std::size_t, K>{}), 0) : 0),
   ...);
}
template <class Fn>
void visit_kind(ActivationKind kind, Fn&& fn) {
  visit_kind(kind, fn, std::make_index_sequence<kNumActivationKinds>{});
}

// Calls fn(functor) with the functor of act.kind for Out, built from act.
template <class Out, class Fn>
void visit_activation(const Activation& act, Fn&& fn) {
  visit_kind(act.kind, [&](auto k) {
    using F = Functor<decltype(k)::value, Out>;
    fn(F(params_from<typename F::Params>(act)));
  });
}

}  // namespace cuact::detail
