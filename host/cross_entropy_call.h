// A checked cross-entropy forward as the device runs it (and the CPU
// simulation replays it): the epilogue's arguments, the rows' softmax call,
// and which of the two small steps run.
#pragma once

#include <cstdint>

#include "cuact/cross_entropy.h"
#include "softmax_launch.h"

namespace cuact::detail {

struct CrossEntropyCall {
  SoftmaxCall rows;     // log_softmax over the rows, its epilogue's store in rows.cross_entropy
  int64_t vocab = 0;
  bool count = false;   // the count step runs (a mean, smoothing with weights, bad_targets asked)
  bool reduce = false;  // the reduce step runs (sum or mean)
  bool mean = false;
  bool empty_mean_is_zero = false;
  float* reduced = nullptr;
};

// From checked arguments and a large enough workspace.
CrossEntropyCall make_cross_entropy_call(const CrossEntropy& ce, DType dtype, const void* logits,
                                         int64_t rows, int64_t vocab, int64_t row_stride,
                                         const void* targets, IndexType target_type,
                                         const CrossEntropyOutputs& out, const Workspace& workspace);

// The backward from the saved lse: the forward's call writing only dlogits
// (times dloss: one word, or a row's for reduction none), its rows through
// the engine's backward kernel (planned as streaming: no reduction), the
// count step where a mean or weighted smoothing needs it, no reduce step.
CrossEntropyCall make_cross_entropy_backward_call(const CrossEntropy& ce, DType dtype,
                                                  const void* logits, int64_t rows, int64_t vocab,
                                                  int64_t row_stride, const void* targets,
                                                  IndexType target_type, const float* lse,
                                                  const float* dloss, void* dlogits,
                                                  const Workspace& workspace);

}  // namespace cuact::detail
