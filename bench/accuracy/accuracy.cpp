#include "accuracy.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <cctype>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <iomanip>
#include <limits>
#include <random>
#include <sstream>

#include "activation_params.h"
#include "cuact/device/convert.cuh"
#include "cuact/reference.h"
#include "dtype_list.h"

namespace cuact::test {

namespace {

struct KindBound {
  ActivationKind kind;
  int fp32_forward_ulps;
  int fp32_backward_ulps;
  double root_allowance;  // 0 where f' has no zero that rounding can straddle
};

// fp32 bounds per kind (docs/ACCURACY.md's table): the worst error the CPU
// run of the functors shows over the test grid, plus 2 ulp (4 where erfcf is
// used) for the GPU's libm, whose expf/tanhf/erfcf are within 2-4 ulp where
// glibc's are within 1. Piecewise-linear kinds are exact.
constexpr KindBound kBounds[] = {
    {ActivationKind::identity, 0, 0, 0},    {ActivationKind::relu, 0, 0, 0},
    {ActivationKind::relu6, 0, 0, 0},       {ActivationKind::hardtanh, 0, 0, 0},
    {ActivationKind::leaky_relu, 0, 0, 0},  {ActivationKind::elu, 3, 3, 0},
    {ActivationKind::selu, 3, 4, 0},        {ActivationKind::celu, 4, 4, 0},
    {ActivationKind::gelu, 7, 7, 4},        {ActivationKind::gelu_tanh, 6, 9, 4},
    {ActivationKind::quick_gelu, 6, 9, 4},  {ActivationKind::sigmoid, 4, 7, 0},
    {ActivationKind::tanh, 4, 7, 0},        {ActivationKind::silu, 6, 9, 4},
    {ActivationKind::mish, 6, 11, 4},       {ActivationKind::softplus, 3, 5, 0},
    {ActivationKind::log_sigmoid, 3, 5, 0}, {ActivationKind::hardsigmoid, 0, 0, 0},
    {ActivationKind::hardswish, 0, 0, 0},   {ActivationKind::softsign, 3, 6, 0},
    {ActivationKind::tanhshrink, 5, 7, 0},  {ActivationKind::hardshrink, 0, 0, 0},
    {ActivationKind::softshrink, 0, 0, 0},  {ActivationKind::threshold, 0, 0, 0},
};
static_assert(sizeof(kBounds) / sizeof(kBounds[0]) == kNumActivationKinds);

// Bits of a value of dtype, ordered so that adjacent values differ by 1.
int64_t ordered_bits(DType dtype, double v) {
  const float f = static_cast<float>(v);
  int64_t bits = 0, sign_bit = 0;
  if (dtype == DType::f32) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    bits = u;
    sign_bit = int64_t{1} << 31;
  } else {
    const uint16_t u = dtype == DType::f16 ? __half_raw(__float2half_rn(f)).x
                                           : __nv_bfloat16_raw(__float2bfloat16_rn(f)).x;
    bits = u;
    sign_bit = 1 << 15;
  }
  return (bits & sign_bit) ? -(bits & (sign_bit - 1)) : bits;
}

}  // namespace

bool is_piecewise_linear(ActivationKind kind) {
  const KindBound& b = kBounds[static_cast<int>(kind)];
  return b.fp32_forward_ulps == 0 && b.fp32_backward_ulps == 0;
}

Tolerance tolerance_for(ActivationKind kind, DType dtype, Direction direction) {
  const KindBound& b = kBounds[static_cast<int>(kind)];
  Tolerance t;
  if (is_piecewise_linear(kind)) return t;  // exact
  if (direction != Direction::forward) t.root_allowance = b.root_allowance;
  if (dtype == DType::f32) {
    t.ulps = direction == Direction::forward ? b.fp32_forward_ulps : b.fp32_backward_ulps;
    t.fp32_subnormal_floor = true;
  } else {
    t.ulps = 1;
  }
  return t;
}

