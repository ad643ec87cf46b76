#include "fused_checks.h"

#include <cmath>
#include <cstdint>

#include "call_checks.h"
#include "expert_rows.h"
#include "forms.h"

namespace cuact::detail {

namespace {

int64_t size_of(DType dtype) { return static_cast<int64_t>(dtype_size(dtype)); }

Status negative(const char* detail) { return {StatusCode::invalid_size, detail}; }

// [outer, channels, inner]; weight and dweight [channels], which must fit
// even for an empty batch.
Status check_channel_shape(DType dtype, DType weight_dtype, int64_t outer, int64_t channels,
                           int64_t inner, int64_t* bytes, int64_t* weight_bytes) {
  if (Status s = check_dtype(dtype); !s.ok()) return s;
  if (Status s = check_param_dtype(dtype, weight_dtype); !s.ok()) return s;
  if (outer < 0) return negative("outer is negative");
  if (channels < 0) return negative("channels is negative");
  if (inner < 0) return negative("inner is negative");
  if (Status s = checked_bytes(size_of(weight_dtype), channels, 1, 1, weight_bytes); !s.ok())
    return s;
  return checked_bytes(size_of(dtype), outer, channels, inner, bytes);
}

// The in-place group of a call's data tensors (x, dy and the output they
// may be), and of a parameter and its gradient.
constexpr int kData = 1, kParam = 2;

}  // namespace

namespace {

// The graph-safe generator state of Dropout and Rrelu: both pairs or neither,
// each 8-byte aligned, apart.
Status check_device_random(const uint64_t* state, const uint64_t* used) {
  if ((state == nullptr) != (used == nullptr))
    return {StatusCode::null_pointer, "device_state and device_used are set together (or neither)"};
  for (const uint64_t* p : {state, used})
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(uint64_t) != 0)
      return {StatusCode::misaligned_pointer, "device_state or device_used is not 8-byte aligned"};
  if (state != nullptr && spans_overlap(state, 16, used, 16))
    return {StatusCode::overlapping_buffers, "device_state and device_used overlap"};
  return {};
}

}  // namespace

Status check_bias_shape(const Activation& act, DType dtype, DType bias_dtype, int64_t rows,
                       int64_t cols, const Dropout& dropout, int64_t* bytes, int64_t* bias_bytes) {
  if (Status s = check_dtype(dtype); !s.ok()) return s;
  if (Status s = check_param_dtype(dtype, bias_dtype); !s.ok()) return s;
  if (Status s = validate(act); !s.ok()) return s;
  if (Status s = check_dropout(dropout); !s.ok()) return s;
  if (rows < 0) return negative("rows is negative");
  if (cols < 0) return negative("cols is negative");
  if (Status s = checked_bytes(size_of(bias_dtype), cols, 1, 1, bias_bytes); !s.ok()) return s;
  return checked_bytes(size_of(dtype), rows, cols, 1, bytes);
}

Status check_glu_shape(const Glu& glu, DType dtype, int64_t rows, int64_t d, int64_t* x_bytes) {
  if (Status s = check_dtype(dtype); !s.ok()) return s;
  if (Status s = validate(glu.act); !s.ok()) return s;
  if (glu.gated != GatedHalf::first && glu.gated != GatedHalf::second)
    return {StatusCode::invalid_parameter, "unknown gated half"};
  if (!(glu.limit > 0.0f))
    return {StatusCode::invalid_parameter, "glu limit must be > 0 (+inf: no clamp)"};
  if (!std::isfinite(glu.offset)) return {StatusCode::invalid_parameter, "glu offset must be finite"};
  if (glu.interleave < 0) return {StatusCode::invalid_parameter, "glu interleave is negative"};
  if (glu.interleave > 0 && d > 0 && d % glu.interleave != 0)
    return {StatusCode::invalid_size, "glu interleave must divide d"};
  if ((glu.limit != HUGE_VALF || glu.offset != 0.0f) && !moe_glu_gate(glu.act.kind))
    return {StatusCode::unsupported, kMoeGluGates};
  if (rows < 0) return negative("rows is negative");
  if (d < 0) return negative("d is negative");
  return checked_bytes(size_of(dtype), rows, d, 2, x_bytes);
}

