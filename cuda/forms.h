// The per-element math of every call the row engine runs: an activation
// functor (include/cuact/device/activations.cuh) composed with a bias, a GLU
// gate, dropout, or a slope taken from a parameter or the random stream.
// Nothing here knows about memory: the engine (row_engine.h) feeds a form one
// element at a time. Host and device, so CPU tests run exactly what the
// kernels run.
//
// A form F declares what it reads and writes; the engine provides it:
//   using In = T;                   the element type of its input streams
//   using Out = O;                  the element type of its output streams: T, or
//                                   Code8 (vec.h) for a quantized output, which the
//                                   engine's output stage scales and rounds (F is
//                                   then the fp32 functor: the stage rounds once more)
//   static constexpr int kInputs;   input streams in[0 .. kInputs - 1]
//   static constexpr int kOutputs;  output streams (1 or 2)
//   static constexpr int kOptionalInput;  the input a call may lack (-1: none)
//   static constexpr bool kRandom;  it needs each element's random draw (or
//                                   dropout's decision from it)
//   static constexpr bool kMask;    it may write dropout's mask byte
//   static constexpr bool kReduces; its `term` is summed (dbias, dweight)
//   ElementOut operator()(const ElementIn&) const;
// An optional input stream the call lacks reads as the form's fill value
// (fill(k)), the parameter as the call's param_fill.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuact/activation.h"
#include "cuact/device/activations.cuh"
#include "philox.h"

namespace cuact::detail {

inline constexpr int kMaxInputs = 3;
inline constexpr int kMaxOutputs = 2;

// What a form sees of element (r, c): its input streams widened to fp32, the
// parameter (bias, weight), its random draw (philox.h; element index origin +
// r * cols + c) and whether dropout keeps it.
struct ElementIn {
  float in[kMaxInputs];
  float param;
  uint32_t draw;  // 16 bits
  bool kept;
};

struct ElementOut {
  float out[kMaxOutputs];
  float term;  // summed by reducing forms
  bool kept;   // the mask byte
};

// The neutral values of the parts of an activation form.
inline constexpr float kNoBias = -0.0f;  // x + -0.0 == x, -0.0 included
inline constexpr float kNoGate = 1.0f;   // the linear half of a call without one
inline constexpr float kNoWeight = 1.0f; // an MoE GLU call without row weights

// The clamps of a GLU (gpt-oss's and TE's clamped SwiGLU): the gated half
// g' = min(g, limit), the linear half u' = clamp(u, -limit, limit) + offset.
// NaN passes through both clamps. The defaults change nothing: limit +inf,
// offset -0 (u + -0 == u, the sign of a zero included). A clamp that is
// active (g > limit, |u| > limit) stops its half's gradient; at the limit
// itself the gradient passes (docs/SPEC.md).
struct GluClamp {
  float limit = HUGE_VALF;
  float offset = -0.0f;
  CUACT_HD float gate(float g) const { return g > limit ? limit : g; }
  CUACT_HD float linear(float u) const {
    return (u > limit ? limit : u < -limit ? -limit : u) + offset;
  }
  CUACT_HD bool gate_passes(float g) const { return !(g > limit); }
  CUACT_HD bool linear_passes(float u) const { return !(u > limit || u < -limit); }
};

// y = act(x + bias) [* gate]: plain activations (no bias, no gate), bias +
// activation and the GLU forward (in[1] the linear half); with Dropout,
// y = act(x + bias) * m/(1-p) (activation + dropout; no gate). A dropped
// element is 0 whatever its input (selected, not multiplied).
template <class F, class T, bool Dropout, class O = T>
struct ActivationForward {
  using In = T;
  using Out = O;
  static constexpr int kInputs = Dropout ? 1 : 2;  // x [, the gate]
  static constexpr int kOptionalInput = Dropout ? -1 : 1;
  static constexpr int kOutputs = 1;
  static constexpr bool kRandom = Dropout;
  static constexpr bool kMask = Dropout;
  static constexpr bool kReduces = false;
  F act;
  float scale;  // dropout: 1/(1 - p) in fp32
  CUACT_HD static float fill(int) { return kNoGate; }

