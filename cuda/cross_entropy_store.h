// What a cross-entropy call tells the softmax kernels' epilogue
// (RowSink<CrossEntropyRows<T>>, cross_entropy_sink.h) and the call's two
// small steps (cross_entropy_steps.h): the targets, the options reduced to
// the coefficients of docs/SPEC.md's formulas, and where each result goes.
// The kernels run the row as log_softmax does; the epilogue turns each
// log-probability into the loss's terms and dlogits. Host and device.
#pragma once

#include <cstdint>

#include "cuact/dtype.h"

namespace cuact::detail {

// The epilogue's tag: the output type of SoftmaxArgs<T, CrossEntropyRows<T>>
// (its `out` is unused; dlogits are T, at CrossEntropyStore::dlogits).
template <class T>
struct CrossEntropyRows {};

template <class O>
inline constexpr bool kIsCrossEntropy = false;
template <class T>
inline constexpr bool kIsCrossEntropy<CrossEntropyRows<T>> = true;

// The call words the count step writes before the rows run (and the
// reduce step reads after): the mean's denominator D, the weights' sum W,
// and 1 / D (0 where D is 0), which the rows multiply by (a division in a
// kernel is a call whose registers may spill).
enum CrossEntropyWord {
  kDenominatorWord = 0,
  kWeightSumWord = 1,
  kInverseDenominatorWord = 2,
  kCrossEntropyWords = 3
};

struct CrossEntropyStore {
  const void* targets = nullptr;
  bool targets_i64 = false;
  int64_t ignore_index = -100;
  const void* weight = nullptr;  // class weights [vocab] (null: all 1)
  DType weight_dtype = DType::f32;
  // With eps' = eps (PyTorch's form) or eps * C / (C - 1) (Megatron's):
  // a counted row's loss is keep * w_t * (-log p_t) + spread * sum_c w_c *
  // (-log p_c) + z_loss * lse^2, and dloss/dz_j = p_j * (keep * w_t +
  // spread * W + 2 z_loss lse) - keep * w_t [j = t] - spread * w_j.
  float keep = 1.0f;    // 1 - eps'
  float spread = 0.0f;  // eps' / C
  float z_loss = 0.0f;
  float softcap = 0.0f;  // > 0: z = softcap * tanh(s x * inv_softcap), applied by the source
  float inv_softcap = 0.0f;  // 1 / softcap (0: no cap)
  bool mean = false;     // the dlogits are of the mean: g = 1 / D (times the upstream's)
  // The backward's upstream gradient of the reduced loss: one word, or one
  // a row (reduction none); null in the forward (the fused mode's g is 1).
  const float* upstream = nullptr;
  bool upstream_per_row = false;
  float* words = nullptr;  // [kCrossEntropyWords] (written by the count step)
  int32_t* bad_targets = nullptr;  // optional: set to 1 by the count step where a target is
                                   // neither a class nor ignore_index
  // Outputs (each optional but `loss`, which the reduce step reads for sum and mean).
  float* loss = nullptr;    // [rows]
  float* lse = nullptr;     // [rows] (the backward reads it: the forward's saved lse)
  float* z_loss_rows = nullptr;  // [rows]
  void* dlogits = nullptr;  // [rows, vocab] of T with the logits' row stride (fused mode)
};

}  // namespace cuact::detail
