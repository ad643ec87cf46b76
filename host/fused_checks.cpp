#include "fused_checks.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "argument_checks.h"

namespace cuact::detail {

namespace {

bool known_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

bool aligned(const void* p, DType dtype) {
  return reinterpret_cast<std::uintptr_t>(p) % dtype_size(dtype) == 0;
}

Status unknown_dtype() { return {StatusCode::invalid_parameter, "unknown dtype"}; }
Status misaligned() {
  return {StatusCode::misaligned_pointer, "a pointer is not aligned to its element size"};
}
Status partial_overlap() {
  return {StatusCode::overlapping_buffers,
          "the output partially overlaps an input (only exact aliasing is allowed)"};
}

// a * b * c elements of dtype in bytes, all three >= 0 (checked by the caller).
bool fits(DType dtype, int64_t a, int64_t b, int64_t c, int64_t* bytes) {
  const int64_t max = std::numeric_limits<std::ptrdiff_t>::max() / static_cast<int64_t>(dtype_size(dtype));
  int64_t n = 1;
  for (const int64_t v : {a, b, c}) {
    if (v == 0) {
      *bytes = 0;
      return true;
    }
    if (n > max / v) return false;
    n *= v;
  }
  *bytes = n * static_cast<int64_t>(dtype_size(dtype));
  return true;
}

Status too_big() {
  return {StatusCode::invalid_size, "the tensor does not fit in the address space"};
}

// What both directions of bias + activation check first: dtype, activation,
// dropout, shape; *bytes: the [rows, cols] tensor's size, *bias_bytes: the
// size of bias / dbias [cols] (which must fit even when rows = 0).
Status check_bias_call(const Activation& act, DType dtype, int64_t rows, int64_t cols,
                       const Dropout& dropout, int64_t* bytes, int64_t* bias_bytes) {
  if (!known_dtype(dtype)) return unknown_dtype();
  if (Status s = validate(act); !s.ok()) return s;
  if (Status s = check_dropout(dropout); !s.ok()) return s;
  if (rows < 0) return {StatusCode::invalid_size, "rows is negative"};
  if (cols < 0) return {StatusCode::invalid_size, "cols is negative"};
  if (!fits(dtype, cols, 1, 1, bias_bytes)) return too_big();
  return fits(dtype, rows, cols, 1, bytes) ? Status{} : too_big();
}

// The same for GLU; *x_bytes: the size of x [rows, 2d].
Status check_glu_call(const Glu& glu, DType dtype, int64_t rows, int64_t d, int64_t* x_bytes) {
  if (!known_dtype(dtype)) return unknown_dtype();
  if (Status s = validate(glu.act); !s.ok()) return s;
  if (glu.gated != GatedHalf::first && glu.gated != GatedHalf::second)
    return {StatusCode::invalid_parameter, "unknown gated half"};
  if (rows < 0) return {StatusCode::invalid_size, "rows is negative"};
  if (d < 0) return {StatusCode::invalid_size, "d is negative"};
  return fits(dtype, rows, d, 2, x_bytes) ? Status{} : too_big();
}

}  // namespace

bool spans_overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  if (a == nullptr || b == nullptr || a_bytes <= 0 || b_bytes <= 0) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a);
  const auto pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb ? pb - pa < static_cast<std::uintptr_t>(a_bytes)
                 : pa - pb < static_cast<std::uintptr_t>(b_bytes);
}

Status checked_bytes(DType dtype, int64_t rows, int64_t cols, int64_t* bytes) {
  return fits(dtype, rows, cols, 1, bytes) ? Status{} : too_big();
}

Status check_dropout(const Dropout& dropout) {
  if (!(dropout.p >= 0.0f && dropout.p <= 1.0f))
    return {StatusCode::invalid_parameter, "dropout p must be in [0, 1]"};
  return {};
}

Status check_rrelu(const Rrelu& rrelu) {
  if (!std::isfinite(rrelu.lower) || !std::isfinite(rrelu.upper) || rrelu.lower > rrelu.upper)
    return {StatusCode::invalid_parameter, "rrelu needs finite lower <= upper"};
  return {};
}

