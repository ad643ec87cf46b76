// The cross-entropy reference (cuact/cross_entropy.h, reference.h) against
// what its contract says it computes: the loss against the softmax
// family's own log_softmax, closed forms on uniform rows, the options'
// semantics (ignore_index, weights and the mean's denominator, the empty
// mean, smoothing in both forms, z-loss, soft-capping as a transform of
// the logits), dlogits against central differences of its own loss for
// every option, the backward against the forward's fused dlogits, and the
// argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuact/cross_entropy.h"
#include "cuact/reference.h"

namespace cuact::test {
namespace {

struct Problem {
  int64_t rows, vocab, stride;
  std::vector<float> logits;
  std::vector<int64_t> targets;
};

Problem random_problem(int64_t rows, int64_t vocab, int64_t stride, uint32_t seed, double spread = 3.0) {
  Problem p{rows, vocab, stride, std::vector<float>(static_cast<size_t>(rows * stride), 99.0f),
            std::vector<int64_t>(static_cast<size_t>(rows))};
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, spread);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < vocab; ++j) p.logits[static_cast<size_t>(r * stride + j)] = static_cast<float>(normal(rng));
    p.targets[static_cast<size_t>(r)] = static_cast<int64_t>(rng() % static_cast<uint32_t>(vocab));
  }
  return p;
}

float reduced(const CrossEntropy& ce, const Problem& p, std::vector<float>* loss = nullptr) {
  float value = -1;
  std::vector<float> rows(static_cast<size_t>(p.rows));
  CrossEntropyOutputs out;
  out.loss = rows.data();
  out.reduced = &value;
  const Status s = reference::cross_entropy_forward(ce, DType::f32, p.logits.data(), p.rows, p.vocab,
                                                    p.stride, p.targets.data(), IndexType::i64, out);
  EXPECT_TRUE(s.ok()) << s.message();
  if (loss != nullptr) *loss = rows;
  return value;
}

TEST(CrossEntropyReference, LossIsMinusLogSoftmaxOfTheTarget) {
  const Problem p = random_problem(7, 300, 305, 1);
  CrossEntropy ce;
  ce.reduction = Reduction::none;
  std::vector<float> loss;
  CrossEntropyOutputs out;
  std::vector<float> rows(7), lse(7);
  out.loss = rows.data();
  out.lse = lse.data();
  ASSERT_TRUE(reference::cross_entropy_forward(ce, DType::f32, p.logits.data(), 7, 300, 305,
                                               p.targets.data(), IndexType::i64, out)
                  .ok());
  for (int64_t r = 0; r < 7; ++r) {
    std::vector<double> x(300), y(300);
    for (int j = 0; j < 300; ++j) x[static_cast<size_t>(j)] = p.logits[static_cast<size_t>(r * 305 + j)];
    reference::softmax_forward_row(Softmax::log_softmax(), r, 300, x.data(), nullptr, y.data());
    const double want = -y[static_cast<size_t>(p.targets[static_cast<size_t>(r)])];
    EXPECT_EQ(rows[static_cast<size_t>(r)], static_cast<float>(want)) << r;
    // lse: x_j - log_softmax_j for any j
    EXPECT_NEAR(lse[static_cast<size_t>(r)], x[0] - y[0], 1e-5 * std::fabs(x[0] - y[0]) + 1e-6);
  }
}

