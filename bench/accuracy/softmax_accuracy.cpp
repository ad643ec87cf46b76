#include "softmax_accuracy.h"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>

#include "cuact/reference.h"

namespace cuact::test {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kU = 0x1p-24;  // fp32 unit roundoff

double rho(DType dtype) {
  switch (dtype) {
    case DType::f16: return 0x1p-10;
    case DType::bf16: return 0x1p-7;
    default: return 0x1p-23;
  }
}

double floor_of(DType dtype) { return dtype == DType::f16 ? 0x1p-24 : FLT_MIN; }

double signed_scale(const SoftmaxOptions& o) {
  return o.kind == SoftmaxKind::softmin ? -static_cast<double>(o.scale) : o.scale;
}

// Data row r's place in the mask and causal patterns (test code, from
// docs/SPEC.md): its mask values (null without a mask) and the columns
// [0, shown) causal leaves; hidden(j) for the columns the forward hides.
struct RowHiding {
  const double* mask = nullptr;
  int64_t shown = 0;
  bool hidden(int64_t j) const { return j >= shown || (mask != nullptr && mask[j] == -kInf); }
};

RowHiding row_hiding(const SoftmaxOptions& o, const Softmax& op, int64_t rows, int64_t cols,
                     const std::vector<double>& mask, int64_t r) {
  RowHiding h;
  if (o.mask_rows != 0)
    h.mask = &mask[static_cast<size_t>((r / o.mask_row_repeat) % o.mask_rows_for(rows) * cols)];
  h.shown = cols;
  if (op.causal) h.shown = std::clamp<int64_t>(r % op.causal_rows + op.causal_offset + 1, 0, cols);
  return h;
}

}  // namespace

bool softmax_within(DType dtype, double got, double exact, double bound) {
  if (std::isnan(exact)) return std::isnan(got);
  const double rounded = reference::round_to(dtype, exact);
  if (std::isinf(rounded)) return got == rounded;
  if (!std::isfinite(got)) return false;
  return std::fabs(got - exact) <= bound;
}

SoftmaxCheck check_softmax(DType dtype, const SoftmaxExpected& expected,
                           const std::vector<double>& got, int64_t rows, int64_t cols) {
  SoftmaxCheck c;
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0, sum_bound = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const size_t i = static_cast<size_t>(r * cols + j);
      const double exact = expected.value[i], bound = expected.bound[i];
      ++c.elements;
      sum += got[i];
      sum_bound += bound;
      if (std::isfinite(exact) && std::isfinite(got[i]) && bound > 0)
        c.worst_ratio = std::max(c.worst_ratio, std::fabs(got[i] - exact) / bound);
      if (!softmax_within(dtype, got[i], exact, bound) && ++c.failures <= 5) {
        std::ostringstream m;
        m << "row " << r << " col " << j << ": got " << got[i] << ", exact " << exact
          << ", allowed error " << bound;
        c.first_failures.push_back(m.str());
      }
    }
    if (expected.sums_to_one[r]) {
      ++c.rows_summed;
      if (!(std::fabs(sum - 1.0) <= sum_bound) && ++c.row_sum_failures <= 5) {
        std::ostringstream m;
        m << "row " << r << " sums to " << sum << " (1 +- " << sum_bound << " allowed)";
        c.first_failures.push_back(m.str());
      }
    }
  }
  return c;
}

const std::vector<int64_t>& softmax_test_cols() {
  static const std::vector<int64_t> cols = {1,
                                            2,
                                            31,
                                            32,
                                            33,
                                            127,
                                            128,
                                            1000,
                                            1024,
                                            1025,
                                            2048,
                                            4096,
                                            4097,
                                            12288,
                                            32768,
                                            65537,
                                            int64_t{1} << 20};
  return cols;
}

Softmax SoftmaxOptions::descriptor(int64_t rows, int64_t cols, const void* mask,
                                   DType dtype) const {
  Softmax op;
  op.kind = kind;
  op.scale = scale;
  if (mask_rows != 0) op = op.with_mask(mask, dtype, mask_rows_for(rows), mask_row_repeat);
  if (causal_rows > 0)
    op = op.with_causal(causal_rows, causal_offset + (offset_from_cols ? cols - causal_rows : 0));
  return op;
}

