// The CPU reference of the fused forms, in double, written from docs/SPEC.md
// ("Gated activations", "Fused forms", the prelu and rrelu rows) and the
// contract of cuact/fused.h, not from the device code. The elementwise math
// is reference::forward / backward; the random words come from Philox
// (cuda/philox.h), which is the generator's definition, not math under test.
//
// Conventions: an element is read completely before its outputs are written
// (outputs may alias inputs); reductions add exact terms in double and round
// once at the end.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cuact/reference.h"
#include "element_io.h"
#include "fused_checks.h"
#include "philox.h"

namespace cuact::reference {

namespace {

double get(DType dtype, const void* p, int64_t i) { return detail::load_element(dtype, p, i); }
void put(DType dtype, void* p, int64_t i, double v) { detail::store_element(dtype, p, i, v); }

// Element e's 16-bit draw (philox.h states the contract).
uint32_t draw_of(uint64_t seed, uint64_t offset, uint64_t e) {
  const detail::RandomStream stream{seed, offset};
  return stream.draw(e);
}

// slope * x with the limit 0 for a zero slope at x = -inf (as leaky_relu).
double slope_times(double slope, double x) { return slope == 0 ? 0.0 : slope * x; }

// The reference draws from seed and offset by value; the device-memory state
// (graph-safe calls) is the device calls' alone.
Status check_host_random(const uint64_t* state, const uint64_t* used) {
  if (state != nullptr || used != nullptr)
    return {StatusCode::unsupported,
            "the CPU reference takes seed and offset by value, not device_state"};
  return {};
}
Status check_host_dropout(const Dropout& dropout) {
  return check_host_random(dropout.device_state, dropout.device_used);
}

}  // namespace

double bias_preactivation(double x, double bias) { return round_to(DType::f32, x + bias); }

bool dropout_keeps(const Dropout& dropout, uint64_t e) {
  // keep iff draw >= ceil(p * 2^16); p = 1 gives 2^16, above every draw.
  const double threshold = std::ceil(static_cast<double>(dropout.p) * 65536.0);
  if (threshold == 0) return true;
  return static_cast<double>(draw_of(dropout.seed, dropout.offset, e)) >= threshold;
}

double dropout_scale(float p) { return p < 1 ? round_to(DType::f32, 1.0 / (1.0 - p)) : 0.0; }

double rrelu_slope(const Rrelu& rrelu, uint64_t e) {
  if (!rrelu.training)
    return round_to(DType::f32, (static_cast<double>(rrelu.lower) + rrelu.upper) / 2);
  // lower + (upper - lower) * u in fp32 (the generator's definition), u = 16 random bits.
  const float u = std::ldexp(static_cast<float>(draw_of(rrelu.seed, rrelu.offset, e)), -16);
  const float span = rrelu.upper - rrelu.lower;
  const float r = span == 0.0f ? rrelu.lower : std::fmaf(span, u, rrelu.lower);
  return r > rrelu.upper ? rrelu.upper : r;
}

// ---------------------------------------------------------------- bias + activation

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, void* y, int64_t rows, int64_t cols,
                               const Dropout& dropout, uint8_t* mask) {
  if (Status s = detail::check_bias_activation_forward(act, dtype, x, bias, bias_dtype, y, rows,
                                                       cols, dropout, mask);
      !s.ok())
    return s;
  if (Status s = check_host_dropout(dropout); !s.ok()) return s;
  if (rows == 0 || cols == 0) return {};
  const double scale = dropout_scale(dropout.p);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t e = r * cols + c;
      const double xv = get(dtype, x, e);
      const double z = bias != nullptr ? bias_preactivation(xv, get(bias_dtype, bias, c)) : xv;
      const bool kept = dropout_keeps(dropout, static_cast<uint64_t>(e));
      // Without dropout the activation alone, rounded once to the dtype.
      put(dtype, y, e, !kept ? 0.0 : scale == 1 ? forward(act, z, dtype) : forward(act, z) * scale);
      if (mask != nullptr) mask[e] = kept ? 1 : 0;
    }
  return {};
}

Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, void* dx, void* dbias,
                                int64_t rows, int64_t cols, const Dropout& dropout) {
  if (Status s = detail::check_bias_activation_backward(act, dtype, x, bias, bias_dtype, dy, dx,
                                                        dbias, rows, cols, dropout);
      !s.ok())
    return s;
  if (Status s = check_host_dropout(dropout); !s.ok()) return s;
  if (rows == 0 || cols == 0) {  // dbias of an empty batch is zeros
    if (dbias != nullptr)
      for (int64_t c = 0; c < cols; ++c) put(bias_dtype, dbias, c, 0.0);
    return {};
  }
  const double scale = dropout_scale(dropout.p);
  std::vector<double> sums(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t e = r * cols + c;
      const double xv = get(dtype, x, e);
      const double g = get(dtype, dy, e);
      const double z = bias != nullptr ? bias_preactivation(xv, get(bias_dtype, bias, c)) : xv;
      // g * scale is exact in double (two floats' product); dx rounds once.
      const bool kept = dropout_keeps(dropout, static_cast<uint64_t>(e));
      const double dz = kept ? backward(act, z, g * scale) : 0.0;
      sums[c] += dz;
      put(dtype, dx, e, kept ? backward(act, z, g * scale, dtype) : 0.0);
    }
  if (dbias != nullptr)
    for (int64_t c = 0; c < cols; ++c) put(bias_dtype, dbias, c, sums[c]);
  return {};
}

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               void* y, int64_t rows, int64_t cols, const Dropout& dropout,
                               uint8_t* mask) {
  return reference::bias_activation_forward(act, dtype, x, bias, dtype, y, rows, cols, dropout, mask);
}

Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                const void* dy, void* dx, void* dbias, int64_t rows, int64_t cols,
                                const Dropout& dropout) {
  return reference::bias_activation_backward(act, dtype, x, bias, dtype, dy, dx, dbias, rows, cols, dropout);
}

