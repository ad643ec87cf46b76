// The entry points with a quantized output (include/cuact/quantized.h):
// the same checks and row requests as their plain forms (fused_checks.h,
// row_calls.h), with the output declared as one-byte codes plus its scale,
// amax and scale_inv words, and the request made quantized.
#include <cuda_runtime_api.h>

#include "argument_checks.h"
#include "call_checks.h"
#include "cuact/quantized.h"
#include "cuda_status.h"
#include "fused_checks.h"
#include "quantized_checks.h"
#include "kernel_table.h"
#include "row_calls.h"
#include "softmax_checks.h"
#include "softmax_dispatch.h"

namespace cuact {

namespace detail {

namespace {

int64_t size_of(DType dtype) { return static_cast<int64_t>(dtype_size(dtype)); }

// Quantized outputs of clamped or interleaved GLUs are not built yet.
Status check_unclamped(const Glu& glu) {
  if (glu.limit != HUGE_VALF || glu.offset != 0.0f)
    return {StatusCode::unsupported, "clamped GLUs have no quantized outputs yet"};
  if (glu.interleave != 0)
    return {StatusCode::unsupported, "interleaved GLUs have no quantized outputs yet"};
  return {};
}

// The call's input buffers, then the output: `elements` codes (never in
// place of an input: they are narrower), the scale word (read by the delayed
// recipe, written by the current one) and the optional amax and scale_inv
// words; then the workspace where the call needs one (ws null: a host call
// of the reference, which needs none).
Status check_with_output(const Buffer* inputs, int count, BufferName name,
                         const QuantizedOutput& q, int64_t elements, const Workspace* ws,
                         int64_t reduction_bytes) {
  if (Status s = check_quantized_descriptor(q); !s.ok()) return s;
  constexpr int kMost = 8;
  Buffer list[kMost];
  int n = 0;
  for (int i = 0; i < count; ++i) list[n++] = inputs[i];
  const bool current = q.scaling == Scaling::current;
  list[n++] = {name, q.data, elements, 1, true, true};
  list[n++] = {buffer::scale, q.scale, 4, 4, current, true};
  list[n++] = {buffer::amax, q.amax, 4, 4, true, false};
  list[n++] = {buffer::scale_inv, q.scale_inv, 4, 4, true, false};
  if (Status s = check_buffers(list, n); !s.ok()) return s;
  if (ws == nullptr) return {};
  if (reduction_bytes < 0)
    return {StatusCode::invalid_size, "the reduction's workspace does not fit in the address space"};
  return check_workspace(ws->data, ws->bytes, reduction_bytes + quantized_workspace(q), list, n);
}

}  // namespace

Status check_quantized_descriptor(const QuantizedOutput& q) {
  if (q.dtype != Fp8::e4m3 && q.dtype != Fp8::e5m2)
    return {StatusCode::invalid_parameter, "unknown quantized output dtype"};
  if (q.scaling != Scaling::delayed && q.scaling != Scaling::current)
    return {StatusCode::invalid_parameter, "unknown scaling"};
  if (q.scaling == Scaling::current && (q.margin < 0 || q.margin > 64))
    return {StatusCode::invalid_parameter, "margin must be in [0, 64]"};
  // The current recipe writes the scale even for an empty call.
  if (q.scaling == Scaling::current && q.scale == nullptr) return {StatusCode::null_pointer, buffer::scale.null};
  return {};
}

Status check_quantized_activation(Direction direction, const Activation& act, DType dtype,
                                  const void* in, const void* grad, const QuantizedOutput& out,
                                  int64_t n, const Workspace* ws) {
  int64_t bytes = 0;
  if (Status s = check_activation_shape(direction, act, dtype, n, &bytes); !s.ok()) return s;
  if (bytes == 0) return check_quantized_descriptor(out);
  const int64_t elem = size_of(dtype);
  const bool forward = direction == Direction::forward;
  const bool from_output = direction == Direction::backward_from_output;
  const Buffer inputs[] = {
      {from_output ? buffer::y : buffer::x, in, bytes, elem},
      {buffer::dy, grad, forward ? 0 : bytes, elem, false, !forward},
  };
  return check_with_output(inputs, 2, forward ? buffer::y : buffer::dx, out, n, ws, 0);
}

Status check_quantized_bias_forward(const Activation& act, DType dtype, const void* x,
                                    const void* bias, DType bias_dtype, const QuantizedOutput& y,
                                    int64_t rows, int64_t cols, const Dropout& dropout,
                                    const uint8_t* mask, const Workspace* ws) {
  int64_t bytes = 0, bias_bytes = 0;
  if (Status s = check_bias_shape(act, dtype, bias_dtype, rows, cols, dropout, &bytes, &bias_bytes);
      !s.ok())
    return s;
  if (bytes == 0) return check_quantized_descriptor(y);
  const int64_t elem = size_of(dtype);
  const Buffer inputs[] = {
      {buffer::x, x, bytes, elem},
      {buffer::bias, bias, bias_bytes, size_of(bias_dtype), false, false},
      {buffer::mask, mask, rows * cols, 1, true, false},
  };
  return check_with_output(inputs, 3, buffer::y, y, rows * cols, ws, 0);
}

Status check_quantized_bias_backward(const Activation& act, DType dtype, const void* x,
                                     const void* bias, DType bias_dtype, const void* dy,
                                     const QuantizedOutput& dx, const void* dbias, int64_t rows,
                                     int64_t cols, const Workspace* ws) {
  int64_t bytes = 0, bias_bytes = 0;
  if (Status s = check_bias_shape(act, dtype, bias_dtype, rows, cols, Dropout{}, &bytes, &bias_bytes);
      !s.ok())
    return s;
  const Buffer dbias_buffer{buffer::dbias, dbias, bias_bytes, size_of(bias_dtype), true, false};
  if (bytes == 0) {  // dbias of an empty batch is zeros: written whenever cols > 0
    if (Status s = check_buffers(&dbias_buffer, 1); !s.ok()) return s;
    return check_quantized_descriptor(dx);
  }
  const int64_t elem = size_of(dtype);
  const Buffer inputs[] = {
      {buffer::x, x, bytes, elem},
      {buffer::dy, dy, bytes, elem},
      {buffer::bias, bias, bias_bytes, size_of(bias_dtype), false, false},
      dbias_buffer,
  };
  const int64_t reduction = dbias != nullptr ? bias_backward_workspace(dtype, rows, cols) : 0;
  return check_with_output(inputs, 4, buffer::dx, dx, rows * cols, ws, reduction);
}

Status check_quantized_glu_forward(const Glu& glu, DType dtype, const void* x,
                                   const QuantizedOutput& y, int64_t rows, int64_t d,
                                   const Workspace* ws) {
  int64_t x_bytes = 0;
  if (Status s = check_glu_shape(glu, dtype, rows, d, &x_bytes); !s.ok()) return s;
  if (Status s = check_unclamped(glu); !s.ok()) return s;
  if (x_bytes == 0) return check_quantized_descriptor(y);
  const Buffer inputs[] = {{buffer::x, x, x_bytes, size_of(dtype)}};
  return check_with_output(inputs, 1, buffer::y, y, rows * d, ws, 0);
}

Status check_block_descriptor(const BlockScaledOutput& b) {
  if (b.dtype != Fp8::e4m3 && b.dtype != Fp8::e5m2)
    return {StatusCode::invalid_parameter, "unknown block-scaled output dtype"};
  if (b.block != 16 && b.block != 32 && b.block != 64 && b.block != 128)
    return {StatusCode::invalid_parameter, "block must be 16, 32, 64 or 128"};
  if (b.scale_type != BlockScale::e8m0 && b.scale_type != BlockScale::e8m0_floor &&
      b.scale_type != BlockScale::f32 && b.scale_type != BlockScale::e4m3)
    return {StatusCode::invalid_parameter, "unknown block scale type"};
  if (b.scale_type == BlockScale::e4m3 && b.block != 16)
    return {StatusCode::invalid_parameter, "NVFP4 (e4m3 block scales) takes blocks of 16"};
  if (b.scale_layout != ScaleLayout::row_major && b.scale_layout != ScaleLayout::column_major &&
      b.scale_layout != ScaleLayout::swizzled_128x4 &&
      b.scale_layout != ScaleLayout::column_major_packed)
    return {StatusCode::invalid_parameter, "unknown scale layout"};
  if (b.scale_layout == ScaleLayout::column_major_packed && b.scale_type == BlockScale::f32)
    return {StatusCode::invalid_parameter, "the packed layout holds 1-byte (E8M0, e4m3) scales"};
  if (b.scaling != Scaling::delayed && b.scaling != Scaling::current)
    return {StatusCode::invalid_parameter, "unknown scaling"};
  if (b.scaling == Scaling::current && b.scale_type != BlockScale::e4m3)
    return {StatusCode::invalid_parameter,
            "Scaling::current finds NVFP4's tensor scale; fp8 blocks' scales are their own"};
  return {};
}

int64_t block_scale_bytes(const BlockScaledOutput& b, int64_t rows, int64_t cols) {
  const int64_t entries = scale_entries(b.scale_layout, rows, block_groups(b, cols));
  return entries * (b.scale_type == BlockScale::f32 ? 4 : 1);
}

namespace {

// The call's inputs, then the codes, the scales and the optional amax word.
Status check_block_output(const Buffer* inputs, int count, const BlockScaledOutput& y,
                          int64_t rows, int64_t cols) {
  if (Status s = check_block_descriptor(y); !s.ok()) return s;
  if (rows > 0 && cols > int64_t{1} << 40)
    return {StatusCode::invalid_size, "cols is too large for the scale matrix"};
  constexpr int kMost = 8;
  Buffer list[kMost];
  int n = 0;
  for (int i = 0; i < count; ++i) list[n++] = inputs[i];
  const bool fp4 = y.scale_type == BlockScale::e4m3;
  if (fp4 && cols % 2 != 0)
    return {StatusCode::invalid_size, "NVFP4 packs two codes a byte: cols must be even"};
  list[n++] = {buffer::y, y.data, fp4 ? rows * cols / 2 : rows * cols, 1, true, true};
  // NVFP4's tensor scale: read (given), or written with the amax (found by a first pass).
  const bool found = fp4 && y.scaling == Scaling::current;
  list[n++] = {buffer::tensor_scale, y.tensor_scale, 4, 4, found, fp4};
  list[n++] = {buffer::scales, y.scales, rows * cols > 0 ? block_scale_bytes(y, rows, cols) : 0,
               y.scale_type == BlockScale::f32 ? 4 : 1, true, true};
  list[n++] = {buffer::amax, y.amax, 4, 4, true, found};
  return check_buffers(list, n);
}

}  // namespace

Status check_block_bias_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const BlockScaledOutput& y, int64_t rows,
                                int64_t cols) {
  int64_t bytes = 0, bias_bytes = 0;
  if (Status s = check_bias_shape(act, dtype, bias_dtype, rows, cols, Dropout{}, &bytes, &bias_bytes);
      !s.ok())
    return s;
  const Buffer inputs[] = {
      {buffer::x, x, bytes, size_of(dtype)},
      {buffer::bias, bias, bias_bytes, size_of(bias_dtype), false, false},
  };
  return check_block_output(inputs, 2, y, rows, cols);
}

Status check_block_glu_forward(const Glu& glu, DType dtype, const void* x,
                               const BlockScaledOutput& y, int64_t rows, int64_t d) {
  int64_t x_bytes = 0;
  if (Status s = check_glu_shape(glu, dtype, rows, d, &x_bytes); !s.ok()) return s;
  if (Status s = check_unclamped(glu); !s.ok()) return s;
  const Buffer inputs[] = {{buffer::x, x, x_bytes, size_of(dtype)}};
  return check_block_output(inputs, 1, y, rows, d);
}

Status check_quantized_softmax(const Softmax& op, DType dtype, const void* x,
                               const QuantizedOutput& y, const SoftmaxShape& shape,
                               const Workspace* ws) {
  SoftmaxExtents e;
  if (Status s = check_softmax_shape(Direction::forward, op, dtype, shape, &e); !s.ok()) return s;
  if (shape.outer == 0) return check_quantized_descriptor(y);
  const int64_t elem = size_of(dtype);
  const Buffer inputs[] = {
      {buffer::x, x, e.in_bytes, elem},
      {buffer::mask, op.mask, e.mask_bytes, elem, false, false},
  };
  return check_with_output(inputs, 2, buffer::y, y, e.out_elements, ws, 0);
}

namespace {

// An empty call still leaves the words as a call over no elements would:
// amax 0, and for the current recipe the scale step's result of amax 0
// (scale 1 and scale_inv 1; NVFP4's tensor scale 1).
Status finish_empty(const QuantizedRecipe& r, cudaStream_t stream) {
  if (Status s = cleared_amax(r, stream); !s.ok()) return s;
  if (!r.current) return {};
  QuantizedRecipe empty = r;
  empty.store.amax = nullptr;  // read as 0 (a workspace word may not be given)
  return status_from_cuda(enqueue_scale_step(empty, stream), "launching the scale step failed");
}
Status finish_empty(const QuantizedOutput& q, cudaStream_t stream) {
  return finish_empty(quantized_recipe(q, nullptr, 0), stream);
}

}  // namespace

}  // namespace detail