const std::vector<SoftmaxOptions>& softmax_option_sets() {
  static const std::vector<SoftmaxOptions> sets = [] {
    std::vector<SoftmaxOptions> s;
    auto add = [&](const char* name, SoftmaxKind kind, float scale) -> SoftmaxOptions& {
      SoftmaxOptions o;
      o.name = name;
      o.kind = kind;
      o.scale = scale;
      s.push_back(o);
      return s.back();
    };
    add("softmax", SoftmaxKind::softmax, 1.0f);
    add("log_softmax_scaled", SoftmaxKind::log_softmax, 0.125f);
    add("softmin_col_mask", SoftmaxKind::softmin, 0.7f).mask_rows = 1;
    add("softmax_row_mask", SoftmaxKind::softmax, 2.0f).mask_rows = -1;
    {  // attention scores [b*h, q=7, k=cols]: a [q, k] mask, causal bottom-right, 1/sqrt(80)
      SoftmaxOptions& o = add("softmax_attention", SoftmaxKind::softmax, 0.111803398874989f);
      o.mask_rows = 7;
      o.causal_rows = 7;
      o.offset_from_cols = true;
    }
    {  // key padding [b, k] over h*q = 3 rows; causal top-left, shifted so query 0 sees nothing
      SoftmaxOptions& o = add("log_softmax_padding_causal", SoftmaxKind::log_softmax, 1.0f);
      o.mask_rows = 2;
      o.mask_row_repeat = 3;
      o.causal_rows = 5;
      o.causal_offset = -1;
    }
    add("softmin_causal", SoftmaxKind::softmin, 1.5f).causal_rows = 3;
    return s;
  }();
  return sets;
}

namespace {

// Row r's forward input, as values of dtype.
void fill_input_row(DType dtype, int64_t r, int64_t cols, std::mt19937_64& rng, double* x) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double sign = (r / 5) % 2 ? -1.0 : 1.0;
  for (int64_t j = 0; j < cols; ++j) {
    double v = 0;
    switch (r % 5) {
      case 0: v = 2.0 * normal(rng); break;               // ordinary logits
      case 1: v = 60.0 * uniform(rng) - 30.0; break;      // wide: most exps underflow
      case 2: v = sign * 1e4 + 4.0 * normal(rng); break;  // large magnitude
      case 3: v = (uniform(rng) < 0.5 ? 88.7 : -88.7) + 0.5 * normal(rng); break;  // expf's edge
      default: v = uniform(rng) < 0.1 ? -kInf : normal(rng); break;  // with -inf entries
    }
    x[j] = reference::round_to(dtype, v);
  }
  if (r % 11 == 10) {  // saturating: log_softmax's z - M overflows the dtype, softmax's exp underflows
    const double max = dtype == DType::f16 ? 65504.0 : dtype == DType::bf16 ? 0x1.FEp127 : FLT_MAX;
    for (int64_t j = 0; j < cols; ++j)
      if (j % 4 == 1) x[j] = reference::round_to(dtype, 0.45 * max);
      else if (j % 4 == 3) x[j] = reference::round_to(dtype, -0.6 * max);
  }
  if (r % 13 == 7)
    for (int64_t j = 0; j < cols; ++j) x[j] = -kInf;  // an all -inf row
  if (r % 17 == 5) x[(r * 7) % cols] = kNaN;          // a NaN row
}

void fill_mask_row(DType dtype, int64_t k, int64_t mask_rows, int64_t cols, std::mt19937_64& rng,
                   double* m) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const bool all_masked = mask_rows > 3 && k % 5 == 3;
  for (int64_t j = 0; j < cols; ++j) {
    const double u = uniform(rng);
    m[j] = all_masked || (u >= 0.6 && u < 0.75) ? -kInf
           : u < 0.6                            ? 0.0
                     : reference::round_to(dtype, 6.0 * uniform(rng) - 3.0);
  }
}

}  // namespace