// ---------------------------------------------------------------- GLU

GluHalves glu_halves(const Glu& glu, double gate, double linear) {
  const double limit = glu.limit;
  GluHalves h;
  h.gate_passes = !(gate > limit);
  h.linear_passes = !(linear > limit || linear < -limit);
  h.gate = h.gate_passes ? gate : limit;
  h.linear = h.linear_passes ? linear : std::copysign(limit, linear);
  if (glu.offset != 0) h.linear += glu.offset;
  return h;
}

GluColumns glu_columns(const Glu& glu, int64_t d, int64_t c) {
  const int64_t k = glu.interleave > 0 ? glu.interleave : d;
  const int64_t block = 2 * k * (c / k), at = c % k;
  const bool first = glu.gated == GatedHalf::first;
  return {block + (first ? 0 : k) + at, block + (first ? k : 0) + at};
}

double glu_value(const Glu& glu, double gate, double linear) {
  const GluHalves h = glu_halves(glu, gate, linear);
  return forward(glu.act, h.gate) * h.linear;
}

namespace {

// y [rows, d] = act(g') * u' * weight[r] (weight null: 1).
Status glu_rows_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                        DType weight_dtype, void* y, int64_t rows, int64_t d) {
  if (rows == 0 || d == 0) return {};  // (rows may then be huge: no loop over them)
  for (int64_t r = 0; r < rows; ++r) {
    const double w = weight != nullptr ? get(weight_dtype, weight, r) : 1.0;
    for (int64_t c = 0; c < d; ++c) {
      const GluColumns at = glu_columns(glu, d, c);
      const double v = glu_value(glu, get(dtype, x, r * 2 * d + at.gated), get(dtype, x, r * 2 * d + at.linear));
      put(dtype, y, r * d + c, weight != nullptr ? v * w : v);
    }
  }
  return {};
}

// dx [rows, 2d] from dy * weight[r]; dweight[r] = sum of dy * act(g') * u'.
void glu_rows_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                       DType weight_dtype, const void* dy, void* dx, void* dweight, int64_t rows,
                       int64_t d) {
  // An empty row writes only its d weight (0): without one, nothing to do
  // (and rows may then be huge: no loop over them).
  if (d == 0 && dweight == nullptr) return;
  for (int64_t r = 0; r < rows; ++r) {
    const double w = weight != nullptr ? get(weight_dtype, weight, r) : 1.0;
    double sum = 0;
    for (int64_t c = 0; c < d; ++c) {
      const GluColumns at = glu_columns(glu, d, c);
      const int64_t ia = r * 2 * d + at.gated, ib = r * 2 * d + at.linear;
      const GluHalves h = glu_halves(glu, get(dtype, x, ia), get(dtype, x, ib));
      const double g = get(dtype, dy, r * d + c);
      const double gw = weight != nullptr ? g * w : g;
      const double f = forward(glu.act, h.gate);
      // (gw * u' rounded in double: exact for unweighted, unclamped halves.)
      const double da = h.gate_passes ? backward(glu.act, h.gate, gw * h.linear, dtype) : 0.0;
      const double db = h.linear_passes ? gw * f : 0.0;
      sum += g * f * h.linear;
      put(dtype, dx, ia, da);
      put(dtype, dx, ib, db);
    }
    if (dweight != nullptr) put(weight_dtype, dweight, r, sum);
  }
}

}  // namespace

Status glu_forward(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows, int64_t d) {
  if (Status s = detail::check_glu_forward(glu, dtype, x, y, rows, d); !s.ok()) return s;
  return glu_rows_forward(glu, dtype, x, nullptr, dtype, y, rows, d);
}

Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy, void* dx,
                    int64_t rows, int64_t d) {
  if (Status s = detail::check_glu_backward(glu, dtype, x, dy, dx, rows, d); !s.ok()) return s;
  glu_rows_backward(glu, dtype, x, nullptr, dtype, dy, dx, nullptr, rows, d);
  return {};
}