Tolerance tolerance_for_fp32_inputs(ActivationKind kind, DType dtype, Direction direction) {
  Tolerance t = tolerance_for(kind, dtype, direction);
  if (kind == ActivationKind::hardsigmoid || kind == ActivationKind::hardswish) t.ulps = 1;
  return t;
}

int64_t ulp_distance(DType dtype, double a, double b) {
  const bool nan_a = std::isnan(a), nan_b = std::isnan(b);
  if (nan_a || nan_b) return nan_a && nan_b ? 0 : std::numeric_limits<int64_t>::max();
  const int64_t d = ordered_bits(dtype, a) - ordered_bits(dtype, b);
  return d < 0 ? -d : d;
}

bool near_derivative_zero(const Activation& act, double x) {
  if (!std::isfinite(x)) return false;
  const double lo = reference::backward(act, x - 0.5, 1.0);
  const double hi = reference::backward(act, x + 0.5, 1.0);
  return (lo < 0) != (hi < 0);
}

Verdict judge(DType dtype, double got, double exact, double dy, const Tolerance& tol,
              bool near_root) {
  const double rounded = reference::round_to(dtype, exact);
  const int64_t ulps = ulp_distance(dtype, got, rounded);
  if (ulps <= tol.ulps) return {Verdict::within_ulps, ulps};
  if (std::isnan(got) || std::isnan(exact) || std::isinf(got) || std::isinf(rounded))
    return {Verdict::outside, ulps};
  const double err = std::fabs(got - exact);
  if (tol.fp32_subnormal_floor && err <= FLT_MIN) return {Verdict::subnormal_floor, ulps};
  if (near_root && tol.root_allowance > 0 &&
      err <= tol.root_allowance * std::ldexp(std::fabs(dy), -24))
    return {Verdict::root_allowance, ulps};
  return {Verdict::outside, ulps};
}

namespace {

std::vector<double> all_16bit_values(DType dtype) {
  std::vector<double> v;
  v.reserve(1 << 16);
  for (uint32_t bits = 0; bits < (1u << 16); ++bits) {
    const uint16_t u = static_cast<uint16_t>(bits);
    if (dtype == DType::f16) {
      __half_raw raw;
      raw.x = u;
      v.push_back(__half2float(__half(raw)));
    } else {
      __nv_bfloat16_raw raw;
      raw.x = u;
      v.push_back(__bfloat162float(__nv_bfloat16(raw)));
    }
  }
  return v;
}

std::vector<double> fp32_grid() {
  std::vector<double> v;
  auto add = [&](double x) { v.push_back(static_cast<float>(x)); };
  for (int i = -400000; i <= 400000; ++i) add(i * 1e-4);  // [-40, 40], step 1e-4
  for (int e = -149 * 16; e <= 128 * 16; ++e) {           // magnitudes 2^-149 .. 2^128
    const double m = std::ldexp(1.0, e / 16) * std::exp2((e % 16) / 16.0);
    if (m <= FLT_MAX) { add(m); add(-m); }
  }
  std::mt19937 rng(20261123);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, 4);
    add(f);
  }
  const double specials[] = {0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 6.0, 1.5, -1.5,
                             2.0, -2.0, 0.25, 20.0, 10.0, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX,
                             FLT_TRUE_MIN, -FLT_TRUE_MIN, 1e-40, -1e-40, 88.7, -88.7, 1e4,
                             -1e4, 100.0, -100.0, 1000.0, -1000.0, 1e30, -1e30};
  for (double s : specials) {
    add(s);
    add(std::nextafter(static_cast<float>(s), INFINITY));
    add(std::nextafter(static_cast<float>(s), -INFINITY));
  }
  v.push_back(INFINITY);
  v.push_back(-INFINITY);
  v.push_back(std::nan(""));
  return v;
}

}  // namespace

const std::vector<double>& test_inputs(DType dtype) {
  static const std::vector<double> f32 = fp32_grid();
  static const std::vector<double> f16 = all_16bit_values(DType::f16);
  static const std::vector<double> bf16 = all_16bit_values(DType::bf16);
  return dtype == DType::f32 ? f32 : dtype == DType::f16 ? f16 : bf16;
}