Status check_bias_activation_forward(const Activation& act, DType dtype, const void* x,
                                     const void* bias, const void* y, int64_t rows, int64_t cols,
                                     const Dropout& dropout, const uint8_t* mask) {
  int64_t bytes = 0, bias_bytes = 0;
  if (Status s = check_bias_call(act, dtype, rows, cols, dropout, &bytes, &bias_bytes); !s.ok())
    return s;
  if (bytes == 0) return {};
  if (x == nullptr) return {StatusCode::null_pointer, "x is null"};
  if (y == nullptr) return {StatusCode::null_pointer, "y is null"};
  if (!aligned(x, dtype) || !aligned(y, dtype) || !aligned(bias, dtype)) return misaligned();
  const int64_t mask_bytes = rows * cols;
  if (partially_overlaps(y, x, bytes)) return partial_overlap();
  if (spans_overlap(bias, bias_bytes, y, bytes))
    return {StatusCode::overlapping_buffers, "bias overlaps y"};
  if (spans_overlap(mask, mask_bytes, x, bytes) || spans_overlap(mask, mask_bytes, y, bytes) ||
      spans_overlap(mask, mask_bytes, bias, bias_bytes))
    return {StatusCode::overlapping_buffers, "mask overlaps another buffer"};
  return {};
}

Status check_bias_activation_backward(const Activation& act, DType dtype, const void* x,
                                      const void* bias, const void* dy, const void* dx,
                                      const void* dbias, int64_t rows, int64_t cols,
                                      const Dropout& dropout) {
  int64_t bytes = 0, bias_bytes = 0;
  if (Status s = check_bias_call(act, dtype, rows, cols, dropout, &bytes, &bias_bytes); !s.ok())
    return s;
  // dbias of an empty batch is zeros: it is written whenever cols > 0.
  if (!aligned(dbias, dtype)) return misaligned();
  if (bytes == 0) return {};
  if (x == nullptr) return {StatusCode::null_pointer, "x is null"};
  if (dy == nullptr) return {StatusCode::null_pointer, "dy is null"};
  if (dx == nullptr) return {StatusCode::null_pointer, "dx is null"};
  if (!aligned(x, dtype) || !aligned(dy, dtype) || !aligned(dx, dtype) || !aligned(bias, dtype))
    return misaligned();
  if (partially_overlaps(dx, x, bytes) || partially_overlaps(dx, dy, bytes))
    return partial_overlap();
  if (spans_overlap(bias, bias_bytes, dx, bytes))
    return {StatusCode::overlapping_buffers, "bias overlaps dx"};
  if (spans_overlap(dbias, bias_bytes, x, bytes) || spans_overlap(dbias, bias_bytes, dy, bytes) ||
      spans_overlap(dbias, bias_bytes, dx, bytes) ||
      (bias != nullptr && dbias != nullptr && partially_overlaps(dbias, bias, bias_bytes)))
    return {StatusCode::overlapping_buffers, "dbias overlaps another buffer"};
  return {};
}

Status check_glu_forward(const Glu& glu, DType dtype, const void* x, const void* y, int64_t rows,
                         int64_t d) {
  int64_t x_bytes = 0;
  if (Status s = check_glu_call(glu, dtype, rows, d, &x_bytes); !s.ok()) return s;
  if (x_bytes == 0) return {};
  if (x == nullptr) return {StatusCode::null_pointer, "x is null"};
  if (y == nullptr) return {StatusCode::null_pointer, "y is null"};
  if (!aligned(x, dtype) || !aligned(y, dtype)) return misaligned();
  if (spans_overlap(y, x_bytes / 2, x, x_bytes))
    return {StatusCode::overlapping_buffers,
            "y overlaps x (the GLU output is half its input: it has no in-place form)"};
  return {};
}

Status check_glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy,
                          const void* dx, int64_t rows, int64_t d) {
  int64_t x_bytes = 0;
  if (Status s = check_glu_call(glu, dtype, rows, d, &x_bytes); !s.ok()) return s;
  if (x_bytes == 0) return {};
  if (x == nullptr) return {StatusCode::null_pointer, "x is null"};
  if (dy == nullptr) return {StatusCode::null_pointer, "dy is null"};
  if (dx == nullptr) return {StatusCode::null_pointer, "dx is null"};
  if (!aligned(x, dtype) || !aligned(dy, dtype) || !aligned(dx, dtype)) return misaligned();
  if (partially_overlaps(dx, x, x_bytes)) return partial_overlap();
  if (spans_overlap(dx, x_bytes, dy, x_bytes / 2))
    return {StatusCode::overlapping_buffers, "dx overlaps dy"};
  return {};
}

namespace {

Status check_channel_shape(DType dtype, int64_t outer, int64_t channels, int64_t inner,
                           int64_t* bytes) {
  if (outer < 0) return {StatusCode::invalid_size, "outer is negative"};
  if (channels < 0) return {StatusCode::invalid_size, "channels is negative"};
  if (inner < 0) return {StatusCode::invalid_size, "inner is negative"};
  // weight and dweight [channels]; dweight is written even for an empty batch.
  int64_t weight_bytes = 0;
  if (!fits(dtype, channels, 1, 1, &weight_bytes)) return too_big();
  return fits(dtype, outer, channels, inner, bytes) ? Status{} : too_big();
}

}  // namespace

