// The softmax family's accuracy rule as code, with the shapes, options and
// inputs its tests sweep. Shared by the CPU tests (the kernels' per-row code
// simulated on the host) and the GPU tests (the kernels), so both are judged
// by the same rule.
//
// The rule (docs/ACCURACY.md, "Softmax accuracy"): every output satisfies
//
//   |got_j - exact_j| <= rho * |exact_j| + R * 2^-24 * kappa_j + floor
//
// - exact_j: the double reference (cuact::reference::softmax_*_row);
// - rho = 2^(1-p), one ulp of the output dtype relative (p = 24, 11, 8 for
//   f32, f16, bf16): the single rounding on store, and room for the fp32
//   error to push it to a neighbour;
// - R = kSoftmaxRoundings fp32 roundings of kappa_j, the magnitudes output j
//   is formed from (z = s*x + m, M = max z, A = sum_k y_k (|z_k| + |M|),
//   L = log sum_k exp(z_k - M)):
//     softmax, softmin   |y_j| (1 + |z_j| + |M| + A)
//     log_softmax        1 + |z_j| + |M| + A + |L|
//     softmax backward   |s y_j| (|dy_j| + sum_k |y_k dy_k|)     (s: -s for softmin)
//     log backward       |s| (|dy_j| + exp(y_j) sum_k |dy_k|)
//   An input's rounding to fp32 costs |z| * 2^-24 of absolute accuracy in
//   exp(z - M), so rows of large magnitude get a proportionally larger allowance.
// - floor: FLT_MIN for f32 and bf16, 2^-24 (the smallest subnormal) for f16:
//   results that underflow.
// - Special values are exact: NaN where the reference is NaN (a NaN row),
//   -inf and 0 where it is (masked entries, empty rows), and the dtype's
//   infinity where the exact result overflows it.
// - softmax and softmin rows that are neither empty nor NaN sum to 1:
//   |sum_j got_j - 1| <= sum_j bound_j.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "cuact/softmax.h"

namespace cuact::test {

inline constexpr double kSoftmaxRoundings = 64;

// Exact results and the allowed error of every element of a problem.
struct SoftmaxExpected {
  std::vector<double> value;
  std::vector<double> bound;
  std::vector<char> sums_to_one;  // per row
};

// Judges one element by the rule.
bool softmax_within(DType dtype, double got, double exact, double bound);

struct SoftmaxCheck {
  int64_t elements = 0;
  int64_t failures = 0;
  int64_t rows_summed = 0;  // rows checked to sum to 1
  int64_t row_sum_failures = 0;
  double worst_ratio = 0;                   // max |got - exact| / bound over finite results
  std::vector<std::string> first_failures;  // up to 5, readable
  bool ok() const { return failures == 0 && row_sum_failures == 0; }
};
SoftmaxCheck check_softmax(DType dtype, const SoftmaxExpected& expected,
                           const std::vector<double>& got, int64_t rows, int64_t cols);

// ---------------------------------------------------------------- what the tests sweep

// The row lengths of the test grid (SPEC: 1 to at least 2^24; the grid
// reaches 2^20, a dedicated test 2^24).
const std::vector<int64_t>& softmax_test_cols();

// One set of options (a Softmax without its mask pointer, which the test
// points at its own buffer).
struct SoftmaxOptions {
  std::string name;
  SoftmaxKind kind = SoftmaxKind::softmax;
  float scale = 1.0f;
  int64_t mask_rows = 0;  // 0: no mask; -1: one mask row per data row
  int64_t mask_row_repeat = 1;
  int64_t causal_rows = 0;  // 0: not causal
  int64_t causal_offset = 0;
  bool offset_from_cols = false;  // causal_offset += cols - causal_rows (bottom-right diagonal)

  int64_t mask_rows_for(int64_t rows) const { return mask_rows < 0 ? rows : mask_rows; }
  // The descriptor for a [rows, cols] call of `dtype` with the mask at `mask`.
  Softmax descriptor(int64_t rows, int64_t cols, const void* mask, DType dtype) const;
};
// Every kind, with and without scale, [cols] / [rows, cols] / periodic /
// key-padding masks, causal masks aligned top-left and bottom-right (some
// rows fully hidden).
const std::vector<SoftmaxOptions>& softmax_option_sets();

// A test problem: inputs as values of dtype, the exact results and bounds.
// Forward inputs x mix row patterns (normal, wide, around +-1e4, around
// +-88.7, with -inf entries), a saturating row every 11 (+-0.45 and -0.6
// times the dtype's largest value: log_softmax overflows to -inf where the
// scale allows), a NaN row every 17 rows and an all -inf row every 13; mask
// rows mix 0, -inf and small values, one in five all -inf. Backward takes
// y = the reference forward of such x, rounded to dtype, and dy ~ N(0, 1),
// with inf/NaN at every hidden column of rows 2, 9, ... (ignored) and at the
// first visible column holding the hidden value (-inf or 0) of rows 4, 11,
// ... (kept: the row is NaN).
struct SoftmaxProblem {
  SoftmaxOptions options;
  Direction direction = Direction::forward;
  DType dtype = DType::f32;
  int64_t rows = 0, cols = 0;
  std::vector<double> in, grad, mask;
  SoftmaxExpected expected;
};
SoftmaxProblem make_softmax_problem(const SoftmaxOptions& options, Direction direction, DType dtype,
                                    int64_t rows, int64_t cols, uint64_t seed);

// Hand-made rows whose outputs saturate, kSaturatedRows of them, for the
// backward's rule that the mask and causal settings, not y, decide which
// columns are hidden (docs/SPEC.md, "Softmax family"): inputs of +-big
// (log_softmax's z - M overflows the dtype: y = -inf; softmax's exp
// underflows: y = 0), one +big among ordinary values, -inf inputs (visible),
// every input -inf, ordinary rows; with saturation_option_sets()' masks
// (-inf every fifth column, row 7 all -inf) and causal settings. Backward:
// y the reference forward rounded to dtype; dy ~ N(0, 1), but inf or NaN at
// every hidden column (ignored: dx there is 0) and, in row 6, at the first
// visible column whose y holds the hidden value (kept: a NaN row, as PyTorch).
inline constexpr int64_t kSaturatedRows = 8;
const std::vector<SoftmaxOptions>& saturation_option_sets();
SoftmaxProblem make_saturated_softmax_problem(const SoftmaxOptions& options, Direction direction,
                                              DType dtype, int64_t cols, uint64_t seed);

// Exact results and bounds of a problem whose inputs are given.
SoftmaxExpected expected_softmax(const SoftmaxOptions& options, Direction direction, DType dtype,
                                 int64_t rows, int64_t cols, const std::vector<double>& in,
                                 const std::vector<double>& grad, const std::vector<double>& mask);

// One case of the softmax suites (the kernels on a GPU, their simulation on
// the CPU): algorithm x dtype x direction x option set, every combination of
// the algorithms given; named for GoogleTest (letters, digits and _ only).
struct SoftmaxCase {
  SoftmaxAlgorithm algorithm;  // automatic, or forced
  DType dtype;
  Direction direction;
  size_t options;  // index into softmax_option_sets()
};
std::vector<SoftmaxCase> softmax_cases(const std::vector<SoftmaxAlgorithm>& algorithms);
std::string describe(const SoftmaxCase& c);
std::string softmax_case_name(const SoftmaxCase& c);
inline void PrintTo(const SoftmaxCase& c, std::ostream* os) { *os << describe(c); }

}  // namespace cuact::test
