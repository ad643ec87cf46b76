// Argument checks of the cross-entropy calls, shared by the device entry
// point and the CPU reference so that both reject the same calls.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuact/cross_entropy.h"

namespace cuact::detail {

// The call's words in the workspace (cross_entropy_store.h: kCrossEntropyWords),
// padded to 16 bytes: all a backward needs, and a forward's first bytes.
inline constexpr size_t kCrossEntropyWordBytes = 16;

// The descriptor, dtypes and sizes, and the inputs' presence (the targets'
// values are the reference's to check: the device defines a bad target's
// result instead).
Status check_cross_entropy(const CrossEntropy& ce, DType dtype, const void* logits, int64_t rows,
                           int64_t vocab, int64_t row_stride, const void* targets,
                           IndexType target_type);

// The workspace a device forward needs (cross_entropy_forward_workspace_size).
size_t cross_entropy_workspace_bytes(const CrossEntropy& ce, int64_t rows,
                                     const CrossEntropyOutputs& out);

// A forward call's buffers: each present where needed, aligned to its
// element, the outputs apart from each other and from the inputs (dlogits
// may be the logits exactly), and (the device call's: workspace non-null)
// the workspace large enough.
Status check_cross_entropy_buffers(const CrossEntropy& ce, DType dtype, const void* logits,
                                   int64_t rows, int64_t vocab, int64_t row_stride,
                                   const void* targets, IndexType target_type,
                                   const CrossEntropyOutputs& out, const Workspace* workspace);

// A backward call's buffers, likewise: lse [rows] (the device call's: the
// host reference computes it; workspace null there), dloss (one word, or
// [rows] for reduction none), dlogits (may be the logits exactly), the
// workspace (the call's words).
Status check_cross_entropy_backward_buffers(const CrossEntropy& ce, DType dtype,
                                            const void* logits, int64_t rows, int64_t vocab,
                                            int64_t row_stride, const void* targets,
                                            IndexType target_type, const float* lse,
                                            const float* dloss, const void* dlogits,
                                            const Workspace* workspace);

}  // namespace cuact::detail