SoftmaxExpected expected_softmax(const SoftmaxOptions& o, Direction direction, DType dtype,
                                 int64_t rows, int64_t cols, const std::vector<double>& in,
                                 const std::vector<double>& grad, const std::vector<double>& mask) {
  const Softmax op = o.descriptor(rows, cols, nullptr, dtype);
  const bool log = o.kind == SoftmaxKind::log_softmax;
  const double s = signed_scale(o);
  SoftmaxExpected e;
  e.value.resize(static_cast<size_t>(rows * cols));
  e.bound.resize(e.value.size());
  e.sums_to_one.assign(static_cast<size_t>(rows), 0);
  const double r_u = kSoftmaxRoundings * kU;
  std::vector<double> z(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r * cols);
    double* value = &e.value[base];
    double* bound = &e.bound[base];
    const RowHiding hiding = row_hiding(o, op, rows, cols, mask, r);
    const double* m = hiding.mask;
    if (direction == Direction::forward) {
      reference::softmax_forward_row(op, r, cols, &in[base], m, value);
      // The magnitudes of the rule: z, M, A, L (test code, from docs/SPEC.md).
      const int64_t shown = hiding.shown;
      double max = -kInf;
      for (int64_t j = 0; j < cols; ++j) {
        z[j] = j < shown ? s * in[base + j] + (m ? m[j] : 0.0) : -kInf;
        if (std::isfinite(z[j])) max = std::max(max, z[j]);
      }
      double a = 0, sum = 0;  // A = sum_k y_k (|z_k| + |M|) over probabilities y_k
      for (int64_t j = 0; j < cols; ++j)
        if (std::isfinite(z[j])) {
          const double probability = log ? std::exp(value[j]) : value[j];
          a += probability * (std::fabs(z[j]) + std::fabs(max));
          sum += std::exp(z[j] - max);
        }
      const double l = sum > 0 ? std::fabs(std::log(sum)) : 0.0;
      bool finite_row = max > -kInf;
      for (int64_t j = 0; j < cols; ++j) {
        if (std::isnan(value[j])) finite_row = false;
        const double zj = std::isfinite(z[j]) ? std::fabs(z[j]) : 0.0;
        const double kappa = log ? 1 + zj + std::fabs(max) + a + l
                                 : std::fabs(value[j]) * (1 + zj + std::fabs(max) + a);
        bound[j] = rho(dtype) * std::fabs(value[j]) + r_u * kappa + floor_of(dtype);
        if (!std::isfinite(bound[j])) bound[j] = 0;  // special values are judged exactly
      }
      e.sums_to_one[r] = !log && finite_row;
    } else {
      reference::softmax_backward_row(op, r, cols, &in[base], &grad[base], m, value);
      // Hidden columns (the mask's -inf entries, causal's: not y's value)
      // take no part in the sums and their dx is exactly 0 (or NaN).
      double dot = 0, dy_sum = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const double y = in[base + j], dy = grad[base + j];
        if (hiding.hidden(j)) continue;
        if (!std::isinf(y)) dot += std::fabs(y * dy);
        dy_sum += std::fabs(dy);
      }
      for (int64_t j = 0; j < cols; ++j) {
        const double y = in[base + j], dy = grad[base + j];
        const double kappa = log ? std::fabs(s) * (std::fabs(dy) + std::exp(y) * dy_sum)
                                 : std::fabs(s * y) * (std::fabs(dy) + dot);
        bound[j] = rho(dtype) * std::fabs(value[j]) + r_u * kappa + floor_of(dtype);
        if (!std::isfinite(bound[j]) || hiding.hidden(j)) bound[j] = 0;
      }
    }
  }
  return e;
}

