#include "fused_testing.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "activation_functors.cuh"
#include "cuact/reference.h"
#include "fused_forms.h"
#include "fused_launch.h"

namespace cuact::test {

Tolerance fused_tolerance(ActivationKind kind, DType dtype, Direction direction,
                          bool product_after) {
  Tolerance t = tolerance_for(kind, dtype, direction);
  if (kind == ActivationKind::hardsigmoid || kind == ActivationKind::hardswish)
    t.ulps = std::max(t.ulps, 1);
  if (!product_after) return t;
  if (dtype == DType::f32) t.ulps += 1;
  else t.ulps = std::max(t.ulps, 1);
  return t;
}

bool fp32_activation_overflows(const Activation& act, double x) {
  const double y = reference::forward(act, x);
  return std::isfinite(x) && std::isfinite(y) && std::fabs(y) > FLT_MAX;
}

double overflowed_product(const Activation& act, double x, double factor) {
  return std::copysign(INFINITY, reference::forward(act, x)) * factor;
}

namespace {

// The spacing of dtype's values at v.
double ulp_at(DType dtype, double v) {
  const int precision = dtype == DType::f32 ? 24 : dtype == DType::f16 ? 11 : 8;
  const int min_exponent = dtype == DType::f16 ? -14 : -126;
  const int e = v == 0 || !std::isfinite(v) ? min_exponent : std::max(std::ilogb(v), min_exponent);
  return std::ldexp(1.0, e - (precision - 1));
}

double reduction_bound(DType dtype, double exact, const ReductionBound& b) {
  return ulp_at(dtype, reference::round_to(dtype, exact)) + b.term_error +
         static_cast<double>(b.terms + 2) * std::ldexp(b.abs_sum, -24);
}

}  // namespace

double backward_term_error(const Activation& act, double z, double dy, double exact_term,
                           bool product_after) {
  const Tolerance t = fused_tolerance(act.kind, DType::f32, Direction::backward, product_after);
  double e = t.ulps * ulp_at(DType::f32, exact_term) + FLT_MIN;
  if (t.root_allowance > 0 && near_derivative_zero(act, z))
    e += t.root_allowance * std::ldexp(std::fabs(dy), -24);
  return e;
}

double rounded_term_error(double exact_term) { return ulp_at(DType::f32, exact_term); }

bool reduction_within(DType dtype, double got, double exact, const ReductionBound& b) {
  if (std::isnan(exact) || std::isnan(got)) return std::isnan(exact) && std::isnan(got);
  if (std::isinf(exact) || std::isinf(got)) return got == reference::round_to(dtype, exact);
  return std::fabs(got - exact) <= reduction_bound(dtype, exact, b);
}

std::string reduction_report(DType dtype, double got, double exact, const ReductionBound& b) {
  std::ostringstream s;
  s << "got " << got << ", exact " << exact << " (error " << std::fabs(got - exact) << ", bound "
    << reduction_bound(dtype, exact, b) << ": " << b.terms << " terms, sum |term| " << b.abs_sum
    << ", sum of term bounds " << b.term_error << ")";
  return s.str();
}

// ---------------------------------------------------------------- judging whole calls

namespace {

// Counts and reports failures of one call.
class CallJudge {
 public:
  explicit CallJudge(DType dtype) : dtype_(dtype) {}
  void check(const char* what, int64_t i, double got, double exact, double dy,
             const Tolerance& tol, bool near_root = false) {
    const Verdict v = judge(dtype_, got, exact, dy, tol, near_root);
    if (!v.ok()) fail(what, i, got, exact, "(" + std::to_string(v.ulps) + " ulp, bound " +
                                               std::to_string(tol.ulps) + ")");
  }
  void check_exact(const char* what, int64_t i, double got, double want) {
    if (ulp_distance(dtype_, got, reference::round_to(dtype_, want)) != 0)
      fail(what, i, got, want, "(must be exact)");
  }
  void check_zero(const char* what, int64_t i, double got) {
    if (!(got == 0 && !std::signbit(got))) fail(what, i, got, 0.0, "(dropped: must be +0)");
  }
  void check_sum(const char* what, int64_t i, double got, double exact, const ReductionBound& b) {
    if (!reduction_within(dtype_, got, exact, b)) {
      ++failures_;
      if (failures_ <= 3) ADD_FAILURE() << what << "[" << i << "]: " << reduction_report(dtype_, got, exact, b);
    }
  }
  void fail(const char* what, int64_t i, double got, double exact, const std::string& note) {
    if (++failures_ <= 3)
      ADD_FAILURE() << what << "[" << i << "]: got " << got << ", exact " << exact << " " << note;
  }
  int64_t failures() const { return failures_; }

