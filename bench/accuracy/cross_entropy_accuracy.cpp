#include "cross_entropy_accuracy.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <random>
#include <sstream>

#include "cuact/reference.h"
#include "element_io.h"
#include "softmax_accuracy.h"

namespace cuact::test {

namespace {

constexpr double kU = 0x1p-24;

double rho(DType d) { return d == DType::f32 ? 0x1p-23 : d == DType::f16 ? 0x1p-10 : 0x1p-7; }
double floor_of(DType d) { return d == DType::f16 ? 0x1p-24 : FLT_MIN; }

std::vector<unsigned char> bytes_of(DType dtype, const std::vector<double>& v) {
  std::vector<unsigned char> b(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) detail::store_element(dtype, b.data(), static_cast<int64_t>(i), v[i]);
  return b;
}

struct Judge {
  CrossEntropyCheck c;
  void operator()(const char* what, int64_t row, int64_t col, double got, double exact,
                  double bound, bool exact_only = false) {
    ++c.values;
    bool ok;
    if (std::isnan(exact)) ok = std::isnan(got);
    else if (std::isinf(exact) || exact_only) ok = got == exact;
    else {
      const double err = std::fabs(got - exact);
      ok = err <= bound;
      if (bound > 0 && err / bound > c.worst_ratio) {
        c.worst_ratio = err / bound;
        std::ostringstream s;
        s.precision(9);
        s << what << " row " << row << " col " << col << ": got " << got << ", exact " << exact
          << ", bound " << bound;
        c.worst = s.str();
      }
    }
    if (ok) return;
    ++c.failures;
    if (c.first_failures.size() < 5) {
      std::ostringstream s;
      s.precision(9);
      s << what << " row " << row << " col " << col << ": got " << got << ", exact " << exact
        << ", bound " << bound;
      c.first_failures.push_back(s.str());
    }
  }
};

}  // namespace

CrossEntropyProblem make_cross_entropy_problem(const std::string& name, const CrossEntropy& ce,
                                               DType dtype, int64_t rows, int64_t vocab,
                                               int64_t stride, uint64_t seed, double spread,
                                               double center, int ignore_every) {
  CrossEntropyProblem p{name, ce, dtype, rows, vocab, stride, {}, {}, {}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(center, spread);
  p.logits.assign(static_cast<size_t>(rows * stride), 77.0);  // the gaps: never read
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < vocab; ++j)
      p.logits[static_cast<size_t>(r * stride + j)] = reference::round_to(dtype, normal(rng));
  p.targets.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    p.targets[static_cast<size_t>(r)] = ignore_every > 0 && r % ignore_every == ignore_every - 1
                                            ? ce.ignore_index
                                            : static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
  if (ce.weight != nullptr) {
    std::uniform_real_distribution<double> u(0.25, 2.0);
    p.weight.resize(static_cast<size_t>(vocab));
    for (double& w : p.weight) w = reference::round_to(ce.weight_dtype, u(rng));
  }
  return p;
}

const std::vector<std::pair<std::string, CrossEntropy>>& cross_entropy_option_sets() {
  static const float kWeightTag = 0;  // a non-null weight: the problem brings its own
  struct Set {
    const char* name;
    Reduction reduction;
    const float* weight;
    DType weight_dtype;
    float smoothing;
    LabelSmoothing form;
    float z_loss, softcap, scale;
  };
  static const Set kSets[] = {
      {"mean", Reduction::mean, nullptr, DType::f32, 0, LabelSmoothing::pytorch, 0, 0, 1},
      {"sum+z_loss", Reduction::sum, nullptr, DType::f32, 0, LabelSmoothing::pytorch, 1e-4f, 0, 1},
      {"none+smoothing", Reduction::none, nullptr, DType::f32, 0.1f, LabelSmoothing::pytorch, 0, 0, 1},
      {"mean+weights+smoothing", Reduction::mean, &kWeightTag, DType::f32, 0.2f,
       LabelSmoothing::pytorch, 0, 0, 1},
      {"mean+bf16 weights", Reduction::mean, &kWeightTag, DType::bf16, 0, LabelSmoothing::pytorch,
       0, 0, 1},
      {"mean+megatron", Reduction::mean, nullptr, DType::f32, 0.1f, LabelSmoothing::megatron, 0, 0, 1},
      {"mean+softcap+scale+z_loss", Reduction::mean, nullptr, DType::f32, 0,
       LabelSmoothing::pytorch, 1e-3f, 30.0f, 0.5f},
  };
  static const std::vector<std::pair<std::string, CrossEntropy>> sets = [] {
    std::vector<std::pair<std::string, CrossEntropy>> v;
    for (const Set& s : kSets) {
      CrossEntropy ce;
      ce.reduction = s.reduction;
      ce.weight = s.weight;
      ce.weight_dtype = s.weight_dtype;
      ce.label_smoothing = s.smoothing;
      ce.smoothing_form = s.form;
      ce.z_loss = s.z_loss;
      ce.softcap = s.softcap;
      ce.logit_scale = s.scale;
      v.push_back({s.name, ce});
    }
    return v;
  }();
  return sets;
}

CrossEntropyCheck check_cross_entropy(const CrossEntropyProblem& p, const CrossEntropyGot& got,
                                      const std::vector<float>* dloss) {
  const CrossEntropy& given = p.ce;
  CrossEntropy ce = given;
  const std::vector<unsigned char> x = bytes_of(p.dtype, p.logits);
  const std::vector<unsigned char> w = bytes_of(ce.weight_dtype, p.weight);
  ce.weight = p.weight.empty() ? nullptr : w.data();
  const size_t rows = static_cast<size_t>(p.rows);
  std::vector<float> loss(rows), lse(rows), zl(rows);
  float reduced = 0.0f;
  std::vector<unsigned char> dl(x.size());
  CrossEntropyOutputs out;
  out.loss = loss.data();
  out.lse = lse.data();
  out.z_loss = zl.data();
  out.reduced = &reduced;
  out.dlogits = got.dlogits.empty() ? nullptr : dl.data();
  Judge judge;
  const Status s = reference::cross_entropy_forward(ce, p.dtype, x.data(), p.rows, p.vocab, p.stride,
                                                    p.targets.data(), IndexType::i64, out);
  Status b;
  if (dloss != nullptr && !got.dlogits.empty())
    b = reference::cross_entropy_backward(ce, p.dtype, x.data(), p.rows, p.vocab, p.stride,
                                          p.targets.data(), IndexType::i64, dloss->data(), dl.data());
  if (!s.ok() || !b.ok()) {
    judge.c.failures = 1;
    judge.c.first_failures.push_back(std::string("the reference refused: ") +
                                     (s.ok() ? b : s).message());
    return judge.c;
  }
  const double r_u = kSoftmaxRoundings * kU;
  const double C = static_cast<double>(p.vocab), eps = ce.label_smoothing;
  const bool megatron = ce.smoothing_form == LabelSmoothing::megatron;
  const double smoothing = megatron && eps > 0 ? eps * C / (C - 1) : eps;
  const double keep = 1 - smoothing, spread = smoothing / C;
  auto weight = [&](int64_t c) { return p.weight.empty() ? 1.0 : p.weight[static_cast<size_t>(c)]; };
  double total_weight = 0, denominator = 0;
  for (int64_t c = 0; c < p.vocab; ++c) total_weight += weight(c);
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t t = p.targets[static_cast<size_t>(r)];
    if (t != ce.ignore_index) denominator += megatron ? 1.0 : weight(t);
  }
  const double g_call = ce.reduction == Reduction::mean ? (denominator > 0 ? 1 / denominator : 0) : 1.0;
  double sum_bound = 0, sum_abs = 0;
  std::vector<double> z(static_cast<size_t>(p.vocab));
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t t = p.targets[static_cast<size_t>(r)];
    const bool counted = t != ce.ignore_index;
    const double g =
        g_call * (dloss == nullptr ? 1.0
                                   : (*dloss)[ce.reduction == Reduction::none ? static_cast<size_t>(r) : 0]);
    double m = -INFINITY;
    for (int64_t j = 0; j < p.vocab; ++j) {
      double v = ce.logit_scale * p.logits[static_cast<size_t>(r * p.stride + j)];
      if (ce.softcap > 0) v = ce.softcap * std::tanh(v / ce.softcap);
      z[static_cast<size_t>(j)] = v;
      m = std::max(m, v);
    }
    double sum = 0;
    for (double v : z) sum += std::exp(v - m);
    const double L = std::log(sum), row_lse = m + L;
    double a = 0;
    for (double v : z) a += std::exp(v - row_lse) * (std::fabs(v) + std::fabs(m));
    auto kappa = [&](int64_t j) {
      return 1 + std::fabs(z[static_cast<size_t>(j)]) + std::fabs(m) + a + std::fabs(L);
    };
    const double e_lse = r_u * (1 + std::fabs(m) + std::fabs(L));
    const double zl_bound = counted ? 2 * ce.z_loss * std::fabs(row_lse) * e_lse + ce.z_loss * e_lse * e_lse : 0;
    if (!got.lse.empty()) judge("lse", r, -1, got.lse[r], lse[r], e_lse + kU * std::fabs(lse[r]));
    if (!got.z_loss.empty())
      judge("z_loss", r, -1, got.z_loss[r], zl[r], zl_bound + kU * std::fabs(zl[r]), !counted);
    double loss_bound = 0;
    if (counted) {
      double smooth = 0;
      for (int64_t c = 0; c < p.vocab && spread > 0; ++c) smooth += weight(c) * kappa(c);
      loss_bound = r_u * (keep * weight(t) * kappa(t) + spread * smooth) + zl_bound +
                   kU * std::fabs(loss[r]);
    }
    sum_bound += loss_bound;
    sum_abs += std::fabs(loss[r]);
    if (!got.loss.empty()) judge("loss", r, -1, got.loss[r], loss[r], loss_bound, !counted);
    if (got.dlogits.empty()) continue;
    const double coef = counted ? keep * weight(t) + spread * total_weight + 2 * ce.z_loss * row_lse : 0;
    for (int64_t j = 0; j < p.vocab; ++j) {
      const int64_t i = r * p.stride + j;
      const double exact = detail::load_element(p.dtype, dl.data(), i);
      double bound = 0;
      if (counted) {
        const double pj = std::exp(z[static_cast<size_t>(j)] - row_lse);
        double through = std::fabs(coef) * pj * r_u * kappa(j);
        if (ce.softcap > 0) through *= 1 + 2 * std::fabs(z[static_cast<size_t>(j)]) / (ce.softcap * ce.softcap);
        bound = rho(p.dtype) * std::fabs(exact) +
                std::fabs(g * ce.logit_scale) *
                    (through + r_u * (std::fabs(coef) * pj + (j == t ? keep * weight(t) : 0) + spread * weight(j)) +
                     2 * ce.z_loss * pj * e_lse) +
                floor_of(p.dtype);
      }
      judge("dlogits", r, j, got.dlogits[static_cast<size_t>(i)], exact, bound, !counted);
    }
  }
  if (ce.reduction != Reduction::none && dloss == nullptr) {
    double bound = sum_bound + r_u * sum_abs;
    if (ce.reduction == Reduction::mean) bound = denominator > 0 ? bound / denominator : 0;
    judge("reduced", -1, -1, got.reduced, reduced, bound + kU * std::fabs(reduced));
  }
  return judge.c;
}

}  // namespace cuact::test
