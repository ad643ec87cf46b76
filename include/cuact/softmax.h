// Softmax, log_softmax and softmin, forward and backward, on device
// buffers: over the rows of a [rows, cols] matrix (each buffer with its own
// row stride), or over the middle dimension of an [outer, dim, inner]
// tensor (SoftmaxShape).
//
// Forward (docs/SPEC.md "Softmax family"), for every row r independently, with
// z_j = s*x_j + m_j (softmin: z_j = -s*x_j + m_j) and M = max_j z_j:
//   softmax / softmin   y_j = exp(z_j - M) / sum_k exp(z_k - M)
//   log_softmax         y_j = (z_j - M) - log(sum_k exp(z_k - M))   (computed directly)
// where s is `scale` and m the optional additive mask. Hidden columns (the
// causal mask) take part as z_j = -inf.
// Backward takes the forward's output y and the incoming gradient dy:
//   softmax             dx_j = s * y_j * (dy_j - sum_k dy_k*y_k)
//   log_softmax         dx_j = s * (dy_j - exp(y_j) * sum_k dy_k)
//   softmin             dx_j = -s * y_j * (dy_j - sum_k dy_k*y_k)
//                       (softmin is softmax of z = -s*x + m, so dz/dx = -s)
// Backward takes the forward's op: the same scale, mask and causal settings.
// A column is hidden where the mask value is -inf or causal hides it (the
// settings decide, not y); the forward left y = -inf (log_softmax) or 0
// (softmax, softmin) there whatever x is, and backward reads its dy as 0
// (inf and NaN too): it takes no part in the sums and its dx is 0 (NaN only
// when the row's sum is not finite). Every other column is visible, also
// where its output saturated (y = -inf or 0 from overflow, underflow or a
// -inf input): its dy counts, as in PyTorch (log_softmax dx = s*dy there;
// softmax 0, or a NaN row for an infinite or NaN dy). Backward consults the
// mask and causal settings only at columns where y holds -inf / 0, so y must
// be that forward's output.
//
// Edge cases:
// - A row whose every z is -inf (every x is -inf, or +inf for softmin, or
//   masked) gives zeros (softmax, softmin) or -inf (log_softmax), never NaN.
//   Its backward: 0 for every kind where every column is hidden (mask,
//   causal), whatever dy holds; where the inputs were -inf nothing is hidden:
//   0 for softmax and softmin, s*dy for log_softmax.
// - A NaN anywhere in a row's z (NaN input, or +inf + -inf from input and
//   mask) makes that whole row NaN; so does a +inf z (inf - inf), as in
//   PyTorch. Hidden (causal) columns are not read: a NaN there is ignored.
//
// Contract shared with the activation entry points (cuact/activation.h):
// - Buffers are device (or managed) memory of one dtype, row-major; sizes
//   are 64-bit counts (rows*cols may exceed 2^31). rows == 0 (outer == 0) is
//   a no-op (any pointer may be null); cols == 0 with rows > 0 is rejected.
//   Any cols from 1 up (tested to 2^24) works through the same call.
// - Pointers need only element alignment; 16-byte aligned rows (and row
//   strides that keep them aligned) take 128-bit loads.
// - The output may be the same buffer as an input (in place: same address
//   and same stride); any other overlap of the output's extent (its first
//   to its last element) with an input's or the mask's is rejected.
// - Work is enqueued on `stream`; nothing synchronizes or allocates, so calls
//   can be captured into a CUDA graph. The current device's limits and each
//   kernel's attributes are queried once per device and cached (a cluster
//   shape's occupancy once per shape); calls from many host threads at once
//   are safe.
// - fp16/bf16 are loaded to fp32, computed and accumulated in fp32 and
//   rounded once on store. Accuracy: docs/ACCURACY.md ("Softmax accuracy").
//
// Example (attention scores [batch*heads, q, k], a [q, k] mask shared by
// every batch and head, scaled by 1/sqrt(d), causal aligned bottom-right):
//   cuact::Softmax op = cuact::Softmax::softmax(1.0f / std::sqrt(float(d)))
//                           .with_mask(d_mask, q)          // mask row = r % q
//                           .with_causal(q, k - q);        // hide j > (r % q) + k - q
//   cuact::Status s = cuact::softmax_forward(op, d_scores, d_probs, batch * heads * q, k, stream);
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuact/activation.h"  // Direction
#include "cuact/dtype.h"
#include "cuact/status.h"