Status check_dropout(const Dropout& dropout) {
  if (!(dropout.p >= 0.0f && dropout.p <= 1.0f))
    return {StatusCode::invalid_parameter, "dropout p must be in [0, 1]"};
  return check_device_random(dropout.device_state, dropout.device_used);
}

Status check_rrelu(const Rrelu& rrelu) {
  if (!std::isfinite(rrelu.lower) || !std::isfinite(rrelu.upper) || rrelu.lower > rrelu.upper)
    return {StatusCode::invalid_parameter, "rrelu needs finite lower <= upper"};
  return check_device_random(rrelu.device_state, rrelu.device_used);
}

Status check_bias_activation_forward(const Activation& act, DType dtype, const void* x,
                                     const void* bias, DType bias_dtype, const void* y,
                                     int64_t rows, int64_t cols, const Dropout& dropout,
                                     const uint8_t* mask) {
  int64_t bytes = 0, bias_bytes = 0;
  if (Status s = check_bias_shape(act, dtype, bias_dtype, rows, cols, dropout, &bytes, &bias_bytes);
      !s.ok())
    return s;
  if (bytes == 0) return {};
  const Buffer buffers[] = {
      {buffer::x, x, bytes, size_of(dtype), false, true, kData},
      {buffer::y, y, bytes, size_of(dtype), true, true, kData},
      {buffer::bias, bias, bias_bytes, size_of(bias_dtype), false, false},
      {buffer::mask, mask, rows * cols, 1, true, false},
  };
  return check_buffers(buffers, 4);
}

Status check_bias_activation_backward(const Activation& act, DType dtype, const void* x,
                                      const void* bias, DType bias_dtype, const void* dy,
                                      const void* dx, const void* dbias, int64_t rows,
                                      int64_t cols, const Dropout& dropout) {
  int64_t bytes = 0, bias_bytes = 0;
  if (Status s = check_bias_shape(act, dtype, bias_dtype, rows, cols, dropout, &bytes, &bias_bytes);
      !s.ok())
    return s;
  // dbias of an empty batch is zeros: it is written whenever cols > 0.
  const Buffer dbias_buffer{buffer::dbias, dbias, bias_bytes, size_of(bias_dtype), true, false, kParam};
  if (bytes == 0) return check_buffers(&dbias_buffer, 1);
  const Buffer buffers[] = {
      {buffer::x, x, bytes, size_of(dtype), false, true, kData},
      {buffer::dy, dy, bytes, size_of(dtype), false, true, kData},
      {buffer::dx, dx, bytes, size_of(dtype), true, true, kData},
      {buffer::bias, bias, bias_bytes, size_of(bias_dtype), false, false, kParam},
      dbias_buffer,
  };
  return check_buffers(buffers, 5);
}