// Uniform rows: -log p_c = log C for every class, so every smoothing form
// and weighting gives closed forms.
TEST(CrossEntropyReference, UniformRowsClosedForms) {
  const int64_t C = 8;
  Problem p{3, C, C, std::vector<float>(3 * C, 0.5f), {1, 4, 7}};
  const double logC = std::log(8.0);
  CrossEntropy ce;
  EXPECT_FLOAT_EQ(reduced(ce, p), static_cast<float>(logC));
  ce.label_smoothing = 0.3f;
  EXPECT_FLOAT_EQ(reduced(ce, p), static_cast<float>(logC));
  ce.smoothing_form = LabelSmoothing::megatron;
  EXPECT_FLOAT_EQ(reduced(ce, p), static_cast<float>(logC));
  // weights: row loss (1 - eps) w_t log C + eps / C * W log C, mean over sum of w_t
  const std::vector<float> w = {1, 2, 3, 4, 5, 6, 7, 8};
  CrossEntropy wc;
  wc.weight = w.data();
  wc.label_smoothing = 0.25f;
  const double W = 36, eps = 0.25;
  double sum = 0, den = 0;
  for (int64_t t : p.targets) {
    const double wt = w[static_cast<size_t>(t)];
    sum += (1 - eps) * wt * logC + eps / C * W * logC;
    den += wt;
  }
  EXPECT_FLOAT_EQ(reduced(wc, p), static_cast<float>(sum / den));
  wc.reduction = Reduction::sum;
  EXPECT_FLOAT_EQ(reduced(wc, p), static_cast<float>(sum));
  // z-loss: + lambda lse^2 per row, lse = 0.5 + log C
  CrossEntropy zc;
  zc.z_loss = 1e-2f;
  const double lse = 0.5 + logC;
  EXPECT_FLOAT_EQ(reduced(zc, p), static_cast<float>(logC + static_cast<double>(1e-2f) * lse * lse));
}

TEST(CrossEntropyReference, IgnoredRowsAndTheEmptyMean) {
  Problem p = random_problem(5, 40, 40, 2);
  std::vector<float> all;
  CrossEntropy ce;
  ce.reduction = Reduction::none;
  reduced(ce, p, &all);
  p.targets[1] = p.targets[3] = -100;
  ce.reduction = Reduction::mean;
  std::vector<float> some;
  const float mean = reduced(ce, p, &some);
  EXPECT_EQ(some[1], 0.0f);
  EXPECT_EQ(some[3], 0.0f);
  EXPECT_FLOAT_EQ(mean, static_cast<float>((static_cast<double>(all[0]) + all[2] + all[4]) / 3));
  for (int64_t& t : p.targets) t = 7;
  ce.ignore_index = 7;
  EXPECT_TRUE(std::isnan(reduced(ce, p)));
  ce.empty_mean_is_zero = true;
  EXPECT_EQ(reduced(ce, p), 0.0f);
  ce.reduction = Reduction::sum;
  EXPECT_EQ(reduced(ce, p), 0.0f);
}

// Soft-capping and the logit scale are a transform of the logits: the
// loss equals the plain loss of cap tanh(s x / cap).
TEST(CrossEntropyReference, SoftcapAndScaleTransformTheLogits) {
  Problem p = random_problem(4, 64, 64, 3, 20.0);
  CrossEntropy ce;
  ce.softcap = 15.0f;
  ce.logit_scale = 0.7f;
  ce.reduction = Reduction::none;
  std::vector<float> capped;
  reduced(ce, p, &capped);
  Problem q = p;
  for (float& x : q.logits) x = static_cast<float>(15.0 * std::tanh(0.7 * static_cast<double>(x) / 15.0));
  std::vector<float> plain;
  reduced(CrossEntropy{-100, nullptr, DType::f32, 0, LabelSmoothing::pytorch, 0, 0, 1, Reduction::none}, q, &plain);
  for (size_t r = 0; r < capped.size(); ++r) EXPECT_NEAR(capped[r], plain[r], 2e-5 * std::fabs(plain[r]) + 1e-5);
}

