#include "row_calls.h"

#include "activation_params.h"
#include "cuda_status.h"
#include "device_limits.h"
#include "random_state.h"
#include "dtype_list.h"

namespace cuact::detail {

namespace {

int64_t elem(DType dtype) { return static_cast<int64_t>(dtype_size(dtype)); }

const void* offset(const void* p, int64_t elements, DType dtype) {
  return static_cast<const char*>(p) + elements * elem(dtype);
}
void* offset(void* p, int64_t elements, DType dtype) {
  return static_cast<char*>(p) + elements * elem(dtype);
}

// Dropout draws words for 0 < p <= 1 and whenever the mask is written (p = 0
// then keeps every element: the mask is all ones, the values bit for bit the
// plain activation's, y * 1).
// With the state in device memory (graph-safe), the forward takes the state
// into device_used first and both directions draw from device_used.
void set_dropout(RowRequest& r, const Dropout& dropout, bool mask, bool forward) {
  r.dropout = make_dropout_rule(dropout.p);
  r.random = dropout.p > 0.0f || mask;
  r.stream = {dropout.seed, dropout.offset};
  r.args.scale = r.dropout.scale;
  if (dropout.device_used != nullptr) {
    r.random_from = dropout.device_used;
    if (forward) {
      r.take_state = dropout.device_state;
      r.take_used = dropout.device_used;
    }
  }
}

void set_bias(RowRequest& r, const void* bias, DType bias_dtype) {
  r.param_dtype = bias_dtype;
  if (bias != nullptr) {
    r.param = bias;
    r.param_mode = ParamMode::by_column;
  } else {
    r.param_fill = kNoBias;
  }
}

// The form's clamps of a GLU: an offset of 0 adds -0 (nothing, signs kept).
GluClamp glu_clamp(const Glu& glu) { return {glu.limit, glu.offset == 0.0f ? -0.0f : glu.offset}; }

// A GLU with clamps runs the MoE GLU forms; the parameter is then the row weight.
void set_glu_form(RowRequest& r, const Glu& glu, RowForm moe_form) {
  if (glu.limit == HUGE_VALF && glu.offset == 0.0f) return;
  r.form = moe_form;
  r.param_fill = kNoWeight;
  r.args.glu = glu_clamp(glu);
}

// A GLU call as the row engine sees it: rows of [gated k | linear k] (or
// the other order), k = the interleave (split halves: k = d, one block of
// each per row), so an interleaved x [rows, 2d] is the view
// [rows * d / k, 2k] and y [rows, d] the view [rows * d / k, k].
struct GluView {
  int64_t rows, k, gated, linear;  // the view's rows and width; each half's column
};
GluView glu_view(const Glu& glu, int64_t rows, int64_t d) {
  const int64_t k = glu.interleave > 0 && d > 0 ? glu.interleave : d;
  const bool first = glu.gated == GatedHalf::first;
  return {k > 0 ? rows * (d / k) : rows, k, first ? 0 : k, first ? k : 0};
}

}  // namespace

RowRequest activation_request(Direction direction, const Activation& act, DType dtype,
                              const void* in, const void* grad, void* out, int64_t n) {
  RowRequest r;
  r.form = direction == Direction::forward ? RowForm::forward : RowForm::backward;
  r.act = act;
  r.dtype = dtype;
  r.flat = true;
  r.rows = 1;
  r.cols = n;
  r.in[0] = in;
  if (direction != Direction::forward) r.in[1] = grad;
  r.out[0] = out;
  r.param_fill = kNoBias;
  r.args.from_output = direction == Direction::backward_from_output;
  return r;
}

RowRequest bias_activation_forward_request(const Activation& act, DType dtype, const void* x,
                                           const void* bias, DType bias_dtype, void* y,
                                           int64_t rows, int64_t cols, const Dropout& dropout,
                                           uint8_t* mask) {
  RowRequest r;
  r.form = RowForm::forward;
  r.act = act;
  r.dtype = dtype;
  r.rows = rows;
  r.cols = cols;
  r.in[0] = x;
  r.in_stride[0] = cols;
  r.out[0] = y;
  r.out_stride[0] = cols;
  set_bias(r, bias, bias_dtype);
  r.mask = mask;
  set_dropout(r, dropout, mask != nullptr, true);
  return r;
}

RowRequest bias_activation_backward_request(const Activation& act, DType dtype, const void* x,
                                            const void* bias, DType bias_dtype, const void* dy,
                                            void* dx, void* dbias, int64_t rows, int64_t cols,
                                            const Dropout& dropout, void* workspace) {
  RowRequest r;
  r.form = RowForm::backward;
  r.act = act;
  r.dtype = dtype;
  r.rows = rows;
  r.cols = cols;
  r.in[0] = x;
  r.in_stride[0] = cols;
  r.in[1] = dy;
  r.in_stride[1] = cols;
  r.out[0] = dx;
  r.out_stride[0] = cols;
  set_bias(r, bias, bias_dtype);
  set_dropout(r, dropout, false, false);
  if (dbias != nullptr) {
    r.reduce = ReduceMode::by_column;
    r.reduce_out = dbias;
    r.reduce_dtype = bias_dtype;
    r.workspace = workspace;
  }
  return r;
}

RowRequest glu_forward_request(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows,
                               int64_t d) {
  const GluView v = glu_view(glu, rows, d);
  RowRequest r;
  r.form = RowForm::forward;
  r.act = glu.act;
  r.dtype = dtype;
  r.rows = v.rows;
  r.cols = v.k;
  r.in[0] = offset(x, v.gated, dtype);
  r.in_stride[0] = 2 * v.k;
  r.in[1] = offset(x, v.linear, dtype);
  r.in_stride[1] = 2 * v.k;
  r.out[0] = y;
  r.out_stride[0] = v.k;
  r.param_fill = kNoBias;
  set_glu_form(r, glu, RowForm::moe_glu_forward);
  return r;
}

RowRequest glu_backward_request(const Glu& glu, DType dtype, const void* x, const void* dy,
                                void* dx, int64_t rows, int64_t d) {
  const GluView v = glu_view(glu, rows, d);
  RowRequest r;
  r.form = RowForm::gated_backward;
  r.act = glu.act;
  r.dtype = dtype;
  r.rows = v.rows;
  r.cols = v.k;
  r.in[0] = offset(x, v.gated, dtype);
  r.in_stride[0] = 2 * v.k;
  r.in[1] = dy;
  r.in_stride[1] = v.k;
  r.in[2] = offset(x, v.linear, dtype);
  r.in_stride[2] = 2 * v.k;
  r.out[0] = offset(dx, v.gated, dtype);
  r.out_stride[0] = 2 * v.k;
  r.out[1] = offset(dx, v.linear, dtype);
  r.out_stride[1] = 2 * v.k;
  set_glu_form(r, glu, RowForm::moe_glu_backward);
  return r;
}

RowRequest weighted_glu_request(RowRequest r, int64_t rows, const void* weight,
                                DType weight_dtype, void* dweight, void* workspace) {
  // Row r's weight is the parameter of the view's group r (its d / k rows):
  // each thread of the launch keeps one view row (tile_geometry's
  // row_multiple), whose group is row / (d / k).
  r.form = r.form == RowForm::forward ? RowForm::moe_glu_forward
         : r.form == RowForm::gated_backward ? RowForm::moe_glu_backward
                                             : r.form;
  r.param = weight;
  r.param_dtype = weight_dtype;
  r.param_mode = ParamMode::by_row_group;
  r.channels = rows > 0 ? r.rows / rows : 1;
  if (dweight != nullptr) {
    r.reduce = ReduceMode::by_row_group;
    r.reduce_out = dweight;
    r.reduce_dtype = weight_dtype;
    r.workspace = workspace;
  }
  return r;
}

RowRequest expert_rows_request(RowRequest r, int64_t rows, const ExpertRows& experts) {
  r.form = r.form == RowForm::forward ? RowForm::moe_glu_forward
         : r.form == RowForm::gated_backward ? RowForm::moe_glu_backward
                                             : r.form;
  if (r.param == nullptr) r.param_fill = kNoWeight;
  ExpertRowMap& m = r.experts;
  m.counts = experts.counts;
  m.offsets = experts.offsets;
  m.error = experts.error;
  m.experts = experts.experts;
  m.capacity = experts.counts != nullptr ? rows / experts.experts : rows;
  m.group = rows > 0 && r.rows > 0 ? r.rows / rows : 1;
  return r;
}

RowRequest quantized_request(RowRequest r, const QuantizedOutput& out, void* workspace,
                             int64_t reduction_bytes) {
  r.quantized = true;
  r.recipe = quantized_recipe(out, workspace, reduction_bytes);
  return r;
}

RowRequest block_scaled_request(RowRequest r, const BlockScaledOutput& out) {
  r.quantized = true;
  r.block_scaled = true;
  r.recipe = block_recipe(out, r.rows, r.cols);
  return r;
}

PreluLayout prelu_layout(int64_t outer, int64_t channels, int64_t inner) {
  if (inner == 1) return {outer, channels, ParamMode::by_column, ReduceMode::by_column};
  return {outer * channels, inner, ParamMode::by_row_channel, ReduceMode::by_row_channel};
}

namespace {

RowRequest prelu_request(DType dtype, const void* x, const void* weight, DType weight_dtype,
                         void* out, int64_t outer, int64_t channels, int64_t inner) {
  const PreluLayout layout = prelu_layout(outer, channels, inner);
  RowRequest r;
  r.form = RowForm::slope_forward;
  r.dtype = dtype;
  r.rows = layout.rows;
  r.cols = layout.cols;
  r.in[0] = x;
  r.in_stride[0] = layout.cols;
  r.out[0] = out;
  r.out_stride[0] = layout.cols;
  r.param = weight;
  r.param_dtype = weight_dtype;
  r.param_mode = layout.param;
  r.channels = channels;
  r.args.slope = SlopeRule{0.0f, 0.0f, false};  // the weight itself, x > 0 linear
  return r;
}

}  // namespace

RowRequest prelu_forward_request(DType dtype, const void* x, const void* weight,
                                 DType weight_dtype, void* y, int64_t outer, int64_t channels,
                                 int64_t inner) {
  return prelu_request(dtype, x, weight, weight_dtype, y, outer, channels, inner);
}

RowRequest prelu_backward_request(DType dtype, const void* x, const void* weight,
                                  DType weight_dtype, const void* dy, void* dx, void* dweight,
                                  int64_t outer, int64_t channels, int64_t inner,
                                  void* workspace) {
  RowRequest r = prelu_request(dtype, x, weight, weight_dtype, dx, outer, channels, inner);
  r.form = RowForm::slope_backward;
  r.in[1] = dy;
  r.in_stride[1] = r.cols;
  if (dweight != nullptr) {
    r.reduce = prelu_layout(outer, channels, inner).reduce;
    r.reduce_out = dweight;
    r.reduce_dtype = weight_dtype;
    r.workspace = workspace;
  }
  return r;
}

RowRequest rrelu_request(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* out,
                         int64_t n, bool backward) {
  RowRequest r;
  r.form = backward ? RowForm::slope_backward : RowForm::slope_forward;
  r.dtype = dtype;
  r.flat = true;
  r.rows = 1;
  r.cols = n;
  r.in[0] = x;
  r.in[1] = backward ? dy : nullptr;
  r.out[0] = out;
  if (rrelu.training) {
    // slope = lower + (upper - lower) * u, from the element's draw.
    r.param_fill = rrelu.lower;
    r.args.slope = SlopeRule{rrelu.upper - rrelu.lower, rrelu.upper, true};
    r.random = true;
    r.stream = {rrelu.seed, rrelu.offset};
    if (rrelu.device_used != nullptr) {  // graph-safe, as dropout's (set_dropout)
      r.random_from = rrelu.device_used;
      if (!backward) {
        r.take_state = rrelu.device_state;
        r.take_used = rrelu.device_used;
      }
    }
  } else {
    r.param_fill = static_cast<float>((static_cast<double>(rrelu.lower) + rrelu.upper) / 2.0);
    r.args.slope = SlopeRule{0.0f, 0.0f, true};
  }
  return r;
}

int64_t bias_backward_workspace(DType dtype, int64_t rows, int64_t cols) {
  return reduction_workspace_bytes(rows, cols, static_cast<int>(elem(dtype)), ReduceMode::by_column,
                                   1);
}

int64_t prelu_backward_workspace(DType dtype, int64_t outer, int64_t channels, int64_t inner) {
  if (outer == 0 || channels == 0 || inner == 0) return 0;
  const PreluLayout layout = prelu_layout(outer, channels, inner);
  return reduction_workspace_bytes(layout.rows, layout.cols, static_cast<int>(elem(dtype)),
                                   layout.reduce, channels);
}

int64_t glu_backward_workspace(const Glu& glu, DType dtype, int64_t rows, int64_t d) {
  if (rows == 0 || d == 0) return 0;
  const GluView v = glu_view(glu, rows, d);
  return reduction_workspace_bytes(v.rows, v.k, static_cast<int>(elem(dtype)),
                                   ReduceMode::by_row_group, v.rows / rows);
}

// ---------------------------------------------------------------- plan and launch

namespace {

// The chunk width of the request's kernel (row_plan.h, chunk_bytes_for; the
// launch checks that it matches the form's kChunkWidth): the backward forms
// reduce (dbias, dweight) whether or not the call asks for the sums.
int chunk_bytes_of(const RowRequest& r, int elem_size) {
  const bool reduces = r.form == RowForm::backward || r.form == RowForm::slope_backward ||
                       r.form == RowForm::moe_glu_backward;
  const int block_chunk =
      !r.block_scaled ? 0 : r.recipe.store.scale_type == BlockScale::e4m3 ? 16 : 32;
  return chunk_bytes_for(r.random, reduces, elem_size, block_chunk);
}

}  // namespace

RowCall plan_rows(const RowRequest& r, int64_t device_blocks) {
  RowCall c;
  const int in_size = static_cast<int>(elem(r.dtype));
  const int out_size = r.quantized ? 1 : in_size;
  const int widest = in_size > out_size ? in_size : out_size;
  const int chunk_bytes = chunk_bytes_of(r, widest);
  if (r.flat) {
    std::uintptr_t addresses[kMaxInputs + kMaxOutputs];
    int sizes[kMaxInputs + kMaxOutputs];
    int count = 0;
    for (const void* p : r.in)
      if (p != nullptr) {
        sizes[count] = in_size;
        addresses[count++] = reinterpret_cast<std::uintptr_t>(p);
      }
    for (const void* p : r.out)
      if (p != nullptr) {
        sizes[count] = out_size;
        addresses[count++] = reinterpret_cast<std::uintptr_t>(p);
      }
    c.plan = make_flat_plan(r.cols, widest, addresses, count, chunk_bytes, sizes);
  } else {
    StreamLayout streams[kMaxInputs + kMaxOutputs];
    int count = 0;
    for (int k = 0; k < kMaxInputs; ++k)
      if (r.in[k] != nullptr)
        streams[count++] = {reinterpret_cast<std::uintptr_t>(r.in[k]), r.in_stride[k] * in_size,
                            in_size};
    for (int k = 0; k < kMaxOutputs; ++k)
      if (r.out[k] != nullptr)
        streams[count++] = {reinterpret_cast<std::uintptr_t>(r.out[k]),
                            r.out_stride[k] * out_size, out_size};
    c.plan = make_row_plan(r.rows, r.cols, widest, streams, count, chunk_bytes);
    // fp8 blocks of 64 and 128 are groups of the stage's 32-wide chunks.
    if (r.block_scaled)
      c.plan = block_scaled_plan(c.plan, r.recipe.store.block > c.plan.width
                                             ? r.recipe.store.block / c.plan.width
                                             : 1);
  }
  c.plan.in_size = in_size;
  c.plan.out_size = out_size;
  for (int k = 0; k < kMaxInputs; ++k) {
    c.in[k] = r.in[k];
    c.in_stride[k] = r.flat ? c.plan.cols : r.in_stride[k];
  }
  for (int k = 0; k < kMaxOutputs; ++k) {
    c.out[k] = r.out[k];
    c.out_stride[k] = r.flat ? c.plan.cols : r.out_stride[k];
  }
  c.param = r.param;
  c.param_f32 = r.param_dtype == DType::f32;
  c.param_mode = r.param_mode;
  c.param_fill = r.param_fill;
  c.channels = FastDivider(static_cast<uint64_t>(r.channels > 0 ? r.channels : 1));
  c.mask = r.mask;
  c.random = r.stream;
  c.random_from = r.random_from;
  c.keep_threshold = r.dropout.threshold;
  c.quantized = r.recipe.store;
  c.experts = r.experts;
  const bool reduces = r.reduce != ReduceMode::none;
  c.reduce = r.reduce;
  const int64_t row_multiple = r.param_mode == ParamMode::by_row_channel ? r.channels
                               : r.param_mode == ParamMode::by_row_group ? c.plan.rows  // a row per thread
                                                                         : 1;
  if (r.max_blocks > 0 && r.max_blocks < device_blocks) device_blocks = r.max_blocks;
  if (reduces) {
    c.geometry = reduction_geometry(c.plan.rows, c.plan.cols, c.plan.width, r.reduce, r.channels,
                                    r.max_blocks > 0 ? r.max_blocks : kReductionBlocks);
    const auto base = reinterpret_cast<std::uintptr_t>(r.workspace);
    c.partials = reinterpret_cast<float*>((base + kWorkspaceAlignment - 1) / kWorkspaceAlignment *
                                          kWorkspaceAlignment);
  } else {
    c.geometry = tile_geometry(c.plan.rows, c.plan.units(), device_blocks, false, row_multiple);
  }
  set_row_gaps(c);
  return c;
}

ReduceLayout reduce_layout_of(const RowRequest& r, const RowCall& c) {
  return reduce_layout(r.reduce, c.plan.rows, c.plan.cols, c.geometry, r.channels);
}

RowRequest row_pass(const RowRequest& r, const QuantizedStore& store) {
  RowRequest p = r;
  p.recipe.store = store;
  if (!r.quantized) return p;
  if (!store.writes) {  // the amax pass: outputs, mask and sums untouched
    p.mask = nullptr;
    p.reduce = ReduceMode::none;
    // A block-scaled call's amax pass (NVFP4's tensor scale) runs the
    // per-tensor fp8 kernels of its form: the same fp32 results, nothing stored.
    p.block_scaled = false;
  } else if (r.recipe.current) {  // the store pass: the first pass took the random state
    p.take_state = nullptr;
    p.take_used = nullptr;
  }
  return p;
}

namespace {

// The launcher of a request's form for data type T (the activation's index K).
template <class T>
RowLauncher launcher_for(const RowRequest& r, std::size_t k) {
  if (r.block_scaled) {
    if (r.form == RowForm::forward && !r.random)
      return r.recipe.store.scale_type == BlockScale::e4m3 ? nvfp4_forward_launchers<T>()[k]
                                                           : block_forward_launchers<T>()[k];
    return nullptr;  // not in the list (the entry points never ask)
  }
  if (r.quantized) {
    if (r.form == RowForm::forward) return quantized_forward_launchers<T>(r.random)[k];
    if (r.form == RowForm::backward && !r.random) return quantized_backward_launchers<T>()[k];
    return nullptr;  // not in the list (the entry points never ask)
  }
  switch (r.form) {
    case RowForm::forward: return forward_launchers<T>(r.random)[k];
    case RowForm::backward: return backward_launchers<T>(r.random)[k];
    case RowForm::gated_backward: return gated_backward_launchers<T>()[k];
    case RowForm::slope_forward: return slope_launcher<T>(false, r.random);
    case RowForm::slope_backward: return slope_launcher<T>(true, r.random);
    case RowForm::moe_glu_forward: return moe_glu_launchers<T>(false)[k];
    case RowForm::moe_glu_backward: return moe_glu_launchers<T>(true)[k];
  }
  return nullptr;
}

bool activation_form(RowForm f) {
  return f != RowForm::slope_forward && f != RowForm::slope_backward;
}

}  // namespace

namespace {

Status run_pass(const RowRequest& r, int64_t device_blocks, cudaStream_t stream) {
  const RowCall call = plan_rows(r, device_blocks);
  cudaError_t err = cudaSuccess;
  if (r.take_state != nullptr) {
    if ((err = launch_take_random_state(r.take_state, r.take_used, stream)) != cudaSuccess)
      return status_from_cuda(err, "launching the random state's step failed");
  }
  visit_dtype(r.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (!activation_form(r.form)) {
      err = launcher_for<T>(r, 0)(nullptr, r.args, call, stream);
      return;
    }
    visit_kind(r.act.kind, [&](auto k) {
      using P = ParamsOf<decltype(k)::value>;
      const P params = params_from<P>(r.act);
      const RowLauncher launch = launcher_for<T>(r, decltype(k)::value);
      // (The entry points' checks refuse what the table lacks; this keeps a
      // missing kernel an error, never a call through null.)
      err = launch != nullptr ? launch(&params, r.args, call, stream) : cudaErrorInvalidDeviceFunction;
    });
  });
  if (err == cudaErrorNoKernelImageForDevice && r.quantized)
    return {StatusCode::unsupported, kNoFp8KernelForDevice};
  if (err != cudaSuccess || r.reduce == ReduceMode::none)
    return status_from_cuda(err, "launching the kernel failed");
  const ReduceLayout layout = reduce_layout_of(r, call);
  visit_dtype(r.reduce_dtype, [&](auto tag) {
    using R = typename decltype(tag)::type;
    err = launch_sum_partials(call.partials, layout, call.experts, static_cast<R*>(r.reduce_out),
                              stream);
  });
  return status_from_cuda(err, "launching the reduction failed");
}

}  // namespace

Status clear_expert_sums(const RowRequest& r, int64_t rows, cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  visit_dtype(r.reduce_dtype, [&](auto tag) {
    using R = typename decltype(tag)::type;
    err = launch_sum_partials(nullptr, ReduceLayout{rows, 0}, r.experts,
                              static_cast<R*>(r.reduce_out), stream);
  });
  return status_from_cuda(err, "launching the reduction failed");
}

Status run_rows(const RowRequest& r, cudaStream_t stream) {
  DeviceLimits limits;
  if (const cudaError_t err = current_device_limits(&limits); err != cudaSuccess)
    return status_from_cuda(err, "querying the current device failed");
  const int64_t resident = static_cast<int64_t>(limits.sm_count) * (limits.threads_per_sm / kBlockThreads);
  const int64_t device_blocks = (resident > 0 ? resident : 1) * kWaves;
  if (!r.quantized) return run_pass(r, device_blocks, stream);
  return run_quantized_passes(r.recipe, stream, [&](const QuantizedStore& store) {
    return run_pass(row_pass(r, store), device_blocks, stream);
  });
}

}  // namespace cuact::detail