  CUACT_HD ElementOut operator()(const ElementIn& e) const {
    // in[1] reads 1 without a gate (compiled away: the engine instantiates
    // the row loops with and without the optional stream).
    float y = act.forward(e.in[0] + e.param);
    if constexpr (!Dropout) y *= e.in[1];
    if constexpr (Dropout) y = e.kept ? y * scale : 0.0f;
    return {{y, 0.0f}, 0.0f, e.kept};
  }
};

// The gradient of bias + activation (+ dropout, the mask regenerated):
// dx = act'(x + bias) * dy [* m/(1-p)]; summed for dbias. Plain backward (and,
// for functors that offer it, backward from the saved output y in in[0]).
template <class F, class T, bool Dropout, class O = T>
struct ActivationBackward {
  using In = T;
  using Out = O;
  static constexpr int kInputs = 2;  // x (or y), dy
  static constexpr int kOptionalInput = -1;
  static constexpr int kOutputs = 1;
  static constexpr bool kRandom = Dropout;
  static constexpr bool kMask = false;
  static constexpr bool kReduces = true;
  F act;
  float scale;
  bool from_output;  // in[0] is y = f(x) (only where F::kBackwardFromOutput)
  CUACT_HD static float fill(int) { return 0.0f; }

  CUACT_HD ElementOut operator()(const ElementIn& e) const {
    float dy = e.in[1];
    if constexpr (Dropout) dy *= scale;
    float dx;
    if constexpr (F::kBackwardFromOutput) {
      dx = from_output ? act.backward_from_output(e.in[0], dy) : act.backward(e.in[0] + e.param, dy);
    } else {
      dx = act.backward(e.in[0] + e.param, dy);
    }
    if constexpr (Dropout) dx = e.kept ? dx : 0.0f;
    return {{dx, 0.0f}, dx, e.kept};
  }
};

// The gradient of the GLU form, both halves in one pass:
// d gated = act'(gated) * (dy * linear), d linear = dy * act(gated).
// Inputs: in[0] the activated half, in[1] dy, in[2] the linear half.
template <class F, class T>
struct GatedBackward {
  using In = T;
  using Out = T;
  static constexpr int kInputs = 3;
  static constexpr int kOptionalInput = -1;
  static constexpr int kOutputs = 2;
  static constexpr bool kRandom = false;
  static constexpr bool kMask = false;
  static constexpr bool kReduces = false;
  F act;
  CUACT_HD static float fill(int) { return 0.0f; }

  CUACT_HD ElementOut operator()(const ElementIn& e) const {
    const float a = e.in[0], dy = e.in[1], linear = e.in[2];
    return {{act.backward(a, dy * linear), dy * act.forward(a)}, 0.0f, true};
  }
};

// ---------------------------------------------------------------- MoE GLU forms

// The GLU of MoE experts: clamps and a weight per row (the parameter, read
// by row; kNoWeight without weights). Their own kernels, so that the plain
// GLU (ActivationForward's gated path, GatedBackward) pays nothing for them.
// Built for the gates moe_glu_gate lists.
CUACT_HD constexpr bool moe_glu_gate(ActivationKind kind) {
  return kind == ActivationKind::identity || kind == ActivationKind::relu ||
         kind == ActivationKind::sigmoid || kind == ActivationKind::silu ||
         kind == ActivationKind::gelu || kind == ActivationKind::gelu_tanh;
}

// y = act(clamp.gate(g)) * clamp.linear(u) * w: in[0] the gated half, in[1]
// the linear half.
template <class F, class T>
struct MoeGluForward {
  using In = T;
  using Out = T;
  static constexpr int kInputs = 2;
  static constexpr int kOptionalInput = -1;
  static constexpr int kOutputs = 1;
  static constexpr bool kRandom = false;
  static constexpr bool kMask = false;
  static constexpr bool kReduces = false;
  static constexpr bool kExpertRows = true;  // calls may name expert rows (expert_rows.h)
  F act;
  GluClamp clamp;
  CUACT_HD static float fill(int) { return 0.0f; }