namespace cuact {

enum class SoftmaxKind { softmax, log_softmax, softmin };
const char* softmax_kind_name(SoftmaxKind kind);  // "softmax", "log_softmax", "softmin"

// How a row is computed. The library chooses (automatic); the others exist
// for tests and benchmarks, which force each one. A forced algorithm that
// cannot take the row returns StatusCode::unsupported.
enum class SoftmaxAlgorithm {
  automatic,
  warp_per_row,   // a warp, or a group of 1-16 lanes, per row; the row in registers (cols <= 1024)
  // A block per row: the row in the block's registers (cols <= 16384, rows on
  // 16-byte boundaries), otherwise cached in shared memory (as far as it fits).
  block_per_row,
  streaming,  // a block per row; online max and sum in one pass, a second pass writes (any cols)
  // A thread-block cluster (sm_90+) of 2-16 blocks per row, each holding a
  // slice of the row in its registers (rows on 16-byte boundaries, 16384
  // columns a block) or its shared memory, the partial max and sum combined
  // through distributed shared memory: rows too long for one block, still
  // read once (up to 16 blocks' shared memory).
  cluster_per_row,
  // The middle dimension of [outer, dim, inner] (inner > 1 chooses it; it
  // also takes rows, as inner == 1): a thread per 16 bytes of neighbouring
  // inner positions, coalesced over inner, one or more threads along dim
  // combined in shared memory; online max and sum, then a second pass writes.
  middle_dim,
};
const char* softmax_algorithm_name(SoftmaxAlgorithm algorithm);

// A softmax-family operation and its options. Build it with the named
// constructors and the with_* modifiers; the fields are public and plain.
struct Softmax {
  SoftmaxKind kind = SoftmaxKind::softmax;
  // s: multiplies x before the mask is added (temperature 1/T, attention's
  // 1/sqrt(d)). Finite; 0 gives the uniform distribution.
  float scale = 1.0f;

  // Additive mask m (optional): a dense [mask_rows, cols] device buffer of the
  // data's dtype (mask_dtype records it; a call whose data is of another
  // dtype is refused, invalid_parameter). Set it with with_mask: a typed
  // pointer (float, __half, __nv_bfloat16) gives the dtype, an untyped one
  // takes it explicitly, and a pointer of any other type (a bool or byte
  // keep-mask) does not compile. Data row r adds mask row
  // (r / mask_row_repeat) % mask_rows:
  //   [cols] for every row                         mask_rows = 1
  //   [rows, cols], one per row                    mask_rows = rows
  //   [q, k] shared by the batch*heads of [b*h, q, k]   mask_rows = q
  //   [h, q, k] per head, shared by the batch       mask_rows = h*q
  //   [b, k] key padding, shared by heads and queries   mask_rows = b, mask_row_repeat = h*q
  // -inf entries hide a column. Backward takes the same mask (it decides
  // which columns are hidden there); it must not overlap the output (y, or
  // dx). Rows only (inner == 1). mask_stride: elements from one mask row to
  // the next (0: cols, dense; otherwise >= cols).
  const void* mask = nullptr;
  DType mask_dtype = DType::f32;
  int64_t mask_rows = 1;        // >= 1 when mask is set
  int64_t mask_row_repeat = 1;  // >= 1 when mask is set
  int64_t mask_stride = 0;

