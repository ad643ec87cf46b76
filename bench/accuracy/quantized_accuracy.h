// The accuracy rule of quantized (fp8) outputs as code (docs/ACCURACY.md,
// "Quantized outputs"), shared by the CPU tests (the functors and the output
// stage on the host), the GPU tests (kernels) and cuact-bench.
//
// With v = the exact result times the scale (double reference) and delta the
// fp32 result's error bound times the scale plus half an fp32 ulp of v (the
// product's rounding), a code is
// - correctly rounded: it is the fp8 rounding of v (reference::fp8_bits);
// - near a boundary: it is the rounding of some value within delta of v
//   (the fp32 result, rounded once more, fell on the other side of a
//   midpoint): accepted, and counted;
// - outside: anything else, including a code more than one fp8 step from
//   the correctly rounded one. NaN results must give a NaN code.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cuact/activation.h"
#include "cuact/fp8.h"

namespace cuact::test {

struct QuantizedReport {
  int64_t results = 0;
  int64_t correctly_rounded = 0;
  int64_t near_boundary = 0;
  int64_t outside = 0;
  std::vector<std::string> first_failures;  // up to 5, readable
  void add(const QuantizedReport& other);
};

// Computes a direction for every (in, dy) as codes (the kernels on a GPU, or
// quantize_functors_on_host).
using CodeEvaluator = std::function<std::vector<uint8_t>(const std::vector<double>& in,
                                                         const std::vector<double>& dy)>;

// The codes the quantized kernels compute, on the host: the fp32 functor,
// then the output stage (cuda/output_stage.h) with this scale.
std::vector<uint8_t> quantize_functors_on_host(const Activation& act, Direction direction,
                                               Fp8 format, float scale,
                                               const std::vector<double>& in,
                                               const std::vector<double>& dy);

// The max |result| the kernels fold into amax for these inputs: the fp32
// functor's results, NaN excluded.
float functor_amax_on_host(const Activation& act, Direction direction,
                           const std::vector<double>& in, const std::vector<double>& dy);

// One direction judged over a grid of x (in dtype: see test_inputs), with
// test_gradient(i) as dy and, for backward_from_output, y = f(x) rounded to
// dtype as the input.
QuantizedReport sweep_quantized(const Activation& act, DType dtype, Direction direction,
                                Fp8 format, float scale, const std::vector<double>& grid,
                                const CodeEvaluator& evaluate);

// Judges one code (recorded in r; true when accepted) against the exact
// result before scaling, given the fp32 result's error bound before
// scaling: the rule above for any form (the activations' judge below, the
// softmax's tests). one_step false: a code further than one fp8 step is
// accepted where the fp32 error bound reaches it (softmax rows of huge
// logits, whose fp32 bound grows with their magnitude: docs/ACCURACY.md).
bool judge_code(QuantizedReport& r, Fp8 format, float scale, double exact, double error,
                uint8_t code, bool one_step = true);

// Judges one code against the exact result (before scaling) of element (in, dy).
// products: fp32 products after the activation (a GLU's gate, dropout's
// 1/(1 - p)), each half an fp32 ulp more in delta.
struct QuantizedJudge {
  Activation act;
  Direction direction;
  Fp8 format;
  float scale;
  int products = 0;
  void record(QuantizedReport& r, double in, double dy, double exact, uint8_t code) const;
  // Every element: in[i] the activation's argument (dy[i] its gradient,
  // empty for the forward), exact[i] the exact result before scaling.
  QuantizedReport judge_all(const std::vector<double>& in, const std::vector<double>& dy,
                            const std::vector<double>& exact,
                            const std::vector<uint8_t>& codes) const;
};

}  // namespace cuact::test