double test_gradient(int64_t i) {
  constexpr double kGradients[] = {1.0, -0.75, 3.5, 0.0625, -2.0};
  return kGradients[i % 5];
}

// 64 values of dtype: gradient k has the sign (-1)^k, the exponent -12 + (k
// mod 23) (so 2^-12 .. 2^10, each about three times) and a significand whose
// fraction bits are k * 0x9E3779B1 (a fixed odd multiplier) cut to the
// format's width, except k = 0 (1.0) and k = 1 (all ones): products with f'
// land on every kind of rounding case, subnormal results of fp16 included.
const std::vector<double>& dense_gradients(DType dtype) {
  auto make = [](int fraction_bits) {
    std::vector<double> g;
    for (uint32_t k = 0; k < 64; ++k) {
      const uint32_t all = (1u << fraction_bits) - 1;
      const uint32_t fraction = k == 0 ? 0 : (k == 1 ? all : ((k * 0x9E3779B1u) >> 8) & all);
      const double m = 1.0 + std::ldexp(static_cast<double>(fraction), -fraction_bits);
      g.push_back((k % 2 ? -1 : 1) * std::ldexp(m, -12 + static_cast<int>(k % 23)));
    }
    return g;
  };
  static const std::vector<double> f16 = make(10), bf16 = make(7);
  return dtype == DType::f16 ? f16 : bf16;  // bf16's are fp32 values too
}

std::vector<Activation> test_activations() {
  std::vector<Activation> acts;
  for (int k = 0; k < kNumActivationKinds; ++k)
    acts.push_back(Activation::with_defaults(static_cast<ActivationKind>(k)));
  acts.push_back(Activation::hardtanh(-2.0f, 3.0f));
  acts.push_back(Activation::leaky_relu(0.2f));
  acts.push_back(Activation::leaky_relu(0.0f));
  acts.push_back(Activation::elu(0.5f));
  acts.push_back(Activation::celu(2.0f));
  acts.push_back(Activation::celu(0.3f));
  acts.push_back(Activation::silu(1.5f));
  acts.push_back(Activation::softplus(2.0f, 10.0f));
  acts.push_back(Activation::hardshrink(1.0f));
  acts.push_back(Activation::softshrink(0.25f));
  acts.push_back(Activation::threshold(0.5f, -2.0f));
  return acts;
}

std::string describe(const Activation& act) {
  std::ostringstream s;
  s << activation_name(act.kind);
  switch (act.kind) {
    case ActivationKind::hardtanh: s << "(lower=" << act.lower << ",upper=" << act.upper << ")"; break;
    case ActivationKind::leaky_relu:
    case ActivationKind::elu:
    case ActivationKind::celu: s << "(alpha=" << act.alpha << ")"; break;
    case ActivationKind::silu: s << "(beta=" << act.beta << ")"; break;
    case ActivationKind::softplus: s << "(beta=" << act.beta << ",cutoff=" << act.cutoff << ")"; break;
    case ActivationKind::hardshrink:
    case ActivationKind::softshrink: s << "(lambda=" << act.lambda << ")"; break;
    case ActivationKind::threshold: s << "(t=" << act.cutoff << ",v=" << act.value << ")"; break;
    default: break;
  }
  return s.str();
}

double direction_input(const Activation& act, DType dtype, Direction direction, double x) {
  return direction == Direction::backward_from_output
             ? reference::forward(act, x, dtype)
             : x;
}

double exact_result(const Activation& act, DType dtype, Direction direction, double in,
                    double dy) {
  const bool rounded = is_piecewise_linear(act.kind);
  switch (direction) {
    case Direction::forward:
      return rounded ? reference::forward(act, in, dtype) : reference::forward(act, in);
    case Direction::backward:
      return rounded ? reference::backward(act, in, dy, dtype) : reference::backward(act, in, dy);
    default: return reference::backward_from_output(act, in, dy);
  }
}

