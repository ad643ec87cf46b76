#include "fused_emulation.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>
#include <vector>

#include "accuracy.h"
#include "activation_params.h"
#include "dtype_list.h"
#include "forms.h"
#include "row_calls.h"
#include "row_engine.h"

namespace cuact::test {

namespace {

using detail::Accumulator;
using detail::kBlockThreads;
using detail::kChunkWidth;
using detail::ReduceMode;
using detail::RowCall;
using detail::RowForm;
using detail::RowRequest;

template <class Form>
void emulate(const Form& form, const RowRequest& r, int64_t device_blocks) {
  constexpr int W = kChunkWidth<Form>;
  const RowCall c = detail::plan_rows(r, device_blocks);
  // The launch refuses a plan made for another chunk width (row_kernel.cuh); so does the emulator.
  if (c.plan.width != W) throw std::logic_error("plan_rows chose a chunk width the form does not use");
  if (c.plan.in_size != static_cast<int>(sizeof(typename Form::In)) ||
      c.plan.out_size != static_cast<int>(sizeof(typename Form::Out)))
    throw std::logic_error("plan_rows planned other element types than the form's");
  const int64_t blocks = c.geometry.blocks();
  // The kernels' prologue over expert rows (each block's; the same for all).
  std::vector<int64_t> prefix, token_prefix;
  const detail::RowSegments map = detail::host_row_segments(c.experts, c.experts.group, prefix);
  // The reductions' second step walks tokens.
  const detail::RowSegments tokens = detail::host_row_segments(c.experts, 1, token_prefix);
  std::vector<float> sums(static_cast<size_t>(kBlockThreads) * W);
  float amax = 0.0f;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int t = 0; t < kBlockThreads; ++t) {
      Accumulator<W> acc;
      detail::run_tiles(form, c, b, t, acc, map);
      if (c.plan.extras() > 0)
        detail::run_extras(form, c, b * kBlockThreads + t, blocks * kBlockThreads, acc.amax);
      amax = std::fmax(amax, acc.amax);
      if constexpr (Form::kReduces) {
        if (c.reduce == ReduceMode::by_column)
          for (int j = 0; j < W; ++j) sums[static_cast<size_t>(t) * W + j] = acc.column[j];
        else
          sums[static_cast<size_t>(t)] = acc.row;
      }
    }
    if constexpr (Form::kReduces) {
      if (c.reduce != ReduceMode::none)
        detail::write_block_partials<W>(sums.data(), c.plan, c.geometry, c.reduce,
                                        static_cast<int64_t>(c.channels.divisor), b, 0, 1, c.partials);
    }
  }
  if constexpr (detail::StageOf<Form>::kQuantized) {  // the kernel's fold_amax
    const detail::QuantizedStore& q = c.quantized;
    if (q.amax != nullptr) *q.amax = std::fmax(*q.amax, amax);
    if (q.scale_inv != nullptr && q.writes) *q.scale_inv = 1.0f / (q.scale != nullptr ? *q.scale : 1.0f);
  }
  if (r.reduce == ReduceMode::none) return;
  const detail::ReduceLayout layout = detail::reduce_layout_of(r, c);
  detail::visit_dtype(r.reduce_dtype, [&](auto tag) {
    using R = typename decltype(tag)::type;
    R* out = static_cast<R*>(r.reduce_out);
    for (int64_t s = 0; s < tokens.rows(layout.segments); ++s) {
      float sum = 0.0f;
      for (int64_t i = 0; i < layout.segment_length; ++i) sum += c.partials[s * layout.segment_length + i];
      out[tokens.row(s)] = device::narrow<R>(sum);
    }
  });
}

// The functors the emulator instantiates: the engine does not depend on the
// functor (fused_functor_test runs every functor's forms), so a few kinds
// stand for all: exact and smooth, with and without parameters; and the
// gates of cuact-bench's fused rows (gelu, silu). Each kind costs build
// time: every form x dtype is instantiated for it.
constexpr ActivationKind kEmulatedKinds[] = {
    ActivationKind::identity, ActivationKind::relu, ActivationKind::leaky_relu,
    ActivationKind::hardswish, ActivationKind::gelu, ActivationKind::sigmoid,
    ActivationKind::silu};

constexpr bool emulated(std::size_t k) {
  for (ActivationKind e : kEmulatedKinds)
    if (static_cast<std::size_t>(e) == k) return true;
  return false;
}

