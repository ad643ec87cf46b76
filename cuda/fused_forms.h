// The fused forms' per-element math: compositions of an activation functor
// (activation_functors.cuh) with a bias, a GLU gate, dropout, or a slope
// taken from a parameter or the random stream. Nothing here knows about
// memory: the row engine (row_engine.h) feeds each form one element at a time.
// Host and device, so CPU tests run exactly what the kernels run.
//
// The forms have no flags: a part that is off takes its neutral value, which
// leaves every result bit-identical (x + -0.0 = x, y * 1 = y, every element
// kept), so one forward kernel per (dtype, functor) serves bias / GLU /
// dropout in any combination, without branches the compiler would multiply
// the kernel by. The backward has two forms: bias + dropout (with the dbias
// sum) and GLU (two outputs); one form with all of it would hold registers
// for all of it.
// Arithmetic after the activation (the GLU product, dropout's scale) is one
// more fp32 rounding, or exact in double where the functor returns double.
#pragma once

#include "float_math.cuh"
#include "philox.h"
#include "row_engine.h"

namespace cuact::detail {

// The neutral values of the parts of an activation form.
inline constexpr float kNoBias = -0.0f;  // x + -0.0 == x, -0.0 included
inline constexpr float kNoGate = 1.0f;   // the linear half of a call without one

// y = drop(act(x + bias) * linear): bias + activation, GLU, dropout.
// Inputs: in[0] x (or the activated half), in[1] the linear half (1 without
// GLU), param the bias (kNoBias without), kept (the engine's dropout
// decision; always true without). scale: 1/(1 - p) in fp32 (1 without).
// A dropped element is 0 whatever its input (selected, not multiplied).
template <class F>
struct ActivationForwardForm {
  static constexpr int kInputs = 2;
  static constexpr int kOutputs = 1;
  static constexpr bool kReduces = false;
  static constexpr bool kWords = false;
  static constexpr bool kMask = true;
  static constexpr bool kRowParam = false;
  F act;
  float scale;

  CUACT_HD auto operator()(const ElementInputs& e) const {
    const auto a = act.forward(e.in[0] + e.param);
    using V = decltype(a);
    const V y = a * static_cast<V>(e.in[1]) * static_cast<V>(scale);
    return FormResult<V>{e.kept ? y : V(0), 0.0f, 0.0f, e.kept};
  }
};

// The gradient of bias + activation (+ dropout, the mask regenerated):
// dx = (dy * scale) * act'(x + bias), 0 where dropped; summed for dbias.
// Inputs: in[0] x, in[1] dy, param the bias, kept.
template <class F>
struct ActivationBackwardForm {
  static constexpr int kInputs = 2;
  static constexpr int kOutputs = 1;
  static constexpr bool kReduces = true;
  static constexpr bool kWords = false;
  static constexpr bool kMask = false;
  static constexpr bool kRowParam = false;
  F act;
  float scale;

  CUACT_HD auto operator()(const ElementInputs& e) const {
    const auto dz = act.backward(e.in[0] + e.param, e.in[1] * scale);
    using D = decltype(dz);
    const D dx = e.kept ? dz : D(0);
    return FormResult<D>{dx, 0.0f, static_cast<float>(dx), e.kept};
  }
};

// The gradient of the GLU form, both halves in one pass:
// d gated = (dy * linear) * act'(gated), d linear = dy * act(gated).
// Inputs: in[0] the activated half, in[1] dy, in[2] the linear half.
template <class F>
struct GatedBackwardForm {
  static constexpr int kInputs = 3;
  static constexpr int kOutputs = 2;
  static constexpr bool kReduces = false;
  static constexpr bool kWords = false;
  static constexpr bool kMask = false;
  static constexpr bool kRowParam = false;
  F act;

  CUACT_HD auto operator()(const ElementInputs& e) const {
    const float a = e.in[0], dy = e.in[1], linear = e.in[2];
    const auto d_gated = act.backward(a, dy * linear);
    const auto y = act.forward(a);
    using D = decltype(d_gated);
    using Y = decltype(y);
    return FormResult<D, Y>{d_gated, static_cast<Y>(dy) * y, 0.0f, true};
  }
};

// ---------------------------------------------------------------- slope forms (PReLU, RReLU)

// The slope of a negative element: base + span * u, u = (word >> 8) * 2^-24 in
// fp32, clamped to `upper` (rrelu_slope); base is the parameter. PReLU: the
// weight, span 0. RReLU training: base lower, span upper - lower, u from the
// element's word. RReLU eval: base (lower + upper) / 2, span 0.
struct SlopeRule {
  float span = 0.0f;
  float upper = 0.0f;
  bool inclusive = false;  // the linear side is x >= 0 (RReLU) rather than x > 0 (PReLU)

  CUACT_HD bool linear_side(float x) const { return x > 0.0f || (inclusive && x == 0.0f); }
  CUACT_HD float slope(const ElementInputs& e) const {
    return span == 0.0f ? e.param : rrelu_slope(e.param, upper, e.word, span);
  }
};

// y = x on the linear side, slope * x elsewhere; the product is exact in double.
// A zero slope times -inf is the limit 0; NaN stays NaN.
struct SlopeForwardForm {
  static constexpr int kInputs = 1;
  static constexpr int kOutputs = 1;
  static constexpr bool kReduces = false;
  static constexpr bool kWords = true;
  static constexpr bool kMask = false;
  static constexpr bool kRowParam = true;
  SlopeRule rule;

  CUACT_HD FormResult<double> operator()(const ElementInputs& e) const {
    const float x = e.in[0];
    const float s = rule.slope(e);
    const double y = rule.linear_side(x) ? static_cast<double>(x)
                     : s == 0.0f         ? static_cast<double>(nan_or(x, 0.0f))
                                         : static_cast<double>(s) * x;
    return {y, 0.0f, 0.0f, true};
  }
};

// dx = dy on the linear side, slope * dy elsewhere (NaN x gives NaN); the
// summed term is dy * x off the linear side (PReLU's d weight, NaN included).
// Inputs: in[0] x, in[1] dy.
struct SlopeBackwardForm {
  static constexpr int kInputs = 2;
  static constexpr int kOutputs = 1;
  static constexpr bool kReduces = true;
  static constexpr bool kWords = true;
  static constexpr bool kMask = false;
  static constexpr bool kRowParam = true;
  SlopeRule rule;

  CUACT_HD FormResult<double> operator()(const ElementInputs& e) const {
    const float x = e.in[0], dy = e.in[1];
    const bool linear = rule.linear_side(x);
    const double dx = linear      ? static_cast<double>(dy)
                      : is_nan(x) ? static_cast<double>(x)
                                  : static_cast<double>(rule.slope(e)) * dy;
    return {dx, 0.0f, linear ? 0.0f : dy * x, true};
  }
};

}  // namespace cuact::detail
