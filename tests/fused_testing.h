// Test support for the fused forms, shared by the CPU suites and the GPU
// suite: a CPU emulator of the fused kernels and the tables of shapes and
// activations the suites sweep (the accuracy rule and judges: fused_accuracy.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fused_accuracy.h"
#include "cuact/fused.h"
#include "row_calls.h"

namespace cuact::test {

// ---------------------------------------------------------------- CPU emulation of the kernels

// Runs a request on host buffers exactly as the row engine's kernel would:
// every block and thread of its planned grid (device_blocks: the block
// budget a device would give a launch that does not reduce) through the
// kernel's own run_tiles / run_extras and block-partial code; each segment of
// partials is then summed in fp32 (the GPU's warp-tree order differs; the
// tolerance covers it). A reducing call's workspace must be a host buffer of
// the queried size. Emulated functors: identity, relu, leaky_relu (a
// parameter), hardswish (rounding to odd), gelu, sigmoid (backward from the
// output) (emulated_activations()); the
// engine is the same for every functor, and fused_functor_test runs every
// functor's forms.
void emulate_fused(const detail::RowRequest& request, int64_t device_blocks);
std::vector<Activation> emulated_activations();

// ---------------------------------------------------------------- tables

// Activations the fused suites sweep: every kind with its defaults plus a few
// non-default parameters (the same list as the elementwise suites).
std::vector<Activation> fused_activations();

// Shapes [rows, cols]: odd widths (not multiples of any vector width), one
// row, one column, widths around the pack and warp sizes.
struct Shape {
  int64_t rows, cols;
};
std::vector<Shape> fused_shapes();

std::string shape_name(const Shape& s);

// The buffer layouts each shape runs in: offsets in elements past a 256-byte
// boundary (aligned; misaligned alike: head, packs and tail in every row that
// lines up; misaligned apart: no common alignment, element by element; in place).
struct FusedLayout {
  const char* name;
  int in_offset, out_offset;
  bool in_place;
};
inline constexpr FusedLayout kFusedLayouts[] = {
    {"aligned", 0, 0, false},
    {"misaligned_alike", 1, 1, false},
    {"misaligned_apart", 1, 3, false},
    {"in_place", 2, 2, true},
};

}  // namespace cuact::test