  // Causal mask (optional): data row r is query i = r % causal_rows, and its
  // columns j > i + causal_offset are hidden. For scores [b*h, q, k]:
  // causal_rows = q; offset 0 aligns the diagonal top-left, k - q bottom-right.
  // A row with i + causal_offset < 0 is fully masked. Rows only (inner == 1).
  // Backward takes the same settings (its hidden columns).
  bool causal = false;
  int64_t causal_rows = 0;    // >= 1 when causal
  int64_t causal_offset = 0;  // |offset| <= 2^62

  // For tests and benchmarks: force one algorithm (see SoftmaxAlgorithm).
  SoftmaxAlgorithm algorithm = SoftmaxAlgorithm::automatic;

  static Softmax softmax(float scale = 1.0f) { return make(SoftmaxKind::softmax, scale); }
  static Softmax log_softmax(float scale = 1.0f) { return make(SoftmaxKind::log_softmax, scale); }
  static Softmax softmin(float scale = 1.0f) { return make(SoftmaxKind::softmin, scale); }

  template <class T, class = decltype(DTypeOf<T>::value)>
  Softmax with_mask(const T* mask_data, int64_t rows_in_mask = 1, int64_t row_repeat = 1,
                    int64_t row_stride = 0) const {
    return with_mask(static_cast<const void*>(mask_data), DTypeOf<T>::value, rows_in_mask,
                     row_repeat, row_stride);
  }
  Softmax with_mask(const void* mask_data, DType dtype, int64_t rows_in_mask = 1,
                    int64_t row_repeat = 1, int64_t row_stride = 0) const {
    Softmax s = *this;
    s.mask = mask_data;
    s.mask_dtype = dtype;
    s.mask_rows = rows_in_mask;
    s.mask_row_repeat = row_repeat;
    s.mask_stride = row_stride;
    return s;
  }
  Softmax without_mask() const { return with_mask(nullptr, mask_dtype); }
  Softmax with_causal(int64_t query_rows, int64_t offset = 0) const {
    Softmax s = *this;
    s.causal = true;
    s.causal_rows = query_rows;
    s.causal_offset = offset;
    return s;
  }
  Softmax with_algorithm(SoftmaxAlgorithm a) const {
    Softmax s = *this;
    s.algorithm = a;
    return s;
  }

 private:
  static Softmax make(SoftmaxKind k, float scale) {
    Softmax s;
    s.kind = k;
    s.scale = scale;
    return s;
  }
};

// Checks the options: success, or invalid_parameter naming the field
// (unknown kind or algorithm, non-finite scale, mask_rows or mask_row_repeat
// < 1 or a negative mask_stride with a mask, causal_rows < 1 or
// |causal_offset| > 2^62 with causal).
Status validate(const Softmax& op);

// Where a call's elements lie. The softmax runs along a dimension of
// `dim` elements for every (o, j), o < outer, j < inner; element (o, c, j)
// of a buffer is at  base[o * stride + c * inner + j].
// - inner == 1: `outer` rows of `dim` columns (SoftmaxShape::rows), each
//   buffer `stride` elements from one row to the next: a slice of a wider
//   tensor, a padded score buffer.
// - inner > 1: softmax over the middle dimension of [outer, dim, inner]
//   (PyTorch's softmax(x, dim) on a dimension that is not the last, cuDNN's
//   channel mode); mask and causal apply to rows only (unsupported here,
//   either direction).
// A stride of 0 means dense (dim * inner); otherwise it is >= dim * inner.
// Backward takes y at in_stride, dy at grad_stride, writes dx at out_stride.
struct SoftmaxShape {
  int64_t outer = 0;  // rows when inner == 1
  int64_t dim = 0;    // cols when inner == 1
  int64_t inner = 1;
  int64_t in_stride = 0;    // x (forward) or y (backward)
  int64_t grad_stride = 0;  // dy (backward)
  int64_t out_stride = 0;   // y (forward) or dx (backward)

