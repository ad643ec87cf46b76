// The CPU reference of the calls with a quantized output (cuact/quantized.h,
// docs/SPEC.md "Quantized outputs"), in double, written from the contract:
// each result as the plain form's reference computes it (not rounded to the
// input dtype), times the scale, rounded to fp8 (round_to_fp8, written from
// the formats' definitions); amax the largest |result| rounded to fp32; the
// current recipe's scale by SPEC's rule.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "cuact/reference.h"
#include "element_io.h"
#include "quantized_checks.h"
#include "softmax_reference.h"

namespace cuact::reference {

double quantized_scale(Fp8 format, double amax, int margin, bool power_of_two) {
  if (!(amax > 0) || !std::isfinite(amax)) return 1.0;
  const double largest = format == Fp8::e4m3 ? 448.0 : 57344.0;
  double s = std::ldexp(round_to(DType::f32, largest / amax), -margin);
  s = std::fmin(std::fmax(s, static_cast<double>(FLT_MIN)), static_cast<double>(FLT_MAX));
  if (power_of_two) s = std::ldexp(1.0, std::ilogb(s));
  return s;
}

namespace {

double get(DType dtype, const void* p, int64_t i) { return detail::load_element(dtype, p, i); }

// The codes and words of results r (host memory), result i at codes[at[i]]
// (at null: at i).
void store_quantized(const std::vector<double>& r, const QuantizedOutput& q,
                     const std::vector<int64_t>* at = nullptr) {
  if (r.empty() && q.scaling == Scaling::delayed) {  // as the device: amax 0, nothing read
    if (q.amax != nullptr) *q.amax = 0.0f;
    return;
  }
  double amax = 0;
  for (double v : r)
    if (!std::isnan(v)) amax = std::fmax(amax, std::fabs(v));
  amax = round_to(DType::f32, amax);
  const double scale = q.scaling == Scaling::current
                           ? quantized_scale(q.dtype, amax, q.margin, q.power_of_two)
                           : static_cast<double>(*q.scale);
  auto* codes = static_cast<uint8_t*>(q.data);
  for (size_t i = 0; i < r.size(); ++i)
    codes[at != nullptr ? (*at)[i] : static_cast<int64_t>(i)] = fp8_bits(q.dtype, r[i] * scale);
  if (q.amax != nullptr) *q.amax = static_cast<float>(amax);
  if (q.scaling == Scaling::current) *q.scale = static_cast<float>(scale);
  if (q.scale_inv != nullptr) *q.scale_inv = static_cast<float>(round_to(DType::f32, 1.0 / scale));
}

}  // namespace

Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, const QuantizedOutput& out, int64_t n) {
  if (Status s = detail::check_quantized_activation(direction, act, dtype, in, grad, out, n, nullptr);
      !s.ok())
    return s;
  std::vector<double> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double v = get(dtype, in, i);
    r[static_cast<size_t>(i)] = direction == Direction::forward ? forward(act, v)
                                : direction == Direction::backward
                                    ? backward(act, v, get(dtype, grad, i))
                                    : backward_from_output(act, v, get(dtype, grad, i));
  }
  store_quantized(r, out);
  return {};
}

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const QuantizedOutput& y, int64_t rows,
                               int64_t cols, const Dropout& dropout, uint8_t* mask) {
  if (Status s = detail::check_quantized_bias_forward(act, dtype, x, bias, bias_dtype, y, rows, cols,
                                                      dropout, mask, nullptr);
      !s.ok())
    return s;
  if (dropout.device_state != nullptr || dropout.device_used != nullptr)
    return {StatusCode::unsupported, "the CPU reference takes seed and offset by value, not device_state"};
  const double keep_scale = dropout_scale(dropout.p);
  std::vector<double> r(static_cast<size_t>(rows * cols));
  for (int64_t e = 0; e < rows * cols; ++e) {
    const double xv = get(dtype, x, e);
    const double z = bias != nullptr ? bias_preactivation(xv, get(bias_dtype, bias, e % cols)) : xv;
    const bool kept = dropout_keeps(dropout, static_cast<uint64_t>(e));
    r[static_cast<size_t>(e)] = !kept ? 0.0 : keep_scale == 1 ? forward(act, z) : forward(act, z) * keep_scale;
    if (mask != nullptr) mask[e] = kept ? 1 : 0;
  }
  store_quantized(r, y);
  return {};
}

Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, const QuantizedOutput& dx,
                                void* dbias, int64_t rows, int64_t cols) {
  if (Status s = detail::check_quantized_bias_backward(act, dtype, x, bias, bias_dtype, dy, dx, dbias,
                                                       rows, cols, nullptr);
      !s.ok())
    return s;
  std::vector<double> r(static_cast<size_t>(rows * cols)), sums(static_cast<size_t>(cols), 0.0);
  for (int64_t e = 0; e < rows * cols; ++e) {
    const double xv = get(dtype, x, e);
    const double z = bias != nullptr ? bias_preactivation(xv, get(bias_dtype, bias, e % cols)) : xv;
    r[static_cast<size_t>(e)] = backward(act, z, get(dtype, dy, e));
    sums[static_cast<size_t>(e % cols)] += r[static_cast<size_t>(e)];
  }
  if (dbias != nullptr)
    for (int64_t c = 0; c < cols; ++c) detail::store_element(bias_dtype, dbias, c, sums[static_cast<size_t>(c)]);
  store_quantized(r, dx);
  return {};
}

