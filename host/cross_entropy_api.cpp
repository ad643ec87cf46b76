// The cross-entropy entry points: check, make the call, then the count
// step, the rows (the softmax dispatch with the cross-entropy engine) and
// the reduce step, in stream order.
#include "cuact/cross_entropy.h"
#include "cross_entropy_call.h"
#include "cross_entropy_checks.h"
#include "cross_entropy_steps.h"
#include "cuda_status.h"
#include "softmax_dispatch.h"

namespace cuact {

namespace detail {

CrossEntropyCall make_cross_entropy_call(const CrossEntropy& ce, DType dtype, const void* logits,
                                         int64_t rows, int64_t vocab, int64_t row_stride,
                                         const void* targets, IndexType target_type,
                                         const CrossEntropyOutputs& out,
                                         const Workspace& workspace) {
  CrossEntropyCall c;
  CrossEntropyStore& s = c.rows.cross_entropy;
  s.targets = targets;
  s.targets_i64 = target_type == IndexType::i64;
  s.ignore_index = ce.ignore_index;
  s.weight = ce.weight;
  s.weight_dtype = ce.weight_dtype;
  const double eps = ce.label_smoothing, classes = static_cast<double>(vocab);
  const double smoothing = ce.smoothing_form == LabelSmoothing::megatron && eps > 0
                               ? eps * classes / (classes - 1)
                               : eps;
  s.keep = static_cast<float>(1 - smoothing);
  s.spread = static_cast<float>(smoothing / classes);
  s.z_loss = ce.z_loss;
  s.softcap = ce.softcap;
  s.inv_softcap = ce.softcap > 0.0f ? 1.0f / ce.softcap : 0.0f;
  s.mean = ce.reduction == Reduction::mean;
  s.words = static_cast<float*>(workspace.data);
  s.bad_targets = out.bad_targets;
  s.loss = out.loss;
  if (s.loss == nullptr && ce.reduction != Reduction::none)
    s.loss = static_cast<float*>(workspace.data) + kCrossEntropyWordBytes / sizeof(float);
  s.lse = out.lse;
  s.z_loss_rows = out.z_loss;
  s.dlogits = out.dlogits;

  // The rows: log_softmax of s * x; the output address (for the plan's
  // alignment) is where dlogits go, or the logits where none are written.
  Softmax op;
  op.kind = SoftmaxKind::log_softmax;
  op.scale = ce.logit_scale;
  const SoftmaxShape shape = SoftmaxShape::rows(rows, vocab).with_strides(row_stride, row_stride);
  void* out_address = out.dlogits != nullptr ? out.dlogits : const_cast<void*>(logits);
  const CrossEntropyStore store = s;
  c.rows = make_softmax_call(Direction::forward, op, dtype, logits, nullptr, out_address, shape);
  c.rows.cross_entropy = store;
  c.vocab = vocab;
  c.mean = s.mean;
  c.empty_mean_is_zero = ce.empty_mean_is_zero;
  c.reduce = ce.reduction != Reduction::none;
  c.reduced = out.reduced;
  c.count = s.mean || (ce.weight != nullptr && s.spread > 0.0f) || out.bad_targets != nullptr;
  return c;
}

CrossEntropyCall make_cross_entropy_backward_call(const CrossEntropy& ce, DType dtype,
                                                  const void* logits, int64_t rows, int64_t vocab,
                                                  int64_t row_stride, const void* targets,
                                                  IndexType target_type, const float* lse,
                                                  const float* dloss, void* dlogits,
                                                  const Workspace& workspace) {
  CrossEntropyOutputs out;
  out.lse = const_cast<float*>(lse);  // read, not written: the backward never ends a row
  out.dlogits = dlogits;
  out.loss = nullptr;
  CrossEntropy rows_only = ce;
  rows_only.reduction = Reduction::none;  // (no loss words)
  CrossEntropyCall c = make_cross_entropy_call(rows_only, dtype, logits, rows, vocab, row_stride,
                                               targets, target_type, out, workspace);
  CrossEntropyStore& s = c.rows.cross_entropy;
  s.mean = c.mean = ce.reduction == Reduction::mean;
  s.upstream = dloss;
  s.upstream_per_row = ce.reduction == Reduction::none;
  c.rows.requested = SoftmaxAlgorithm::streaming;
  c.reduce = false;
  c.count = s.mean || (ce.weight != nullptr && s.spread > 0.0f);
  return c;
}

}  // namespace detail

Status cross_entropy_forward_workspace_size(const CrossEntropy& ce, int64_t rows,
                                            const CrossEntropyOutputs& out, size_t* bytes) {
  if (bytes == nullptr) return {StatusCode::null_pointer, "bytes is null"};
  if (rows < 0) return {StatusCode::invalid_size, "rows must be >= 0"};
  *bytes = detail::cross_entropy_workspace_bytes(ce, rows, out);
  return {};
}

Status cross_entropy_backward_workspace_size(size_t* bytes) {
  if (bytes == nullptr) return {StatusCode::null_pointer, "bytes is null"};
  *bytes = detail::kCrossEntropyWordBytes;
  return {};
}

Status cross_entropy_backward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                              int64_t vocab, int64_t row_stride, const void* targets,
                              IndexType target_type, const float* lse, const float* dloss,
                              void* dlogits, Workspace workspace, cudaStream_t stream) {
  if (Status s = detail::check_cross_entropy(ce, dtype, logits, rows, vocab, row_stride, targets,
                                             target_type);
      !s.ok())
    return s;
  if (Status s = detail::check_cross_entropy_backward_buffers(ce, dtype, logits, rows, vocab,
                                                              row_stride, targets, target_type, lse,
                                                              dloss, dlogits, &workspace);
      !s.ok())
    return s;
  if (rows == 0) return {};
  const detail::CrossEntropyCall c = detail::make_cross_entropy_backward_call(
      ce, dtype, logits, rows, vocab, row_stride, targets, target_type, lse, dloss, dlogits,
      workspace);
  if (c.count) {
    if (cudaError_t e = detail::launch_cross_entropy_count(c.rows.cross_entropy, rows, vocab, stream);
        e != cudaSuccess)
      return detail::status_from_cuda(e, "launching the cross-entropy count step failed");
  }
  const detail::SoftmaxEngine& engine = detail::softmax_engine_for(dtype, false, true);
  detail::SoftmaxLaunchPlan p = detail::plan_softmax(c.rows, engine.backward);
  if (p.result.error == cudaSuccess && p.result.refusal == nullptr)
    p.result.error = engine.launch(c.rows, p, stream);
  return detail::softmax_status(p.result);
}