namespace {

// The weights' dtype and bytes ([rows]; 0 for an unweighted call).
Status check_glu_weights(const Glu& glu, DType dtype, int64_t rows, const GluWeights& w,
                         int64_t* weight_bytes) {
  *weight_bytes = 0;
  if (!w.weighted) return {};
  if (!moe_glu_gate(glu.act.kind)) return {StatusCode::unsupported, kMoeGluGates};
  if (Status s = check_param_dtype(dtype, w.dtype); !s.ok()) return s;
  return checked_bytes(size_of(w.dtype), rows, 1, 1, weight_bytes);
}

// An expert-row call's own checks (before the shape's: a bad ExpertRows is
// refused even for an empty call); appends its buffers to `buffers`.
Status check_expert_rows(const Glu& glu, int64_t rows, const ExpertRows* e, Buffer* buffers,
                         int* count) {
  if (e == nullptr) return {};
  if (!moe_glu_gate(glu.act.kind)) return {StatusCode::unsupported, kMoeGluGates};
  if (e->experts <= 0) return {StatusCode::invalid_size, "expert rows need experts > 0"};
  if (e->counts == nullptr && e->offsets == nullptr)
    return {StatusCode::null_pointer, "expert rows need counts (masked) or offsets (grouped)"};
  if (e->counts != nullptr && e->offsets != nullptr)
    return {StatusCode::invalid_parameter, "expert rows take counts or offsets, not both"};
  if (e->counts != nullptr) {
    if (e->experts > kMaxMaskedExperts)
      return {StatusCode::unsupported, "masked expert rows take at most 1024 experts"};
    if (rows >= 0 && rows % e->experts != 0)
      return {StatusCode::invalid_size, "masked expert rows: rows must be a multiple of experts"};
  }
  if (e->experts > (int64_t{1} << 40)) return {StatusCode::invalid_size, "too many experts"};
  const bool masked = e->counts != nullptr;
  buffers[(*count)++] = {masked ? buffer::counts : buffer::offsets,
                         masked ? static_cast<const void*>(e->counts) : e->offsets,
                         (e->experts + (masked ? 0 : 1)) * 4, 4, false};
  buffers[(*count)++] = {buffer::error_flag, e->error, 4, 4, true, false};
  return {};
}

}  // namespace

Status check_glu_forward(const Glu& glu, DType dtype, const void* x, const void* y, int64_t rows,
                         int64_t d, const GluWeights& weights, const ExpertRows* experts) {
  int64_t x_bytes = 0, w_bytes = 0;
  // The output is half the input: it has no in-place form.
  Buffer buffers[5] = {
      {buffer::x, x, 0, size_of(dtype), false},
      {buffer::weight, weights.weight, 0, size_of(weights.dtype), false},
      {buffer::y, y, 0, size_of(dtype), true},
  };
  int count = 3;
  if (Status s = check_expert_rows(glu, rows, experts, buffers, &count); !s.ok()) return s;
  if (Status s = check_glu_shape(glu, dtype, rows, d, &x_bytes); !s.ok()) return s;
  if (Status s = check_glu_weights(glu, dtype, rows, weights, &w_bytes); !s.ok()) return s;
  if (x_bytes == 0) return {};
  buffers[0].bytes = x_bytes;
  buffers[1].bytes = w_bytes;
  buffers[2].bytes = x_bytes / 2;
  return check_buffers(buffers, count);
}

Status check_glu_backward(const Glu& glu, DType dtype, const void* x, const void* dy,
                          const void* dx, int64_t rows, int64_t d, const GluWeights& weights,
                          const ExpertRows* experts) {
  int64_t x_bytes = 0, w_bytes = 0;
  Buffer expert_buffers[2];
  int expert_count = 0;
  if (Status s = check_expert_rows(glu, rows, experts, expert_buffers, &expert_count); !s.ok())
    return s;
  if (Status s = check_glu_shape(glu, dtype, rows, d, &x_bytes); !s.ok()) return s;
  if (Status s = check_glu_weights(glu, dtype, rows, weights, &w_bytes); !s.ok()) return s;
  // dweight of rows with d = 0 is zeros: it is written whenever rows > 0.
  const Buffer weight{buffer::weight, weights.weight, w_bytes, size_of(weights.dtype), false, true,
                      kParam};
  const Buffer dweight{buffer::dweight, weights.dweight, w_bytes, size_of(weights.dtype), true,
                       false, kParam};
  Buffer buffers[7] = {weight, dweight};
  int count = 2;
  if (x_bytes > 0) {
    buffers[0] = {buffer::x, x, x_bytes, size_of(dtype), false, true, kData};
    buffers[1] = weight;
    buffers[2] = {buffer::dy, dy, x_bytes / 2, size_of(dtype), false};
    buffers[3] = {buffer::dx, dx, x_bytes, size_of(dtype), true, true, kData};
    buffers[4] = dweight;
    count = 5;
  }
  for (int i = 0; i < expert_count; ++i) buffers[count++] = expert_buffers[i];
  return check_buffers(buffers, count);
}