  CUACT_HD ElementOut operator()(const ElementIn& e) const {
    const float y = act.forward(clamp.gate(e.in[0])) * clamp.linear(e.in[1]) * e.param;
    return {{y, 0.0f}, 0.0f, true};
  }
};

// Its gradient, both halves in one pass, with g' = clamp.gate(g),
// u' = clamp.linear(u) and dy' = dy * w:
// d gated = act'(g') * (dy' * u') (0 where the gate's clamp is active),
// d linear = dy' * act(g') (0 where the linear clamp is active), and the
// summed term dy * act(g') * u' (d weight, by row).
// Inputs: in[0] the gated half, in[1] dy, in[2] the linear half.
template <class F, class T>
struct MoeGluBackward {
  using In = T;
  using Out = T;
  static constexpr int kInputs = 3;
  static constexpr int kOptionalInput = -1;
  static constexpr int kOutputs = 2;
  static constexpr bool kRandom = false;
  static constexpr bool kMask = false;
  static constexpr bool kReduces = true;
  static constexpr bool kExpertRows = true;  // calls may name expert rows (expert_rows.h)
  F act;
  GluClamp clamp;
  CUACT_HD static float fill(int) { return 0.0f; }

  CUACT_HD ElementOut operator()(const ElementIn& e) const {
    const float g = e.in[0], dy = e.in[1], u = e.in[2];
    const float a = clamp.gate(g), linear = clamp.linear(u), dyw = dy * e.param;
    const float f = act.forward(a);
    const float da = clamp.gate_passes(g) ? act.backward(a, dyw * linear) : 0.0f;
    const float du = clamp.linear_passes(u) ? dyw * f : 0.0f;
    return {{da, du}, dy * f * linear, true};
  }
};

// ---------------------------------------------------------------- slope forms (PReLU, RReLU)

// The slope of a negative element: base + span * u, u = draw * 2^-16 in
// fp32, clamped to `upper` (rrelu_slope); base is the parameter. PReLU: the
// weight, span 0. RReLU training: base lower, span upper - lower, u from the
// element's draw. RReLU eval: base (lower + upper) / 2, span 0.
struct SlopeRule {
  float span = 0.0f;
  float upper = 0.0f;
  bool inclusive = false;  // the linear side is x >= 0 (RReLU) rather than x > 0 (PReLU)

  CUACT_HD bool linear_side(float x) const { return x > 0.0f || (inclusive && x == 0.0f); }
  CUACT_HD float slope(const ElementIn& e) const {
    return span == 0.0f ? e.param : rrelu_slope(e.param, upper, e.draw, span);
  }
};

// y = x on the linear side, slope * x elsewhere (exact: one rounding, or
// rounded to odd for fp16/bf16 results). A zero slope times -inf is the limit
// 0; NaN stays NaN.
template <class T, bool Random>
struct SlopeForward {
  using In = T;
  using Out = T;
  static constexpr int kInputs = 1;
  static constexpr int kOptionalInput = -1;
  static constexpr int kOutputs = 1;
  static constexpr bool kRandom = Random;
  static constexpr bool kMask = false;
  static constexpr bool kReduces = false;
  SlopeRule rule;
  CUACT_HD static float fill(int) { return 0.0f; }

  CUACT_HD ElementOut operator()(const ElementIn& e) const {
    const float x = e.in[0];
    const float s = rule.slope(e);
    const float y = rule.linear_side(x) ? x
                    : s == 0.0f         ? device::nan_or(x, 0.0f)
                                        : device::exact_product<T>(s, x);
    return {{y, 0.0f}, 0.0f, true};
  }
};

// dx = dy on the linear side, slope * dy elsewhere (NaN x gives NaN); the
// summed term is dy * x off the linear side (PReLU's d weight, NaN included).
// Inputs: in[0] x, in[1] dy.
template <class T, bool Random>
struct SlopeBackward {
  using In = T;
  using Out = T;
  static constexpr int kInputs = 2;
  static constexpr int kOptionalInput = -1;
  static constexpr int kOutputs = 1;
  static constexpr bool kRandom = Random;
  static constexpr bool kMask = false;
  static constexpr bool kReduces = true;
  SlopeRule rule;
  CUACT_HD static float fill(int) { return 0.0f; }

  CUACT_HD ElementOut operator()(const ElementIn& e) const {
    const float x = e.in[0], dy = e.in[1];
    const bool linear = rule.linear_side(x);
    const float dx = linear          ? dy
                     : device::is_nan(x) ? x
                                     : device::exact_product<T>(rule.slope(e), dy);
    return {{dx, 0.0f}, linear ? 0.0f : dy * x, true};
  }
};

}  // namespace cuact::detail