Status cross_entropy_forward(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                             int64_t vocab, int64_t row_stride, const void* targets,
                             IndexType target_type, const CrossEntropyOutputs& out,
                             Workspace workspace, cudaStream_t stream) {
  if (Status s = detail::check_cross_entropy(ce, dtype, logits, rows, vocab, row_stride, targets,
                                             target_type);
      !s.ok())
    return s;
  if (Status s = detail::check_cross_entropy_buffers(ce, dtype, logits, rows, vocab, row_stride,
                                                     targets, target_type, out, &workspace);
      !s.ok())
    return s;
  const detail::CrossEntropyCall c = detail::make_cross_entropy_call(
      ce, dtype, logits, rows, vocab, row_stride, targets, target_type, out, workspace);
  const detail::CrossEntropyStore& s = c.rows.cross_entropy;
  if (c.count) {
    if (cudaError_t e = detail::launch_cross_entropy_count(s, rows, vocab, stream); e != cudaSuccess)
      return detail::status_from_cuda(e, "launching the cross-entropy count step failed");
  }
  if (rows > 0) {
    if (Status st = detail::softmax_status(detail::launch_softmax(dtype, c.rows, stream)); !st.ok())
      return st;
  }
  if (c.reduce) {
    if (cudaError_t e = detail::launch_cross_entropy_reduce(s.loss, rows, s.words, c.mean,
                                                            c.empty_mean_is_zero, c.reduced, stream);
        e != cudaSuccess)
      return detail::status_from_cuda(e, "launching the cross-entropy reduce step failed");
  }
  return {};
}

}  // namespace cuact
