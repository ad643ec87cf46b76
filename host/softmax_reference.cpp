// The softmax family's CPU reference: docs/SPEC.md's formulas in double
// precision, written from docs/SPEC.md alone (not from the device code), so that
// a test comparing the two can fail. See include/cuact/reference.h.
//
// Forward, per row: z_j = s*x_j + m_j (softmin: -s*x_j + m_j), -inf where the
// causal mask hides j; a NaN or +inf z makes the row NaN; a row of -inf is
// empty (zeros, or -inf for log_softmax); otherwise the max is subtracted
// and the sum of exponentials is accumulated with compensation. Backward,
// per row: dy reads as 0 at the columns the mask (-inf) or causal hides,
// decided from those settings, never from y.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "cuact/reference.h"
#include "element_io.h"
#include "softmax_checks.h"
#include "softmax_reference.h"

namespace cuact::reference {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Neumaier-compensated sum in double.
struct Sum {
  double sum = 0, comp = 0;
  void add(double v) {
    const double t = sum + v;
    comp += std::fabs(sum) >= std::fabs(v) ? (sum - t) + v : (v - t) + sum;
    sum = t;
  }
  double value() const { return std::isfinite(sum) ? sum + comp : sum; }
};

double signed_scale(const Softmax& op) {
  return op.kind == SoftmaxKind::softmin ? -static_cast<double>(op.scale) : op.scale;
}

double load(DType dtype, const void* base, int64_t i) { return detail::load_element(dtype, base, i); }
void store(DType dtype, void* base, int64_t i, double v) { detail::store_element(dtype, base, i, v); }

// Columns [0, shown) of data row `row` take part; causal hides j > i + offset
// for query i = row % causal_rows.
int64_t shown_columns(const Softmax& op, int64_t row, int64_t cols) {
  if (!op.causal) return cols;
  const int64_t i = row % op.causal_rows;
  return std::max<int64_t>(0, std::min<int64_t>(cols, i + op.causal_offset + 1));
}

}  // namespace

void softmax_forward_row(const Softmax& op, int64_t row, int64_t cols, const double* x,
                         const double* mask, double* y) {
  const double s = signed_scale(op);
  const int64_t shown = shown_columns(op, row, cols);
  std::vector<double> z(static_cast<size_t>(cols), -kInf);
  bool poisoned = false;  // a NaN or +inf z: the row is NaN
  double max = -kInf;
  for (int64_t j = 0; j < shown; ++j) {
    z[j] = s * x[j] + (mask ? mask[j] : 0.0);
    if (std::isnan(z[j]) || z[j] == kInf)
      poisoned = true;
    else
      max = std::max(max, z[j]);
  }
  const bool log = op.kind == SoftmaxKind::log_softmax;
  if (poisoned) {
    for (int64_t j = 0; j < cols; ++j) y[j] = kNaN;
    return;
  }
  if (max == -kInf) {  // every entry -inf or hidden
    for (int64_t j = 0; j < cols; ++j) y[j] = log ? -kInf : 0.0;
    return;
  }
  Sum sum;
  for (int64_t j = 0; j < cols; ++j) sum.add(std::exp(z[j] - max));
  const double total = sum.value();
  const double log_total = std::log(total);
  for (int64_t j = 0; j < cols; ++j)
    y[j] = log ? (z[j] - max) - log_total : std::exp(z[j] - max) / total;
}

// A hidden column (a -inf mask value, or causal: the forward's z was -inf
// whatever x is) reads its dy as 0: it takes no part in the row's sum and
// its dx is 0 (s * 0 * (0 - sum), or s * (0 - exp(-inf) * sum): 0 for a
// finite sum). Every other column is visible, whatever its y: one whose
// output saturated (y = -inf or 0) keeps its dy, as PyTorch does
// (log_softmax: dx = s * dy there; softmax: 0 * dy, NaN for an infinite dy).
void softmax_backward_row(const Softmax& op, int64_t row, int64_t cols, const double* y,
                          const double* dy, const double* mask, double* dx) {
  const double s = signed_scale(op);
  const bool log = op.kind == SoftmaxKind::log_softmax;
  const int64_t shown = shown_columns(op, row, cols);
  auto g = [&](int64_t j) { return j >= shown || (mask && mask[j] == -kInf) ? 0.0 : dy[j]; };
  Sum sum;
  for (int64_t j = 0; j < cols; ++j) sum.add(log ? g(j) : g(j) * y[j]);
  const double total = sum.value();
  for (int64_t j = 0; j < cols; ++j)
    dx[j] = log ? s * (g(j) - std::exp(y[j]) * total) : s * y[j] * (g(j) - total);
}

void softmax_backward_row(const Softmax& op, int64_t cols, const double* y, const double* dy,
                          double* dx) {
  Softmax plain = op.without_mask();
  plain.causal = false;
  softmax_backward_row(plain, 0, cols, y, dy, nullptr, dx);
}

// Element (o, c, j) of a buffer with row stride `stride` (SoftmaxShape).
void softmax_lines(Direction direction, const Softmax& op, DType dtype, const void* in,
                   const void* grad, const SoftmaxShape& shape,
                   const std::function<void(int64_t, double)>& emit) {
  const SoftmaxShape sh = detail::resolved_strides(shape);
  const bool forward = direction == Direction::forward;
  const int64_t cols = sh.dim, inner = sh.inner;
  std::vector<double> a(static_cast<size_t>(cols)), b(static_cast<size_t>(cols)),
      m(static_cast<size_t>(cols)), r(static_cast<size_t>(cols));
  for (int64_t o = 0; o < sh.outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      // The whole line is read before any of it is written (in place is allowed).
      auto at = [&](int64_t stride, int64_t c) { return o * stride + c * inner + j; };
      for (int64_t c = 0; c < cols; ++c) a[c] = load(dtype, in, at(sh.in_stride, c));
      // The row's mask (both directions: backward's hidden columns).
      const bool masked = op.mask != nullptr;  // rows only (inner == 1, checked)
      if (masked) {
        const int64_t mask_base =
            (o / op.mask_row_repeat) % op.mask_rows * detail::resolved_mask_stride(op, cols);
        for (int64_t c = 0; c < cols; ++c) m[c] = load(dtype, op.mask, mask_base + c);
      }
      if (forward) {
        softmax_forward_row(op, o, cols, a.data(), masked ? m.data() : nullptr, r.data());
      } else {
        for (int64_t c = 0; c < cols; ++c) b[c] = load(dtype, grad, at(sh.grad_stride, c));
        softmax_backward_row(op, o, cols, a.data(), b.data(), masked ? m.data() : nullptr,
                             r.data());
      }
      for (int64_t c = 0; c < cols; ++c) emit(at(sh.out_stride, c), r[c]);
    }
}

Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, const SoftmaxShape& shape) {
  if (Status s = detail::check_softmax_call(direction, op, dtype, in, grad, out, shape); !s.ok())
    return s;
  softmax_lines(direction, op, dtype, in, grad, shape,
                [&](int64_t i, double v) { store(dtype, out, i, v); });
  return {};
}

Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, int64_t rows, int64_t cols) {
  return reference::softmax(direction, op, dtype, in, grad, out, SoftmaxShape::rows(rows, cols));
}

}  // namespace cuact::reference
