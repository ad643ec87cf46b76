// Elementwise activations, forward and backward, on device buffers.
//
// Contract shared by every entry point below:
// - Buffers are device (or managed) memory holding n elements of one dtype
//   (float, __half or __nv_bfloat16). n is a 64-bit count; n == 0 is a no-op
//   and then any pointer may be null.
// - Pointers must be aligned to their element type; no further alignment is
//   needed (16-byte aligned data takes the vectorized path, the rest still
//   computes right).
// - An output may be the same buffer as an input (in place); partial overlap
//   is rejected with StatusCode::overlapping_buffers.
// - Work is enqueued on `stream` and nothing synchronizes or allocates, so a
//   call can be captured into a CUDA graph. The status reports argument errors
//   and launch errors; faults during execution surface on the stream, as for
//   any kernel.
// - It runs on the calling thread's current device; calls from many host
//   threads at once are safe.
// - fp16/bf16 data are computed in fp32 and rounded once on store. Accuracy:
//   see README.md ("Accuracy contract") and docs/SPEC.md.
//
// Example:
//   cuact::Activation act = cuact::Activation::leaky_relu(0.2f);
//   cuact::Status s = cuact::activation_forward(act, d_x, d_y, n, stream);
//   if (!s.ok()) { /* s.message() says what was wrong */ }
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuact/dtype.h"
#include "cuact/status.h"

namespace cuact {

// Every elementwise activation, in docs/SPEC.md's table order.
enum class ActivationKind {
  identity, relu, relu6, hardtanh, leaky_relu, elu, selu, celu, gelu, gelu_tanh,
  quick_gelu, sigmoid, tanh, silu, mish, softplus, log_sigmoid, hardsigmoid,
  hardswish, softsign, tanhshrink, hardshrink, softshrink, threshold,
};
inline constexpr int kNumActivationKinds = static_cast<int>(ActivationKind::threshold) + 1;

const char* activation_name(ActivationKind kind);  // "leaky_relu", ...

// An activation and its parameters. Build it with the named constructors,
// which carry docs/SPEC.md's defaults and set every field the kind uses. A
// field the kind does not use holds NaN ("not a parameter of this kind"),
// so it cannot be read as one (Activation::selu().lambda is NaN, not a
// plausible 0.5), and a descriptor built field by field that leaves a used
// one unset fails validate() by name (a kind = elu without alpha).
struct Activation {
  static constexpr float kUnset = __builtin_nanf("");
  ActivationKind kind = ActivationKind::identity;
  float alpha = kUnset;   // leaky_relu slope a; elu and celu alpha
  float beta = kUnset;    // silu and softplus beta
  float lambda = kUnset;  // hardshrink and softshrink lambda
  float lower = kUnset;   // hardtanh lower bound
  float upper = kUnset;   // hardtanh upper bound
  float cutoff = kUnset;  // softplus: linear where beta*x > cutoff; threshold: t
  float value = kUnset;   // threshold: the replacement value v

  static Activation identity() { return make(ActivationKind::identity); }
  static Activation relu() { return make(ActivationKind::relu); }
  static Activation relu6() { return make(ActivationKind::relu6); }
  static Activation hardtanh(float lower = -1.0f, float upper = 1.0f);
  static Activation leaky_relu(float negative_slope = 0.01f);
  static Activation elu(float alpha = 1.0f);
  // alpha = 1.6732632423543772, lambda = 1.0507009873554805 (fixed by SELU's definition).
  static Activation selu() { return make(ActivationKind::selu); }
  static Activation celu(float alpha = 1.0f);  // alpha != 0
  static Activation gelu() { return make(ActivationKind::gelu); }
  static Activation gelu_tanh() { return make(ActivationKind::gelu_tanh); }
  static Activation quick_gelu() { return make(ActivationKind::quick_gelu); }
  static Activation sigmoid() { return make(ActivationKind::sigmoid); }
  static Activation tanh() { return make(ActivationKind::tanh); }
  static Activation silu(float beta = 1.0f);
  static Activation mish() { return make(ActivationKind::mish); }
  static Activation softplus(float beta = 1.0f, float threshold = 20.0f);  // beta > 0
  static Activation log_sigmoid() { return make(ActivationKind::log_sigmoid); }
  static Activation hardsigmoid() { return make(ActivationKind::hardsigmoid); }
  static Activation hardswish() { return make(ActivationKind::hardswish); }
  static Activation softsign() { return make(ActivationKind::softsign); }
  static Activation tanhshrink() { return make(ActivationKind::tanhshrink); }
  static Activation hardshrink(float lambda = 0.5f);  // lambda >= 0
  static Activation softshrink(float lambda = 0.5f);  // lambda >= 0
  // x if x > t else v (PyTorch's Threshold; its parameters have no default).
  static Activation threshold(float t, float v);
  // The kind with its default parameters (threshold: t = 0, v = 0).
  static Activation with_defaults(ActivationKind kind);

 private:
  static Activation make(ActivationKind k) {
    Activation a;
    a.kind = k;
    return a;
  }
  static Activation make(ActivationKind k, float Activation::*field, float value);
};

// Checks the parameters of `act`: success, or invalid_parameter naming the
// field (NaN anywhere used, hardtanh lower > upper, celu alpha == 0,
// softplus beta <= 0, shrink lambda < 0, unknown kind).
// Every entry point runs this check first.
Status validate(const Activation& act);

// True where backward can take the saved output y instead of x: identity,
// relu, sigmoid, tanh, elu (alpha >= 0), selu, celu (alpha > 0).
bool has_backward_from_output(const Activation& act);

// y[i] = f(x[i]).
Status activation_forward(const Activation& act, const float* x, float* y, int64_t n,
                          cudaStream_t stream = nullptr);
Status activation_forward(const Activation& act, const __half* x, __half* y, int64_t n,
                          cudaStream_t stream = nullptr);
Status activation_forward(const Activation& act, const __nv_bfloat16* x, __nv_bfloat16* y,
                          int64_t n, cudaStream_t stream = nullptr);

// dx[i] = dy[i] * f'(x[i]), from the saved input x. dx may alias x or dy.
Status activation_backward(const Activation& act, const float* x, const float* dy, float* dx,
                           int64_t n, cudaStream_t stream = nullptr);
Status activation_backward(const Activation& act, const __half* x, const __half* dy, __half* dx,
                           int64_t n, cudaStream_t stream = nullptr);
Status activation_backward(const Activation& act, const __nv_bfloat16* x,
                           const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t n,
                           cudaStream_t stream = nullptr);

// dx[i] = dy[i] * f'(x[i]) computed from the saved output y = f(x), for the
// kinds where has_backward_from_output() is true (unsupported otherwise).
Status activation_backward_from_output(const Activation& act, const float* y, const float* dy,
                                       float* dx, int64_t n, cudaStream_t stream = nullptr);
Status activation_backward_from_output(const Activation& act, const __half* y, const __half* dy,
                                       __half* dx, int64_t n, cudaStream_t stream = nullptr);
Status activation_backward_from_output(const Activation& act, const __nv_bfloat16* y,
                                       const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t n,
                                       cudaStream_t stream = nullptr);

// The same three operations with the dtype chosen at run time (untyped
// pointers); the typed overloads above call these.
enum class Direction { forward, backward, backward_from_output };
const char* direction_name(Direction direction);

// forward: in = x, grad = ignored (may be null), out = y.
// backward: in = x, grad = dy, out = dx.  backward_from_output: in = y, grad = dy, out = dx.
Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, void* out, int64_t n, cudaStream_t stream = nullptr);

}  // namespace cuact