 private:
  DType dtype_;
  int64_t failures_ = 0;
};

bool roots_in(const Activation& act, DType dtype) {
  return tolerance_for(act.kind, dtype, Direction::backward).root_allowance > 0;
}

}  // namespace

int64_t judge_bias_forward(const Activation& act, DType dtype, int64_t rows, int64_t cols,
                           const std::vector<double>& x, const std::vector<double>& bias,
                           const Dropout& dropout, const std::vector<double>& y,
                           const std::vector<uint8_t>* mask) {
  CallJudge j(dtype);
  const double scale = reference::dropout_scale(dropout.p);
  const Tolerance tol = fused_tolerance(act.kind, dtype, Direction::forward, dropout.p > 0);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const double z = bias.empty() ? x[i] : reference::bias_preactivation(x[i], bias[i % cols]);
    const bool kept = reference::dropout_keeps(dropout, static_cast<uint64_t>(i));
    if (mask != nullptr && (*mask)[i] != (kept ? 1 : 0)) j.fail("mask", i, (*mask)[i], kept, "");
    // (scale >= 1: where f(z) overflows fp32 the exact product does too.)
    if (!kept) j.check_zero("y", i, y[i]);
    else j.check("y", i, y[i], reference::forward(act, z) * scale, 1.0, tol);
  }
  return j.failures();
}

int64_t judge_bias_backward(const Activation& act, DType dtype, int64_t rows, int64_t cols,
                            const std::vector<double>& x, const std::vector<double>& bias,
                            const std::vector<double>& dy, const Dropout& dropout,
                            const std::vector<double>& dx, const std::vector<double>& dbias) {
  CallJudge j(dtype);
  const double scale = reference::dropout_scale(dropout.p);
  const bool product = dropout.p > 0;
  const Tolerance tol = fused_tolerance(act.kind, dtype, Direction::backward, product);
  const bool roots = roots_in(act, dtype);
  std::vector<double> sums(static_cast<size_t>(cols), 0.0);
  std::vector<ReductionBound> bounds(static_cast<size_t>(cols));
  for (int64_t i = 0; i < rows * cols; ++i) {
    const int64_t c = i % cols;
    const double z = bias.empty() ? x[i] : reference::bias_preactivation(x[i], bias[c]);
    const bool kept = reference::dropout_keeps(dropout, static_cast<uint64_t>(i));
    const double g = dy[i] * scale;
    const double dz = kept ? reference::backward(act, z, g) : 0.0;
    if (!kept) j.check_zero("dx", i, dx[i]);
    else j.check("dx", i, dx[i], dz, g, tol, roots && near_derivative_zero(act, z));
    sums[c] += dz;
    bounds[c].add(dz, kept ? backward_term_error(act, z, g, dz, product) : 0.0);
  }
  for (int64_t c = 0; c < static_cast<int64_t>(dbias.size()); ++c)
    j.check_sum("dbias", c, dbias[c], sums[c], bounds[c]);
  return j.failures();
}

int64_t judge_glu_forward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                          const std::vector<double>& x, const std::vector<double>& y) {
  CallJudge j(dtype);
  const Tolerance tol = fused_tolerance(glu.act.kind, dtype, Direction::forward, true);
  const int64_t gated = glu.gated == GatedHalf::first ? 0 : d, other = d - gated;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) {
      const double a = x[r * 2 * d + gated + c], b = x[r * 2 * d + other + c];
      if (fp32_activation_overflows(glu.act, a))
        j.check_exact("y", r * d + c, y[r * d + c], overflowed_product(glu.act, a, b));
      else j.check("y", r * d + c, y[r * d + c], reference::forward(glu.act, a) * b, 1.0, tol);
    }
  return j.failures();
}

