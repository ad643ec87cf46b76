// The fused forms of the CPU reference (host/fused_reference.cpp) against
// values worked out by hand or with mpmath, and against identities with the
// elementwise reference: GLU gates, bias, dropout with p = 0 and 1, dbias as
// the column sum of dx, PReLU as a per-channel leaky_relu with its weight
// gradient, RReLU eval as leaky_relu at the midpoint, GLU gradients as
// finite differences. CPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuact/reference.h"

namespace cuact {
namespace {

namespace ref = reference;

std::vector<float> run_glu(const Glu& glu, const std::vector<float>& x, int64_t rows, int64_t d) {
  std::vector<float> y(static_cast<size_t>(rows * d));
  EXPECT_TRUE(ref::glu_forward(glu, DType::f32, x.data(), y.data(), rows, d).ok());
  return y;
}

TEST(FusedReference, GluKnownValues) {
  // x = [a | b] = [1 | 2]: glu = a * sigmoid(b), the others act(a) * b.
  const std::vector<float> x = {1.0f, 2.0f};
  EXPECT_FLOAT_EQ(run_glu(Glu::glu(), x, 1, 1)[0], 0.88079707797788231f);       // 1 * sigmoid(2)
  EXPECT_FLOAT_EQ(run_glu(Glu::swiglu(), x, 1, 1)[0], 1.4621171572600098f);     // silu(1) * 2
  EXPECT_FLOAT_EQ(run_glu(Glu::geglu(), x, 1, 1)[0], 1.6826894921370859f);      // gelu(1) * 2
  EXPECT_FLOAT_EQ(run_glu(Glu::geglu_tanh(), x, 1, 1)[0], 1.6823839812165534f); // gelu_tanh(1) * 2
  EXPECT_FLOAT_EQ(run_glu(Glu::reglu(), {-1.0f, 2.0f}, 1, 1)[0], 0.0f);
  // Rows of [a0 a1 | b0 b1]: the halves are per row.
  const std::vector<float> two = {1, -3, 4, 5, /*row 1*/ 2, 0.5f, -1, 7};
  const std::vector<float> y = run_glu(Glu{Activation::identity(), GatedHalf::first}, two, 2, 2);
  EXPECT_EQ(y, (std::vector<float>{4, -15, -2, 3.5f}));
}

TEST(FusedReference, GluGradientsAreFiniteDifferences) {
  for (const Glu& glu : {Glu::glu(), Glu::swiglu(), Glu::geglu(), Glu::geglu_tanh()})
    for (double a : {-2.5, -0.3, 0.7, 1.9})
      for (double b : {-1.5, 0.25, 2.0}) {
        const bool first = glu.gated == GatedHalf::first;
        auto f = [&](double ga, double gb) { return ref::forward(glu.act, ga) * gb; };
        const double h = 1e-6, g = 0.75;
        // Gated half a (activated) and other half b, in the call's order.
        const std::vector<double> x = first ? std::vector<double>{a, b} : std::vector<double>{b, a};
        std::vector<double> dx_num = {0, 0};
        dx_num[first ? 0 : 1] = g * (f(a + h, b) - f(a - h, b)) / (2 * h);
        dx_num[first ? 1 : 0] = g * (f(a, b + h) - f(a, b - h)) / (2 * h);
        const std::vector<float> xf = {static_cast<float>(x[0]), static_cast<float>(x[1])};
        const float dy = static_cast<float>(g);
        std::vector<float> dx(2);
        ASSERT_TRUE(ref::glu_backward(glu, DType::f32, xf.data(), &dy, dx.data(), 1, 1).ok());
        // The float inputs differ from a, b by their rounding; compare at 1e-5.
        EXPECT_NEAR(dx[0], dx_num[0], 1e-5 * (1 + std::fabs(dx_num[0])));
        EXPECT_NEAR(dx[1], dx_num[1], 1e-5 * (1 + std::fabs(dx_num[1])));
      }
}

TEST(FusedReference, ClampedSwigluIsGptOssFormula) {
  // gpt-oss: a' = min(a, 7), b' = clamp(b, -7, 7), a' * sigmoid(1.702 a') * (b' + 1).
  const Glu glu = Glu::clamped_swiglu();
  auto gpt_oss = [](double a, double b) {
    const double g = std::min(a, 7.0), l = std::max(std::min(b, 7.0), -7.0);
    return g / (1 + std::exp(-1.702 * g)) * (l + 1);
  };
  for (float a : {-9.0f, -1.0f, 0.5f, 6.5f, 7.0f, 9.5f})
    for (float b : {-12.0f, -7.0f, -0.5f, 3.0f, 7.0f, 40.0f}) {
      const std::vector<float> y = run_glu(glu, {a, b}, 1, 1);
      EXPECT_NEAR(y[0], gpt_oss(a, b), 1e-6 * (1 + std::fabs(gpt_oss(a, b)))) << a << " " << b;
    }
  // NaN passes through the clamps.
  EXPECT_TRUE(std::isnan(run_glu(glu, {NAN, 1.0f}, 1, 1)[0]));
  EXPECT_TRUE(std::isnan(run_glu(glu, {1.0f, NAN}, 1, 1)[0]));
  // Gradients: zero past the limits, passed at them, NaN propagated.
  auto grad = [&](float a, float b) {
    const std::vector<float> x = {a, b};
    const float dy = 1.0f;
    std::vector<float> dx(2);
    EXPECT_TRUE(ref::glu_backward(glu, DType::f32, x.data(), &dy, dx.data(), 1, 1).ok());
    return dx;
  };
  EXPECT_EQ(grad(7.5f, 1.0f)[0], 0.0f);
  EXPECT_NE(grad(7.0f, 1.0f)[0], 0.0f);
  EXPECT_EQ(grad(1.0f, 7.5f)[1], 0.0f);
  EXPECT_EQ(grad(1.0f, -7.5f)[1], 0.0f);
  EXPECT_NE(grad(1.0f, -7.0f)[1], 0.0f);
  EXPECT_TRUE(std::isnan(grad(NAN, 1.0f)[0]));
  // An offset of 0 keeps a zero linear half's sign.
  const Glu plain{Activation::identity(), GatedHalf::first, 7.0f, 0.0f};
  EXPECT_TRUE(std::signbit(run_glu(plain, {2.0f, -0.0f}, 1, 1)[0]));
}

TEST(FusedReference, WeightedGluScalesRowsAndSumsTheWeightGradient) {
  // Megatron's weighted SwiGLU: silu(a) * b * w[r]; dw[r] = sum_c silu(a) b dy.
  const std::vector<float> x = {1, -2, 3, 0.5f, /*row 1*/ 2, 1, -1, 4};
  const std::vector<float> w = {0.5f, -2.0f}, dy = {1, 2, -1, 0.25f};
  auto silu = [](double v) { return v / (1 + std::exp(-v)); };
  std::vector<float> y(4), dx(8), dw(2);
  ASSERT_TRUE(ref::glu_forward(Glu::swiglu(), DType::f32, x.data(), w.data(), DType::f32, y.data(), 2, 2).ok());
  ASSERT_TRUE(ref::glu_backward(Glu::swiglu(), DType::f32, x.data(), w.data(), DType::f32, dy.data(),
                                dx.data(), dw.data(), 2, 2)
                  .ok());
  for (int r = 0; r < 2; ++r) {
    double sum = 0;
    for (int c = 0; c < 2; ++c) {
      const double a = x[r * 4 + c], b = x[r * 4 + 2 + c], g = dy[r * 2 + c];
      EXPECT_FLOAT_EQ(y[r * 2 + c], static_cast<float>(silu(a) * b * w[r]));
      EXPECT_FLOAT_EQ(dx[r * 4 + 2 + c], static_cast<float>(g * w[r] * silu(a)));
      sum += silu(a) * b * g;
    }
    EXPECT_FLOAT_EQ(dw[r], static_cast<float>(sum));
  }
}

TEST(FusedReference, BiasIsAddedInFp32BeforeTheActivation) {
  EXPECT_EQ(ref::bias_preactivation(1.0, 0x1p-30), 1.0);  // below half an fp32 ulp of 1
  EXPECT_EQ(ref::bias_preactivation(1.5, 0.25), 1.75);
  const std::vector<float> x = {-1.0f, 0.5f, 2.0f, -3.0f};
  const std::vector<float> bias = {0.5f, -1.0f};
  std::vector<float> y(4);
  ASSERT_TRUE(ref::bias_activation_forward(Activation::relu(), DType::f32, x.data(), bias.data(),
                                           y.data(), 2, 2).ok());
  EXPECT_EQ(y, (std::vector<float>{0.0f, 0.0f, 2.5f, 0.0f}));
}

TEST(FusedReference, DropoutPZeroIsPlainAndPOneIsZeros) {
  const int64_t n = 333;
  std::vector<float> x(n), plain(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::sin(i * 0.7) * 5);
  std::vector<uint8_t> mask(n);
  for (const Activation& act : {Activation::gelu(), Activation::leaky_relu(0.2f), Activation::tanh()}) {
    ASSERT_TRUE(ref::activation(Direction::forward, act, DType::f32, x.data(), nullptr, plain.data(), n).ok());
    ASSERT_TRUE(ref::bias_activation_forward(act, DType::f32, x.data(), nullptr, y.data(), 1, n,
                                             Dropout{0.0f, 3, 4}, mask.data()).ok());
    EXPECT_EQ(y, plain);
    for (uint8_t m : mask) EXPECT_EQ(m, 1);
    ASSERT_TRUE(ref::bias_activation_forward(act, DType::f32, x.data(), nullptr, y.data(), 1, n,
                                             Dropout{1.0f, 3, 4}, mask.data()).ok());
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(y[i], 0.0f);
      EXPECT_EQ(mask[i], 0);
    }
  }
}

TEST(FusedReference, DropoutKeptValuesAreScaledAndBackwardUsesTheSameMask) {
  const int64_t n = 1000;
  const Dropout d{0.25f, 11, 12};
  std::vector<float> x(n), dy(n), y(n), dx(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(std::cos(i * 0.3) * 3);
    dy[i] = static_cast<float>(std::sin(i * 0.1));
  }
  std::vector<uint8_t> mask(n);
  ASSERT_TRUE(ref::bias_activation_forward(Activation::silu(), DType::f32, x.data(), nullptr,
                                           y.data(), 1, n, d, mask.data()).ok());
  ASSERT_TRUE(activation_dropout_backward(Activation::silu(), DType::f32, nullptr, nullptr,
                                          nullptr, 0, d).ok());
  ASSERT_TRUE(ref::bias_activation_backward(Activation::silu(), DType::f32, x.data(), nullptr,
                                            dy.data(), dx.data(), nullptr, 1, n, d).ok());
  const double scale = ref::dropout_scale(d.p);
  EXPECT_EQ(scale, static_cast<double>(static_cast<float>(1.0 / 0.75)));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    kept += mask[i];
    if (mask[i]) {
      EXPECT_EQ(y[i], static_cast<float>(ref::forward(Activation::silu(), x[i]) * scale));
      EXPECT_EQ(dx[i], static_cast<float>(ref::backward(Activation::silu(), x[i], dy[i] * scale)));
    } else {
      EXPECT_EQ(y[i], 0.0f);
      EXPECT_EQ(dx[i], 0.0f);
    }
  }
  EXPECT_NEAR(kept, 750, 6 * std::sqrt(1000 * 0.25 * 0.75));
}

