#include "quantized_accuracy.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "accuracy.h"
#include "activation_params.h"
#include "cuact/reference.h"
#include "output_stage.h"

namespace cuact::test {

void QuantizedReport::add(const QuantizedReport& o) {
  results += o.results;
  correctly_rounded += o.correctly_rounded;
  near_boundary += o.near_boundary;
  outside += o.outside;
  for (const std::string& f : o.first_failures)
    if (first_failures.size() < 5) first_failures.push_back(f);
}

namespace {

// The fp32 results of the functor (as the quantized kernels compute them).
std::vector<float> fp32_results(const Activation& act, Direction direction,
                                const std::vector<double>& in, const std::vector<double>& dy) {
  const std::vector<double> r = evaluate_functors_on_host(act, DType::f32, direction, in, dy);
  return std::vector<float>(r.begin(), r.end());
}

// The spacing of fp32 at |a| (its ulp; 2^-149 below the normal range).
double fp32_ulp(double a) {
  if (!(std::fabs(a) >= FLT_MIN)) return 0x1p-149;
  return std::ldexp(1.0, std::ilogb(a) - 23);
}

// A code's place in value order (NaN codes excluded by the caller).
int ordered(uint8_t code) { return (code & 0x80) != 0 ? -(code & 0x7f) : (code & 0x7f); }

double exact_of(const Activation& act, Direction direction, double in, double dy) {
  switch (direction) {
    case Direction::forward: return reference::forward(act, in);
    case Direction::backward: return reference::backward(act, in, dy);
    default: return reference::backward_from_output(act, in, dy);
  }
}

}  // namespace

std::vector<uint8_t> quantize_functors_on_host(const Activation& act, Direction direction,
                                               Fp8 format, float scale,
                                               const std::vector<double>& in,
                                               const std::vector<double>& dy) {
  const std::vector<float> y = fp32_results(act, direction, in, dy);
  const detail::OutputStage<detail::Code8> stage{scale, format, true};
  std::vector<uint8_t> codes(y.size());
  float amax = 0.0f;
  for (size_t i = 0; i < y.size(); ++i) codes[i] = stage.one(y[i], amax).bits;
  return codes;
}

float functor_amax_on_host(const Activation& act, Direction direction,
                           const std::vector<double>& in, const std::vector<double>& dy) {
  float amax = 0.0f;
  for (float y : fp32_results(act, direction, in, dy))
    if (!std::isnan(y)) amax = std::max(amax, std::fabs(y));
  return amax;
}

bool judge_code(QuantizedReport& r, Fp8 format, float scale, double exact, double error,
                uint8_t code, bool one_step) {
  ++r.results;
  const double v = exact * static_cast<double>(scale);
  const uint8_t nearest = reference::fp8_bits(format, v);
  const double got = reference::fp8_value(format, code);
  bool ok = false;
  if (std::isnan(v) || std::isnan(got)) {
    ok = std::isnan(v) && std::isnan(got);
    if (ok) ++r.correctly_rounded;
  } else if (got == reference::fp8_value(format, nearest)) {  // +-0 are one value
    ok = true;
    ++r.correctly_rounded;
  } else if (std::isfinite(v) && (!one_step || std::abs(ordered(code) - ordered(nearest)) <= 1)) {
    // The fp32 result's error and the product's rounding, scaled.
    const double delta = error * scale + 0.5 * fp32_ulp(v);
    const double lo = reference::round_to_fp8(format, v - delta);
    const double hi = reference::round_to_fp8(format, v + delta);
    ok = got >= lo && got <= hi;
    if (ok) ++r.near_boundary;
  }
  if (!ok) ++r.outside;
  return ok;
}

void QuantizedJudge::record(QuantizedReport& r, double in, double dy, double exact,
                            uint8_t code) const {
  // The fp32 result's error: the functor's bound, its subnormal floor, the
  // root allowance near a zero of f'.
  const Tolerance tol = tolerance_for(act.kind, DType::f32, direction);
  // (2^-23 |exact| bounds an ulp of every fp32 value near exact, also
  // across a binade or for a product whose factors sit in other binades.)
  double err = (tol.ulps + 0.5 + 0.5 * products) * std::max(0x1p-23 * std::fabs(exact), 0x1p-149);
  if (tol.fp32_subnormal_floor) err = std::max(err, static_cast<double>(FLT_MIN));
  if (tol.root_allowance > 0 && direction != Direction::forward && near_derivative_zero(act, in))
    err = std::max(err, tol.root_allowance * 0x1p-24 * std::fabs(dy));
  if (!judge_code(r, format, scale, exact, err, code) && r.outside <= 5) {
    const double v = exact * static_cast<double>(scale);
    std::ostringstream msg;
    msg << std::setprecision(9) << describe(act) << " " << direction_name(direction)
        << (format == Fp8::e4m3 ? " e4m3" : " e5m2") << " scale=" << scale << " in=" << in
        << " dy=" << dy << ": code 0x" << std::hex << int{code} << " ("
        << std::dec << reference::fp8_value(format, code) << "), exact*scale " << v
        << " (nearest 0x" << std::hex << int{reference::fp8_bits(format, v)} << ")";
    r.first_failures.push_back(msg.str());
  }
}

QuantizedReport QuantizedJudge::judge_all(const std::vector<double>& in,
                                          const std::vector<double>& dy,
                                          const std::vector<double>& exact,
                                          const std::vector<uint8_t>& codes) const {
  QuantizedReport r;
  for (size_t i = 0; i < codes.size(); ++i)
    record(r, in[i], dy.empty() ? 0.0 : dy[i], exact[i], codes[i]);
  return r;
}

QuantizedReport sweep_quantized(const Activation& act, DType dtype, Direction direction,
                                Fp8 format, float scale, const std::vector<double>& grid,
                                const CodeEvaluator& evaluate) {
  std::vector<double> in(grid.size()), dy(grid.size());
  for (size_t i = 0; i < grid.size(); ++i) {
    in[i] = direction_input(act, dtype, direction, grid[i]);
    dy[i] = direction == Direction::forward ? 0.0 : test_gradient(static_cast<int64_t>(i));
  }
  const std::vector<uint8_t> codes = evaluate(in, dy);
  const QuantizedJudge judge{act, direction, format, scale};
  QuantizedReport r;
  for (size_t i = 0; i < grid.size(); ++i)
    judge.record(r, in[i], dy[i], exact_of(act, direction, in[i], dy[i]), codes[i]);
  return r;
}

}  // namespace cuact::test
