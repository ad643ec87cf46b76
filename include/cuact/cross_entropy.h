// Softmax cross-entropy over a vocabulary: the loss of each row of logits
// [rows, vocab] against an integer target, its log-sum-exp, the z-loss, the
// reduced loss and dlogits, with the options users train with (ignore_index,
// class weights, label smoothing in PyTorch's and Megatron's forms, z-loss,
// soft-capping and a logit scale). docs/SPEC.md, "Cross-entropy", states
// every formula.
//
// This header holds the call's descriptor; the double-precision reference
// (cuact/reference.h, reference::cross_entropy_forward / _backward)
// computes it on host buffers. The device kernels are not built yet.
#pragma once

#include <cstdint>

#include "cuact/dtype.h"
#include "cuact/status.h"

namespace cuact {

enum class Reduction { none, sum, mean };

// Label smoothing eps: PyTorch's form (1 - eps) * w_t * nll + eps / C *
// sum_c w_c * (-log p_c), or Megatron's (1 - a) * nll + a * mean_c(-log p_c)
// with a = eps * C / (C - 1) (no class weights).
enum class LabelSmoothing { pytorch, megatron };

struct CrossEntropy {
  int64_t ignore_index = -100;  // rows with this target: loss 0, gradient 0, not counted
  const void* weight = nullptr;  // class weights [vocab] in weight_dtype (null: all 1)
  DType weight_dtype = DType::f32;
  float label_smoothing = 0.0f;  // eps in [0, 1]
  LabelSmoothing smoothing_form = LabelSmoothing::pytorch;
  float z_loss = 0.0f;       // lse_square_scale: z_loss * lse^2 added to each counted row
  float softcap = 0.0f;      // > 0: z = softcap * tanh(scale * x / softcap) (Gemma); 0: none
  float logit_scale = 1.0f;  // z = logit_scale * x (temperature 1 / logit_scale)
  Reduction reduction = Reduction::mean;
  bool empty_mean_is_zero = false;  // mean over no counted row: NaN (PyTorch) or 0
};

// The targets' element type.
enum class IndexType { i32, i64 };

}  // namespace cuact