Status quantized_workspace_size(const QuantizedOutput& out, size_t* workspace_bytes) {
  if (workspace_bytes == nullptr) return {StatusCode::null_pointer, "workspace_bytes is null"};
  if (Status s = detail::check_quantized_descriptor(out); !s.ok()) return s;
  *workspace_bytes = static_cast<size_t>(detail::quantized_workspace(out));
  return {};
}

Status activation(Direction direction, const Activation& act, DType dtype, const void* in,
                  const void* grad, const QuantizedOutput& out, int64_t n, Workspace workspace,
                  cudaStream_t stream) {
  if (Status s = detail::check_quantized_activation(direction, act, dtype, in, grad, out, n, &workspace);
      !s.ok())
    return s;
  if (n == 0) return detail::finish_empty(out, stream);
  return detail::run_rows(
      detail::quantized_request(
          detail::activation_request(direction, act, dtype, in, grad, out.data, n), out,
          workspace.data, 0),
      stream);
}

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const QuantizedOutput& y, int64_t rows,
                               int64_t cols, const Dropout& dropout, uint8_t* mask,
                               Workspace workspace, cudaStream_t stream) {
  if (Status s = detail::check_quantized_bias_forward(act, dtype, x, bias, bias_dtype, y, rows, cols,
                                                      dropout, mask, &workspace);
      !s.ok())
    return s;
  if (rows == 0 || cols == 0) return detail::finish_empty(y, stream);
  return detail::run_rows(
      detail::quantized_request(
          detail::bias_activation_forward_request(act, dtype, x, bias, bias_dtype, y.data, rows,
                                                  cols, dropout, mask),
          y, workspace.data, 0),
      stream);
}

