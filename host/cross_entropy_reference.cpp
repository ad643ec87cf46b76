// The double-precision reference of the softmax cross-entropy
// (cuact/cross_entropy.h), written from docs/SPEC.md, "Cross-entropy": each
// row's z, log-sum-exp, loss and gradient in double, every output rounded
// once.
#include <cmath>
#include <limits>
#include <vector>

#include "cuact/reference.h"
#include "cross_entropy_checks.h"
#include "element_io.h"

namespace cuact::reference {

namespace {

int64_t target_at(IndexType type, const void* targets, int64_t r) {
  return type == IndexType::i32 ? static_cast<const int32_t*>(targets)[r]
                                : static_cast<const int64_t*>(targets)[r];
}

// The shared argument rules (the forward's buffers where `out` is given),
// then the targets' values (the host-visible path refuses a target that is
// neither a class nor ignore_index).
Status check(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows, int64_t vocab,
             int64_t row_stride, const void* targets, IndexType target_type,
             const CrossEntropyOutputs* out) {
  if (Status s = detail::check_cross_entropy(ce, dtype, logits, rows, vocab, row_stride, targets,
                                             target_type);
      !s.ok())
    return s;
  if (out != nullptr) {
    if (Status s = detail::check_cross_entropy_buffers(ce, dtype, logits, rows, vocab, row_stride,
                                                       targets, target_type, *out, nullptr);
        !s.ok())
      return s;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = target_at(target_type, targets, r);
    if (t != ce.ignore_index && (t < 0 || t >= vocab))
      return {StatusCode::invalid_parameter, "a target is neither a class nor ignore_index"};
  }
  return {};
}

// One row's z, log-sum-exp, loss (its parts) and dL/dz.
struct Row {
  std::vector<double> z;  // the row's logits after the scale and the cap
  double lse = 0, loss = 0, z_loss = 0, count = 0;  // count: the row's share of the mean's denominator
  bool counted = false;
};

double weight_of(const CrossEntropy& ce, int64_t c) {
  return ce.weight == nullptr ? 1.0 : detail::load_element(ce.weight_dtype, ce.weight, c);
}

Row row_of(const CrossEntropy& ce, DType dtype, const void* logits, int64_t r, int64_t vocab,
           int64_t row_stride, int64_t t) {
  Row w;
  w.z.resize(static_cast<size_t>(vocab));
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < vocab; ++j) {
    double z = static_cast<double>(ce.logit_scale) * detail::load_element(dtype, logits, r * row_stride + j);
    if (ce.softcap > 0.0f) z = ce.softcap * std::tanh(z / ce.softcap);
    w.z[static_cast<size_t>(j)] = z;
    m = std::fmax(m, z);
  }
  double sum = 0;
  for (double z : w.z) sum += std::exp(z - m);
  // Every z -inf: lse is -inf (log 0); a counted row's loss, z-loss and
  // gradient are then NaN (lse - z_t and exp(z - lse) are -inf + inf).
  w.lse = m == -std::numeric_limits<double>::infinity() ? m : m + std::log(sum);
  if (t == ce.ignore_index) return w;
  w.counted = true;
  const double eps = ce.label_smoothing, C = static_cast<double>(vocab);
  const double nll = w.lse - w.z[static_cast<size_t>(t)];
  if (ce.smoothing_form == LabelSmoothing::megatron) {
    const double a = eps > 0 ? eps * C / (C - 1) : 0.0;
    double mean_z = 0;
    for (double z : w.z) mean_z += z;
    mean_z /= C;
    w.loss = (1 - a) * nll + a * (w.lse - mean_z);
    w.count = 1;
  } else {
    double smooth = 0;
    if (eps > 0)
      for (int64_t c = 0; c < vocab; ++c) smooth += weight_of(ce, c) * (w.lse - w.z[static_cast<size_t>(c)]);
    const double wt = weight_of(ce, t);
    w.loss = (1 - eps) * wt * nll + eps / C * smooth;
    w.count = wt;
  }
  w.z_loss = std::isinf(w.lse) && w.lse < 0 ? std::numeric_limits<double>::quiet_NaN()
                                            : static_cast<double>(ce.z_loss) * w.lse * w.lse;
  w.loss += w.z_loss;
  return w;
}

// g * dL_row/dx_j into dlogits (the row's dtype, its row stride).
void write_gradient(const CrossEntropy& ce, DType dtype, const Row& w, int64_t r, int64_t vocab,
                    int64_t row_stride, int64_t t, double g, void* dlogits) {
  const double eps = ce.label_smoothing, C = static_cast<double>(vocab);
  double coef = 0, at_target = 0, uniform = 0;  // dL/dz_j = p_j coef - at_target [j = t] - uniform_j
  double total_weight = 0;
  const bool megatron = ce.smoothing_form == LabelSmoothing::megatron;
  if (w.counted) {
    const double zl = 2.0 * ce.z_loss * w.lse;
    if (megatron) {
      const double a = eps > 0 ? eps * C / (C - 1) : 0.0;
      coef = 1 + zl;
      at_target = 1 - a;
      uniform = a / C;
    } else {
      for (int64_t c = 0; c < vocab && eps > 0; ++c) total_weight += weight_of(ce, c);
      const double wt = weight_of(ce, t);
      coef = (1 - eps) * wt + eps / C * total_weight + zl;
      at_target = (1 - eps) * wt;
      uniform = eps / C;  // times w_j
    }
  }
  for (int64_t j = 0; j < vocab; ++j) {
    double d = 0;
    if (w.counted) {
      const double z = w.z[static_cast<size_t>(j)];
      d = std::exp(z - w.lse) * coef - (j == t ? at_target : 0.0) -
          uniform * (megatron ? 1.0 : weight_of(ce, j));
      // through z: scale, and the cap's tanh (dz/dx = s (1 - (z / cap)^2))
      double dz = ce.logit_scale;
      if (ce.softcap > 0.0f) dz *= 1 - (z / ce.softcap) * (z / ce.softcap);
      d *= dz * g;
    }
    detail::store_element(dtype, dlogits, r * row_stride + j, d);
  }
}

// The mean's denominator's share rule: D = sum of the counted rows' counts.
double reduced_value(const CrossEntropy& ce, double sum, double denominator) {
  if (ce.reduction == Reduction::sum) return sum;
  if (denominator == 0) return ce.empty_mean_is_zero ? 0.0 : std::numeric_limits<double>::quiet_NaN();
  return sum / denominator;
}

}  // namespace