namespace {

// Non-finite dy where hiding decides the result: at every hidden column of
// the rows hidden_rows picks (ignored: the row stays finite), and at the
// first visible column whose y holds the hidden value (saturated: kept, so
// the row is NaN, as in PyTorch) of the rows visible_rows picks. For
// log_softmax the latter is NaN: an infinite dy's -inf or NaN would turn on
// exp(y) underflowing in fp32 where it does not in double.
template <class HiddenRows, class VisibleRows>
void add_dy_specials(const SoftmaxOptions& options, DType dtype, int64_t rows, int64_t cols,
                     const std::vector<double>& mask, const std::vector<double>& y,
                     std::vector<double>& dy, HiddenRows&& hidden_rows,
                     VisibleRows&& visible_rows) {
  const Softmax op = options.descriptor(rows, cols, nullptr, dtype);
  const bool log = options.kind == SoftmaxKind::log_softmax;
  for (int64_t r = 0; r < rows; ++r) {
    const RowHiding hiding = row_hiding(options, op, rows, cols, mask, r);
    double* g = &dy[static_cast<size_t>(r * cols)];
    const double* yr = &y[static_cast<size_t>(r * cols)];
    if (hidden_rows(r))
      for (int64_t j = 0; j < cols; ++j)
        if (hiding.hidden(j)) g[j] = j % 2 ? kInf : kNaN;
    if (visible_rows(r))
      for (int64_t j = 0; j < cols; ++j)
        if (!hiding.hidden(j) && yr[j] == (log ? -kInf : 0.0)) {
          g[j] = log ? kNaN : kInf;
          break;
        }
  }
}

// A problem from its inputs x and mask: forward takes x; backward takes y,
// the reference forward of x rounded to dtype, and dy ~ N(0, 1) with the
// specials of add_dy_specials.
template <class HiddenRows, class VisibleRows>
SoftmaxProblem problem_from(const SoftmaxOptions& options, Direction direction, DType dtype,
                            int64_t rows, int64_t cols, std::vector<double> x,
                            std::vector<double> mask, std::mt19937_64& rng,
                            HiddenRows&& hidden_rows, VisibleRows&& visible_rows) {
  SoftmaxProblem p;
  p.options = options;
  p.direction = direction;
  p.dtype = dtype;
  p.rows = rows;
  p.cols = cols;
  p.mask = std::move(mask);
  const size_t n = static_cast<size_t>(rows * cols);
  if (direction == Direction::forward) {
    p.in = std::move(x);
  } else {
    const SoftmaxExpected fwd =
        expected_softmax(options, Direction::forward, dtype, rows, cols, x, {}, p.mask);
    p.in.resize(n);
    for (size_t i = 0; i < n; ++i) p.in[i] = reference::round_to(dtype, fwd.value[i]);
    p.grad.resize(n);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (double& g : p.grad) g = reference::round_to(dtype, normal(rng));
    add_dy_specials(options, dtype, rows, cols, p.mask, p.in, p.grad, hidden_rows, visible_rows);
  }
  p.expected = expected_softmax(options, direction, dtype, rows, cols, p.in, p.grad, p.mask);
  return p;
}

}  // namespace

SoftmaxProblem make_softmax_problem(const SoftmaxOptions& options, Direction direction, DType dtype,
                                    int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(cols));
  const size_t n = static_cast<size_t>(rows * cols);
  std::vector<double> x(n), mask;
  for (int64_t r = 0; r < rows; ++r) fill_input_row(dtype, r, cols, rng, &x[r * cols]);
  const int64_t mask_rows = options.mask_rows_for(rows);
  if (options.mask_rows != 0) {
    mask.resize(static_cast<size_t>(mask_rows * cols));
    for (int64_t k = 0; k < mask_rows; ++k)
      fill_mask_row(dtype, k, mask_rows, cols, rng, &mask[k * cols]);
  }
  return problem_from(
      options, direction, dtype, rows, cols, std::move(x), std::move(mask), rng,
      [](int64_t r) { return r % 7 == 2; }, [](int64_t r) { return r % 7 == 4; });
}