Status check_prelu_forward(DType dtype, const void* x, const void* weight, const void* y,
                           int64_t outer, int64_t channels, int64_t inner) {
  if (!known_dtype(dtype)) return unknown_dtype();
  int64_t bytes = 0;
  if (Status s = check_channel_shape(dtype, outer, channels, inner, &bytes); !s.ok()) return s;
  if (bytes == 0) return {};
  if (x == nullptr) return {StatusCode::null_pointer, "x is null"};
  if (weight == nullptr) return {StatusCode::null_pointer, "weight is null"};
  if (y == nullptr) return {StatusCode::null_pointer, "y is null"};
  if (!aligned(x, dtype) || !aligned(weight, dtype) || !aligned(y, dtype)) return misaligned();
  if (partially_overlaps(y, x, bytes)) return partial_overlap();
  if (spans_overlap(weight, channels * static_cast<int64_t>(dtype_size(dtype)), y, bytes))
    return {StatusCode::overlapping_buffers, "weight overlaps y"};
  return {};
}

Status check_prelu_backward(DType dtype, const void* x, const void* weight, const void* dy,
                            const void* dx, const void* dweight, int64_t outer, int64_t channels,
                            int64_t inner) {
  if (!known_dtype(dtype)) return unknown_dtype();
  int64_t bytes = 0;
  if (Status s = check_channel_shape(dtype, outer, channels, inner, &bytes); !s.ok()) return s;
  // dweight of an empty batch is zeros: it is written whenever channels > 0.
  if (!aligned(dweight, dtype)) return misaligned();
  if (bytes == 0) return {};
  if (x == nullptr) return {StatusCode::null_pointer, "x is null"};
  if (weight == nullptr) return {StatusCode::null_pointer, "weight is null"};
  if (dy == nullptr) return {StatusCode::null_pointer, "dy is null"};
  if (dx == nullptr) return {StatusCode::null_pointer, "dx is null"};
  if (!aligned(x, dtype) || !aligned(weight, dtype) || !aligned(dy, dtype) || !aligned(dx, dtype))
    return misaligned();
  const int64_t weight_bytes = channels * static_cast<int64_t>(dtype_size(dtype));
  if (partially_overlaps(dx, x, bytes) || partially_overlaps(dx, dy, bytes))
    return partial_overlap();
  if (spans_overlap(weight, weight_bytes, dx, bytes))
    return {StatusCode::overlapping_buffers, "weight overlaps dx"};
  if (spans_overlap(dweight, weight_bytes, x, bytes) ||
      spans_overlap(dweight, weight_bytes, dy, bytes) ||
      spans_overlap(dweight, weight_bytes, dx, bytes) ||
      (dweight != nullptr && partially_overlaps(dweight, weight, weight_bytes)))
    return {StatusCode::overlapping_buffers, "dweight overlaps another buffer"};
  return {};
}

Status check_rrelu_call(const Rrelu& rrelu, DType dtype, const void* x, const void* dy,
                        const void* out, int64_t n, bool backward) {
  if (!known_dtype(dtype)) return unknown_dtype();
  if (Status s = check_rrelu(rrelu); !s.ok()) return s;
  if (n < 0) return {StatusCode::invalid_size, "n is negative"};
  int64_t bytes = 0;
  if (!fits(dtype, n, 1, 1, &bytes)) return too_big();
  if (bytes == 0) return {};
  if (x == nullptr) return {StatusCode::null_pointer, "x is null"};
  if (backward && dy == nullptr) return {StatusCode::null_pointer, "dy is null"};
  if (out == nullptr) return {StatusCode::null_pointer, backward ? "dx is null" : "y is null"};
  if (!aligned(x, dtype) || !aligned(out, dtype) || (backward && !aligned(dy, dtype)))
    return misaligned();
  if (partially_overlaps(out, x, bytes) || (backward && partially_overlaps(out, dy, bytes)))
    return partial_overlap();
  return {};
}

Status check_workspace(const void* workspace, size_t workspace_bytes, int64_t needed,
                       const void* const* buffers, const int64_t* buffer_bytes, int count) {
  if (needed == 0) return {};
  if (needed < 0)
    return {StatusCode::invalid_size, "the reduction's workspace does not fit in the address space"};
  if (workspace == nullptr)
    return {StatusCode::null_pointer, "workspace is null (the reduction needs the size query's bytes)"};
  if (workspace_bytes < static_cast<size_t>(needed))
    return {StatusCode::invalid_size, "workspace_bytes is smaller than the workspace size query returned"};
  for (int i = 0; i < count; ++i)
    if (spans_overlap(workspace, needed, buffers[i], buffer_bytes[i]))
      return {StatusCode::overlapping_buffers, "workspace overlaps another buffer"};
  return {};
}

}  // namespace cuact::detail