Status cross_entropy_forward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                             int64_t vocab, int64_t row_stride, const void* targets,
                             IndexType target_type, const CrossEntropyOutputs& out) {
  if (Status s = check(ce, dtype, logits, rows, vocab, row_stride, targets, target_type, &out);
      !s.ok())
    return s;
  if (out.bad_targets != nullptr) *out.bad_targets = 0;
  std::vector<Row> all(static_cast<size_t>(rows));
  double sum = 0, denominator = 0;
  for (int64_t r = 0; r < rows; ++r) {
    Row& w = all[static_cast<size_t>(r)];
    w = row_of(ce, dtype, logits, r, vocab, row_stride, target_at(target_type, targets, r));
    sum += w.loss;
    denominator += w.count;
    if (out.loss != nullptr) out.loss[r] = static_cast<float>(round_to(DType::f32, w.loss));
    if (out.lse != nullptr) out.lse[r] = static_cast<float>(round_to(DType::f32, w.lse));
    if (out.z_loss != nullptr) out.z_loss[r] = static_cast<float>(round_to(DType::f32, w.z_loss));
  }
  if (ce.reduction != Reduction::none)
    *out.reduced = static_cast<float>(round_to(DType::f32, reduced_value(ce, sum, denominator)));
  if (out.dlogits != nullptr) {
    const double g = ce.reduction == Reduction::mean ? (denominator > 0 ? 1 / denominator : 0.0) : 1.0;
    for (int64_t r = 0; r < rows; ++r)
      write_gradient(ce, dtype, all[static_cast<size_t>(r)], r, vocab, row_stride,
                     target_at(target_type, targets, r), g, out.dlogits);
  }
  return {};
}

Status cross_entropy_backward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                              int64_t vocab, int64_t row_stride, const void* targets,
                              IndexType target_type, const float* dloss, void* dlogits) {
  if (Status s = check(ce, dtype, logits, rows, vocab, row_stride, targets, target_type, nullptr);
      !s.ok())
    return s;
  if (Status s = detail::check_cross_entropy_backward_buffers(ce, dtype, logits, rows, vocab,
                                                              row_stride, targets, target_type,
                                                              nullptr, dloss, dlogits, nullptr);
      !s.ok())
    return s;
  double denominator = 0;
  std::vector<Row> all(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    all[static_cast<size_t>(r)] =
        row_of(ce, dtype, logits, r, vocab, row_stride, target_at(target_type, targets, r));
    denominator += all[static_cast<size_t>(r)].count;
  }
  for (int64_t r = 0; r < rows; ++r) {
    double g = ce.reduction == Reduction::none ? dloss[r] : dloss[0];
    if (ce.reduction == Reduction::mean) g = denominator > 0 ? g / denominator : 0.0;
    write_gradient(ce, dtype, all[static_cast<size_t>(r)], r, vocab, row_stride,
                   target_at(target_type, targets, r), g, dlogits);
  }
  return {};
}

}  // namespace cuact::reference
