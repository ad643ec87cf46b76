// The softmax family's double-precision reference (host/softmax_reference.cpp)
// against values computed by hand, mathematical identities (rows sum to 1,
// shift invariance, log_softmax = log of softmax, softmin(x) = softmax(-x),
// scale and mask fold into the input), overflow-prone rows, masks and causal
// masks, fully masked and NaN rows, and its backward against finite
// differences of its own forward. CPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "accuracy.h"
#include "cuact/reference.h"

namespace cuact {
namespace {

namespace ref = cuact::reference;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> forward(const Softmax& op, const std::vector<double>& x,
                            const std::vector<double>* mask = nullptr, int64_t row = 0) {
  std::vector<double> y(x.size());
  ref::softmax_forward_row(op, row, static_cast<int64_t>(x.size()), x.data(),
                           mask ? mask->data() : nullptr, y.data());
  return y;
}

// Backward of data row `row` with the row's mask values (as the forward).
std::vector<double> backward(const Softmax& op, const std::vector<double>& y,
                             const std::vector<double>& dy,
                             const std::vector<double>* mask = nullptr, int64_t row = 0) {
  std::vector<double> dx(y.size());
  ref::softmax_backward_row(op, row, static_cast<int64_t>(y.size()), y.data(), dy.data(),
                            mask ? mask->data() : nullptr, dx.data());
  return dx;
}

std::vector<double> random_row(int64_t n, double spread, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, spread);
  std::vector<double> x(static_cast<size_t>(n));
  for (double& v : x) v = normal(rng);
  return x;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

const Softmax kKinds[] = {Softmax::softmax(),         Softmax::log_softmax(),
                          Softmax::softmin(),         Softmax::softmax(0.125f),
                          Softmax::log_softmax(3.0f), Softmax::softmin(0.7f)};

TEST(SoftmaxReference, KnownValues) {
  // softmax(1, 2, 3) = (1, e, e^2) / (1 + e + e^2)
  const double e = std::exp(1.0), d = 1 + e + e * e;
  const auto y = forward(Softmax::softmax(), {1, 2, 3});
  EXPECT_NEAR(y[0], 1 / d, 4e-16);
  EXPECT_NEAR(y[1], e / d, 4e-16);
  EXPECT_NEAR(y[2], e * e / d, 4e-16);
  const auto l = forward(Softmax::log_softmax(), {0, 0});
  EXPECT_DOUBLE_EQ(l[0], -std::log(2.0));
  EXPECT_DOUBLE_EQ(l[1], -std::log(2.0));
  // One column: probability 1, log-probability 0, for any finite input.
  for (double x : {-1e30, -3.0, 0.0, 88.7, 1e30}) {
    EXPECT_EQ(forward(Softmax::softmax(), {x})[0], 1.0) << x;
    EXPECT_EQ(forward(Softmax::log_softmax(), {x})[0], 0.0) << x;
    EXPECT_EQ(forward(Softmax::softmin(), {x})[0], 1.0) << x;
  }
  // Temperature: softmax(x / T) with T = 2 on (0, 2 ln 3) is (1, 3) / 4.
  const auto t = forward(Softmax::softmax(0.5f), {0, 2 * std::log(3.0)});
  EXPECT_NEAR(t[0], 0.25, 1e-16);
  EXPECT_NEAR(t[1], 0.75, 1e-16);
}

TEST(SoftmaxReference, RowsSumToOne) {
  for (int64_t n : {1, 2, 31, 1000, 65537})
    for (double spread : {0.1, 3.0, 100.0}) {
      const auto x = random_row(n, spread, static_cast<uint64_t>(n) * 7 + 1);
      for (const Softmax& op : {Softmax::softmax(), Softmax::softmin(2.0f)})
        EXPECT_NEAR(sum(forward(op, x)), 1.0, 1e-15 * std::sqrt(static_cast<double>(n)) + 1e-15)
            << "n=" << n << " spread=" << spread;
      double total = 0;
      for (double v : forward(Softmax::log_softmax(), x)) total += std::exp(v);
      EXPECT_NEAR(total, 1.0, 1e-13) << "n=" << n;
    }
}

TEST(SoftmaxReference, ShiftInvariance) {
  const auto x = random_row(1000, 2.0, 11);
  for (const Softmax& op : kKinds)
    for (double c : {-1000.0, 5.0, 1e4}) {
      std::vector<double> shifted(x);
      for (double& v : shifted) v += c;
      const auto a = forward(op, x), b = forward(op, shifted);
      for (size_t j = 0; j < x.size(); ++j)
        ASSERT_NEAR(b[j], a[j], 1e-15 * (std::fabs(a[j]) + 1) * (1 + std::fabs(c) * 40))
            << softmax_kind_name(op.kind) << " c=" << c << " j=" << j;
    }
}

TEST(SoftmaxReference, LogSoftmaxIsLogOfSoftmax) {
  for (float s : {1.0f, 0.125f, 4.0f}) {
    const auto x = random_row(4097, 5.0, 3);
    const auto p = forward(Softmax::softmax(s), x), l = forward(Softmax::log_softmax(s), x);
    for (size_t j = 0; j < x.size(); ++j)
      if (p[j] > 1e-300) {
        ASSERT_NEAR(l[j], std::log(p[j]), 1e-13 * (1 + std::fabs(l[j]))) << j;
      }
  }
}

TEST(SoftmaxReference, SoftminIsSoftmaxOfNegated) {
  const auto x = random_row(1025, 4.0, 5);
  std::vector<double> neg(x);
  for (double& v : neg) v = -v;
  for (float s : {1.0f, 0.5f, 3.0f})
    EXPECT_EQ(forward(Softmax::softmin(s), x), forward(Softmax::softmax(s), neg)) << s;
}

TEST(SoftmaxReference, ScaleAndMaskFoldIntoTheInput) {
  const auto x = random_row(300, 2.0, 9);
  std::vector<double> m = random_row(300, 1.0, 10), folded(300);
  m[7] = -kInf;
  const float s = 0.37f;
  for (size_t j = 0; j < x.size(); ++j) folded[j] = static_cast<double>(s) * x[j] + m[j];
  for (SoftmaxKind k : {SoftmaxKind::softmax, SoftmaxKind::log_softmax}) {
    Softmax scaled = k == SoftmaxKind::softmax ? Softmax::softmax(s) : Softmax::log_softmax(s);
    Softmax plain = k == SoftmaxKind::softmax ? Softmax::softmax() : Softmax::log_softmax();
    EXPECT_EQ(forward(scaled, x, &m), forward(plain, folded));
  }
  EXPECT_EQ(forward(Softmax::softmax(s), x, &m)[7], 0.0);
  EXPECT_EQ(forward(Softmax::log_softmax(s), x, &m)[7], -kInf);
}

TEST(SoftmaxReference, OverflowProneRowsStayFiniteAndExact) {
  const double p1 = 1 / (1 + std::exp(-1.0));  // two entries one apart
  struct Row {
    std::vector<double> x;
    std::vector<double> y;  // expected softmax
  };
  const Row rows[] = {
      {{1e4, 1e4 - 1, -kInf}, {p1, 1 - p1, 0}},
      {{-1e4, -1e4 - 1, -kInf}, {p1, 1 - p1, 0}},
      {{88.7, 88.7}, {0.5, 0.5}},
      {{-88.7, 88.7}, {std::exp(-177.4) / (1 + std::exp(-177.4)), 1 / (1 + std::exp(-177.4))}},
      {{1e30, -1e30}, {1, 0}},
      {{-kInf, 3.0, -kInf}, {0, 1, 0}},
      {{1e4, -1e4}, {1, 0}},
  };
  for (const Row& r : rows) {
    const auto y = forward(Softmax::softmax(), r.x);
    const auto l = forward(Softmax::log_softmax(), r.x);
    for (size_t j = 0; j < y.size(); ++j) {
      EXPECT_NEAR(y[j], r.y[j], 1e-15 * r.y[j] + 1e-300) << "x[0]=" << r.x[0] << " j=" << j;
      EXPECT_FALSE(std::isnan(l[j])) << "x[0]=" << r.x[0] << " j=" << j;
      if (r.y[j] > 0) {
        EXPECT_NEAR(l[j], std::log(r.y[j]), 1e-13 * (1 + std::fabs(l[j])));
      }
    }
  }
  // log_softmax is computed directly: tiny probabilities keep their logarithm.
  const auto l = forward(Softmax::log_softmax(), {0.0, -2000.0});
  EXPECT_NEAR(l[1], -2000.0, 1e-12);
  EXPECT_EQ(forward(Softmax::softmax(), {0.0, -2000.0})[1], 0.0);  // underflows, as it must
}

TEST(SoftmaxReference, CausalMaskHidesColumnsAfterTheDiagonal) {
  const int64_t cols = 9, q = 4;
  const auto x = random_row(cols, 1.0, 21);
  for (int64_t offset : {-2, 0, 3, 20})
    for (int64_t row = 0; row < 12; ++row) {
      const Softmax op = Softmax::softmax().with_causal(q, offset);
      const int64_t shown = std::clamp<int64_t>(row % q + offset + 1, 0, cols);
      const auto y = forward(op, x, nullptr, row);
      const auto l = forward(Softmax::log_softmax().with_causal(q, offset), x, nullptr, row);
      // The visible prefix is the softmax of the prefix; the rest is 0 / -inf.
      const std::vector<double> prefix(x.begin(), x.begin() + shown);
      const auto expect = shown > 0 ? forward(Softmax::softmax(), prefix) : std::vector<double>{};
      for (int64_t j = 0; j < cols; ++j) {
        if (j < shown) {
          EXPECT_NEAR(y[j], expect[j], 1e-15) << row << " " << j;
        } else {
          EXPECT_EQ(y[j], 0.0) << "row " << row << " j " << j << " offset " << offset;
          EXPECT_EQ(l[j], -kInf);
        }
      }
    }
  // A hidden column is not read: a NaN there changes nothing.
  std::vector<double> with_nan(x);
  with_nan[8] = kNaN;
  const Softmax op = Softmax::softmax().with_causal(4, 0);
  EXPECT_EQ(forward(op, with_nan, nullptr, 1), forward(op, x, nullptr, 1));
}

TEST(SoftmaxReference, FullyMaskedRowsGiveZerosOrMinusInfNeverNaN) {
  const std::vector<double> minus_inf(7, -kInf), plus_inf(7, kInf);
  const std::vector<double> x = random_row(7, 1.0, 4);
  const std::vector<double> mask(7, -kInf);
  const auto dy = random_row(7, 1.0, 5);
  std::vector<double> loud(dy);  // non-finite dy at hidden columns changes nothing
  for (size_t j = 0; j < loud.size(); ++j) loud[j] = j % 2 ? kInf : kNaN;
  for (const Softmax& op : kKinds) {
    const double expect = op.kind == SoftmaxKind::log_softmax ? -kInf : 0.0;
    // Every z = -inf: x = -inf, or +inf for softmin (z = -s*x).
    const auto& all_inf = op.kind == SoftmaxKind::softmin ? plus_inf : minus_inf;
    for (double v : forward(op, all_inf)) EXPECT_EQ(v, expect) << softmax_kind_name(op.kind);
    for (double v : forward(op, x, &mask)) EXPECT_EQ(v, expect) << softmax_kind_name(op.kind);
    // Causal: query 0 with offset -1 sees no column.
    const Softmax causal = op.with_causal(2, -1);
    for (double v : forward(causal, x, nullptr, 0)) EXPECT_EQ(v, expect);
    // Backward of a fully masked row (mask or causal, the forward's op): 0
    // for every kind, whatever dy holds there.
    const std::vector<double>* grads[] = {&dy, &loud};
    for (const std::vector<double>* g : grads) {
      for (double v : backward(op, forward(op, x, &mask), *g, &mask))
        EXPECT_EQ(v, 0.0) << softmax_kind_name(op.kind);
      for (double v : backward(causal, forward(causal, x, nullptr, 0), *g, nullptr, 0))
        EXPECT_EQ(v, 0.0) << softmax_kind_name(op.kind);
    }
    // A row whose every input is -inf hides no column: softmax and softmin
    // give 0 (y = 0), log_softmax s*dy (y = -inf: dy - exp(y)*sum = dy).
    const auto dx = backward(op, forward(op, all_inf), dy);
    const double s = op.kind == SoftmaxKind::softmin ? -op.scale : op.scale;
    for (size_t j = 0; j < dx.size(); ++j)
      EXPECT_EQ(dx[j], op.kind == SoftmaxKind::log_softmax ? s * dy[j] : 0.0)
          << softmax_kind_name(op.kind) << " " << j;
  }
}

// Backward at the columns the forward hid (causal, a -inf mask entry): dx =
// 0 there, and their dy (even huge, infinite or NaN) changes nothing elsewhere.
TEST(SoftmaxReference, BackwardIsZeroAtHiddenColumnsAndIgnoresTheirDy) {
  const int64_t cols = 9;
  const std::vector<double> x = random_row(cols, 2.0, 11);
  std::vector<double> mask(cols, 0.0);
  mask[1] = -kInf;
  for (const Softmax& kind : kKinds) {
    const Softmax op = kind.with_causal(4, 0);  // row 2: query 2 sees columns 0..2
    const std::vector<double>* masks[] = {nullptr, &mask};
    for (const std::vector<double>* m : masks) {
      const auto y = forward(op, x, m, 2);
      std::vector<double> dy = random_row(cols, 1.0, 12), loud(dy);
      auto hidden = [&](int64_t j) { return j >= 3 || (m && j == 1); };
      for (int64_t j = 0; j < cols; ++j)
        if (hidden(j)) loud[static_cast<size_t>(j)] = j % 3 == 0 ? 1e30 : j % 3 == 1 ? kInf : kNaN;
      const auto dx = backward(op, y, dy, m, 2), dx_loud = backward(op, y, loud, m, 2);
      for (int64_t j = 0; j < cols; ++j) {
        SCOPED_TRACE(testing::Message() << softmax_kind_name(op.kind) << " col " << j
                                        << (m ? " masked" : ""));
        if (hidden(j)) {
          EXPECT_EQ(dx[static_cast<size_t>(j)], 0.0);
        }
        EXPECT_EQ(dx_loud[static_cast<size_t>(j)], dx[static_cast<size_t>(j)]);
      }
      // The visible columns get the gradient of softmax over those columns alone.
      std::vector<double> xv, dyv;
      for (int64_t j = 0; j < cols; ++j)
        if (!hidden(j)) {
          xv.push_back(x[static_cast<size_t>(j)]);
          dyv.push_back(dy[static_cast<size_t>(j)]);
        }
      const Softmax plain = kind;
      const auto dxv = backward(plain, forward(plain, xv), dyv);
      for (int64_t j = 0, k = 0; j < cols; ++j)
        if (!hidden(j)) {
          EXPECT_NEAR(dx[static_cast<size_t>(j)], dxv[static_cast<size_t>(k++)], 1e-12);
        }
    }
  }
}

// Which columns are hidden comes from the mask and causal settings, never
// from y: a visible column whose output saturated (log_softmax y = -inf from
// overflow or an infinite input; softmax y = 0 from underflow) keeps its dy,
// as PyTorch's backward does.
TEST(SoftmaxReference, SaturatedVisibleColumnsKeepTheirGradient) {
  // The case: fp16 log_softmax([-60000, 60000]) is [-inf, 0] (the
  // difference overflows fp16); backward with dy = [1, 0] is [1, -1]. Also
  // fp32 and bf16 with +-3e38, through the buffer form (rounded to the dtype).
  for (DType dtype : {DType::f16, DType::f32, DType::bf16}) {
    const double big = dtype == DType::f16 ? 60000.0 : 3e38;
    const std::vector<double> x = {ref::round_to(dtype, -big), ref::round_to(dtype, big)};
    const auto xb = test::to_buffer(dtype, x);
    std::vector<unsigned char> yb(xb.size()), dxb(xb.size());
    const Softmax op = Softmax::log_softmax();
    ASSERT_TRUE(ref::softmax(Direction::forward, op, dtype, xb.data(), nullptr, yb.data(), 1, 2).ok());
    EXPECT_EQ(test::from_buffer(dtype, yb), (std::vector<double>{-kInf, 0.0})) << dtype_name(dtype);
    const auto dyb = test::to_buffer(dtype, {1.0, 0.0});
    ASSERT_TRUE(ref::softmax(Direction::backward, op, dtype, yb.data(), dyb.data(), dxb.data(), 1, 2)
                    .ok());
    EXPECT_EQ(test::from_buffer(dtype, dxb), (std::vector<double>{1.0, -1.0})) << dtype_name(dtype);
    // The same column hidden by the mask: dx = 0 there, and its dy is not summed.
    const auto mb = test::to_buffer(dtype, {-kInf, 0.0});
    const Softmax masked = op.with_mask(mb.data(), dtype);
    ASSERT_TRUE(ref::softmax(Direction::backward, masked, dtype, yb.data(), dyb.data(), dxb.data(),
                             1, 2)
                    .ok());
    EXPECT_EQ(test::from_buffer(dtype, dxb), (std::vector<double>{0.0, 0.0})) << dtype_name(dtype);
  }
  // log_softmax with a visible -inf input: dx = s*(dy - exp(y) sum dy) = s*dy
  // there (PyTorch's value); hidden by causal instead: 0, and not summed.
  const std::vector<double> x = {-kInf, 0.5, 1.5}, dy = {2.0, 1.0, -0.5};
  const Softmax log = Softmax::log_softmax(0.5f);
  const auto y = forward(log, x);
  const auto dx = backward(log, y, dy);
  EXPECT_EQ(dx[0], 0.5 * 2.0);
  EXPECT_NEAR(dx[1], 0.5 * (1.0 - std::exp(y[1]) * 2.5), 1e-15);
  const std::vector<double> x2 = {0.5, 1.5, -kInf}, dy2 = {1.0, -0.5, 2.0};
  const Softmax log_causal = log.with_causal(1, 1);  // columns 0 and 1 visible
  const auto y2 = forward(log_causal, x2);
  const auto dx2 = backward(log_causal, y2, dy2);
  EXPECT_EQ(dx2[2], 0.0);
  EXPECT_NEAR(dx2[0], 0.5 * (1.0 - std::exp(y2[0]) * 0.5), 1e-15);
  // softmax: a visible column that underflowed (y = 0) with an infinite or
  // NaN dy makes the row NaN (0 * inf, as PyTorch); hidden, it is ignored.
  const std::vector<double> xs = {0.0, -2000.0, 1.0};
  std::vector<double> mask = {0.0, 0.0, 0.0};
  for (double special : {kInf, -kInf, kNaN}) {
    const std::vector<double> g = {0.25, special, -1.0};
    const auto ys = forward(Softmax::softmax(), xs);
    ASSERT_EQ(ys[1], 0.0);
    for (double v : backward(Softmax::softmax(), ys, g)) EXPECT_TRUE(std::isnan(v)) << special;
    mask[1] = -kInf;
    const auto ym = forward(Softmax::softmax(), xs, &mask);
    EXPECT_EQ(ym, ys);
    const auto dm = backward(Softmax::softmax(), ym, g, &mask);
    const std::vector<double> two_x = {0.0, 1.0}, two_g = {0.25, -1.0};
    const auto d2 = backward(Softmax::softmax(), forward(Softmax::softmax(), two_x), two_g);
    EXPECT_EQ(dm[1], 0.0);
    EXPECT_NEAR(dm[0], d2[0], 1e-15);
    EXPECT_NEAR(dm[2], d2[1], 1e-15);
    mask[1] = 0.0;
  }
}

// The buffer form reads the mask in backward as the forward does: mask row
// (r / repeat) % mask_rows, its stride, and causal by the data row.
TEST(SoftmaxReference, BufferFormBackwardTakesTheForwardsMaskAndCausal) {
  const int64_t rows = 6, cols = 5, mask_stride = 7;
  std::vector<double> x(rows * cols), m(2 * mask_stride, 0.0), dy(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = i % 3 == 0 ? -kInf : std::sin(0.7 * i) * 3;  // visible -inf inputs too
    dy[i] = std::cos(0.3 * i);
  }
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t j = 0; j < cols; ++j) m[k * mask_stride + j] = (k + j) % 3 == 1 ? -kInf : 0.25 * j;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const Softmax& kind : {Softmax::log_softmax(0.5f), Softmax::softmax(2.0f)}) {
      for (double& v : x) v = ref::round_to(dtype, v);
      for (double& v : m) v = ref::round_to(dtype, v);
      for (double& v : dy) v = ref::round_to(dtype, v);
      const auto xb = test::to_buffer(dtype, x), mb = test::to_buffer(dtype, m),
                 dyb = test::to_buffer(dtype, dy);
      const Softmax op = kind.with_mask(mb.data(), dtype, 2, 3, mask_stride).with_causal(3, 2);
      std::vector<unsigned char> yb(xb.size()), dxb(xb.size());
      ASSERT_TRUE(ref::softmax(Direction::forward, op, dtype, xb.data(), nullptr, yb.data(), rows,
                               cols)
                      .ok());
      ASSERT_TRUE(ref::softmax(Direction::backward, op, dtype, yb.data(), dyb.data(), dxb.data(),
                               rows, cols)
                      .ok());
      const auto y = test::from_buffer(dtype, yb), dx = test::from_buffer(dtype, dxb);
      for (int64_t r = 0; r < rows; ++r) {
        const std::vector<double> yr(y.begin() + r * cols, y.begin() + (r + 1) * cols),
            gr(dy.begin() + r * cols, dy.begin() + (r + 1) * cols),
            mr(m.begin() + (r / 3) % 2 * mask_stride, m.begin() + (r / 3) % 2 * mask_stride + cols);
        const auto expect = backward(op, yr, gr, &mr, r);
        for (int64_t j = 0; j < cols; ++j) {
          EXPECT_EQ(dx[r * cols + j], ref::round_to(dtype, expect[j]))
              << dtype_name(dtype) << " " << softmax_kind_name(op.kind) << " row " << r << " col "
              << j;
          const bool hidden = j > r % 3 + 2 || mr[j] == -kInf;
          if (hidden) {
            EXPECT_EQ(dx[r * cols + j], 0.0);
          }
        }
      }
    }
}

