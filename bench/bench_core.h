// cuact-bench's host-side core, kept apart from CUDA so it can be tested on
// any machine: command-line options and filtering, the byte model (what each
// operation must read and write), the result writers (table, JSON, CSV), and
// the static model's committed predictions and the checks run on the host
// (shown where no GPU measures).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cuact::bench {

enum class Mode { time, accuracy, gallery, list };

struct Options {
  Mode mode = Mode::time;
  std::vector<std::string> ops;         // empty: all (repeated options add)
  std::vector<std::string> dtypes;      // "f32", "f16", "bf16"; empty: all
  std::vector<std::string> directions;  // "forward", "backward", ...; empty: all
  std::vector<int64_t> sizes;           // elementwise n; empty: docs/DESIGN.md's list
  int runs = 30;
  std::string json_path, csv_path, gallery_path;
  std::string static_model_path;  // the static model's JSON table; empty: the source tree's
  bool progress = true;
  bool verbose = false;  // also the per-row tables
};

// Parses argv; on a bad argument returns false with a one-line reason. An
// option that takes a value and is last, or is followed by another option
// ("--op --dtype f32"), is an error: it never takes the next option as its value.
bool parse_options(int argc, const char* const* argv, Options& options, std::string& error);
std::string usage();

// "2^27", "134217728", "1M" (2^20), "64K" (2^10): a positive count, or -1.
int64_t parse_count(const std::string& text);

// One benchmark row's identity.
struct CaseKey {
  std::string family;     // "copy", "activation"
  std::string op;         // "gelu", "copy", ...
  std::string dtype;      // "f32", "f16", "bf16"
  std::string direction;  // "forward", "backward", "backward_from_output"
  std::string shape;      // "n=134217728", "n=134217727 misaligned"; a static row: its kernel
  int64_t elements = 0;
};

bool selected(const Options& options, const CaseKey& key);

// An error naming the first --op that is not among `valid` (and listing
// them), or empty when every name is known.
std::string check_op_names(const Options& options, const std::vector<std::string>& valid);

// Bytes an elementwise activation must move: read in (and dy), write out.
int64_t activation_bytes(const std::string& direction, int64_t n, int elem_size);

// docs/DESIGN.md's elementwise sizes: 2^20, 2^24, 2^27, 2^28.
std::vector<int64_t> default_sizes();

// The static model's predicted fraction of copy on the two GPUs it models.
struct Prediction {
  double h100 = 0, h200 = 0;
};

struct Result {
  CaseKey key;
  std::string status;    // "ok", "wrong", "error", "not_run", "host_checked" (HostCheckRow)
  std::string note;      // why, for anything but ok
  std::string accuracy;  // host_checked rows: "pass" or "FAIL"; else empty (null, an empty cell)
  int64_t bytes = 0;
  // Timings exist for "ok" rows only. What was not measured (the timings of
  // other rows, a copy fraction not measured) is written as null (JSON), an
  // empty cell (CSV) or "-" (table): never a 0 that reads as a measurement.
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  double gbps = 0;
  std::optional<double> copy_fraction;                // of the copy kernel over the same bytes
  std::optional<Prediction> predicted;                // the static model's, where shown
  std::vector<std::pair<std::string, double>> peers;  // peer name -> median ms (same bytes)
};

struct RunInfo {
  std::string device;  // "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)" or why there is none
  double peak_gbps = 0;  // from the memory clock and bus width, 0 if unknown
  int runs = 0;
};

std::string format_table(const std::vector<Result>& results);
std::string to_json(const RunInfo& info, const std::vector<Result>& results);
std::string to_csv(const std::vector<Result>& results);

// Accuracy mode: the worst error of one operation over the dense input sweep.
struct AccuracyRow {
  std::string op, dtype, direction;
  std::string where;  // "gpu kernels" or "host functors (no GPU)"
  int64_t inputs = 0;
  int64_t max_ulps = 0;      // among results judged by ulps (see docs/ACCURACY.md's rule)
  double max_rel_err = 0;    // relative to |exact|, where exact is a normal number of dtype
  int64_t outside = 0;       // results outside the stated tolerance
  int bound_ulps = 0;        // the stated bound
};
std::string format_accuracy_markdown(const std::vector<AccuracyRow>& rows);
// One line per op: "worst/bound" ulp for each dtype and direction (docs/ACCURACY.md's table).
std::string format_accuracy_summary(const std::vector<AccuracyRow>& rows);
std::string accuracy_to_json(const RunInfo& info, const std::vector<AccuracyRow>& rows);

// One row of the static model's committed table (bench/results/static/
// static_model.json, written by static_model.py with one row per line): a
// kernel's predicted fraction of copy, from its sm_90 machine code.
struct StaticRow {
  CaseKey key;  // the bench row it predicts (shape: the model's kernel and form)
  Prediction predicted;
  std::string binding;  // what limits it on the H200: "memory", "issue", a pipe
};
// The elementwise and fused rows and the softmax rows the dispatch picks,
// each keyed as the bench names its rows; false with a reason when the file
// cannot be read or holds none.
bool read_static_model(const std::string& path, std::vector<StaticRow>& rows, std::string& error);
// The lowest prediction (per GPU) among rows of key's op, dtype and direction
// (key's empty fields match any), or none.
std::optional<Prediction> lowest_prediction(const std::vector<StaticRow>& rows, const CaseKey& key);
std::string format_static_table(const std::vector<StaticRow>& rows);

// A softmax or fused row checked without a GPU: the kernels' own code (the
// CPU emulators of bench/accuracy/) run on host buffers at small shapes of
// the row, judged against the double-precision reference by the row's
// accuracy rule. A check of the kernels' code, not a GPU run; nothing is timed.
struct HostCheckRow {
  CaseKey key;                  // op, dtype, direction; shape: the shapes run, in words
  int64_t results = 0;          // values judged
  int64_t outside = 0;          // values outside the rule
  std::optional<double> worst;  // worst |error| / bound, where the judge reports it (softmax)
  std::string error;            // why the run stopped (the emulator threw), else empty
  bool ok() const { return outside == 0 && error.empty(); }
};
// One row's check: `run` runs the kernels' code at the row's shapes and adds
// what it judged to the row it is given.
struct HostCheck {
  CaseKey key;
  std::function<void(HostCheckRow&)> run;
};
// Runs one check. An exception from it (an emulator that meets a plan
// breaking the launch's rules, or a functor it does not emulate) is the
// row's error: a FAIL, not the end of the run.
HostCheckRow run_on_host(const HostCheck& check);
// --verbose: every row, as a markdown table.
std::string format_host_checks(const std::vector<HostCheckRow>& rows);

// What is known without a GPU, one line per operation in `ops`: the accuracy
// of what ran on the host (an activation's functors over the accuracy grid:
// each dtype's worst/bound ulp in its tightest direction; a softmax or fused
// row's kernel code, `host_checks`: softmax's worst error over its bound, a
// fused row's ok; pass or FAIL) and the lowest predicted fraction of copy
// among `predicted`. Operations checked by neither are named once as not run.
std::string format_overview(const std::vector<std::string>& ops,
                            const std::vector<AccuracyRow>& accuracy,
                            const std::vector<HostCheckRow>& host_checks,
                            const std::vector<StaticRow>& predicted);

// Median and 10th/90th percentiles of samples (sorted in place).
struct Spread {
  double median, p10, p90;
};
Spread spread(std::vector<double>& samples);

}  // namespace cuact::bench