  static SoftmaxShape rows(int64_t rows, int64_t cols) { return {rows, cols, 1, 0, 0, 0}; }
  static SoftmaxShape middle(int64_t outer, int64_t dim, int64_t inner) {
    return {outer, dim, inner, 0, 0, 0};
  }
  SoftmaxShape with_strides(int64_t in, int64_t out, int64_t grad = 0) const {
    SoftmaxShape s = *this;
    s.in_stride = in;
    s.out_stride = out;
    s.grad_stride = grad;
    return s;
  }
};

// y = softmax-family(x) row by row.
Status softmax_forward(const Softmax& op, const float* x, float* y, int64_t rows, int64_t cols,
                       cudaStream_t stream = nullptr);
Status softmax_forward(const Softmax& op, const __half* x, __half* y, int64_t rows, int64_t cols,
                       cudaStream_t stream = nullptr);
Status softmax_forward(const Softmax& op, const __nv_bfloat16* x, __nv_bfloat16* y, int64_t rows,
                       int64_t cols, cudaStream_t stream = nullptr);

// dx from the forward's output y and dy, with the forward's op (its mask and
// causal settings decide the hidden columns). dx may alias y or dy.
Status softmax_backward(const Softmax& op, const float* y, const float* dy, float* dx, int64_t rows,
                        int64_t cols, cudaStream_t stream = nullptr);
Status softmax_backward(const Softmax& op, const __half* y, const __half* dy, __half* dx,
                        int64_t rows, int64_t cols, cudaStream_t stream = nullptr);
Status softmax_backward(const Softmax& op, const __nv_bfloat16* y, const __nv_bfloat16* dy,
                        __nv_bfloat16* dx, int64_t rows, int64_t cols,
                        cudaStream_t stream = nullptr);

// Any SoftmaxShape: strided rows, or the middle dimension of [outer, dim, inner].
Status softmax_forward(const Softmax& op, const float* x, float* y, const SoftmaxShape& shape,
                       cudaStream_t stream = nullptr);
Status softmax_forward(const Softmax& op, const __half* x, __half* y, const SoftmaxShape& shape,
                       cudaStream_t stream = nullptr);
Status softmax_forward(const Softmax& op, const __nv_bfloat16* x, __nv_bfloat16* y,
                       const SoftmaxShape& shape, cudaStream_t stream = nullptr);
Status softmax_backward(const Softmax& op, const float* y, const float* dy, float* dx,
                        const SoftmaxShape& shape, cudaStream_t stream = nullptr);
Status softmax_backward(const Softmax& op, const __half* y, const __half* dy, __half* dx,
                        const SoftmaxShape& shape, cudaStream_t stream = nullptr);
Status softmax_backward(const Softmax& op, const __nv_bfloat16* y, const __nv_bfloat16* dy,
                        __nv_bfloat16* dx, const SoftmaxShape& shape,
                        cudaStream_t stream = nullptr);

// The same with the dtype chosen at run time. forward: in = x, grad unused
// (may be null), out = y. backward: in = y, grad = dy, out = dx.
// Direction::backward_from_output is unsupported (backward always takes y).
Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, int64_t rows, int64_t cols,
               cudaStream_t stream = nullptr);
Status softmax(Direction direction, const Softmax& op, DType dtype, const void* in,
               const void* grad, void* out, const SoftmaxShape& shape,
               cudaStream_t stream = nullptr);

// The algorithm a call with these arguments would run on the current device
// (op.algorithm when forced and possible). For benchmark labels and tests.
Status softmax_selected_algorithm(Direction direction, const Softmax& op, DType dtype, int64_t cols,
                                  SoftmaxAlgorithm* chosen);
Status softmax_selected_algorithm(Direction direction, const Softmax& op, DType dtype,
                                  const SoftmaxShape& shape, SoftmaxAlgorithm* chosen);

}  // namespace cuact