Status bias_activation_backward_workspace_size(DType dtype, int64_t rows, int64_t cols,
                                               const QuantizedOutput& dx,
                                               size_t* workspace_bytes) {
  size_t reduction = 0;
  if (Status s = bias_activation_backward_workspace_size(dtype, rows, cols, &reduction); !s.ok())
    return s;
  if (Status s = detail::check_quantized_descriptor(dx); !s.ok()) return s;
  *workspace_bytes = reduction + static_cast<size_t>(detail::quantized_workspace(dx));
  return {};
}

Status bias_activation_backward(const Activation& act, DType dtype, const void* x, const void* bias,
                                DType bias_dtype, const void* dy, const QuantizedOutput& dx,
                                void* dbias, int64_t rows, int64_t cols, Workspace workspace,
                                cudaStream_t stream) {
  if (Status s = detail::check_quantized_bias_backward(act, dtype, x, bias, bias_dtype, dy, dx, dbias,
                                                       rows, cols, &workspace);
      !s.ok())
    return s;
  if (rows == 0 || cols == 0) {
    if (cols > 0 && dbias != nullptr) {  // dbias of an empty batch: zeros
      const auto bytes = static_cast<size_t>(cols) * dtype_size(bias_dtype);
      if (const cudaError_t err = cudaMemsetAsync(dbias, 0, bytes, stream); err != cudaSuccess)
        return detail::status_from_cuda(err, "clearing the reduction output failed");
    }
    return detail::finish_empty(dx, stream);
  }
  const int64_t reduction = dbias != nullptr ? detail::bias_backward_workspace(dtype, rows, cols) : 0;
  return detail::run_rows(
      detail::quantized_request(
          detail::bias_activation_backward_request(act, dtype, x, bias, bias_dtype, dy, dx.data,
                                                   dbias, rows, cols, Dropout{}, workspace.data),
          dx, workspace.data, reduction),
      stream);
}

