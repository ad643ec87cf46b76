// The reliability table: every public entry point x every kind of bad input,
// each call made in a child process so that a crash is counted, not fatal.
// The generated table must match the one in docs/RELIABILITY.md
// (between the bad-input-table markers); on a mismatch the test prints the
// table to paste there.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cuact/cuact.h"

#ifndef CUACT_SOURCE_DIR
#error "CUACT_SOURCE_DIR must name the project root"
#endif

namespace cuact {
namespace {

// 64 floats per call (the fused forms' [16, 4]), plus room for the rows that
// shift a pointer a few elements.
alignas(16) float g_in[128], g_grad[128], g_out[128];
// Valid, separate buffers of the fused forms: bias / weight [4], dbias /
// dweight [4], dropout mask [16, 4] and the reductions' workspace.
alignas(16) float g_param[16], g_reduce[16];
alignas(16) uint8_t g_mask[128];
alignas(16) unsigned char g_workspace[1 << 14];
// A quantized output's words: scale, amax, scale_inv.
alignas(16) float g_words[4] = {1.0f, 0.0f, 0.0f, 0.0f};
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// The reduction workspace a fused backward gets.
enum class Workspace { enough, missing, one_byte_short, overlaps_output };

struct BadInput {
  const char* name = "";
  Activation act = Activation::gelu();
  const void* in = g_in;
  const void* grad = g_grad;
  void* out = g_out;
  int64_t n = 16;
  DType dtype = DType::f32;
  Direction direction = Direction::backward;
  // Fused forms only (the defaults are valid). A fused_only row is n/a for the
  // activation and softmax entry points.
  bool fused_only = false;
  Dropout dropout = {0.125f, 1, 0};
  uint8_t* mask = g_mask;
  Rrelu rrelu = {0.125f, 0.25f, true, 1, 0};
  GatedHalf gated = GatedHalf::first;
  const void* param = g_param;  // bias / weight
  void* reduce = g_reduce;      // dbias / dweight
  Workspace workspace = Workspace::enough;
  int64_t width = 4;  // the fused shapes' cols, channels and 2d (see below)
  // Quantized outputs only (out holds the codes). A quantized_only row is
  // n/a for the other entry points.
  bool quantized_only = false;
  Fp8 format = Fp8::e4m3;
  float* scale = g_words;
  float* amax = g_words + 1;
  Scaling scaling = Scaling::delayed;
  int margin = 0;
};

const BadInput kValid;

// One column of the table: one or more calls (entry points of one family),
// each of which maps the row onto its arguments, or gives nullopt where it
// cannot express the row's bad input (a typed overload has no dtype argument,
// a fused form no direction). A cell shows the calls' statuses.
struct EntryPoint {
  struct Call {
    const char* name;
    std::function<std::optional<Status>(const BadInput&)> call;
  };
  const char* name;
  bool fused;  // false: fused_only rows are n/a
  std::vector<Call> calls;
  bool quantized = false;  // false: quantized_only rows are n/a
};

std::vector<BadInput> bad_inputs() {
  const char* bytes = reinterpret_cast<const char*>(g_in);
  Activation unknown = Activation::relu();
  unknown.kind = static_cast<ActivationKind>(200);
  std::vector<BadInput> v;
  auto add = [&](const char* name, auto&& edit) {
    BadInput b;
    b.name = name;
    edit(b);
    v.push_back(b);
  };
  add("null input", [](BadInput& b) { b.in = nullptr; });
  add("null gradient", [](BadInput& b) { b.grad = nullptr; });
  add("null output", [](BadInput& b) { b.out = nullptr; });
  add("negative n", [](BadInput& b) { b.n = -1; });
  add("n = INT64_MIN", [](BadInput& b) { b.n = std::numeric_limits<int64_t>::min(); });
  add("n overflowing bytes", [](BadInput& b) { b.n = std::numeric_limits<int64_t>::max() / 2; });
  add("misaligned input", [&](BadInput& b) { b.in = bytes + 1; });
  add("misaligned output", [](BadInput& b) { b.out = reinterpret_cast<char*>(g_out) + 2; });
  add("output overlaps input", [](BadInput& b) { b.out = g_in + 1; });
  add("output overlaps gradient", [](BadInput& b) { b.out = g_grad + 3; });
  add("unknown dtype", [](BadInput& b) { b.dtype = static_cast<DType>(9); });
  add("unknown direction", [](BadInput& b) { b.direction = static_cast<Direction>(9); });
  add("unknown activation", [&](BadInput& b) { b.act = unknown; });
  add("NaN parameter", [](BadInput& b) { b.act = Activation::leaky_relu(kNaN); });
  add("infinite parameter", [](BadInput& b) { b.act = Activation::softplus(INFINITY); });
  add("celu alpha = 0", [](BadInput& b) { b.act = Activation::celu(0.0f); });
  add("hardtanh lower > upper", [](BadInput& b) { b.act = Activation::hardtanh(2.0f, 1.0f); });
  add("negative shrink lambda", [](BadInput& b) { b.act = Activation::hardshrink(-1.0f); });
  add("backward from y not offered", [](BadInput& b) {
    b.act = Activation::mish();
    b.direction = Direction::backward_from_output;
  });
  // The fused forms' own arguments.
  auto fused = [&](const char* name, auto&& edit) {
    add(name, [&](BadInput& b) {
      b.fused_only = true;
      edit(b);
    });
  };
  fused("empty batch, width past the address space", [](BadInput& b) {
    b.n = 0;
    b.width = std::numeric_limits<int64_t>::max() / 2;
  });
  fused("dropout p = 1.5", [](BadInput& b) { b.dropout.p = 1.5f; });
  fused("dropout p = NaN", [](BadInput& b) { b.dropout.p = kNaN; });
  fused("dropout mask overlaps output (forward)", [](BadInput& b) {
    b.direction = Direction::forward;
    b.mask = reinterpret_cast<uint8_t*>(g_out) + 1;
  });
  fused("unknown GLU gated half", [](BadInput& b) { b.gated = static_cast<GatedHalf>(7); });
  fused("rrelu lower > upper", [](BadInput& b) { b.rrelu.lower = 0.5f; });
  fused("rrelu upper = inf", [](BadInput& b) { b.rrelu.upper = INFINITY; });
  fused("null weight (prelu)", [](BadInput& b) { b.param = nullptr; });
  fused("misaligned bias / weight",
        [](BadInput& b) { b.param = reinterpret_cast<const char*>(g_param) + 2; });
  fused("bias / weight overlaps output", [](BadInput& b) { b.param = g_out + 1; });
  fused("misaligned dbias / dweight",
        [](BadInput& b) { b.reduce = reinterpret_cast<char*>(g_reduce) + 2; });
  fused("dbias / dweight overlaps output", [](BadInput& b) { b.reduce = g_out + 2; });
  fused("dbias / dweight overlaps input", [](BadInput& b) { b.reduce = g_in + 5; });
  fused("reduction workspace missing", [](BadInput& b) { b.workspace = Workspace::missing; });
  fused("reduction workspace too small",
        [](BadInput& b) { b.workspace = Workspace::one_byte_short; });
  fused("workspace overlaps output",
        [](BadInput& b) { b.workspace = Workspace::overlaps_output; });
  // The quantized outputs' own arguments.
  auto quantized = [&](const char* name, auto&& edit) {
    fused(name, [&](BadInput& b) {
      b.quantized_only = true;
      edit(b);
    });
  };
  quantized("null scale (fp8)", [](BadInput& b) { b.scale = nullptr; });
  quantized("misaligned scale (fp8)",
            [](BadInput& b) { b.scale = reinterpret_cast<float*>(reinterpret_cast<char*>(g_words) + 2); });
  quantized("amax overlaps scale (fp8)", [](BadInput& b) { b.amax = g_words; });
  quantized("amax overlaps input (fp8)", [](BadInput& b) { b.amax = g_in + 2; });
  quantized("unknown fp8 format", [](BadInput& b) { b.format = static_cast<Fp8>(9); });
  quantized("current scaling, margin = 65 (fp8)", [](BadInput& b) {
    b.scaling = Scaling::current;
    b.margin = 65;
  });
  quantized("current scaling without amax, workspace missing (fp8)", [](BadInput& b) {
    b.scaling = Scaling::current;
    b.amax = nullptr;
    b.workspace = Workspace::missing;
  });
  return v;
}

// The softmax counterpart of an activation's bad parameters.
Softmax softmax_like(const Activation& a) {
  Softmax op = Softmax::softmax();
  if (static_cast<int>(a.kind) >= kNumActivationKinds)
    op.kind = static_cast<SoftmaxKind>(77);
  else if (!validate(a).ok())
    op.scale = std::numeric_limits<float>::quiet_NaN();
  return op;
}

// The cross-entropy over [n, 4] logits at `in` with int64 targets at
// `grad` (zeros: class 0), the reduced loss at `out` (the mean: a required
// output), its words in g_workspace; a bad activation parameter becomes a
// NaN label smoothing, an unknown kind an unknown reduction. Forward only:
// a row about another direction is n/a.
std::optional<Status> cross_entropy_call(const BadInput& b, bool host) {
  if (b.direction != Direction::forward && b.direction != Direction::backward) return std::nullopt;
  CrossEntropy ce;
  if (static_cast<int>(b.act.kind) >= kNumActivationKinds)
    ce.reduction = static_cast<Reduction>(9);
  else if (!validate(b.act).ok())
    ce.label_smoothing = std::numeric_limits<float>::quiet_NaN();
  CrossEntropyOutputs out;
  out.reduced = static_cast<float*>(b.out);
  if (host)
    return reference::cross_entropy_forward(ce, b.dtype, b.in, b.n, 4, 4, b.grad, IndexType::i64,
                                            out);
  return cross_entropy_forward(ce, b.dtype, b.in, b.n, 4, 4, b.grad, IndexType::i64, out,
                               {g_workspace, sizeof g_workspace});
}

// ---------------------------------------------------------------- the fused forms

// Shapes over the row's n and width w (4 but in one row): bias + activation
// [n, w] with bias [w]; GLU x [n, w] -> y [n, w / 2]; PReLU [n, w, 1] with
// weight [w]; RReLU [n] (n/a where w is not 4).

bool same_rrelu(const Rrelu& a, const Rrelu& b) {
  return a.lower == b.lower && a.upper == b.upper && a.training == b.training;
}

// Which of a row's inputs a fused call takes; a row whose bad input lies in
// anything else (or that has neither direction) is n/a for it.
struct Takes {
  bool activation = false, dropout = false, mask = false, rrelu = false, gated = false,
       param = false, null_param = false, reduce = false, workspace = false;
};

bool expresses(const BadInput& b, const Takes& t) {
  if (b.direction != Direction::forward && b.direction != Direction::backward) return false;
  if (!t.activation && !validate(b.act).ok()) return false;
  if (!t.dropout && !(b.dropout.p == kValid.dropout.p)) return false;
  if (!t.mask && b.mask != kValid.mask) return false;
  if (!t.rrelu && !same_rrelu(b.rrelu, kValid.rrelu)) return false;
  if (!t.gated && b.gated != kValid.gated) return false;
  if (!t.param && b.param != kValid.param) return false;
  if (!t.null_param && b.param == nullptr) return false;
  if (!t.reduce && b.reduce != kValid.reduce) return false;
  if (!t.workspace && b.workspace != Workspace::enough) return false;
  return true;
}

bool forward(const BadInput& b) { return b.direction == Direction::forward; }

// The workspace queries take only the dtype, the shape and the result pointer
// (the row's out): rows whose bad input is one of those, backward only.
bool query_expresses(const BadInput& b) {
  return b.direction == Direction::backward && expresses(b, {}) &&
         (b.out == nullptr || b.n != kValid.n || b.dtype != kValid.dtype) &&
         b.in == kValid.in && b.grad == kValid.grad;
}

// The workspace a device backward gets: `needed` is the size query's answer
// for the row (0 where the query refuses the row: the call fails on its own).
std::pair<void*, size_t> workspace_of(const BadInput& b, size_t needed) {
  switch (b.workspace) {
    case Workspace::missing: return {nullptr, 0};
    case Workspace::one_byte_short: return {g_workspace, needed - 1};
    case Workspace::overlaps_output: return {b.out, needed};
    default: return {g_workspace, sizeof g_workspace};
  }
}

std::optional<Status> bias_activation_call(const BadInput& b, bool host) {
  const bool fwd = forward(b);
  Takes t;
  t.activation = t.dropout = t.param = true;
  t.mask = fwd;
  t.reduce = !fwd;
  t.workspace = !fwd && !host;
  if (!expresses(b, t) || b.param == nullptr) return std::nullopt;  // a null bias is valid
  if (fwd)
    return host ? reference::bias_activation_forward(b.act, b.dtype, b.in, b.param, b.out, b.n,
                                                     b.width, b.dropout, b.mask)
                : bias_activation_forward(b.act, b.dtype, b.in, b.param, b.out, b.n, b.width,
                                          b.dropout, b.mask);
  if (host)
    return reference::bias_activation_backward(b.act, b.dtype, b.in, b.param, b.grad, b.out,
                                               b.reduce, b.n, b.width, b.dropout);
  size_t needed = 0;
  if (!bias_activation_backward_workspace_size(b.dtype, b.n, b.width, &needed).ok()) needed = 0;
  const auto [workspace, workspace_bytes] = workspace_of(b, needed);
  return bias_activation_backward(b.act, b.dtype, b.in, b.param, b.grad, b.out, b.reduce, b.n,
                                  b.width, b.dropout, {workspace, workspace_bytes});
}

std::optional<Status> activation_dropout_call(const BadInput& b) {
  Takes t;
  t.activation = t.dropout = true;
  t.mask = forward(b);
  if (!expresses(b, t)) return std::nullopt;
  if (b.width != kValid.width) return std::nullopt;  // no [width] shape
  if (forward(b))
    return activation_dropout_forward(b.act, b.dtype, b.in, b.out, b.n, b.dropout, b.mask);
  return activation_dropout_backward(b.act, b.dtype, b.in, b.grad, b.out, b.n, b.dropout);
}

std::optional<Status> glu_call(const BadInput& b, bool host) {
  Takes t;
  t.activation = t.gated = true;
  if (!expresses(b, t)) return std::nullopt;
  // GLU has no [width] parameter: an empty [0, w] batch is valid however wide.
  if (b.width != kValid.width) return std::nullopt;
  const Glu glu{b.act, b.gated};  // the gate is the row's activation
  if (forward(b))
    return host ? reference::glu_forward(glu, b.dtype, b.in, b.out, b.n, b.width / 2)
                : glu_forward(glu, b.dtype, b.in, b.out, b.n, b.width / 2);
  return host ? reference::glu_backward(glu, b.dtype, b.in, b.grad, b.out, b.n, b.width / 2)
              : glu_backward(glu, b.dtype, b.in, b.grad, b.out, b.n, b.width / 2);
}

// The weighted GLU: weight and dweight [n] (the row's param and reduce).
std::optional<Status> weighted_glu_call(const BadInput& b, bool host) {
  const bool fwd = forward(b);
  Takes t;
  t.activation = t.gated = t.param = t.null_param = true;
  t.reduce = !fwd;
  t.workspace = !fwd && !host;
  if (!expresses(b, t)) return std::nullopt;
  if (b.width != kValid.width) return std::nullopt;  // weights are [rows]
  const Glu glu{b.act, b.gated};
  const int64_t d = b.width / 2;
  if (fwd)
    return host ? reference::glu_forward(glu, b.dtype, b.in, b.param, b.dtype, b.out, b.n, d)
                : glu_forward(glu, b.dtype, b.in, b.param, b.dtype, b.out, b.n, d);
  if (host)
    return reference::glu_backward(glu, b.dtype, b.in, b.param, b.dtype, b.grad, b.out, b.reduce,
                                   b.n, d);
  size_t needed = 0;
  if (!glu_backward_workspace_size(b.dtype, b.n, d, &needed).ok()) needed = 0;
  const auto [workspace, workspace_bytes] = workspace_of(b, needed);
  return glu_backward(glu, b.dtype, b.in, b.param, b.dtype, b.grad, b.out, b.reduce, b.n, d,
                      {workspace, workspace_bytes});
}

// PReLU has no activation: rows with a bad one are n/a.
std::optional<Status> prelu_call(const BadInput& b, bool host) {
  const bool fwd = forward(b);
  Takes t;
  t.param = t.null_param = true;
  t.reduce = !fwd;
  t.workspace = !fwd && !host;
  if (!expresses(b, t)) return std::nullopt;
  if (fwd)
    return host ? reference::prelu_forward(b.dtype, b.in, b.param, b.out, b.n, b.width, 1)
                : prelu_forward(b.dtype, b.in, b.param, b.out, b.n, b.width, 1);
  if (host)
    return reference::prelu_backward(b.dtype, b.in, b.param, b.grad, b.out, b.reduce, b.n,
                                     b.width, 1);
  size_t needed = 0;
  if (!prelu_backward_workspace_size(b.dtype, b.n, b.width, 1, &needed).ok()) needed = 0;
  const auto [workspace, workspace_bytes] = workspace_of(b, needed);
  return prelu_backward(b.dtype, b.in, b.param, b.grad, b.out, b.reduce, b.n, b.width, 1,
                        {workspace, workspace_bytes});
}

// RReLU's counterpart of a bad activation parameter is a NaN lower bound; an
// unknown activation kind has none (n/a).
std::optional<Status> rrelu_call(const BadInput& b, bool host) {
  Takes t;
  t.activation = t.rrelu = true;
  if (static_cast<int>(b.act.kind) >= kNumActivationKinds || !expresses(b, t)) return std::nullopt;
  Rrelu rrelu = b.rrelu;
  if (b.width != kValid.width) return std::nullopt;
  if (!validate(b.act).ok()) rrelu.lower = kNaN;
  if (forward(b))
    return host ? reference::rrelu_forward(rrelu, b.dtype, b.in, b.out, b.n)
                : rrelu_forward(rrelu, b.dtype, b.in, b.out, b.n);
  return host ? reference::rrelu_backward(rrelu, b.dtype, b.in, b.grad, b.out, b.n)
              : rrelu_backward(rrelu, b.dtype, b.in, b.grad, b.out, b.n);
}

// The workspace size queries: the row's out stands for the result pointer.
std::optional<Status> bias_workspace_query(const BadInput& b) {
  if (!query_expresses(b)) return std::nullopt;
  size_t bytes = 0;
  return bias_activation_backward_workspace_size(b.dtype, b.n, b.width,
                                                 b.out == nullptr ? nullptr : &bytes);
}

std::optional<Status> prelu_workspace_query(const BadInput& b) {
  if (!query_expresses(b)) return std::nullopt;
  size_t bytes = 0;
  return prelu_backward_workspace_size(b.dtype, b.n, b.width, 1,
                                       b.out == nullptr ? nullptr : &bytes);
}

// ---------------------------------------------------------------- quantized outputs

QuantizedOutput quantized_of(const BadInput& b) {
  QuantizedOutput q{b.out, b.format, b.scale, b.amax, nullptr, b.scaling, b.margin};
  return q;
}

// Codes are one byte: a misaligned output is no bad input for them.
bool misaligned_output(const BadInput& b) {
  return b.out != nullptr && reinterpret_cast<std::uintptr_t>(b.out) % 4 != 0;
}

// A device call's workspace: the row's kind, sized by the query.
std::pair<void*, size_t> quantized_workspace_of(const BadInput& b, size_t needed) {
  if (b.workspace == Workspace::enough) return {g_workspace, sizeof g_workspace};
  return workspace_of(b, needed);
}

std::optional<Status> quantized_activation_call(const BadInput& b, bool host) {
  if ((b.fused_only && !b.quantized_only) || misaligned_output(b)) return std::nullopt;
  if (host && b.workspace != Workspace::enough) return std::nullopt;  // the reference needs none
  const QuantizedOutput q = quantized_of(b);
  if (host) return reference::activation(b.direction, b.act, b.dtype, b.in, b.grad, q, b.n);
  size_t needed = 0;
  if (!quantized_workspace_size(q, &needed).ok()) needed = 0;
  const auto [workspace, bytes] = quantized_workspace_of(b, needed);
  return activation(b.direction, b.act, b.dtype, b.in, b.grad, q, b.n, {workspace, bytes});
}

std::optional<Status> quantized_bias_call(const BadInput& b, bool host) {
  const bool fwd = forward(b);
  Takes t;
  t.activation = t.param = true;
  t.dropout = t.mask = fwd;
  t.reduce = !fwd;
  t.workspace = !host;
  if (!expresses(b, t) || b.param == nullptr || misaligned_output(b)) return std::nullopt;
  const QuantizedOutput q = quantized_of(b);
  if (fwd) {
    if (host)
      return reference::bias_activation_forward(b.act, b.dtype, b.in, b.param, b.dtype, q, b.n,
                                                b.width, b.dropout, b.mask);
    size_t needed = 0;
    if (!quantized_workspace_size(q, &needed).ok()) needed = 0;
    const auto [workspace, bytes] = quantized_workspace_of(b, needed);
    return bias_activation_forward(b.act, b.dtype, b.in, b.param, b.dtype, q, b.n, b.width,
                                   b.dropout, b.mask, {workspace, bytes});
  }
  if (host)
    return reference::bias_activation_backward(b.act, b.dtype, b.in, b.param, b.dtype, b.grad, q,
                                               b.reduce, b.n, b.width);
  size_t needed = 0;
  if (!bias_activation_backward_workspace_size(b.dtype, b.n, b.width, q, &needed).ok()) needed = 0;
  const auto [workspace, bytes] = quantized_workspace_of(b, needed);
  return bias_activation_backward(b.act, b.dtype, b.in, b.param, b.dtype, b.grad, q, b.reduce, b.n,
                                  b.width, {workspace, bytes});
}

std::optional<Status> quantized_glu_call(const BadInput& b, bool host) {
  Takes t;
  t.activation = t.gated = true;
  t.workspace = !host;
  if (!expresses(b, t) || !forward(b) || b.width != kValid.width || misaligned_output(b))
    return std::nullopt;
  const Glu glu{b.act, b.gated};
  const QuantizedOutput q = quantized_of(b);
  if (host) return reference::glu_forward(glu, b.dtype, b.in, q, b.n, b.width / 2);
  size_t needed = 0;
  if (!quantized_workspace_size(q, &needed).ok()) needed = 0;
  const auto [workspace, bytes] = quantized_workspace_of(b, needed);
  return glu_forward(glu, b.dtype, b.in, q, b.n, b.width / 2, {workspace, bytes});
}

// The workspace query takes the descriptor alone: its format and recipe rows.
std::optional<Status> quantized_workspace_query(const BadInput& b) {
  if (!b.quantized_only || b.workspace != Workspace::enough) return std::nullopt;
  size_t bytes = 0;
  const Status s = quantized_workspace_size(quantized_of(b), &bytes);
  if (s.ok()) return std::nullopt;  // a row about the words, not the descriptor
  return s;
}

std::vector<EntryPoint> entry_points() {
  return {
      {"cuact::activation (device)", false,
       {{"activation", [](const BadInput& b) -> std::optional<Status> {
           return activation(b.direction, b.act, b.dtype, b.in, b.grad, b.out, b.n);
         }}}},
      {"typed forward/backward", false,
       {{"typed", [](const BadInput& b) -> std::optional<Status> {
           const Direction d = b.direction;
           const bool known_direction = d == Direction::forward || d == Direction::backward ||
                                        d == Direction::backward_from_output;
           if (b.dtype != DType::f32 || !known_direction) return std::nullopt;
           const auto* x = static_cast<const float*>(b.in);
           const auto* g = static_cast<const float*>(b.grad);
           auto* y = static_cast<float*>(b.out);
           if (d == Direction::forward) return activation_forward(b.act, x, y, b.n);
           if (d == Direction::backward_from_output)
             return activation_backward_from_output(b.act, x, g, y, b.n);
           return activation_backward(b.act, x, g, y, b.n);
         }}}},
      {"reference::activation (host)", false,
       {{"reference::activation", [](const BadInput& b) -> std::optional<Status> {
           return reference::activation(b.direction, b.act, b.dtype, b.in, b.grad, b.out, b.n);
         }}}},
      // Softmax over [n, 4]: a bad activation parameter becomes a NaN scale,
      // an unknown activation kind an unknown softmax kind.
      {"cuact::softmax (device)", false,
       {{"softmax", [](const BadInput& b) -> std::optional<Status> {
           return softmax(b.direction, softmax_like(b.act), b.dtype, b.in, b.grad, b.out, b.n, 4);
         }}}},
      {"reference::softmax (host)", false,
       {{"reference::softmax", [](const BadInput& b) -> std::optional<Status> {
           return reference::softmax(b.direction, softmax_like(b.act), b.dtype, b.in, b.grad,
                                     b.out, b.n, 4);
         }}}},
      {"cross_entropy (device)", false,
       {{"cross_entropy_forward", [](const BadInput& b) { return cross_entropy_call(b, false); }}}},
      {"reference::cross_entropy (host)", false,
       {{"reference::cross_entropy_forward",
         [](const BadInput& b) { return cross_entropy_call(b, true); }}}},
      // The fused forms: direction forward / backward picks *_forward /
      // *_backward; a cell shows each applicable call's status.
      {"bias+act(+dropout) (device)", true,
       {{"bias_activation", [](const BadInput& b) { return bias_activation_call(b, false); }},
        {"activation_dropout", activation_dropout_call},
        {"bias_activation_backward_workspace_size", bias_workspace_query}}},
      {"glu (device)", true,
       {{"glu", [](const BadInput& b) { return glu_call(b, false); }},
        {"glu weighted", [](const BadInput& b) { return weighted_glu_call(b, false); }}}},
      {"prelu (device)", true,
       {{"prelu", [](const BadInput& b) { return prelu_call(b, false); }},
        {"prelu_backward_workspace_size", prelu_workspace_query}}},
      {"rrelu (device)", true,
       {{"rrelu", [](const BadInput& b) { return rrelu_call(b, false); }}}},
      {"fused references (host)", true,
       {{"reference::bias_activation",
         [](const BadInput& b) { return bias_activation_call(b, true); }},
        {"reference::glu", [](const BadInput& b) { return glu_call(b, true); }},
        {"reference::glu weighted", [](const BadInput& b) { return weighted_glu_call(b, true); }},
        {"reference::prelu", [](const BadInput& b) { return prelu_call(b, true); }},
        {"reference::rrelu", [](const BadInput& b) { return rrelu_call(b, true); }}}},
      {"fp8 outputs (device)", true,
       {{"activation fp8", [](const BadInput& b) { return quantized_activation_call(b, false); }},
        {"bias_activation fp8", [](const BadInput& b) { return quantized_bias_call(b, false); }},
        {"glu fp8", [](const BadInput& b) { return quantized_glu_call(b, false); }},
        {"quantized_workspace_size", quantized_workspace_query}},
       true},
      {"fp8 references (host)", true,
       {{"reference::activation fp8", [](const BadInput& b) { return quantized_activation_call(b, true); }},
        {"reference::bias_activation fp8", [](const BadInput& b) { return quantized_bias_call(b, true); }},
        {"reference::glu fp8", [](const BadInput& b) { return quantized_glu_call(b, true); }}},
       true},
  };
}

constexpr int kNotApplicable = 1000;

// Runs the call in a child; returns the status code, kNotApplicable, or
// -signal on a crash.
int call_in_child(const std::function<std::optional<Status>()>& call) {
  int fds[2];
  if (pipe(fds) != 0) return -1000;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const std::optional<Status> s = call();
    const int code = s ? static_cast<int>(s->code()) : kNotApplicable;
    const ssize_t written = write(fds[1], &code, sizeof code);
    _exit(written == sizeof code ? 0 : 1);
  }
  close(fds[1]);
  int code = -1000, wstatus = 0;
  const ssize_t got = read(fds[0], &code, sizeof code);
  close(fds[0]);
  waitpid(pid, &wstatus, 0);
  if (WIFSIGNALED(wstatus)) return -WTERMSIG(wstatus);
  return got == sizeof code ? code : -1000;
}

std::string readme_table() {
  std::ifstream in(std::string(CUACT_SOURCE_DIR) + "/docs/RELIABILITY.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  const std::string begin = "<!-- bad-input-table:begin -->\n", end = "<!-- bad-input-table:end -->";
  const size_t a = s.find(begin), b = s.find(end);
  if (a == std::string::npos || b == std::string::npos) return "(markers not found)";
  return s.substr(a + begin.size(), b - a - begin.size());
}

TEST(Reliability, EveryBadInputGivesANamedStatusAndNothingCrashes) {
  // g_workspace holds what the valid fused backwards need.
  size_t bias_bytes = 0, prelu_bytes = 0;
  ASSERT_TRUE(
      bias_activation_backward_workspace_size(DType::f32, kValid.n, kValid.width, &bias_bytes).ok());
  ASSERT_TRUE(
      prelu_backward_workspace_size(DType::f32, kValid.n, kValid.width, 1, &prelu_bytes).ok());
  ASSERT_LE(std::max(bias_bytes, prelu_bytes), sizeof g_workspace);
  const auto inputs = bad_inputs();
  const auto entries = entry_points();
  std::ostringstream table;
  table << "| bad input |";
  for (const auto& e : entries) table << " " << e.name << " |";
  table << "\n|---|";
  for (size_t i = 0; i < entries.size(); ++i) table << "---|";
  table << "\n";
  int crashes = 0, accepted = 0, calls = 0;
  for (const BadInput& b : inputs) {
    table << "| " << b.name << " |";
    for (const auto& e : entries) {
      // The distinct outcomes of the column's calls, in call order.
      std::vector<std::string> outcomes;
      for (const auto& c : e.calls) {
        if (b.fused_only && !e.fused) break;
        if (b.quantized_only && !e.quantized) break;
        const int code = call_in_child([&] { return c.call(b); });
        if (code == kNotApplicable) continue;
        ++calls;
        std::string outcome;
        if (code < 0) {
          ++crashes;
          outcome = "CRASH (signal " + std::to_string(-code) + ")";
          ADD_FAILURE() << c.name << " crashed: " << b.name;
        } else {
          const auto status = static_cast<StatusCode>(code);
          accepted += status == StatusCode::success;
          EXPECT_NE(status, StatusCode::success) << c.name << " accepted: " << b.name;
          outcome = status_code_name(status);
        }
        if (std::find(outcomes.begin(), outcomes.end(), outcome) == outcomes.end())
          outcomes.push_back(outcome);
      }
      table << " ";
      if (outcomes.empty()) table << "n/a";
      for (size_t i = 0; i < outcomes.size(); ++i) table << (i ? " / " : "") << outcomes[i];
      table << " |";
    }
    table << "\n";
  }
  table << "\n" << calls << " calls, " << crashes << " crashes, " << accepted
        << " bad inputs accepted.\n";
  EXPECT_EQ(crashes, 0);
  EXPECT_EQ(readme_table(), table.str())
      << "docs/RELIABILITY.md's bad-input table is out of date; paste this between its markers:\n"
      << table.str();
}

}  // namespace
}  // namespace cuact