Status glu_forward(const Glu& glu, DType dtype, const void* x, const void* weight,
                   DType weight_dtype, void* y, int64_t rows, int64_t d) {
  if (Status s = detail::check_glu_forward(glu, dtype, x, y, rows, d,
                                           {true, weight, weight_dtype});
      !s.ok())
    return s;
  return glu_rows_forward(glu, dtype, x, weight, weight_dtype, y, rows, d);
}

Status glu_backward(const Glu& glu, DType dtype, const void* x, const void* weight,
                    DType weight_dtype, const void* dy, void* dx, void* dweight, int64_t rows,
                    int64_t d) {
  if (Status s = detail::check_glu_backward(glu, dtype, x, dy, dx, rows, d,
                                            {true, weight, weight_dtype, dweight});
      !s.ok())
    return s;
  glu_rows_backward(glu, dtype, x, weight, weight_dtype, dy, dx, dweight, rows, d);
  return {};
}

// ---------------------------------------------------------------- PReLU

Status prelu_forward(DType dtype, const void* x, const void* weight, DType weight_dtype, void* y,
                     int64_t outer, int64_t channels, int64_t inner) {
  if (Status s = detail::check_prelu_forward(dtype, x, weight, weight_dtype, y, outer, channels,
                                             inner);
      !s.ok())
    return s;
  if (outer == 0 || channels == 0 || inner == 0) return {};  // empty: weight may be null
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const double w = get(weight_dtype, weight, c);
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t e = (o * channels + c) * inner + i;
        const double xv = get(dtype, x, e);
        put(dtype, y, e, std::isnan(xv) || xv > 0 ? xv : slope_times(w, xv));
      }
    }
  return {};
}

Status prelu_backward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                      const void* dy, void* dx, void* dweight, int64_t outer, int64_t channels,
                      int64_t inner) {
  if (Status s = detail::check_prelu_backward(dtype, x, weight, weight_dtype, dy, dx, dweight,
                                              outer, channels, inner);
      !s.ok())
    return s;
  if (outer == 0 || channels == 0 || inner == 0) {  // dweight of an empty batch is zeros
    if (dweight != nullptr)
      for (int64_t c = 0; c < channels; ++c) put(weight_dtype, dweight, c, 0.0);
    return {};
  }
  std::vector<double> sums(static_cast<size_t>(channels), 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const double w = get(weight_dtype, weight, c);
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t e = (o * channels + c) * inner + i;
        const double xv = get(dtype, x, e), g = get(dtype, dy, e);
        // d weight[c] = sum of dy * x over x <= 0; a NaN x is not > 0 and makes it NaN.
        if (!(xv > 0)) sums[c] += g * xv;
        put(dtype, dx, e, std::isnan(xv) ? xv : (xv > 0 ? g : w * g));
      }
    }
  if (dweight != nullptr)
    for (int64_t c = 0; c < channels; ++c) put(weight_dtype, dweight, c, sums[c]);
  return {};
}

Status prelu_forward(DType dtype, const void* x, const void* weight, void* y, int64_t outer,
                     int64_t channels, int64_t inner) {
  return reference::prelu_forward(dtype, x, weight, dtype, y, outer, channels, inner);
}

Status prelu_backward(DType dtype, const void* x, const void* weight, const void* dy, void* dx,
                      void* dweight, int64_t outer, int64_t channels, int64_t inner) {
  return reference::prelu_backward(dtype, x, weight, dtype, dy, dx, dweight, outer, channels, inner);
}

// ---------------------------------------------------------------- RReLU

Status rrelu_forward(const Rrelu& rrelu, DType dtype, const void* x, void* y, int64_t n) {
  if (Status s = detail::check_rrelu_call(rrelu, dtype, x, nullptr, y, n, false); !s.ok()) return s;
  if (Status s = check_host_random(rrelu.device_state, rrelu.device_used); !s.ok()) return s;
  for (int64_t e = 0; e < n; ++e) {
    const double xv = get(dtype, x, e);
    const double r = rrelu_slope(rrelu, static_cast<uint64_t>(e));
    put(dtype, y, e, std::isnan(xv) || xv >= 0 ? xv : slope_times(r, xv));
  }
  return {};
}

Status rrelu_backward(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* dx,
                      int64_t n) {
  if (Status s = detail::check_rrelu_call(rrelu, dtype, x, dy, dx, n, true); !s.ok()) return s;
  if (Status s = check_host_random(rrelu.device_state, rrelu.device_used); !s.ok()) return s;
  for (int64_t e = 0; e < n; ++e) {
    const double xv = get(dtype, x, e), g = get(dtype, dy, e);
    const double r = rrelu_slope(rrelu, static_cast<uint64_t>(e));
    put(dtype, dx, e, std::isnan(xv) ? xv : (xv >= 0 ? g : r * g));
  }
  return {};
}

}  // namespace cuact::reference