Status glu_forward(const Glu& glu, DType dtype, const void* x, const QuantizedOutput& y,
                   int64_t rows, int64_t d, Workspace workspace, cudaStream_t stream) {
  if (Status s = detail::check_quantized_glu_forward(glu, dtype, x, y, rows, d, &workspace); !s.ok())
    return s;
  if (rows == 0 || d == 0) return detail::finish_empty(y, stream);
  return detail::run_rows(
      detail::quantized_request(detail::glu_forward_request(glu, dtype, x, y.data, rows, d), y,
                                workspace.data, 0),
      stream);
}

Status softmax_forward(const Softmax& op, DType dtype, const void* x, const QuantizedOutput& y,
                       const SoftmaxShape& shape, Workspace workspace, cudaStream_t stream) {
  if (Status s = detail::check_quantized_softmax(op, dtype, x, y, shape, &workspace); !s.ok())
    return s;
  if (shape.outer == 0) return detail::finish_empty(y, stream);
  detail::SoftmaxCall call =
      detail::make_softmax_call(Direction::forward, op, dtype, x, nullptr, y.data, shape);
  call.out_size = 1;
  return detail::run_quantized_passes(
      detail::quantized_recipe(y, workspace.data, 0), stream,
      [&](const detail::QuantizedStore& store) {
        call.quantized = store;
        return detail::softmax_status(detail::launch_softmax(dtype, call, stream));
      });
}