int64_t judge_glu_backward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                           const std::vector<double>& x, const std::vector<double>& dy,
                           const std::vector<double>& dx) {
  CallJudge j(dtype);
  const Tolerance tf = fused_tolerance(glu.act.kind, dtype, Direction::forward, true);
  const Tolerance tb = fused_tolerance(glu.act.kind, dtype, Direction::backward, true);
  const bool roots = roots_in(glu.act, dtype);
  const int64_t gated = glu.gated == GatedHalf::first ? 0 : d, other = d - gated;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) {
      const int64_t ia = r * 2 * d + gated + c, ib = r * 2 * d + other + c;
      const double a = x[ia], b = x[ib], g = dy[r * d + c];
      j.check("d gated", ia, dx[ia], reference::backward(glu.act, a, g * b), g * b, tb,
              roots && near_derivative_zero(glu.act, a));
      if (fp32_activation_overflows(glu.act, a))
        j.check_exact("d linear", ib, dx[ib], overflowed_product(glu.act, a, g));
      else j.check("d linear", ib, dx[ib], g * reference::forward(glu.act, a), g, tf);
    }
  return j.failures();
}

int64_t judge_prelu(DType dtype, int64_t outer, int64_t channels, int64_t inner,
                    const std::vector<double>& x, const std::vector<double>& weight,
                    const std::vector<double>& dy, const std::vector<double>& y,
                    const std::vector<double>& dx, const std::vector<double>& dweight) {
  CallJudge j(dtype);
  std::vector<double> sums(static_cast<size_t>(channels), 0.0);
  std::vector<ReductionBound> bounds(static_cast<size_t>(channels));
  for (int64_t i = 0; i < outer * channels * inner; ++i) {
    const int64_t c = (i / inner) % channels;
    const double w = weight[c];
    const bool linear = x[i] > 0;
    j.check_exact("y", i, y[i], std::isnan(x[i]) || linear ? x[i] : (w == 0 ? 0.0 : w * x[i]));
    j.check_exact("dx", i, dx[i], std::isnan(x[i]) ? x[i] : (linear ? dy[i] : w * dy[i]));
    if (!linear) {
      sums[c] += dy[i] * x[i];
      bounds[c].add(dy[i] * x[i], rounded_term_error(dy[i] * x[i]));
    }
  }
  for (int64_t c = 0; c < static_cast<int64_t>(dweight.size()); ++c)
    j.check_sum("dweight", c, dweight[c], sums[c], bounds[c]);
  return j.failures();
}

int64_t judge_rrelu(const Rrelu& rrelu, DType dtype, const std::vector<double>& x,
                    const std::vector<double>& dy, const std::vector<double>& y,
                    const std::vector<double>& dx) {
  CallJudge j(dtype);
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    const double r = reference::rrelu_slope(rrelu, static_cast<uint64_t>(i));
    const bool linear = x[i] >= 0;
    j.check_exact("y", i, y[i], std::isnan(x[i]) || linear ? x[i] : (r == 0 ? 0.0 : r * x[i]));
    j.check_exact("dx", i, dx[i], std::isnan(x[i]) ? x[i] : (linear ? dy[i] : r * dy[i]));
  }
  return j.failures();
}

// ---------------------------------------------------------------- emulation

