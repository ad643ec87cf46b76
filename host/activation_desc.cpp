// Activation descriptors, their names and parameter checks; dtype and status names.
#include <cmath>
#include <string>

#include "activation_params.h"
#include "dtype_list.h"
#include "cuact/activation.h"

namespace cuact {

namespace {

bool known_kind(ActivationKind kind) {
  const int k = static_cast<int>(kind);
  return k >= 0 && k < kNumActivationKinds;
}

Status bad(const char* detail) { return {StatusCode::invalid_parameter, detail}; }

}  // namespace

const char* activation_name(ActivationKind kind) {
  const char* name = "unknown";
  detail::visit_kind(kind, [&](auto k) { name = detail::Functor<decltype(k)::value, float>::kName; });
  return name;
}

Activation Activation::make(ActivationKind kind, float Activation::*field, float value) {
  Activation a = make(kind);
  a.*field = value;
  return a;
}

Activation Activation::hardtanh(float lower, float upper) {
  Activation a = make(ActivationKind::hardtanh, &Activation::lower, lower);
  a.upper = upper;
  return a;
}
Activation Activation::leaky_relu(float slope) {
  return make(ActivationKind::leaky_relu, &Activation::alpha, slope);
}
Activation Activation::elu(float alpha) { return make(ActivationKind::elu, &Activation::alpha, alpha); }
Activation Activation::celu(float alpha) {
  return make(ActivationKind::celu, &Activation::alpha, alpha);
}
Activation Activation::silu(float beta) { return make(ActivationKind::silu, &Activation::beta, beta); }
Activation Activation::softplus(float beta, float cutoff) {
  Activation a = make(ActivationKind::softplus, &Activation::beta, beta);
  a.cutoff = cutoff;
  return a;
}
Activation Activation::hardshrink(float lambda) {
  return make(ActivationKind::hardshrink, &Activation::lambda, lambda);
}
Activation Activation::softshrink(float lambda) {
  return make(ActivationKind::softshrink, &Activation::lambda, lambda);
}
Activation Activation::threshold(float t, float v) {
  Activation a = make(ActivationKind::threshold, &Activation::cutoff, t);
  a.value = v;
  return a;
}

Activation Activation::with_defaults(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::hardtanh: return hardtanh();
    case ActivationKind::leaky_relu: return leaky_relu();
    case ActivationKind::elu: return elu();
    case ActivationKind::celu: return celu();
    case ActivationKind::silu: return silu();
    case ActivationKind::softplus: return softplus();
    case ActivationKind::hardshrink: return hardshrink();
    case ActivationKind::softshrink: return softshrink();
    case ActivationKind::threshold: return threshold(0.0f, 0.0f);
    default: return make(kind);
  }
}

Status validate(const Activation& act) {
  using std::isnan;
  switch (act.kind) {
    case ActivationKind::hardtanh:
      if (isnan(act.lower) || isnan(act.upper)) return bad("hardtanh bounds must not be NaN");
      if (act.lower > act.upper) return bad("hardtanh needs lower <= upper");
      return {};
    case ActivationKind::leaky_relu:
      return isnan(act.alpha) ? bad("leaky_relu slope must not be NaN") : Status{};
    case ActivationKind::elu:
      return isnan(act.alpha) ? bad("elu alpha must not be NaN") : Status{};
    case ActivationKind::celu:
      if (isnan(act.alpha)) return bad("celu alpha must not be NaN");
      return act.alpha == 0.0f ? bad("celu alpha must not be 0") : Status{};
    case ActivationKind::silu:
      return std::isfinite(act.beta) ? Status{} : bad("silu beta must be finite");
    case ActivationKind::softplus:
      if (!(act.beta > 0.0f) || std::isinf(act.beta))
        return bad("softplus beta must be positive and finite");
      return isnan(act.cutoff) ? bad("softplus threshold must not be NaN") : Status{};
    case ActivationKind::hardshrink:
    case ActivationKind::softshrink:
      return act.lambda >= 0.0f ? Status{} : bad("shrink lambda must be >= 0 (and not NaN)");
    case ActivationKind::threshold:
      if (isnan(act.cutoff)) return bad("threshold t must not be NaN");
      return Status{};  // v may be anything, NaN included: it is the value written
    default:
      return known_kind(act.kind) ? Status{} : bad("unknown activation kind");
  }
}

// The functors' trait is the one source of truth (and their condition on the
// parameters: elu needs alpha >= 0, celu alpha > 0).
bool has_backward_from_output(const Activation& act) {
  bool offered = false;
  detail::visit_kind(act.kind, [&](auto k) {
    using F = detail::Functor<decltype(k)::value, float>;
    offered = device::backward_from_output_defined<F>(detail::params_from<typename F::Params>(act));
  });
  return offered;
}

const char* direction_name(Direction direction) {
  switch (direction) {
    case Direction::forward: return "forward";
    case Direction::backward: return "backward";
    case Direction::backward_from_output: return "backward_from_output";
  }
  return "unknown";
}

const char* dtype_name(DType dtype) {
  if (!detail::known_dtype(dtype)) return "unknown";
  return detail::visit_dtype(dtype, [](auto tag) { return detail::kFormat<typename decltype(tag)::type>.name; });
}

std::size_t dtype_size(DType dtype) {
  if (!detail::known_dtype(dtype)) return 1;
  return detail::visit_dtype(dtype, [](auto tag) { return sizeof(typename decltype(tag)::type); });
}

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::success: return "success";
    case StatusCode::null_pointer: return "null_pointer";
    case StatusCode::invalid_size: return "invalid_size";
    case StatusCode::misaligned_pointer: return "misaligned_pointer";
    case StatusCode::overlapping_buffers: return "overlapping_buffers";
    case StatusCode::invalid_parameter: return "invalid_parameter";
    case StatusCode::unsupported: return "unsupported";
    case StatusCode::no_device: return "no_device";
    case StatusCode::cuda_error: return "cuda_error";
  }
  return "unknown";
}

}  // namespace cuact
