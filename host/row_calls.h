// How each entry point maps onto the row engine: a RowRequest (the streams
// with their strides, the parameter, dropout, the reduction, the form), its
// plan and geometry (a RowCall), and which launcher of the dispatch table runs
// it. Arguments are checked before a request is built. CPU tests build
// requests here too, and run their RowCall through the engine on the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuact/fused.h"
#include "cuact/quantized.h"
#include "kernel_table.h"
#include "quantized_passes.h"
#include "row_engine.h"

namespace cuact::detail {

enum class RowForm {
  forward, backward, gated_backward, slope_forward, slope_backward,
  moe_glu_forward, moe_glu_backward,  // GLU with clamps or row weights (forms.h)
};

struct RowRequest {
  RowForm form = RowForm::forward;
  Activation act;  // activation forms
  DType dtype = DType::f32;
  bool flat = false;  // one buffer of cols elements (rows == 1)
  int64_t rows = 0, cols = 0;
  const void* in[kMaxInputs] = {};
  int64_t in_stride[kMaxInputs] = {};
  void* out[kMaxOutputs] = {};
  int64_t out_stride[kMaxOutputs] = {};
  const void* param = nullptr;
  DType param_dtype = DType::f32;
  ParamMode param_mode = ParamMode::none;
  float param_fill = 0.0f;
  int64_t channels = 1;
  uint8_t* mask = nullptr;
  bool random = false;  // the form draws words: dropout, or rrelu training
  RandomStream stream;
  const uint64_t* random_from = nullptr;  // graph-safe: the {seed, offset} the kernel reads
  uint64_t* take_state = nullptr;         // forward: take_random_state(take_state, take_used) first
  uint64_t* take_used = nullptr;
  DropoutRule dropout;
  FormArgs args;
  ReduceMode reduce = ReduceMode::none;
  void* reduce_out = nullptr;
  DType reduce_dtype = DType::f32;
  void* workspace = nullptr;  // at least reduction_workspace_bytes(...)
  int64_t max_blocks = 0;     // > 0: at most this many blocks (tests force small grids)
  // A quantized output (fp8 codes in out[0]; the forward and backward
  // activation forms): how they are stored (recipe.store; its `writes` is
  // the pass's) and the recipe's passes (quantized_passes.h).
  bool quantized = false;
  QuantizedRecipe recipe;
  // Block-scaled codes (the forward forms, row views): chunks of 32 columns
  // from column 0 of every row, the blocks' scales written beside them.
  bool block_scaled = false;
  // The MoE GLU forms' valid rows (expert_rows.h; its group: view rows per
  // token row). Inactive: every row.
  ExpertRowMap experts;
};

// The request of one pass of a quantized call (quantized_passes.h) with
// that pass's store: the amax pass (it does not write) leaves the mask and
// the sums alone; the store pass does not take the random state again (the
// first took it, both read it).
RowRequest row_pass(const RowRequest& r, const QuantizedStore& store);

// The entry points' requests (arguments already checked; sizes > 0).
RowRequest activation_request(Direction direction, const Activation& act, DType dtype,
                              const void* in, const void* grad, void* out, int64_t n);
RowRequest bias_activation_forward_request(const Activation& act, DType dtype, const void* x,
                                           const void* bias, DType bias_dtype, void* y,
                                           int64_t rows, int64_t cols, const Dropout& dropout,
                                           uint8_t* mask);
RowRequest bias_activation_backward_request(const Activation& act, DType dtype, const void* x,
                                            const void* bias, DType bias_dtype, const void* dy,
                                            void* dx, void* dbias, int64_t rows, int64_t cols,
                                            const Dropout& dropout, void* workspace);
RowRequest glu_forward_request(const Glu& glu, DType dtype, const void* x, void* y, int64_t rows,
                               int64_t d);
RowRequest glu_backward_request(const Glu& glu, DType dtype, const void* x, const void* dy,
                                void* dx, int64_t rows, int64_t d);
// A GLU request of `rows` rows made weighted (an MoE GLU form): weight
// [rows] in weight_dtype is the row's parameter (and, backward, dweight
// [rows] its sums; null: not asked).
RowRequest weighted_glu_request(RowRequest r, int64_t rows, const void* weight, DType weight_dtype,
                                void* dweight = nullptr, void* workspace = nullptr);
// A GLU request (plain or weighted) of `rows` token rows over the valid rows
// of `experts` (an MoE GLU form; the map's group: the view rows per token).
RowRequest expert_rows_request(RowRequest r, int64_t rows, const ExpertRows& experts);
// Writes 0 to the valid rows of out [rows] (reduce_dtype): the dweight of a
// call over expert rows with d = 0.
Status clear_expert_sums(const RowRequest& r, int64_t rows, cudaStream_t stream);
RowRequest prelu_forward_request(DType dtype, const void* x, const void* weight,
                                 DType weight_dtype, void* y, int64_t outer, int64_t channels,
                                 int64_t inner);
RowRequest prelu_backward_request(DType dtype, const void* x, const void* weight,
                                  DType weight_dtype, const void* dy, void* dx, void* dweight,
                                  int64_t outer, int64_t channels, int64_t inner, void* workspace);
RowRequest rrelu_request(const Rrelu& rrelu, DType dtype, const void* x, const void* dy, void* out,
                         int64_t n, bool backward);

// A request of the forward or backward activation forms (out[0] the codes)
// made quantized: quantized_recipe's store and recipe.
RowRequest quantized_request(RowRequest r, const QuantizedOutput& out, void* workspace,
                             int64_t reduction_bytes);
// A forward request over a row view (out[0] the codes) made block-scaled:
// block_recipe's store.
RowRequest block_scaled_request(RowRequest r, const BlockScaledOutput& out);

// PReLU's [outer, C, inner] as a row view: one row per (outer, c) with the
// weight by row channel, or, when inner == 1, one row per outer with the
// weight by column.
struct PreluLayout {
  int64_t rows, cols;
  ParamMode param;
  ReduceMode reduce;
};
PreluLayout prelu_layout(int64_t outer, int64_t channels, int64_t inner);

// Workspace bytes of the reducing calls (0 when there is nothing to reduce).
int64_t bias_backward_workspace(DType dtype, int64_t rows, int64_t cols);
int64_t prelu_backward_workspace(DType dtype, int64_t outer, int64_t channels, int64_t inner);
int64_t glu_backward_workspace(const Glu& glu, DType dtype, int64_t rows, int64_t d);

// The launch of a request: its plan, and its geometry for a device whose
// non-reducing launches may use `device_blocks` blocks (reducing launches
// depend on the shape alone).
RowCall plan_rows(const RowRequest& r, int64_t device_blocks);
// The reduction's partials layout of a planned reducing call.
ReduceLayout reduce_layout_of(const RowRequest& r, const RowCall& c);

// Plans a request for the current device and enqueues it (and the sum of its
// partials); maps the CUDA result.
Status run_rows(const RowRequest& r, cudaStream_t stream);

}  // namespace cuact::detail