namespace {

template <class T, class Form>
void emulate(const Form& form, const detail::FusedCall& c, int64_t device_blocks) {
  using namespace detail;
  constexpr int W = Pack<T>::kWidth;
  RowLaunch<T> l = make_row_launch<T>(c, Form::kReduces, device_blocks);
  std::vector<float> sums(static_cast<size_t>(kBlockThreads) * W);
  for (int64_t b = 0; b < l.geometry.blocks(); ++b) {
    for (int t = 0; t < kBlockThreads; ++t) {
      Accumulator<W> acc;
      for_each_tile_item(l.plan, l.geometry, b, t, [&](int64_t r, int64_t chunk) {
        process_chunk(form, l.args, l.plan, r, chunk, acc);
      });
      if constexpr (Form::kReduces) {
        if (l.args.reduce == ReduceMode::by_column)
          for (int j = 0; j < W; ++j) sums[static_cast<size_t>(t) * W + j] = acc.column[j];
        else
          sums[static_cast<size_t>(t)] = acc.row;
      }
    }
    if constexpr (Form::kReduces) {
      if (l.args.reduce == ReduceMode::by_column)
        write_column_partials<W>(sums.data(), l.plan, l.geometry, b, 0, 1, l.args.partials);
      else if (l.args.reduce == ReduceMode::by_row_channel)
        write_channel_partials(sums.data(), l.geometry, l.args.channels, b, 0, 1, l.args.partials);
    }
  }
  if (!l.reduces) return;
  T* out = static_cast<T*>(c.reduce_out);
  for (int64_t s = 0; s < l.layout.segments; ++s) {
    float sum = 0.0f;
    for (int64_t i = 0; i < l.layout.segment_length; ++i)
      sum += l.args.partials[s * l.layout.segment_length + i];
    out[s] = narrow<T>(sum);
  }
}

// The functors the emulator instantiates: the engine does not depend on the
// functor (fused_functor_test runs every functor's forms), so a few kinds
// stand for all: exact float- and double-returning, smooth, parameterized.
using EmulatedOps = std::tuple<detail::IdentityOp, detail::ReluOp, detail::LeakyReluOp,
                               detail::HardswishOp, detail::GeluOp, detail::GeluTanhOp,
                               detail::SiluOp, detail::SigmoidOp, detail::ThresholdOp>;

template <class Fn, size_t... I>
void visit_emulated_op(const Activation& act, Fn&& fn, std::index_sequence<I...>) {
  bool found = false;
  ((std::tuple_element_t<I, EmulatedOps>::kind == act.kind
        ? (fn(std::tuple_element_t<I, EmulatedOps>(act)), found = true)
        : false),
   ...);
  if (!found) ADD_FAILURE() << describe(act) << " is not among the emulated functors";
}
template <class Fn>
void visit_emulated_op(const Activation& act, Fn&& fn) {
  visit_emulated_op(act, fn, std::make_index_sequence<std::tuple_size_v<EmulatedOps>>{});
}

template <class T>
void emulate_typed(const detail::FusedLaunch& launch, int64_t device_blocks) {
  using namespace detail;
  const FusedCall& c = launch.call;
  switch (launch.op) {
    case FusedOp::activation_forward:
      visit_emulated_op(c.act, [&](const auto& op) {
        using F = std::decay_t<decltype(op)>;
        emulate<T>(ActivationForwardForm<F>{op, c.dropout.scale}, c, device_blocks);
      });
      break;
    case FusedOp::activation_backward:
      visit_emulated_op(c.act, [&](const auto& op) {
        using F = std::decay_t<decltype(op)>;
        emulate<T>(ActivationBackwardForm<F>{op, c.dropout.scale}, c, device_blocks);
      });
      break;
    case FusedOp::gated_backward:
      visit_emulated_op(c.act, [&](const auto& op) {
        using F = std::decay_t<decltype(op)>;
        emulate<T>(GatedBackwardForm<F>{op}, c, device_blocks);
      });
      break;
    case FusedOp::slope_forward: emulate<T>(SlopeForwardForm{c.slope}, c, device_blocks); break;
    case FusedOp::slope_backward: emulate<T>(SlopeBackwardForm{c.slope}, c, device_blocks); break;
  }
}

}  // namespace

void emulate_fused(DType dtype, const detail::FusedLaunch& launch, int64_t device_blocks) {
  switch (dtype) {
    case DType::f16: emulate_typed<__half>(launch, device_blocks); break;
    case DType::bf16: emulate_typed<__nv_bfloat16>(launch, device_blocks); break;
    default: emulate_typed<float>(launch, device_blocks); break;
  }
}

// ---------------------------------------------------------------- tables

std::vector<Activation> fused_activations() { return test_activations(); }

std::vector<Activation> emulated_activations() {
  return {Activation::identity(),         Activation::relu(),        Activation::leaky_relu(0.2f),
          Activation::hardswish(),        Activation::gelu(),        Activation::gelu_tanh(),
          Activation::silu(1.5f),         Activation::sigmoid(),     Activation::threshold(0.5f, -2.0f)};
}

std::vector<Shape> fused_shapes() {
  return {{1, 1}, {1, 7}, {3, 5}, {2, 8}, {4, 33}, {5, 64}, {7, 100}, {17, 31}, {64, 9},
          {3, 1000}, {130, 3}, {1, 4099}};
}

double fused_input(DType dtype, int64_t i, int64_t phase) {
  const std::vector<double>& grid = test_inputs(dtype);
  const auto n = static_cast<int64_t>(grid.size());
  if (dtype != DType::f32) return grid[static_cast<size_t>((i + phase * 7919) % n)];
  // fp32: a stride through the ~1M-value grid reaches every part of it quickly.
  return grid[static_cast<size_t>((i * 104729 + phase * 7919) % n)];
}

double fused_operand(int64_t i) {
  constexpr double kValues[] = {1.0, -0.75, 3.5, 0.0625, -2.0, 0.5, -1.25, 0.0, -0.0, 2.25};
  return kValues[i % 10];
}

std::string shape_name(const Shape& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

}  // namespace cuact::test
