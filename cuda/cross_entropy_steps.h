// A cross-entropy call's two small steps around its rows (one block each,
// no host synchronization, graph-capturable):
//   count: before the rows, the mean's denominator D (the counted rows'
//          target weights), the class weights' sum W, and the bad-target
//          flag, into the call's words;
//   reduce: after the rows, the reduced loss, sum or sum / D (D = 0: NaN,
//          or 0 with empty_mean_is_zero).
// Each thread sums a strided share in compensated fp32; one thread then
// folds the shares in thread order, so every run gives the same bits. The
// shares and the fold are host and device (the CPU tests run them).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cross_entropy_sink.h"

namespace cuact::detail {

inline constexpr int kCrossEntropyStepThreads = 256;

struct CountShare {
  float denominator = 0.0f;
  float weight_sum = 0.0f;
  bool bad = false;
};

// Thread `thread` of `threads`: rows thread, thread + threads, ... and (with
// weights) classes alike.
CUACT_HD CountShare count_share(const CrossEntropyStore& ce, int64_t rows, int64_t vocab,
                                int thread, int threads) {
  CompensatedSum d, w;
  bool bad = false;
  for (int64_t r = thread; r < rows; r += threads) {
    const int64_t t = target_of(ce, r);
    if (t == ce.ignore_index) continue;
    if (t < 0 || t >= vocab) {
      bad = true;
      continue;
    }
    d.add(ce.weight == nullptr ? 1.0f : class_weight(ce.weight, ce.weight_dtype, t));
  }
  if (ce.weight != nullptr)
    for (int64_t c = thread; c < vocab; c += threads) w.add(class_weight(ce.weight, ce.weight_dtype, c));
  return {d.value(), w.value(), bad};
}

// The fold of every thread's share (in thread order) into the call's words.
CUACT_HD void write_counts(const CrossEntropyStore& ce, const CountShare* shares, int threads) {
  CompensatedSum d, w;
  bool bad = false;
  for (int i = 0; i < threads; ++i) {
    d.add(shares[i].denominator);
    w.add(shares[i].weight_sum);
    bad = bad || shares[i].bad;
  }
  const float denominator = d.value();
  ce.words[kDenominatorWord] = denominator;
  ce.words[kWeightSumWord] = w.value();
  ce.words[kInverseDenominatorWord] = denominator != 0.0f ? 1.0f / denominator : 0.0f;
  if (ce.bad_targets != nullptr) *ce.bad_targets = bad ? 1 : 0;
}

CUACT_HD float loss_share(const float* loss, int64_t rows, int thread, int threads) {
  CompensatedSum s;
  for (int64_t r = thread; r < rows; r += threads) s.add(loss[r]);
  return s.value();
}

// The reduced loss from the shares of the rows' losses.
CUACT_HD void write_reduced(const float* shares, int threads, float denominator, bool mean,
                            bool empty_mean_is_zero, float* reduced) {
  CompensatedSum s;
  for (int i = 0; i < threads; ++i) s.add(shares[i]);
  float v = s.value();
  if (mean) v = denominator != 0.0f ? v / denominator : empty_mean_is_zero ? 0.0f : NAN;
  *reduced = v;
}

// The steps' launches (cross_entropy_steps.cu): one block each on `stream`.
cudaError_t launch_cross_entropy_count(const CrossEntropyStore& ce, int64_t rows, int64_t vocab,
                                       cudaStream_t stream);
cudaError_t launch_cross_entropy_reduce(const float* loss, int64_t rows, const float* words,
                                        bool mean, bool empty_mean_is_zero, float* reduced,
                                        cudaStream_t stream);

}  // namespace cuact::detail