namespace {

// Functor F (results rounded to Out) over every (in, dy), as a kernel runs it:
// widen to fp32, apply, round once to Out.
template <class Out, class F>
void apply_functor(const F& f, Direction direction, const std::vector<double>& in,
                   const std::vector<double>& dy, std::vector<double>& out) {
  for (size_t i = 0; i < in.size(); ++i) {
    const float x = static_cast<float>(in[i]), g = static_cast<float>(dy[i]);
    float r = std::nanf("");  // no such form: callers check has_backward_from_output
    if (direction == Direction::forward) {
      r = f.forward(x);
    } else if (direction == Direction::backward) {
      r = f.backward(x, g);
    } else if constexpr (F::kBackwardFromOutput) {
      r = f.backward_from_output(x, g);
    }
    out[i] = device::to_float(device::narrow<Out>(r));
  }
}

}  // namespace

std::vector<double> evaluate_functors_on_host(const Activation& act, DType dtype,
                                              Direction direction, const std::vector<double>& in,
                                              const std::vector<double>& dy) {
  std::vector<double> out(in.size());
  detail::visit_dtype(dtype, [&](auto tag) {
    using Out = typename decltype(tag)::type;
    detail::visit_activation<Out>(
        act, [&](const auto& f) { apply_functor<Out>(f, direction, in, dy, out); });
  });
  return out;
}

namespace {

// Judges one result and adds it to the report.
void record(SweepReport& r, DType dtype, const Tolerance& tol, double in, double dy, double got,
            double exact, bool near_root) {
  const Verdict v = judge(dtype, got, exact, dy, tol, near_root);
  // Relative error only where exact is a normal number of dtype: below that the
  // dtype's spacing is absolute, and a correctly rounded result (0 ulp) can be
  // 100% off relatively (fp16 rounds 0.01 * 2^-24 to 0).
  const double min_normal = dtype == DType::f16 ? 0x1p-14 : FLT_MIN;
  if (std::isfinite(exact) && std::fabs(exact) >= min_normal && std::isfinite(got))
    r.max_rel_err = std::max(r.max_rel_err, std::fabs(got - exact) / std::fabs(exact));
  switch (v.rule) {
    case Verdict::within_ulps:
      // The worst ulp error is reported outside the allowances' reach: away
      // from the fp32 far tail (below 2^-100) and from zeros of f'.
      if (!near_root && !(tol.fp32_subnormal_floor && std::fabs(exact) < 0x1p-100))
        r.worst_ulps = std::max(r.worst_ulps, v.ulps);
      break;
    case Verdict::subnormal_floor: ++r.subnormal_floor; break;
    case Verdict::root_allowance: ++r.root_allowance; break;
    case Verdict::outside:
      if (++r.outside <= 5) {
        std::ostringstream msg;
        msg << std::setprecision(9) << "in=" << in << " dy=" << dy << ": got " << got
            << ", exact " << exact << " (" << v.ulps << " ulp, bound " << tol.ulps << ")";
        r.first_failures.push_back(msg.str());
      }
      break;
  }
}

}  // namespace

SweepReport sweep(const Activation& act, DType dtype, Direction direction,
                  const std::vector<double>& grid, const Evaluator& evaluate) {
  return sweep(act, dtype, direction, grid, evaluate, tolerance_for(act.kind, dtype, direction));
}

SweepReport sweep(const Activation& act, DType dtype, Direction direction,
                  const std::vector<double>& grid, const Evaluator& evaluate,
                  const Tolerance& tol) {
  const size_t n = grid.size();
  std::vector<double> in(n), dy(n);
  for (size_t i = 0; i < n; ++i) {
    in[i] = direction_input(act, dtype, direction, grid[i]);
    dy[i] = test_gradient(static_cast<int64_t>(i));
  }
  const std::vector<double> got = evaluate(in, dy);
  SweepReport r;
  r.inputs = static_cast<int64_t>(n);
  const bool roots = direction != Direction::forward && tol.root_allowance > 0;
  for (size_t i = 0; i < n; ++i) {
    const bool near_root = roots && near_derivative_zero(act, grid[i]);
    record(r, dtype, tol, in[i], dy[i], got[i], exact_result(act, dtype, direction, in[i], dy[i]),
           near_root);
  }
  return r;
}