TEST(FusedReference, DbiasIsTheColumnSumOfDx) {
  const int64_t rows = 7, cols = 5;
  std::vector<double> x(rows * cols), dy(rows * cols);
  std::vector<float> xf(rows * cols), dyf(rows * cols), dx(rows * cols), dbias(cols);
  const std::vector<float> bias = {0.5f, -0.25f, 1.0f, 0.0f, -2.0f};
  for (int64_t i = 0; i < rows * cols; ++i) {
    xf[i] = static_cast<float>(std::sin(i * 1.3) * 2);
    dyf[i] = static_cast<float>(std::cos(i * 0.9));
  }
  ASSERT_TRUE(ref::bias_activation_backward(Activation::gelu(), DType::f32, xf.data(), bias.data(),
                                            dyf.data(), dx.data(), dbias.data(), rows, cols).ok());
  for (int64_t c = 0; c < cols; ++c) {
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r)
      sum += ref::backward(Activation::gelu(), ref::bias_preactivation(xf[r * cols + c], bias[c]),
                           dyf[r * cols + c]);
    EXPECT_EQ(dbias[c], static_cast<float>(sum));
  }
}

TEST(FusedReference, PreluIsPerChannelLeakyReluWithItsWeightGradient) {
  // [outer 2, C 3, inner 2]
  const std::vector<float> w = {0.25f, 0.0f, -0.5f};
  const std::vector<float> x = {-4, 1, -2, 3, 0, -8, /**/ 2, -1, -INFINITY, NAN, -6, 0};
  const std::vector<float> dy = {1, 2, 3, 4, 5, 6, /**/ 7, 8, 9, 10, 11, 12};
  std::vector<float> y(12), dx(12), dw(3);
  ASSERT_TRUE(ref::prelu_forward(DType::f32, x.data(), w.data(), y.data(), 2, 3, 2).ok());
  ASSERT_TRUE(ref::prelu_backward(DType::f32, x.data(), w.data(), dy.data(), dx.data(), dw.data(), 2, 3, 2).ok());
  const std::vector<float> want_y = {-1, 1, 0, 3, 0, 4, /**/ 2, -0.25f, 0, NAN, 3, 0};
  for (int i = 0; i < 12; ++i) {
    if (std::isnan(want_y[i])) EXPECT_TRUE(std::isnan(y[i])) << i;
    else EXPECT_EQ(y[i], want_y[i]) << i;
  }
  const std::vector<float> want_dx = {0.25f, 2, 0, 4, -2.5f, -3, /**/ 7, 2, 0, NAN, -5.5f, -6};
  for (int i = 0; i < 12; ++i) {
    if (std::isnan(want_dx[i])) EXPECT_TRUE(std::isnan(dx[i])) << i;
    else EXPECT_EQ(dx[i], want_dx[i]) << i;
  }
  // dw[c] = sum of dy * x over x <= 0: c0: 1*-4 + 8*-1 = -12; c1: 3*-2 + 9*-inf + 10*NaN
  // = NaN (a NaN x is not > 0: it counts); c2: 5*0 + 6*-8 + 11*-6 + 12*0 = -114 (x = 0 counts).
  EXPECT_EQ(dw[0], -12.0f);
  EXPECT_TRUE(std::isnan(dw[1]));
  EXPECT_EQ(dw[2], -114.0f);
  // Without the NaN, channel 1's sum is -inf.
  const std::vector<float> xi = {-2, -INFINITY};
  const std::vector<float> dyi = {3, 9};
  const float w1 = 0.0f;
  std::vector<float> dxi(2);
  float dwi = 0;
  ASSERT_TRUE(ref::prelu_backward(DType::f32, xi.data(), &w1, dyi.data(), dxi.data(), &dwi, 1, 1, 2).ok());
  EXPECT_EQ(dwi, -INFINITY);
}