Status glu_forward(const Glu& glu, DType dtype, const void* x, const QuantizedOutput& y,
                   int64_t rows, int64_t d) {
  if (Status s = detail::check_quantized_glu_forward(glu, dtype, x, y, rows, d, nullptr); !s.ok())
    return s;
  const int64_t gated = glu.gated == GatedHalf::first ? 0 : d;
  const int64_t other = d - gated;
  std::vector<double> r(static_cast<size_t>(rows * d));
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t c = 0; c < d; ++c)
      r[static_cast<size_t>(row * d + c)] =
          glu_value(glu, get(dtype, x, row * 2 * d + gated + c), get(dtype, x, row * 2 * d + other + c));
  store_quantized(r, y);
  return {};
}

Status softmax_forward(const Softmax& op, DType dtype, const void* x, const QuantizedOutput& y,
                       const SoftmaxShape& shape) {
  if (Status s = detail::check_quantized_softmax(op, dtype, x, y, shape, nullptr); !s.ok())
    return s;
  std::vector<double> r;
  std::vector<int64_t> at;
  softmax_lines(Direction::forward, op, dtype, x, nullptr, shape, [&](int64_t i, double v) {
    at.push_back(i);
    r.push_back(v);
  });
  store_quantized(r, y, &at);
  return {};
}

// ---------------------------------------------------------------- block-scaled outputs

namespace {

// The block's scale exponent e (scale 2^e) of an E8M0 scale, from the OCP MX
// definition: floor(log2 amax) - emax of the element format (FLOOR), or the
// smallest e with amax <= largest * 2^e (RCEIL); -127 for an all-zero block,
// 127 where the block holds an infinity; within [-127, 127].
int e8m0_exponent(double amax, Fp8 format, bool round_up) {
  if (!(amax > 0)) return -127;
  if (std::isinf(amax)) return 127;
  const double largest = format == Fp8::e4m3 ? 448.0 : 57344.0;
  const int emax = format == Fp8::e4m3 ? 8 : 15;
  int e = std::ilogb(amax) - emax;
  if (round_up) {
    while (amax > std::ldexp(largest, e)) ++e;
    while (amax <= std::ldexp(largest, e - 1)) --e;
  }
  return std::min(127, std::max(-127, e));
}

// The entry of (row, group) in the layout (cuact/fp8.h's definitions).
int64_t scale_entry(ScaleLayout layout, int64_t r, int64_t g, int64_t rows, int64_t groups) {
  if (layout == ScaleLayout::row_major) return r * groups + g;
  if (layout == ScaleLayout::column_major) return g * rows + r;
  if (layout == ScaleLayout::column_major_packed) {  // 4-byte words [g / 4][rows padded to 4]
    const int64_t padded_rows = (rows + 3) / 4 * 4;
    return ((g / 4) * padded_rows + r) * 4 + g % 4;
  }
  const int64_t tile = (r / 128) * ((groups + 3) / 4) + g / 4;
  return tile * 512 + (r % 32) * 16 + ((r % 128) / 32) * 4 + g % 4;
}

// The e2m1 code of v from the format's definition: the nearest of 0, 0.5,
// 1, 1.5, 2, 3, 4, 6 to |v| (ties to the even code), saturated at 6; the
// sign bit 0x8 as v's (zero's too); NaN +6 (0x7), CUDA's choice.
uint8_t e2m1_bits(double v) {
  if (std::isnan(v)) return 0x7;
  static const double kValues[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  const double a = std::fabs(v);
  int best = 7;
  if (a < 6) {
    best = 0;
    for (int c = 1; c < 8; ++c) {
      const double d = std::fabs(a - kValues[c]), e = std::fabs(a - kValues[best]);
      if (d < e || (d == e && c % 2 == 0)) best = c;
    }
  }
  return static_cast<uint8_t>(best | (std::signbit(v) ? 0x8 : 0));
}

// NVFP4's tensor scale found from the results (Scaling::current): A, the
// results' max |value| (NaN excluded) rounded to fp32; t = fl32(A / 2688)
// (one fp32 division), at least 2^-126; 1 where A is 0 or inf.
float found_tensor_scale(const std::vector<double>& v) {
  double amax = 0;
  for (double x : v)
    if (!std::isnan(x)) amax = std::fmax(amax, std::fabs(x));
  const auto a = static_cast<float>(round_to(DType::f32, amax));
  if (a == 0.0f || std::isinf(a)) return 1.0f;
  return std::max(a / 2688.0f, 0x1p-126f);
}

// Quantizes results v[rows * cols] (doubles: the fp32 values, or exact ones).
void quantize_blocks(const std::vector<double>& v, int64_t rows, int64_t cols,
                     const BlockScaledOutput& out) {
  const double largest = out.dtype == Fp8::e4m3 ? 448.0 : 57344.0;
  const int64_t groups = (cols + out.block - 1) / out.block;
  auto* codes = static_cast<uint8_t*>(out.data);
  if (out.scale_type == BlockScale::e4m3 && out.scaling == Scaling::current)
    *out.tensor_scale = found_tensor_scale(v);
  double tensor_amax = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t begin = g * out.block, end = std::min(cols, begin + out.block);
      double amax = 0;
      for (int64_t c = begin; c < end; ++c)
        if (!std::isnan(v[r * cols + c])) amax = std::fmax(amax, std::fabs(v[r * cols + c]));
      tensor_amax = std::fmax(tensor_amax, amax);
      const int64_t at = scale_entry(out.scale_layout, r, g, rows, groups);
      if (out.scale_type == BlockScale::e4m3) {
        // NVFP4: t (a positive finite tensor scale, else 1), k = 1 / (6 t)
        // in fp32; the block's e4m3 scale s of fl32(amax * k); the
        // multiplier fl32(1 / fl32(s * t)), 0 where s is 0.
        const double given = static_cast<double>(*out.tensor_scale);
        const double t = given > 0 && std::isfinite(given) ? given : 1.0;
        const double k = round_to(DType::f32, 1.0 / round_to(DType::f32, 6.0 * t));
        const uint8_t sbits = fp8_bits(Fp8::e4m3, round_to(DType::f32, amax * k));
        const double sv = fp8_value(Fp8::e4m3, sbits);
        const double multiplier = sv > 0 ? round_to(DType::f32, 1.0 / round_to(DType::f32, sv * t)) : 0.0;
        static_cast<uint8_t*>(out.scales)[at] = sbits;
        for (int64_t c = begin; c < end; ++c) {
          const int64_t e = r * cols + c;
          const uint8_t code = e2m1_bits(round_to(DType::f32, v[e] * multiplier));
          uint8_t& byte = codes[e / 2];
          byte = static_cast<uint8_t>(e % 2 == 0 ? (byte & 0xf0) | code : (byte & 0x0f) | code << 4);
        }
      } else if (out.scale_type == BlockScale::f32) {
        // amax within [largest * 2^-126, FLT_MAX]; fp32 scale and multiplier.
        const double a = std::min(static_cast<double>(FLT_MAX), std::fmax(amax, largest * 0x1p-126));
        const double multiplier = round_to(DType::f32, largest / a);
        static_cast<float*>(out.scales)[at] = static_cast<float>(round_to(DType::f32, a / largest));
        for (int64_t c = begin; c < end; ++c)
          codes[r * cols + c] = fp8_bits(out.dtype, round_to(DType::f32, v[r * cols + c] * multiplier));
      } else {
        const int e = e8m0_exponent(amax, out.dtype, out.scale_type == BlockScale::e8m0);
        static_cast<uint8_t*>(out.scales)[at] = static_cast<uint8_t>(e + 127);
        for (int64_t c = begin; c < end; ++c)
          codes[r * cols + c] = fp8_bits(out.dtype, std::ldexp(v[r * cols + c], -e));
      }
    }
  if (out.amax != nullptr) *out.amax = static_cast<float>(round_to(DType::f32, tensor_amax));
}

}  // namespace

