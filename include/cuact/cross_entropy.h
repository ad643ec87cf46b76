// Softmax cross-entropy over a vocabulary: the loss of each row of logits
// [rows, vocab] against an integer target, its log-sum-exp, the z-loss, the
// reduced loss and dlogits, with the options users train with (ignore_index,
// class weights, label smoothing in PyTorch's and Megatron's forms, z-loss,
// soft-capping and a logit scale). docs/SPEC.md, "Cross-entropy", states
// every formula.
//
// The forward runs on the device in one read of the logits (the softmax
// kernels with a cross-entropy epilogue: any vocabulary to 2^24), with
// dlogits written in the same pass where asked (the fused mode); the
// double-precision reference (cuact/reference.h,
// reference::cross_entropy_forward / _backward) computes it on host buffers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuact/dtype.h"
#include "cuact/fused.h"
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

// Where a forward call's results go (each optional but `reduced`, which a
// sum or mean writes); fp32 words.
struct CrossEntropyOutputs {
  float* loss = nullptr;     // [rows]: each row's loss (0 for an ignored row)
  float* lse = nullptr;      // [rows]: log-sum-exp of the row's z (ignored rows too)
  float* z_loss = nullptr;   // [rows]: z_loss * lse^2 of a counted row, 0 else
  float* reduced = nullptr;  // one word: the sum or the mean
  // [rows, vocab] with the logits' row stride and dtype: the gradient of
  // the reduced loss (none: of the rows' sum), the fused mode's dlogits. May
  // be the logits themselves (written over them).
  void* dlogits = nullptr;
  // Device calls: one word, set to 1 where a target is neither a class nor
  // ignore_index (that row's loss and dlogits are NaN), else 0. The host
  // (reference) call refuses such targets instead.
  int32_t* bad_targets = nullptr;
};

// The device forward: per-row loss, lse and z-loss, the reduced loss and
// (fused) dlogits, for logits [rows, vocab] of `dtype` with `row_stride`
// elements between rows, on `stream`, with no host synchronization. Steps:
// a one-block count (the mean's denominator, the weights' sum, the targets'
// check), the rows (one read of the logits, one write of dlogits), and a
// one-block reduce (sum or mean, summed in a fixed order: the same bits on
// every run). `workspace` holds the call's words and, where `loss` is not
// given and a sum or mean needs them, the rows' losses: its size from
// cross_entropy_forward_workspace_size. Bad arguments (as the reference's,
// plus misaligned or overlapping buffers and a short workspace) return a
// named Status with nothing written.
Status cross_entropy_forward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                             int64_t vocab, int64_t row_stride, const void* targets,
                             IndexType target_type, const CrossEntropyOutputs& out,
                             Workspace workspace, cudaStream_t stream = nullptr);
Status cross_entropy_forward_workspace_size(const CrossEntropy& ce, int64_t rows,
                                            const CrossEntropyOutputs& out, size_t* bytes);

// The device backward from the forward's saved lse [rows] and the upstream
// gradient of the reduced loss, `dloss` (device memory: one word for sum and
// mean, [rows] for none): dlogits [rows, vocab] with the logits' row stride
// and dtype (may be the logits themselves), in one read of the logits and
// one write, after the count step where a mean or weighted smoothing needs
// it. `workspace`: cross_entropy_backward_workspace_size's bytes (16).
Status cross_entropy_backward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                              int64_t vocab, int64_t row_stride, const void* targets,
                              IndexType target_type, const float* lse, const float* dloss,
                              void* dlogits, Workspace workspace, cudaStream_t stream = nullptr);
Status cross_entropy_backward_workspace_size(size_t* bytes);

}  // namespace cuact