TEST(FusedReference, PreluWithOneWeightIsLeakyRelu) {
  const int64_t n = 200;
  std::vector<float> x(n), dy(n), y(n), dx(n), yl(n), dxl(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>((i - 100) * 0.07);
    dy[i] = static_cast<float>(1 + i % 3);
  }
  const float a = 0.2f;
  ASSERT_TRUE(ref::prelu_forward(DType::f32, x.data(), &a, y.data(), 1, 1, n).ok());
  ASSERT_TRUE(ref::prelu_backward(DType::f32, x.data(), &a, dy.data(), dx.data(), nullptr, 1, 1, n).ok());
  ASSERT_TRUE(ref::activation(Direction::forward, Activation::leaky_relu(a), DType::f32, x.data(), nullptr, yl.data(), n).ok());
  ASSERT_TRUE(ref::activation(Direction::backward, Activation::leaky_relu(a), DType::f32, x.data(), dy.data(), dxl.data(), n).ok());
  EXPECT_EQ(y, yl);
  EXPECT_EQ(dx, dxl);
}

TEST(FusedReference, RreluEvalIsLeakyReluAtTheMidpointExceptTheKink) {
  const Rrelu r{0.1f, 0.3f, false};
  const float mid = static_cast<float>((static_cast<double>(0.1f) + 0.3f) / 2);
  EXPECT_EQ(ref::rrelu_slope(r, 17), static_cast<double>(mid));
  const std::vector<float> x = {-2.0f, 0.0f, 3.0f, -0.0f};
  const std::vector<float> dy = {1.0f, 1.0f, 1.0f, 1.0f};
  std::vector<float> y(4), dx(4);
  ASSERT_TRUE(ref::rrelu_forward(r, DType::f32, x.data(), y.data(), 4).ok());
  ASSERT_TRUE(ref::rrelu_backward(r, DType::f32, x.data(), dy.data(), dx.data(), 4).ok());
  EXPECT_EQ(y[0], static_cast<float>(-2.0 * mid));
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 3.0f);
  EXPECT_EQ(dx[0], mid);
  EXPECT_EQ(dx[1], 1.0f) << "x = 0 is on the linear side (x >= 0), derivative 1";
  EXPECT_EQ(dx[3], 1.0f);
}

TEST(FusedReference, RreluTrainingDrawsOneSlopePerElementForBothDirections) {
  const Rrelu r{0.125f, 0.5f, true, 2, 3};
  const int64_t n = 4096;
  std::vector<float> x(n, -1.0f), dy(n, 1.0f), y(n), dx(n);
  ASSERT_TRUE(ref::rrelu_forward(r, DType::f32, x.data(), y.data(), n).ok());
  ASSERT_TRUE(ref::rrelu_backward(r, DType::f32, x.data(), dy.data(), dx.data(), n).ok());
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_GE(-y[i], 0.125f);
    EXPECT_LE(-y[i], 0.5f);
    EXPECT_EQ(dx[i], -y[i]) << "backward regenerates the forward's slope";
    sum += dx[i];
  }
  EXPECT_NEAR(sum / n, 0.3125, 6 * 0.375 / std::sqrt(12.0 * n));
}

}  // namespace
}  // namespace cuact
