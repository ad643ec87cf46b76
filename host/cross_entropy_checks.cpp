#include "cross_entropy_checks.h"

#include <cmath>
#include <cstdint>

#include "call_checks.h"

namespace cuact::detail {

namespace {

bool finite(float v) { return std::isfinite(v); }

bool known_float(DType d) { return d == DType::f32 || d == DType::f16 || d == DType::bf16; }


// A buffer's three statuses from its name and its alignment's words.
#define CUACT_CE_BUFFER(name, alignment) \
  BufferName { name " is null", name " is not " alignment, name " overlaps another buffer" }
constexpr BufferName kLogits = CUACT_CE_BUFFER("logits", "aligned to its element size");
constexpr BufferName kTargets = CUACT_CE_BUFFER("targets", "aligned to its element size");
constexpr BufferName kDlogits = CUACT_CE_BUFFER("dlogits", "aligned to its element size");
constexpr BufferName kLoss = CUACT_CE_BUFFER("loss", "4-byte aligned");
constexpr BufferName kLse = CUACT_CE_BUFFER("lse", "4-byte aligned");
constexpr BufferName kZLoss = CUACT_CE_BUFFER("z_loss", "4-byte aligned");
constexpr BufferName kBadTargets = CUACT_CE_BUFFER("bad_targets", "4-byte aligned");
constexpr BufferName kDloss = CUACT_CE_BUFFER("dloss", "4-byte aligned");
constexpr BufferName kReduced{"reduced is null (a sum or a mean writes it)",
                              "reduced is not 4-byte aligned", "reduced overlaps another buffer"};
#undef CUACT_CE_BUFFER

// The inputs' extents: the logits' (rows - 1 full strides and the last
// row), and the weights'.
int64_t logit_bytes(DType dtype, int64_t rows, int64_t vocab, int64_t row_stride) {
  return rows == 0 ? 0 : ((rows - 1) * row_stride + vocab) * static_cast<int64_t>(dtype_size(dtype));
}
int64_t weight_element(const CrossEntropy& ce) {
  return ce.weight == nullptr ? 1 : static_cast<int64_t>(dtype_size(ce.weight_dtype));
}

}  // namespace

Status check_cross_entropy(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                           int64_t vocab, int64_t row_stride, const void* targets,
                           IndexType target_type) {
  if (!known_float(dtype)) return {StatusCode::invalid_parameter, "unknown dtype"};
  if (ce.weight != nullptr && !known_float(ce.weight_dtype))
    return {StatusCode::invalid_parameter, "unknown weight dtype"};
  if (target_type != IndexType::i32 && target_type != IndexType::i64)
    return {StatusCode::invalid_parameter, "unknown target type"};
  if (rows < 0 || vocab < 0) return {StatusCode::invalid_size, "rows and vocab must be >= 0"};
  if (vocab > (int64_t{1} << 24)) return {StatusCode::invalid_size, "vocab must be <= 2^24"};
  if (rows > 0 && vocab == 0) return {StatusCode::invalid_size, "a row needs at least one class"};
  if (row_stride < vocab) return {StatusCode::invalid_size, "row_stride must be >= vocab"};
  if (rows > 0 && row_stride > (INT64_MAX / 16) / rows)
    return {StatusCode::invalid_size, "the logits' extent does not fit in a pointer difference"};
  if (ce.reduction != Reduction::none && ce.reduction != Reduction::sum &&
      ce.reduction != Reduction::mean)
    return {StatusCode::invalid_parameter, "unknown reduction"};
  if (ce.smoothing_form != LabelSmoothing::pytorch && ce.smoothing_form != LabelSmoothing::megatron)
    return {StatusCode::invalid_parameter, "unknown label smoothing form"};
  if (!finite(ce.label_smoothing) || ce.label_smoothing < 0.0f || ce.label_smoothing > 1.0f)
    return {StatusCode::invalid_parameter, "label_smoothing must be in [0, 1]"};
  if (ce.smoothing_form == LabelSmoothing::megatron && ce.weight != nullptr)
    return {StatusCode::invalid_parameter, "Megatron's label smoothing takes no class weights"};
  if (ce.smoothing_form == LabelSmoothing::megatron && ce.label_smoothing > 0.0f && vocab == 1)
    return {StatusCode::invalid_parameter, "Megatron's label smoothing needs two classes or more"};
  if (!finite(ce.z_loss) || ce.z_loss < 0.0f)
    return {StatusCode::invalid_parameter, "z_loss must be finite and >= 0"};
  if (!finite(ce.softcap) || ce.softcap < 0.0f)
    return {StatusCode::invalid_parameter, "softcap must be finite and >= 0 (0: none)"};
  if (!finite(ce.logit_scale) || !(ce.logit_scale > 0.0f))
    return {StatusCode::invalid_parameter, "logit_scale must be finite and > 0"};
  if (rows > 0 && (logits == nullptr || targets == nullptr))
    return {StatusCode::null_pointer, "logits and targets must be given"};
  return {};
}

size_t cross_entropy_workspace_bytes(const CrossEntropy& ce, int64_t rows,
                                     const CrossEntropyOutputs& out) {
  const bool loss_rows = out.loss == nullptr && ce.reduction != Reduction::none;
  return kCrossEntropyWordBytes + (loss_rows && rows > 0 ? static_cast<size_t>(rows) * sizeof(float) : 0);
}

Status check_cross_entropy_buffers(const CrossEntropy& ce, DType dtype, const void* logits,
                                   int64_t rows, int64_t vocab, int64_t row_stride,
                                   const void* targets, IndexType target_type,
                                   const CrossEntropyOutputs& out, const Workspace* workspace) {
  const int64_t element = static_cast<int64_t>(dtype_size(dtype));
  const int64_t index = target_type == IndexType::i64 ? 8 : 4;
  const int64_t x_bytes = logit_bytes(dtype, rows, vocab, row_stride);
  const int64_t row_words = rows * 4;
  const int64_t w_element = weight_element(ce);
  const int64_t workspace_bytes =
      workspace == nullptr ? 0 : static_cast<int64_t>(cross_entropy_workspace_bytes(ce, rows, out));
  const Buffer buffers[] = {
      {kLogits, logits, x_bytes, element, false, true, 1},
      {kTargets, targets, rows * index, index, false, true, 0},
      {buffer::weight, ce.weight, ce.weight == nullptr ? 0 : vocab * w_element, w_element, false,
       false, 0},
      {kLoss, out.loss, row_words, 4, true, false, 0},
      {kLse, out.lse, row_words, 4, true, false, 0},
      {kZLoss, out.z_loss, row_words, 4, true, false, 0},
      {kReduced, out.reduced, ce.reduction == Reduction::none ? 0 : 4, 4, true, true, 0},
      {kDlogits, out.dlogits, x_bytes, element, true, false, 1},
      {kBadTargets, out.bad_targets, 4, 4, true, false, 0},
      {buffer::workspace, workspace == nullptr ? nullptr : workspace->data, workspace_bytes, 4,
       true, workspace != nullptr, 0},
  };
  if (Status s = check_buffers(buffers, static_cast<int>(sizeof(buffers) / sizeof(buffers[0])));
      !s.ok())
    return s;
  if (workspace != nullptr && workspace->bytes < static_cast<size_t>(workspace_bytes))
    return {StatusCode::invalid_size,
            "workspace is smaller than cross_entropy_forward_workspace_size"};
  return {};
}

Status check_cross_entropy_backward_buffers(const CrossEntropy& ce, DType dtype,
                                            const void* logits, int64_t rows, int64_t vocab,
                                            int64_t row_stride, const void* targets,
                                            IndexType target_type, const float* lse,
                                            const float* dloss, const void* dlogits,
                                            const Workspace* workspace) {
  const int64_t element = static_cast<int64_t>(dtype_size(dtype));
  const int64_t index = target_type == IndexType::i64 ? 8 : 4;
  const int64_t x_bytes = logit_bytes(dtype, rows, vocab, row_stride);
  const int64_t w_element = weight_element(ce);
  const int64_t dloss_bytes = rows == 0 ? 0 : ce.reduction == Reduction::none ? rows * 4 : 4;
  const int64_t workspace_bytes = workspace == nullptr ? 0 : static_cast<int64_t>(kCrossEntropyWordBytes);
  const Buffer buffers[] = {
      {kLogits, logits, x_bytes, element, false, true, 1},
      {kTargets, targets, rows * index, index, false, true, 0},
      {buffer::weight, ce.weight, ce.weight == nullptr ? 0 : vocab * w_element, w_element, false,
       false, 0},
      {kLse, lse, workspace == nullptr ? 0 : rows * 4, 4, false, true, 0},
      {kDloss, dloss, dloss_bytes, 4, false, true, 0},
      {kDlogits, dlogits, x_bytes, element, true, true, 1},
      {buffer::workspace, workspace == nullptr ? nullptr : workspace->data, workspace_bytes, 4,
       true, workspace != nullptr, 0},
  };
  if (Status s = check_buffers(buffers, static_cast<int>(sizeof(buffers) / sizeof(buffers[0])));
      !s.ok())
    return s;
  if (workspace != nullptr && workspace->bytes < kCrossEntropyWordBytes)
    return {StatusCode::invalid_size,
            "workspace is smaller than cross_entropy_backward_workspace_size"};
  return {};
}

}  // namespace cuact::detail