TEST(SoftmaxReference, NaNAnywhereMakesTheRowNaN) {
  for (const Softmax& op : kKinds) {
    std::vector<double> x = random_row(50, 1.0, 6);
    x[17] = kNaN;
    for (double v : forward(op, x)) EXPECT_TRUE(std::isnan(v)) << softmax_kind_name(op.kind);
    // +inf in z (inf - inf) as in PyTorch; +inf + -inf from input and mask.
    x[17] = op.kind == SoftmaxKind::softmin ? -kInf : kInf;
    for (double v : forward(op, x)) EXPECT_TRUE(std::isnan(v));
    std::vector<double> mask(50, 0.0);
    mask[17] = -kInf;
    for (double v : forward(op, x, &mask)) EXPECT_TRUE(std::isnan(v));
    // Backward: a NaN in y or dy spreads through the row's sum.
    std::vector<double> y = forward(Softmax::softmax(), random_row(50, 1.0, 7)), dy(50, 1.0);
    dy[3] = kNaN;
    for (double v : backward(op, y, dy)) EXPECT_TRUE(std::isnan(v));
  }
}

// dx_j = sum_i dy_i dy_i/dx_j, by central differences of the forward.
TEST(SoftmaxReference, BackwardMatchesFiniteDifferences) {
  const int64_t n = 12;
  const auto x = random_row(n, 1.5, 31), dy = random_row(n, 1.0, 32);
  for (const Softmax& op : kKinds) {
    const auto y = forward(op, x);
    const auto dx = backward(op, y, dy);
    for (int64_t j = 0; j < n; ++j) {
      const double h = 1e-6;
      std::vector<double> up(x), down(x);
      up[j] += h;
      down[j] -= h;
      const auto yu = forward(op, up), yd = forward(op, down);
      double fd = 0;
      for (int64_t i = 0; i < n; ++i) fd += dy[i] * (yu[i] - yd[i]) / (2 * h);
      EXPECT_NEAR(dx[j], fd, 1e-7 * (1 + std::fabs(fd)))
          << softmax_kind_name(op.kind) << " j=" << j;
    }
  }
}