Status check_prelu_forward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                           const void* y, int64_t outer, int64_t channels, int64_t inner) {
  int64_t bytes = 0, weight_bytes = 0;
  if (Status s = check_channel_shape(dtype, weight_dtype, outer, channels, inner, &bytes,
                                     &weight_bytes);
      !s.ok())
    return s;
  if (bytes == 0) return {};
  const Buffer buffers[] = {
      {buffer::x, x, bytes, size_of(dtype), false, true, kData},
      {buffer::weight, weight, weight_bytes, size_of(weight_dtype), false},
      {buffer::y, y, bytes, size_of(dtype), true, true, kData},
  };
  return check_buffers(buffers, 3);
}

Status check_prelu_backward(DType dtype, const void* x, const void* weight, DType weight_dtype,
                            const void* dy, const void* dx, const void* dweight, int64_t outer,
                            int64_t channels, int64_t inner) {
  int64_t bytes = 0, weight_bytes = 0;
  if (Status s = check_channel_shape(dtype, weight_dtype, outer, channels, inner, &bytes,
                                     &weight_bytes);
      !s.ok())
    return s;
  // dweight of an empty batch is zeros: it is written whenever channels > 0.
  const Buffer dweight_buffer{buffer::dweight, dweight, weight_bytes, size_of(weight_dtype), true,
                              false, kParam};
  if (bytes == 0) return check_buffers(&dweight_buffer, 1);
  const Buffer buffers[] = {
      {buffer::x, x, bytes, size_of(dtype), false, true, kData},
      {buffer::weight, weight, weight_bytes, size_of(weight_dtype), false, true, kParam},
      {buffer::dy, dy, bytes, size_of(dtype), false, true, kData},
      {buffer::dx, dx, bytes, size_of(dtype), true, true, kData},
      dweight_buffer,
  };
  return check_buffers(buffers, 5);
}

Status check_rrelu_call(const Rrelu& rrelu, DType dtype, const void* x, const void* dy,
                        const void* out, int64_t n, bool backward) {
  if (Status s = check_dtype(dtype); !s.ok()) return s;
  if (Status s = check_rrelu(rrelu); !s.ok()) return s;
  if (n < 0) return negative("n is negative");
  int64_t bytes = 0;
  if (Status s = checked_bytes(size_of(dtype), n, 1, 1, &bytes); !s.ok()) return s;
  if (bytes == 0) return {};
  const Buffer buffers[] = {
      {buffer::x, x, bytes, size_of(dtype), false, true, kData},
      {buffer::dy, dy, backward ? bytes : 0, size_of(dtype), false, backward, kData},
      {backward ? buffer::dx : buffer::y, out, bytes, size_of(dtype), true, true, kData},
  };
  return check_buffers(buffers, 3);
}

Status check_workspace(const void* workspace, size_t workspace_bytes, int64_t needed,
                       const Buffer* others, int count) {
  if (needed == 0) return {};
  if (needed < 0)
    return {StatusCode::invalid_size, "the reduction's workspace does not fit in the address space"};
  if (workspace == nullptr) return {StatusCode::null_pointer, buffer::workspace.null};
  if (workspace_bytes < static_cast<size_t>(needed))
    return {StatusCode::invalid_size, "workspace_bytes is smaller than the workspace size query returned"};
  const Buffer ws{buffer::workspace, workspace, needed, 1, true, true};
  for (int i = 0; i < count; ++i) {
    const Buffer pair[] = {others[i], ws};
    if (Status s = check_buffers(pair, 2); !s.ok()) return s;
  }
  return {};
}

}  // namespace cuact::detail