// A quantized output's forms (kernel_table.cuh: the fp32 functor, Code8 or
// BlockCode8 out).
template <class T, std::size_t K>
void emulate_quantized(const RowRequest& r, int64_t device_blocks) {
  using F = detail::Functor<K, float>;
  const F f(detail::params_from<typename F::Params>(r.act));
  using detail::Code8;
  if (r.block_scaled) {
    if (r.form != RowForm::forward || r.random)
      throw std::invalid_argument("no block-scaled kernel for this form");
    if (r.recipe.store.scale_type == BlockScale::e4m3)
      emulate(detail::forward_form<F, T, false, detail::BlockCode4>(f, r.args), r,
              device_blocks);
    else
      emulate(detail::forward_form<F, T, false, detail::BlockCode8>(f, r.args), r,
              device_blocks);
    return;
  }
  if (r.form == RowForm::forward && r.random)
    emulate(detail::forward_form<F, T, true, Code8>(f, r.args), r, device_blocks);
  else if (r.form == RowForm::forward)
    emulate(detail::forward_form<F, T, false, Code8>(f, r.args), r, device_blocks);
  else if (r.form == RowForm::backward && !r.random)
    emulate(detail::backward_form<F, T, false, Code8>(f, r.args), r, device_blocks);
  else
    throw std::invalid_argument("no quantized kernel for this form");
}

template <class T>
void emulate_typed(const RowRequest& r, int64_t device_blocks) {
  if (r.form == RowForm::slope_forward || r.form == RowForm::slope_backward) {
    const bool backward = r.form == RowForm::slope_backward;
    if (backward && r.random) emulate(detail::SlopeBackward<T, true>{r.args.slope}, r, device_blocks);
    if (backward && !r.random) emulate(detail::SlopeBackward<T, false>{r.args.slope}, r, device_blocks);
    if (!backward && r.random) emulate(detail::SlopeForward<T, true>{r.args.slope}, r, device_blocks);
    if (!backward && !r.random) emulate(detail::SlopeForward<T, false>{r.args.slope}, r, device_blocks);
    return;
  }
  if (std::find(std::begin(kEmulatedKinds), std::end(kEmulatedKinds), r.act.kind) == std::end(kEmulatedKinds))
    throw std::invalid_argument(describe(r.act) + " is not among the emulated functors");
  detail::visit_kind(r.act.kind, [&](auto k) {
    constexpr std::size_t K = decltype(k)::value;
    if constexpr (emulated(K)) {
      if (r.quantized) {
        emulate_quantized<T, K>(r, device_blocks);
        return;
      }
      using F = detail::Functor<K, T>;
      const F f(detail::params_from<typename F::Params>(r.act));
      const detail::FormArgs& a = r.args;
      switch (r.form) {
        case RowForm::forward:
          if (r.random) emulate(detail::forward_form<F, T, true>(f, a), r, device_blocks);
          else emulate(detail::forward_form<F, T, false>(f, a), r, device_blocks);
          break;
        case RowForm::backward:
          if (r.random) emulate(detail::backward_form<F, T, true>(f, a), r, device_blocks);
          else emulate(detail::backward_form<F, T, false>(f, a), r, device_blocks);
          break;
        case RowForm::gated_backward:
          emulate(detail::gated_backward_form<F, T>(f, a), r, device_blocks);
          break;
        case RowForm::moe_glu_forward:
          emulate(detail::moe_glu_forward_form<F, T>(f, a), r, device_blocks);
          break;
        case RowForm::moe_glu_backward:
          emulate(detail::moe_glu_backward_form<F, T>(f, a), r, device_blocks);
          break;
        default: break;
      }
    }
  });
}

}  // namespace

namespace {

void emulate_pass(const detail::RowRequest& request, int64_t device_blocks) {
  // A graph-safe call's first step (its one-thread kernel), on host memory here.
  if (request.take_state != nullptr) detail::take_random_state(request.take_state, request.take_used);
  detail::visit_dtype(request.dtype, [&](auto tag) {
    emulate_typed<typename decltype(tag)::type>(request, device_blocks);
  });
}

}  // namespace

void emulate_fused(const detail::RowRequest& request, int64_t device_blocks) {
  if (!request.quantized) return emulate_pass(request, device_blocks);
  // run_rows's steps (run_quantized_passes): the amax cleared, the passes,
  // the scale step between them.
  const detail::QuantizedRecipe& recipe = request.recipe;
  if (recipe.store.amax != nullptr) *recipe.store.amax = 0.0f;
  const detail::QuantizedPasses passes = detail::quantized_passes(recipe);
  emulate_pass(detail::row_pass(request, passes.first), device_blocks);
  if (!passes.two) return;
  detail::scale_step_of(recipe).run(*recipe.store.amax);
  emulate_pass(detail::row_pass(request, passes.second), device_blocks);
}

std::vector<Activation> emulated_activations() {
  return {Activation::identity(), Activation::relu(), Activation::leaky_relu(0.2f),
          Activation::hardswish(), Activation::gelu(), Activation::sigmoid(), Activation::silu()};
}

}  // namespace cuact::test
