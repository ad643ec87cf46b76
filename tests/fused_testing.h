// Test support for the fused forms, shared by the CPU suites and the GPU
// suite: the tables of shapes and activations the suites sweep (the kernel
// emulator: fused_emulation.h; the accuracy rule and judges: fused_accuracy.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cuact/fused.h"
#include "fused_accuracy.h"
#include "fused_emulation.h"

namespace cuact::test {

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