Status block_scales_size(const BlockScaledOutput& out, int64_t rows, int64_t cols,
                         size_t* bytes) {
  if (bytes == nullptr) return {StatusCode::null_pointer, "bytes is null"};
  if (Status s = detail::check_block_descriptor(out); !s.ok()) return s;
  if (rows < 0 || cols < 0) return {StatusCode::invalid_size, "rows and cols must be >= 0"};
  *bytes = static_cast<size_t>(detail::block_scale_bytes(out, rows, cols));
  return {};
}

namespace {

// A block-scaled call: the amax cleared (where asked), one pass.
Status run_block(const detail::RowRequest& r, cudaStream_t stream) {
  return detail::run_quantized_passes(r.recipe, stream, [&](const detail::QuantizedStore& store) {
    return detail::run_rows(detail::row_pass(r, store), stream);
  });
}

}  // namespace

Status bias_activation_forward(const Activation& act, DType dtype, const void* x, const void* bias,
                               DType bias_dtype, const BlockScaledOutput& y, int64_t rows,
                               int64_t cols, cudaStream_t stream) {
  if (Status s = detail::check_block_bias_forward(act, dtype, x, bias, bias_dtype, y, rows, cols);
      !s.ok())
    return s;
  if (rows == 0 || cols == 0) {
    const detail::QuantizedRecipe recipe = detail::block_recipe(y, rows, cols);
    return detail::finish_empty(recipe, stream);
  }
  return run_block(detail::block_scaled_request(
                       detail::bias_activation_forward_request(act, dtype, x, bias, bias_dtype, y.data,
                                                               rows, cols, {}, nullptr),
                       y),
                   stream);
}

Status glu_forward(const Glu& glu, DType dtype, const void* x, const BlockScaledOutput& y,
                   int64_t rows, int64_t d, cudaStream_t stream) {
  if (Status s = detail::check_block_glu_forward(glu, dtype, x, y, rows, d); !s.ok()) return s;
  if (rows == 0 || d == 0) return detail::finish_empty(detail::block_recipe(y, rows, d), stream);
  return run_block(detail::block_scaled_request(
                       detail::glu_forward_request(glu, dtype, x, y.data, rows, d), y),
                   stream);
}

}  // namespace cuact