SweepReport sweep_dense_gradients(const Activation& act, DType dtype, Direction direction,
                                  const std::vector<double>& grid, const Evaluator& evaluate) {
  const Tolerance tol = tolerance_for(act.kind, dtype, direction);
  const std::vector<double>& gradients = dense_gradients(dtype);
  const size_t per_input = gradients.size(), chunk = 1024;
  const bool roots = tol.root_allowance > 0;
  // Exact ops are evaluated per pair: dy * f'(x) in double would round twice.
  const bool per_pair = is_piecewise_linear(act.kind);
  SweepReport r;
  std::vector<double> in, dy;
  for (size_t first = 0; first < grid.size(); first += chunk) {
    const size_t count = std::min(chunk, grid.size() - first);
    in.assign(count * per_input, 0.0);
    dy.assign(count * per_input, 0.0);
    for (size_t i = 0; i < count; ++i)
      for (size_t k = 0; k < per_input; ++k) {
        in[i * per_input + k] = direction_input(act, dtype, direction, grid[first + i]);
        dy[i * per_input + k] = gradients[k];
      }
    const std::vector<double> got = evaluate(in, dy);
    for (size_t i = 0; i < count; ++i) {
      const double x = in[i * per_input];
      const double slope = exact_result(act, dtype, direction, x, 1.0);
      const bool near_root = roots && near_derivative_zero(act, grid[first + i]);
      for (size_t k = 0; k < per_input; ++k) {
        const double g = gradients[k];
        const double exact = per_pair ? exact_result(act, dtype, direction, x, g) : slope * g;
        record(r, dtype, tol, x, g, got[i * per_input + k], exact, near_root);
      }
    }
  }
  r.inputs = static_cast<int64_t>(grid.size() * per_input);
  return r;
}

std::vector<ActivationCase> activation_cases() {
  std::vector<ActivationCase> cases;
  for (const Activation& act : test_activations())
    for (DType dtype : {DType::f32, DType::f16, DType::bf16})
      for (Direction d : {Direction::forward, Direction::backward, Direction::backward_from_output})
        if (d != Direction::backward_from_output || has_backward_from_output(act))
          cases.push_back({act, dtype, d});
  return cases;
}

void PrintTo(const ActivationCase& c, std::ostream* os) {
  *os << describe(c.act) << " " << dtype_name(c.dtype) << " " << direction_name(c.direction);
}

std::string case_name(const ActivationCase& c, size_t index) {
  std::string name = describe(c.act) + "_" + dtype_name(c.dtype) + "_" +
                     direction_name(c.direction) + "_" + std::to_string(index);
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

std::vector<unsigned char> to_buffer(DType dtype, const std::vector<double>& values) {
  const size_t size = dtype_size(dtype);
  std::vector<unsigned char> bytes(values.size() * size);
  for (size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i]);
    if (dtype == DType::f32) {
      std::memcpy(&bytes[i * size], &f, size);
    } else if (dtype == DType::f16) {
      const __half h = __float2half_rn(f);
      std::memcpy(&bytes[i * size], &h, size);
    } else {
      const __nv_bfloat16 h = __float2bfloat16_rn(f);
      std::memcpy(&bytes[i * size], &h, size);
    }
  }
  return bytes;
}

std::vector<double> from_buffer(DType dtype, const std::vector<unsigned char>& bytes) {
  const size_t size = dtype_size(dtype);
  std::vector<double> values(bytes.size() / size);
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::f32) {
      float f;
      std::memcpy(&f, &bytes[i * size], size);
      values[i] = f;
    } else if (dtype == DType::f16) {
      __half h;
      std::memcpy(&h, &bytes[i * size], size);
      values[i] = __half2float(h);
    } else {
      __nv_bfloat16 h;
      std::memcpy(&h, &bytes[i * size], size);
      values[i] = __bfloat162float(h);
    }
  }
  return values;
}

}  // namespace cuact::test
