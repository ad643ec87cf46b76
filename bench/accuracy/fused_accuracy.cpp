#include "fused_accuracy.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cuact/reference.h"

namespace cuact::test {

namespace {

// The first failures of a call are described on stderr (the count is returned).
void report(const std::string& what) { std::fprintf(stderr, "fused judge: %s\n", what.c_str()); }

}  // namespace

Tolerance fused_tolerance(ActivationKind kind, DType dtype, Direction direction,
                          int roundings_after) {
  Tolerance t = tolerance_for(kind, dtype, direction);
  if (kind == ActivationKind::hardsigmoid || kind == ActivationKind::hardswish)
    t.ulps = std::max(t.ulps, 1);
  if (roundings_after == 0) return t;
  if (dtype == DType::f32) {
    t.ulps += roundings_after;
    t.fp32_subnormal_floor = true;  // the product of a subnormal result rounds twice
  } else {
    t.ulps = std::max(t.ulps, 1);
  }
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

double backward_term_error(const Activation& act, DType dtype, double z, double dy,
                           double exact_term, bool product_after) {
  const Tolerance t = fused_tolerance(act.kind, dtype, Direction::backward, product_after);
  double e = t.ulps * ulp_at(dtype, exact_term) + FLT_MIN;
  if (dtype != DType::f32) e += ulp_at(DType::f32, exact_term);  // the fp32 term's own rounding
  if (t.root_allowance > 0 && near_derivative_zero(act, z))
    e += t.root_allowance * std::ldexp(std::fabs(dy), -24);
  return e;
}

double rounded_term_error(double exact_term) { return ulp_at(DType::f32, exact_term); }

double glu_term_error(const Glu& glu, DType dtype, double exact_term) {
  // act(g') comes from the data's functor (as precise as y needs), then two
  // products and the offset's sum in fp32.
  const int roundings = 2 + (glu.offset != 0 ? 1 : 0);
  const Tolerance t = fused_tolerance(glu.act.kind, dtype, Direction::forward, roundings);
  double e = t.ulps * ulp_at(dtype, exact_term) + FLT_MIN;
  if (dtype != DType::f32) e += roundings * ulp_at(DType::f32, exact_term);
  return e;
}

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
  // A reduction's output, in sum_dtype (the parameter's).
  void check_sum(const char* what, int64_t i, double got, double exact, const ReductionBound& b,
                 DType sum_dtype) {
    if (!reduction_within(sum_dtype, got, exact, b)) {
      ++failures_;
      if (failures_ <= 3)
        report(std::string(what) + "[" + std::to_string(i) +
               "]: " + reduction_report(sum_dtype, got, exact, b));
    }
  }
  void fail(const char* what, int64_t i, double got, double exact, const std::string& note) {
    if (++failures_ <= 3) {
      std::ostringstream s;
      s << what << "[" << i << "]: got " << got << ", exact " << exact << " " << note;
      report(s.str());
    }
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

int64_t judge_bias_backward(const Activation& act, DType dtype, DType param_dtype, int64_t rows,
                            int64_t cols,
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
    bounds[c].add(dz, kept ? backward_term_error(act, dtype, z, g, dz, product) : 0.0);
  }
  for (int64_t c = 0; c < static_cast<int64_t>(dbias.size()); ++c)
    j.check_sum("dbias", c, dbias[c], sums[c], bounds[c], param_dtype);
  return j.failures();
}

namespace {

// The fp32 roundings a GLU adds after its activation: the product with the
// linear half, the offset's sum, the weight's product.
int glu_roundings(const Glu& glu, bool weighted) {
  return 1 + (glu.offset != 0 ? 1 : 0) + (weighted ? 1 : 0);
}

}  // namespace

int64_t judge_glu_forward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                          const std::vector<double>& x, const std::vector<double>& y,
                          const std::vector<double>& weight) {
  CallJudge j(dtype);
  const bool weighted = !weight.empty();
  const Tolerance tol =
      fused_tolerance(glu.act.kind, dtype, Direction::forward, glu_roundings(glu, weighted));
  for (int64_t r = 0; r < rows; ++r) {
    const double w = weighted ? weight[r] : 1.0;
    for (int64_t c = 0; c < d; ++c) {
      const reference::GluColumns at = reference::glu_columns(glu, d, c);
      const reference::GluHalves h =
          reference::glu_halves(glu, x[r * 2 * d + at.gated], x[r * 2 * d + at.linear]);
      if (fp32_activation_overflows(glu.act, h.gate))
        j.check_exact("y", r * d + c, y[r * d + c], overflowed_product(glu.act, h.gate, h.linear * w));
      else j.check("y", r * d + c, y[r * d + c], reference::forward(glu.act, h.gate) * h.linear * w, 1.0, tol);
    }
  }
  return j.failures();
}

int64_t judge_glu_backward(const Glu& glu, DType dtype, int64_t rows, int64_t d,
                           const std::vector<double>& x, const std::vector<double>& dy,
                           const std::vector<double>& dx, const std::vector<double>& weight,
                           DType weight_dtype, const std::vector<double>& dweight) {
  CallJudge j(dtype);
  const bool weighted = !weight.empty();
  // d gated: act' times dy * w * u'; d linear: dy * w times act.
  const Tolerance tf = fused_tolerance(glu.act.kind, dtype, Direction::forward, weighted ? 2 : 1);
  const Tolerance tb =
      fused_tolerance(glu.act.kind, dtype, Direction::backward, glu_roundings(glu, weighted));
  const bool roots = roots_in(glu.act, dtype);
  for (int64_t r = 0; r < rows; ++r) {
    const double w = weighted ? weight[r] : 1.0;
    double sum = 0;
    ReductionBound bound;
    for (int64_t c = 0; c < d; ++c) {
      const reference::GluColumns at = reference::glu_columns(glu, d, c);
      const int64_t ia = r * 2 * d + at.gated, ib = r * 2 * d + at.linear;
      const reference::GluHalves h = reference::glu_halves(glu, x[ia], x[ib]);
      const double g = dy[r * d + c], gw = g * w, a = h.gate;
      if (!h.gate_passes) j.check_exact("d gated", ia, dx[ia], 0.0);
      else j.check("d gated", ia, dx[ia], reference::backward(glu.act, a, gw * h.linear), gw * h.linear,
                   tb, roots && near_derivative_zero(glu.act, a));
      if (!h.linear_passes) j.check_exact("d linear", ib, dx[ib], 0.0);
      else if (fp32_activation_overflows(glu.act, a))
        j.check_exact("d linear", ib, dx[ib], overflowed_product(glu.act, a, gw));
      else j.check("d linear", ib, dx[ib], gw * reference::forward(glu.act, a), gw, tf);
      const double term = g * reference::forward(glu.act, a) * h.linear;
      sum += term;
      bound.add(term, glu_term_error(glu, dtype, term));
    }
    if (!dweight.empty()) j.check_sum("dweight", r, dweight[r], sum, bound, weight_dtype);
  }
  return j.failures();
}

int64_t judge_prelu(DType dtype, DType param_dtype, int64_t outer, int64_t channels, int64_t inner,
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
    j.check_sum("dweight", c, dweight[c], sums[c], bounds[c], param_dtype);
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

// ---------------------------------------------------------------- inputs

double fused_input(DType dtype, int64_t i, int64_t phase) {
  const std::vector<double>& grid = test_inputs(dtype);
  const auto n = static_cast<int64_t>(grid.size());
  if (dtype != DType::f32) return grid[static_cast<size_t>((i + phase * 7919) % n)];
  // fp32: a stride through the ~1M-value grid reaches every part of it quickly.
  return grid[static_cast<size_t>((i * 104729 + phase * 7919) % n)];
}

double fused_moderate(DType dtype, int64_t i, int64_t phase) {
  return reference::round_to(dtype, 4.0 * std::sin(0.37 * static_cast<double>(i) + phase));
}

PreluInputs prelu_inputs(DType dtype, int64_t n, int64_t channels) {
  PreluInputs in;
  in.x.resize(static_cast<size_t>(n));
  in.dy.resize(static_cast<size_t>(n));
  in.weight.resize(static_cast<size_t>(channels));
  for (int64_t i = 0; i < n; ++i) {
    in.x[i] = fused_moderate(dtype, i, 3);
    in.dy[i] = fused_moderate(dtype, i, 4);
  }
  for (int64_t c = 0; c < channels; ++c) in.weight[c] = fused_operand(c + 2) / 4;
  return in;
}

double fused_operand(int64_t i) {
  constexpr double kValues[] = {1.0, -0.75, 3.5, 0.0625, -2.0, 0.5, -1.25, 0.0, -0.0, 2.25};
  return kValues[i % 10];
}

}  // namespace cuact::test
