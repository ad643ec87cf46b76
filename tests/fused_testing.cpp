#include "fused_testing.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "activation_functors.cuh"
#include "cuact/reference.h"
#include "fused_forms.h"
#include "fused_launch.h"

namespace cuact::test {

// ---------------------------------------------------------------- emulation

namespace {

template <class T, class Form>
void emulate(const Form& form, const detail::FusedCall& c, int64_t device_blocks) {
  using namespace detail;
  constexpr int W = Pack<T>::kWidth;
  RowLaunch<T> l = make_row_launch<T>(c, Form::kReduces, device_blocks);
  std::vector<float> sums(static_cast<size_t>(kBlockThreads) * W);
  for (int64_t b = 0; b < l.geometry.blocks(); ++b) {
    for (int t = 0; t < kBlockThreads; ++t) {
      Accumulator<W> acc;
      for_each_tile_item(l.plan, l.geometry, b, t, [&](int64_t r, int64_t chunk) {
        process_chunk(form, l.args, l.plan, r, chunk, acc);
      });
      if constexpr (Form::kReduces) {
        if (l.args.reduce == ReduceMode::by_column)
          for (int j = 0; j < W; ++j) sums[static_cast<size_t>(t) * W + j] = acc.column[j];
        else
          sums[static_cast<size_t>(t)] = acc.row;
      }
    }
    if constexpr (Form::kReduces) {
      if (l.args.reduce == ReduceMode::by_column)
        write_column_partials<W>(sums.data(), l.plan, l.geometry, b, 0, 1, l.args.partials);
      else if (l.args.reduce == ReduceMode::by_row_channel)
        write_channel_partials(sums.data(), l.geometry, l.args.channels, b, 0, 1, l.args.partials);
    }
  }
  if (!l.reduces) return;
  T* out = static_cast<T*>(c.reduce_out);
  for (int64_t s = 0; s < l.layout.segments; ++s) {
    float sum = 0.0f;
    for (int64_t i = 0; i < l.layout.segment_length; ++i)
      sum += l.args.partials[s * l.layout.segment_length + i];
    out[s] = narrow<T>(sum);
  }
}

// The functors the emulator instantiates: the engine does not depend on the
// functor (fused_functor_test runs every functor's forms), so a few kinds
// stand for all: exact float- and double-returning, smooth, parameterized.
using EmulatedOps = std::tuple<detail::IdentityOp, detail::ReluOp, detail::LeakyReluOp,
                               detail::HardswishOp, detail::GeluOp, detail::GeluTanhOp,
                               detail::SiluOp, detail::SigmoidOp, detail::ThresholdOp>;

template <class Fn, size_t... I>
void visit_emulated_op(const Activation& act, Fn&& fn, std::index_sequence<I...>) {
  bool found = false;
  ((std::tuple_element_t<I, EmulatedOps>::kind == act.kind
        ? (fn(std::tuple_element_t<I, EmulatedOps>(act)), found = true)
        : false),
   ...);
  if (!found) ADD_FAILURE() << describe(act) << " is not among the emulated functors";
}
template <class Fn>
void visit_emulated_op(const Activation& act, Fn&& fn) {
  visit_emulated_op(act, fn, std::make_index_sequence<std::tuple_size_v<EmulatedOps>>{});
}

template <class T>
void emulate_typed(const detail::FusedLaunch& launch, int64_t device_blocks) {
  using namespace detail;
  const FusedCall& c = launch.call;
  switch (launch.op) {
    case FusedOp::activation_forward:
      visit_emulated_op(c.act, [&](const auto& op) {
        using F = std::decay_t<decltype(op)>;
        emulate<T>(ActivationForwardForm<F>{op, c.dropout.scale}, c, device_blocks);
      });
      break;
    case FusedOp::activation_backward:
      visit_emulated_op(c.act, [&](const auto& op) {
        using F = std::decay_t<decltype(op)>;
        emulate<T>(ActivationBackwardForm<F>{op, c.dropout.scale}, c, device_blocks);
      });
      break;
    case FusedOp::gated_backward:
      visit_emulated_op(c.act, [&](const auto& op) {
        using F = std::decay_t<decltype(op)>;
        emulate<T>(GatedBackwardForm<F>{op}, c, device_blocks);
      });
      break;
    case FusedOp::slope_forward: emulate<T>(SlopeForwardForm{c.slope}, c, device_blocks); break;
    case FusedOp::slope_backward: emulate<T>(SlopeBackwardForm{c.slope}, c, device_blocks); break;
  }
}

}  // namespace

void emulate_fused(DType dtype, const detail::FusedLaunch& launch, int64_t device_blocks) {
  switch (dtype) {
    case DType::f16: emulate_typed<__half>(launch, device_blocks); break;
    case DType::bf16: emulate_typed<__nv_bfloat16>(launch, device_blocks); break;
    default: emulate_typed<float>(launch, device_blocks); break;
  }
}

// ---------------------------------------------------------------- tables

std::vector<Activation> fused_activations() { return test_activations(); }

std::vector<Activation> emulated_activations() {
  return {Activation::identity(),         Activation::relu(),        Activation::leaky_relu(0.2f),
          Activation::hardswish(),        Activation::gelu(),        Activation::gelu_tanh(),
          Activation::silu(1.5f),         Activation::sigmoid(),     Activation::threshold(0.5f, -2.0f)};
}

std::vector<Shape> fused_shapes() {
  return {{1, 1}, {1, 7}, {3, 5}, {2, 8}, {4, 33}, {5, 64}, {7, 100}, {17, 31}, {64, 9},
          {3, 1000}, {130, 3}, {1, 4099}};
}

std::string shape_name(const Shape& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

}  // namespace cuact::test
