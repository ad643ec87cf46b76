// What one launch of a FusedCall is: its typed buffers, its row plan, its
// tile geometry and, for a reducing call, where its partials go. Host code
// (plain C++): launch_rows (row_kernels.cuh) enqueues exactly this, and the
// CPU tests walk exactly this on host buffers.
#pragma once

#include <climits>
#include <cstdint>

#include "fused_table.h"
#include "numeric.cuh"
#include "row_engine.h"

namespace cuact::detail {

template <class T>
struct RowLaunch {
  RowArgs<T> args;
  RowPlan plan;
  TileGeometry geometry;
  ReduceLayout layout;  // reducing launches: the partials' segments
  bool reduces = false;
};

// form_reduces: the form sums a term (Form::kReduces). device_blocks: the
// block budget of a launch that does not reduce (the device's resident
// blocks times kWaves, or the call's max_blocks).
template <class T>
RowLaunch<T> make_row_launch(const FusedCall& c, bool form_reduces, int64_t device_blocks) {
  RowLaunch<T> l;
  RowArgs<T>& a = l.args;
  for (int k = 0; k < kMaxInStreams; ++k) {
    a.in[k] = static_cast<const T*>(c.in[k]);
    a.in_stride[k] = c.in_stride[k];
    a.in_fill[k] = narrow<T>(c.in_fill[k]);
  }
  for (int k = 0; k < kMaxOutStreams; ++k) {
    a.out[k] = static_cast<T*>(c.out[k]);
    a.out_stride[k] = c.out_stride[k];
  }
  a.param = static_cast<const T*>(c.param);
  a.param_mode = c.param_mode;
  a.param_fill = c.param_fill;
  a.channels = c.channels;
  a.mask = c.mask;
  a.use_random = c.use_random;
  a.random = c.random;
  // Words are drawn for 0 < p < 1 only, whose threshold fits in 32 bits; p = 1 keeps none.
  a.keep_threshold = static_cast<uint32_t>(c.dropout.threshold);
  a.keep_all = c.dropout.threshold == 0;
  l.reduces = form_reduces && c.reduce != ReduceMode::none;
  a.reduce = l.reduces ? c.reduce : ReduceMode::none;

  l.plan = make_row_plan(c.rows, c.cols, sizeof(T), reinterpret_cast<std::uintptr_t>(c.in[0]));
  if (l.reduces) {
    l.geometry =
        reduction_geometry(c.rows, c.cols, Pack<T>::kWidth, c.reduce, c.channels, c.max_blocks);
    l.layout = reduce_layout(c.reduce, c.cols, l.geometry, c.channels);
    const auto base = reinterpret_cast<std::uintptr_t>(c.workspace);
    a.partials = reinterpret_cast<float*>((base + kWorkspaceAlignment - 1) / kWorkspaceAlignment *
                                          kWorkspaceAlignment);
  } else {
    l.geometry = tile_geometry(c.rows, l.plan.chunks,
                               c.max_blocks > 0 ? c.max_blocks : device_blocks, false);
  }
  return l;
}

inline bool launchable(const TileGeometry& g) { return g.blocks() <= INT_MAX; }

}  // namespace cuact::detail
