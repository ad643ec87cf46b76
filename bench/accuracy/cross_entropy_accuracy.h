// The cross-entropy's accuracy rule as code, with the problems its tests
// sweep; shared by the CPU tests (the kernels' code simulated on the host)
// and the GPU tests, so both are judged by one rule.
//
// The rule (docs/ACCURACY.md, "Cross-entropy accuracy"), per row with z_j
// the exact capped and scaled logits, M = max z, L = log sum exp(z - M),
// lse = M + L, p_j = exp(z_j - lse), A = sum_j p_j (|z_j| + |M|), and
// kappa_j = 1 + |z_j| + |M| + A + |L| (log_softmax's magnitudes, whose
// output lp_j = z_j - lse each loss term and gradient is formed from):
//   lse     |got - exact| <= R u (1 + |M| + |L|)                 + u |exact|
//   loss    R u (keep w_t kappa_t + spread sum_c w_c kappa_c) + 2 z_loss |lse| e_lse
//           + z_loss e_lse^2                                     + u |exact|
//   z_loss  2 z_loss |lse| e_lse + z_loss e_lse^2                 + u |exact|
//   dlogit  rho |exact| + |g s| (p_j |c| R u kappa_j (1 + 2 |z_j| / cap^2 if capped)
//           + R u (|c| p_j + keep w_t [j = t] + spread w_j) + 2 z_loss p_j e_lse) + floor
//   reduced the sum of the rows' loss bounds + R u sum |loss|, over D for a mean
// with u = 2^-24, R = kSoftmaxRoundings, rho = 2^(1-p) of the logits' dtype,
// e_lse the lse bound, c = dloss/dz_j's coefficient of p_j, floor the
// dtype's smallest normal (f16: its smallest subnormal). Exact: an ignored
// row's loss, z-loss and dlogits are 0; a bad target's loss and dlogits NaN.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuact/cross_entropy.h"

namespace cuact::test {

// A problem: logits as values of dtype (row stride `stride`), targets.
struct CrossEntropyProblem {
  std::string name;
  CrossEntropy ce;
  DType dtype = DType::f32;
  int64_t rows = 0, vocab = 0, stride = 0;
  std::vector<double> logits;  // [rows * stride], values of dtype
  std::vector<int64_t> targets;
  std::vector<double> weight;  // [vocab] values of ce.weight_dtype (empty: none)
};

// Normal logits of spread `spread` around `center` (values of dtype), the
// targets random classes with every `ignore_every`-th row ignored (0: none).
CrossEntropyProblem make_cross_entropy_problem(const std::string& name, const CrossEntropy& ce,
                                               DType dtype, int64_t rows, int64_t vocab,
                                               int64_t stride, uint64_t seed, double spread = 3.0,
                                               double center = 0.0, int ignore_every = 5);

// The option sets the tests sweep: each reduction, z-loss, both smoothing
// forms, fp32 and bf16 class weights (a non-null tag: the problem's
// weights replace it), soft cap with a logit scale.
const std::vector<std::pair<std::string, CrossEntropy>>& cross_entropy_option_sets();

// What a call wrote (fp32 words, dlogits as values of dtype; empty: not asked).
struct CrossEntropyGot {
  std::vector<float> loss, lse, z_loss;
  float reduced = 0.0f;
  std::vector<double> dlogits;
};

struct CrossEntropyCheck {
  int64_t values = 0;
  int64_t failures = 0;
  double worst_ratio = 0;  // max |got - exact| / bound over finite results
  std::string worst;       // where it is
  std::vector<std::string> first_failures;  // up to 5
  bool ok() const { return failures == 0; }
};

// Judges `got` against the double reference of the problem by the rule.
// With `dloss` (the backward from lse: one word, or one a row for reduction
// none), got.dlogits is the backward's, judged with g times dloss against
// reference::cross_entropy_backward; the forward's words are not judged.
CrossEntropyCheck check_cross_entropy(const CrossEntropyProblem& p, const CrossEntropyGot& got,
                                      const std::vector<float>* dloss = nullptr);

}  // namespace cuact::test