// dlogits (the forward's fused mode and the backward) against central
// differences of the reduced loss, every option on.
TEST(CrossEntropyReference, GradientMatchesCentralDifferences) {
  const std::vector<float> w = [] {
    std::vector<float> v(24);
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5f + 0.1f * static_cast<float>(i % 7);
    return v;
  }();
  struct Case {
    std::string name;
    CrossEntropy ce;
  };
  std::vector<Case> cases;
  cases.push_back({"plain", {}});
  CrossEntropy all;
  all.weight = w.data();
  all.label_smoothing = 0.1f;
  all.z_loss = 1e-3f;
  all.softcap = 4.0f;
  all.logit_scale = 1.3f;
  cases.push_back({"weights+smoothing+z+cap+scale", all});
  CrossEntropy meg;
  meg.label_smoothing = 0.2f;
  meg.smoothing_form = LabelSmoothing::megatron;
  meg.z_loss = 1e-2f;
  meg.reduction = Reduction::sum;
  cases.push_back({"megatron+z, sum", meg});
  for (const Case& c : cases) {
    Problem p = random_problem(3, 24, 26, 4);
    p.targets[1] = c.ce.ignore_index;  // an ignored row: zero gradient
    std::vector<float> fused(p.logits.size(), 7.0f), back(p.logits.size(), 7.0f);
    float value = 0;
    CrossEntropyOutputs out;
    out.reduced = &value;
    out.dlogits = fused.data();
    ASSERT_TRUE(reference::cross_entropy_forward(c.ce, DType::f32, p.logits.data(), 3, 24, 26,
                                                 p.targets.data(), IndexType::i64, out)
                    .ok());
    const float one = 1.0f;
    ASSERT_TRUE(reference::cross_entropy_backward(c.ce, DType::f32, p.logits.data(), 3, 24, 26,
                                                  p.targets.data(), IndexType::i64, &one, back.data())
                    .ok());
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t j = 0; j < 26; ++j) {
        const size_t i = static_cast<size_t>(r * 26 + j);
        if (j >= 24) {  // the stride's padding: untouched
          EXPECT_EQ(fused[i], 7.0f);
          continue;
        }
        EXPECT_EQ(fused[i], back[i]) << c.name;
        const float x = p.logits[i], h = 1e-2f;
        p.logits[i] = x + h;
        const double up = reduced(c.ce, p);
        p.logits[i] = x - h;
        const double down = reduced(c.ce, p);
        p.logits[i] = x;
        const double numeric = (up - down) / (2.0 * h);
        EXPECT_NEAR(fused[i], numeric, 2e-3) << c.name << " row " << r << " class " << j;
        if (r == 1) {
          EXPECT_EQ(fused[i], 0.0f);
        }
      }
  }
}

TEST(CrossEntropyReference, Arguments) {
  Problem p = random_problem(2, 10, 10, 5);
  float value = 0;
  CrossEntropyOutputs out;
  out.reduced = &value;
  auto call = [&](const CrossEntropy& ce, int64_t vocab = 10, const CrossEntropyOutputs* o = nullptr) {
    return reference::cross_entropy_forward(ce, DType::f32, p.logits.data(), 2, vocab, 10, p.targets.data(),
                                            IndexType::i64, o != nullptr ? *o : out)
        .code();
  };
  EXPECT_EQ(call({}), StatusCode::success);
  p.targets[0] = 10;  // neither a class nor ignore_index
  EXPECT_EQ(call({}), StatusCode::invalid_parameter);
  p.targets[0] = -100;
  EXPECT_EQ(call({}), StatusCode::success);
  CrossEntropy ce;
  ce.label_smoothing = 1.5f;
  EXPECT_EQ(call(ce), StatusCode::invalid_parameter);
  const std::vector<float> w(10, 1.0f);
  ce = {};
  ce.weight = w.data();
  ce.smoothing_form = LabelSmoothing::megatron;
  EXPECT_EQ(call(ce), StatusCode::invalid_parameter);
  ce = {};
  ce.logit_scale = 0.0f;
  EXPECT_EQ(call(ce), StatusCode::invalid_parameter);
  ce = {};
  ce.softcap = -1.0f;
  EXPECT_EQ(call(ce), StatusCode::invalid_parameter);
  EXPECT_EQ(call({}, 11), StatusCode::invalid_size);  // row_stride 10 < vocab 11
  const CrossEntropyOutputs none;
  EXPECT_EQ(call({}, 10, &none), StatusCode::null_pointer);  // a mean needs `reduced`
  std::vector<int32_t> t32 = {3, -100};
  EXPECT_EQ(reference::cross_entropy_forward({}, DType::f32, p.logits.data(), 2, 10, 10, t32.data(),
                                             IndexType::i32, out)
                .code(),
            StatusCode::success);
}

}  // namespace
}  // namespace cuact::test