Status block_quantize(const float* values, int64_t rows, int64_t cols, const BlockScaledOutput& out) {
  if (Status s = detail::check_block_descriptor(out); !s.ok()) return s;
  if (rows < 0 || cols < 0) return {StatusCode::invalid_size, "rows and cols must be >= 0"};
  if (rows * cols > 0 && (values == nullptr || out.data == nullptr || out.scales == nullptr))
    return {StatusCode::null_pointer, "values, data and scales must be given"};
  quantize_blocks(std::vector<double>(values, values + rows * cols), rows, cols, out);
  return {};
}

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const BlockScaledOutput& y, int64_t rows,
                               int64_t cols) {
  if (Status s = detail::check_block_bias_forward(act, dtype, x, bias, bias_dtype, y, rows, cols);
      !s.ok())
    return s;
  std::vector<double> r(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) {
    const double v = get(dtype, x, i);
    r[static_cast<size_t>(i)] =
        forward(act, bias != nullptr ? bias_preactivation(v, get(bias_dtype, bias, i % cols)) : v);
  }
  quantize_blocks(r, rows, cols, y);
  return {};
}

Status glu_forward(const Glu& glu, DType dtype, const void* x, const BlockScaledOutput& y,
                   int64_t rows, int64_t d) {
  if (Status s = detail::check_block_glu_forward(glu, dtype, x, y, rows, d); !s.ok()) return s;
  std::vector<double> r(static_cast<size_t>(rows * d));
  const int64_t g = glu.gated == GatedHalf::first ? 0 : d, l = d - g;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < d; ++c)
      r[static_cast<size_t>(i * d + c)] =
          glu_value(glu, get(dtype, x, i * 2 * d + g + c), get(dtype, x, i * 2 * d + l + c));
  quantize_blocks(r, rows, d, y);
  return {};
}

}  // namespace cuact::reference