const std::vector<SoftmaxOptions>& saturation_option_sets() {
  static const std::vector<SoftmaxOptions> sets = [] {
    std::vector<SoftmaxOptions> s;
    auto add = [&](const char* name, SoftmaxKind kind) -> SoftmaxOptions& {
      SoftmaxOptions o;
      o.name = name;
      o.kind = kind;
      s.push_back(o);
      return s.back();
    };
    add("log_softmax", SoftmaxKind::log_softmax);
    add("softmax", SoftmaxKind::softmax);
    add("softmin", SoftmaxKind::softmin);
    add("log_softmax_mask", SoftmaxKind::log_softmax).mask_rows = -1;
    {  // bottom-right causal: row r hides its last rows - 1 - r columns
      SoftmaxOptions& o = add("softmax_mask_causal", SoftmaxKind::softmax);
      o.mask_rows = -1;
      o.causal_rows = kSaturatedRows;
      o.offset_from_cols = true;
    }
    {  // top-left, shifted: row 0 sees nothing, row r its first r columns
      SoftmaxOptions& o = add("log_softmax_causal", SoftmaxKind::log_softmax);
      o.causal_rows = kSaturatedRows;
      o.causal_offset = -1;
    }
    add("softmin_shared_mask", SoftmaxKind::softmin).mask_rows = 1;
    return s;
  }();
  return sets;
}

SoftmaxProblem make_saturated_softmax_problem(const SoftmaxOptions& options, Direction direction,
                                              DType dtype, int64_t cols, uint64_t seed) {
  const int64_t rows = kSaturatedRows;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(cols));
  std::normal_distribution<double> normal(0.0, 1.0);
  // +-big: z - M = -2 big overflows the dtype (log_softmax -inf), exp underflows (softmax 0).
  const double big = reference::round_to(dtype, dtype == DType::f16 ? 60000.0 : 3e38);
  std::vector<double> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      double v = 2.0 * normal(rng);
      switch (r) {
        case 0: v = j % 2 ? big : -big; break;                   // alternating +-big
        case 1: v = j == cols / 2 ? big : v; break;               // one +big: the rest 0 / -big
        case 2: v = j % 4 == 0 ? -kInf : v; break;                // -inf inputs, visible
        case 3: v = -kInf; break;                                 // every input -inf
        case 4: break;                                            // ordinary
        case 5: v = j % 3 == 0 ? -big : j % 3 == 1 ? big : v; break;
        case 6: v = j % 2 ? -big : big; break;
        default: break;  // 7: ordinary (fully masked by a per-row mask)
      }
      x[static_cast<size_t>(r * cols + j)] = reference::round_to(dtype, v);
    }
  std::vector<double> mask;
  if (options.mask_rows != 0) {
    const int64_t mask_rows = options.mask_rows_for(rows);
    mask.resize(static_cast<size_t>(mask_rows * cols));
    for (int64_t k = 0; k < mask_rows; ++k)
      for (int64_t j = 0; j < cols; ++j)
        mask[static_cast<size_t>(k * cols + j)] =
            k == 7 || j % 5 == 2 ? -kInf : j % 5 == 4 ? 0.5 : 0.0;
  }
  // dy: inf/NaN at every hidden column; at a visible saturated one in row 6.
  return problem_from(
      options, direction, dtype, rows, cols, std::move(x), std::move(mask), rng,
      [](int64_t) { return true; }, [](int64_t r) { return r == 6; });
}

std::vector<SoftmaxCase> softmax_cases(const std::vector<SoftmaxAlgorithm>& algorithms) {
  std::vector<SoftmaxCase> cases;
  for (SoftmaxAlgorithm a : algorithms)
    for (DType t : {DType::f32, DType::f16, DType::bf16})
      for (Direction d : {Direction::forward, Direction::backward})
        for (size_t o = 0; o < softmax_option_sets().size(); ++o) cases.push_back({a, t, d, o});
  return cases;
}

std::string describe(const SoftmaxCase& c) {
  return std::string(softmax_algorithm_name(c.algorithm)) + " " + dtype_name(c.dtype) + " " +
         direction_name(c.direction) + " " + softmax_option_sets()[c.options].name;
}

std::string softmax_case_name(const SoftmaxCase& c) {
  std::string name = describe(c);
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

}  // namespace cuact::test