TEST(SoftmaxReference, BackwardRowsSumToZero) {
  for (const Softmax& op : kKinds) {
    const auto y = forward(op, random_row(1000, 2.0, 41));
    const auto dy = random_row(1000, 1.0, 42);
    EXPECT_NEAR(sum(backward(op, y, dy)), 0.0, 1e-12) << softmax_kind_name(op.kind);
  }
  // One column: softmax's dx = s*1*(dy - dy) = 0.
  EXPECT_EQ(backward(Softmax::softmax(2.0f), {1.0}, {3.5})[0], 0.0);
}

TEST(SoftmaxReference, BufferFormRoundsOnceAndAppliesTheMaskLayout) {
  // [rows = 6, cols = 5] with a [2, 5] mask repeated every 3 rows (key padding).
  const int64_t rows = 6, cols = 5;
  std::vector<double> x(rows * cols), m(2 * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7 * i) * 3;
  for (size_t i = 0; i < m.size(); ++i) m[i] = i % 4 == 1 ? -kInf : 0.25 * i;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    for (double& v : x) v = ref::round_to(dtype, v);
    for (double& v : m) v = ref::round_to(dtype, v);
    const auto xb = test::to_buffer(dtype, x), mb = test::to_buffer(dtype, m);
    std::vector<unsigned char> yb(xb.size());
    const Softmax op = Softmax::log_softmax(0.5f).with_mask(mb.data(), dtype, 2, 3);
    ASSERT_TRUE(
        ref::softmax(Direction::forward, op, dtype, xb.data(), nullptr, yb.data(), rows, cols)
            .ok());
    const auto y = test::from_buffer(dtype, yb);
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<double> xr(x.begin() + r * cols, x.begin() + (r + 1) * cols);
      const std::vector<double> mr(m.begin() + (r / 3) % 2 * cols,
                                   m.begin() + ((r / 3) % 2 + 1) * cols);
      const auto expect = forward(op, xr, &mr, r);
      for (int64_t j = 0; j < cols; ++j)
        EXPECT_EQ(y[r * cols + j], ref::round_to(dtype, expect[j])) << dtype_name(dtype);
    }
    // In place gives the same.
    std::vector<unsigned char> inplace(xb);
    ASSERT_TRUE(ref::softmax(Direction::forward, op, dtype, inplace.data(), nullptr, inplace.data(),
                             rows, cols)
                    .ok());
    EXPECT_EQ(inplace, yb);
  }
}

}  // namespace
}  // namespace cuact
