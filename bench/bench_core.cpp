#include "bench_core.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>

namespace cuact::bench {

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

bool contains_or_empty(const std::vector<std::string>& list, const std::string& value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A measurement as JSON (null when not measured) or CSV (an empty cell).
std::string json_number(bool measured, double v, int digits) {
  return measured ? fixed(v, digits) : "null";
}
std::string csv_number(bool measured, double v, int digits) {
  return measured ? fixed(v, digits) : "";
}

std::string ratio(const Prediction& p) { return fixed(p.h100, 2) + " / " + fixed(p.h200, 2); }

// One dtype's accuracy in the overview: the worst/bound ulp of the direction
// closest to its bound, "OUT" when a result is outside it, "-" if not checked.
std::string accuracy_cell(const std::vector<AccuracyRow>& rows, const std::string& op,
                          const std::string& dtype) {
  const AccuracyRow* tightest = nullptr;
  for (const AccuracyRow& r : rows) {
    if (r.op != op || r.dtype != dtype) continue;
    if (r.outside) return "OUT";
    if (!tightest || r.bound_ulps - r.max_ulps < tightest->bound_ulps - tightest->max_ulps)
      tightest = &r;
  }
  return tightest ? std::to_string(tightest->max_ulps) + "/" + std::to_string(tightest->bound_ulps)
                  : "-";
}

// One dtype's host check of the kernels' code in the overview: "OUT" when a
// result is outside the rule (or the run stopped), else the worst error over
// the bound where the judge reports it, else "ok"; "-" if not checked.
std::string host_check_cell(const std::vector<HostCheckRow>& rows, const std::string& op,
                            const std::string& dtype) {
  bool checked = false;
  std::optional<double> worst;
  for (const HostCheckRow& r : rows) {
    if (r.key.op != op || r.key.dtype != dtype) continue;
    if (!r.ok()) return "OUT";
    checked = true;
    if (r.worst) worst = std::max(worst.value_or(0.0), *r.worst);
  }
  return !checked ? "-" : worst ? fixed(*worst, 2) : "ok";
}

// The value of "key": in one line of the static model's JSON (its keys are
// unique per line, and a string value cannot hold an unescaped quote).
std::string json_field(const std::string& line, const std::string& key) {
  const std::string tag = "\"" + key + "\": ";
  const size_t at = line.find(tag);
  if (at == std::string::npos) return "";
  const size_t begin = at + tag.size();
  if (line[begin] != '"') return line.substr(begin, line.find_first_of(",}", begin) - begin);
  std::string value;
  for (size_t k = begin + 1; k < line.size() && line[k] != '"'; ++k)
    value += line[k] == '\\' ? line[++k] : line[k];
  return value;
}

// The bench operation a fused kernel of the model is timed as ("" if none):
// the functor the kernel is built around and its form (static_model.py).
std::string fused_bench_op(const std::string& functor, const std::string& form) {
  static const char* const table[][3] = {
      {"gelu", "bias+act", "bias+gelu"},     {"gelu", "act+dropout", "gelu+dropout"},
      {"gelu", "act+dropout+mask", "gelu+dropout"}, {"silu", "glu", "swiglu"}, {"silu", "moe glu", "moe swiglu"},
      {"gelu", "glu", "geglu"},              {"slope", "prelu", "prelu"},
      {"slope", "rrelu training", "rrelu"},  {"gelu", "act fp8", "gelu->fp8"},
      {"gelu", "bias+act fp8", "bias+gelu->fp8"}, {"silu", "glu fp8", "swiglu->fp8"},
      {"gelu", "act fp8 block", "gelu->mxfp8"}, {"silu", "glu fp8 block", "swiglu->mxfp8"},
      {"silu", "glu fp8 1x128", "swiglu->fp8 1x128"}};
  for (const auto& row : table)
    if (functor == row[0] && form == row[1]) return row[2];
  return "";
}

}  // namespace

std::string usage() {
  return "usage: cuact-bench [options]\n"
         "  Checks every selected kernel against the double-precision CPU reference, then\n"
         "  times it with CUDA events (warm-up, L2 flushed before each run, median and\n"
         "  p10/p90 of --runs runs) next to a 16-byte copy kernel moving the same bytes\n"
         "  (the achievable bandwidth) and the peers built in (cub::DeviceTransform with\n"
         "  the same functor; cuDNN where found at build time). A kernel that fails the\n"
         "  check is reported WRONG and not timed. Without a GPU it says so and shows what\n"
         "  is known: the activations' accuracy (the device functors run on the host), the\n"
         "  softmax and fused rows checked by running the kernels' own code on the host at\n"
         "  small shapes, and the static model's predicted fraction of copy (sm_90 code,\n"
         "  H100/H200).\n"
         "\n"
         "  --list                 list the operations, dtypes, directions and sizes\n"
         "  --op a,b,...           only these operations (names as --list shows)\n"
         "  --dtype f32,f16,bf16   only these dtypes\n"
         "  --direction forward,backward,backward_from_output\n"
         "  --size 2^27,1M,...     elementwise sizes (default 2^20,2^24,2^27,2^28)\n"
         "  --runs R               timed runs per kernel (default 30)\n"
         "  --accuracy             accuracy mode: worst ulp error per op/dtype/direction\n"
         "  --gallery FILE.csv     write each activation's f and f' sampled by cuact\n"
         "  --json FILE            also write the results as JSON\n"
         "  --csv FILE             also write the results as CSV\n"
         "  --static-model FILE    the static model's table (default: the source tree's\n"
         "                         bench/results/static/static_model.json)\n"
         "  --verbose              also the per-row tables (accuracy, host checks, static model)\n"
         "  --no-progress          no progress line on stderr (none unless it is a terminal)\n"
         "  --help                 this text\n";
}

int64_t parse_count(const std::string& text) {
  if (text.empty()) return -1;
  char* end = nullptr;
  if (text.rfind("2^", 0) == 0) {
    const long e = std::strtol(text.c_str() + 2, &end, 10);
    return (*end == '\0' && e >= 0 && e < 62) ? (int64_t{1} << e) : -1;
  }
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || v <= 0) return -1;
  const std::string suffix(end);
  if (suffix.empty()) return v;
  if (suffix == "K") return v << 10;
  if (suffix == "M") return v << 20;
  if (suffix == "G") return v << 30;
  return -1;
}

bool parse_options(int argc, const char* const* argv, Options& o, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0) {
        error = a + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--help" || a == "-h") {
      o.mode = Mode::list;  // the caller prints usage for --help before parsing matters
      error = "help";
      return false;
    } else if (a == "--list") {
      o.mode = Mode::list;
    } else if (a == "--accuracy") {
      o.mode = Mode::accuracy;
    } else if (a == "--gallery") {
      if (!value(o.gallery_path)) return false;
      o.mode = Mode::gallery;
    } else if (a == "--op") {
      if (!value(v)) return false;
      for (const auto& op : split_list(v)) o.ops.push_back(op);  // repeated options add
    } else if (a == "--dtype") {
      if (!value(v)) return false;
      for (const auto& d : split_list(v)) {
        if (d != "f32" && d != "f16" && d != "bf16") {
          error = "unknown dtype '" + d + "' (f32, f16, bf16)";
          return false;
        }
        o.dtypes.push_back(d);
      }
    } else if (a == "--direction") {
      if (!value(v)) return false;
      for (const auto& d : split_list(v)) {
        if (d != "forward" && d != "backward" && d != "backward_from_output") {
          error = "unknown direction '" + d + "' (forward, backward, backward_from_output)";
          return false;
        }
        o.directions.push_back(d);
      }
    } else if (a == "--size") {
      if (!value(v)) return false;
      for (const auto& s : split_list(v)) {
        const int64_t n = parse_count(s);
        if (n <= 0) {
          error = "bad size '" + s + "' (a count like 2^27, 1M or 1000)";
          return false;
        }
        o.sizes.push_back(n);
      }
    } else if (a == "--runs") {
      if (!value(v)) return false;
      o.runs = std::atoi(v.c_str());
      if (o.runs < 1) {
        error = "--runs needs a positive count";
        return false;
      }
    } else if (a == "--json") {
      if (!value(o.json_path)) return false;
    } else if (a == "--csv") {
      if (!value(o.csv_path)) return false;
    } else if (a == "--static-model") {
      if (!value(o.static_model_path)) return false;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--no-progress") {
      o.progress = false;
    } else {
      error = "unknown argument '" + a + "' (see --help)";
      return false;
    }
  }
  return true;
}

std::string check_op_names(const Options& o, const std::vector<std::string>& valid) {
  for (const std::string& op : o.ops) {
    if (std::find(valid.begin(), valid.end(), op) != valid.end()) continue;
    std::string list;
    for (const std::string& v : valid) list += (list.empty() ? "" : ", ") + v;
    return "unknown operation '" + op + "' (names are case-sensitive: " + list + ")";
  }
  return {};
}

bool selected(const Options& o, const CaseKey& key) {
  if (key.family == "copy") return contains_or_empty(o.dtypes, key.dtype);
  return contains_or_empty(o.ops, key.op) && contains_or_empty(o.dtypes, key.dtype) &&
         contains_or_empty(o.directions, key.direction);
}

int64_t activation_bytes(const std::string& direction, int64_t n, int elem_size) {
  const int64_t streams = direction == "forward" ? 2 : 3;  // (x) -> y; (x or y, dy) -> dx
  return streams * n * elem_size;
}

std::vector<int64_t> default_sizes() {
  return {int64_t{1} << 20, int64_t{1} << 24, int64_t{1} << 27, int64_t{1} << 28};
}

Spread spread(std::vector<double>& s) {
  if (s.empty()) return {0, 0, 0};
  std::sort(s.begin(), s.end());
  auto at = [&](double q) { return s[static_cast<size_t>(q * (s.size() - 1) + 0.5)]; };
  return {at(0.5), at(0.1), at(0.9)};
}

std::string format_table(const std::vector<Result>& results) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-12s %-5s %-20s %-22s %9s %9s %8s %s\n", "op", "dtype",
                "direction", "shape", "ms", "GB/s", "of copy", "peers (speed-up over)");
  out << line;
  for (const Result& r : results) {
    std::string peers;
    for (const auto& [name, ms] : r.peers)
      peers += name + " " + (ms > 0 ? fixed(ms / r.median_ms, 2) + "x" : std::string("n/a")) + "  ";
    const std::string of_copy = r.copy_fraction ? fixed(*r.copy_fraction, 3) : "-";
    if (r.status == "ok")
      std::snprintf(line, sizeof line, "%-12s %-5s %-20s %-22s %9.4f %9.1f %8s %s\n",
                    r.key.op.c_str(), r.key.dtype.c_str(), r.key.direction.c_str(),
                    r.key.shape.c_str(), r.median_ms, r.gbps, of_copy.c_str(), peers.c_str());
    else
      std::snprintf(line, sizeof line, "%-12s %-5s %-20s %-22s %s: %s\n", r.key.op.c_str(),
                    r.key.dtype.c_str(), r.key.direction.c_str(), r.key.shape.c_str(),
                    r.status == "wrong" ? "WRONG" : r.status.c_str(), r.note.c_str());
    out << line;
  }
  return out.str();
}

std::string to_json(const RunInfo& info, const std::vector<Result>& results) {
  std::ostringstream out;
  out << "{\n  \"tool\": \"cuact-bench\",\n  \"device\": \"" << json_escape(info.device)
      << "\",\n  \"peak_gbps\": " << fixed(info.peak_gbps, 1) << ",\n  \"runs\": " << info.runs
      << ",\n  \"results\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    const bool timed = r.status == "ok";
    out << (i ? "," : "") << "\n    {\"family\": \"" << r.key.family << "\", \"op\": \""
        << r.key.op << "\", \"dtype\": \"" << r.key.dtype << "\", \"direction\": \""
        << r.key.direction << "\", \"shape\": \"" << json_escape(r.key.shape)
        << "\", \"elements\": " << r.key.elements << ", \"bytes\": " << r.bytes
        << ", \"status\": \"" << r.status << "\", \"note\": \"" << json_escape(r.note)
        << "\", \"median_ms\": " << json_number(timed, r.median_ms, 6)
        << ", \"p10_ms\": " << json_number(timed, r.p10_ms, 6)
        << ", \"p90_ms\": " << json_number(timed, r.p90_ms, 6)
        << ", \"gbps\": " << json_number(timed, r.gbps, 2) << ", \"accuracy\": "
        << (r.accuracy.empty() ? std::string("null") : "\"" + r.accuracy + "\"")
        << ", \"copy_fraction\": "
        << json_number(r.copy_fraction.has_value(), r.copy_fraction.value_or(0), 4)
        << ", \"predicted_copy_fraction\": "
        << (r.predicted ? "{\"H100\": " + fixed(r.predicted->h100, 2) +
                              ", \"H200\": " + fixed(r.predicted->h200, 2) + "}"
                        : std::string("null"))
        << ", \"peers\": {";
    for (size_t p = 0; p < r.peers.size(); ++p)
      out << (p ? ", " : "") << "\"" << r.peers[p].first << "\": " << fixed(r.peers[p].second, 6);
    out << "}}";
  }
  out << "\n  ]\n}\n";
  return out.str();
}

std::string to_csv(const std::vector<Result>& results) {
  std::ostringstream out;
  out << "family,op,dtype,direction,shape,elements,bytes,status,median_ms,p10_ms,p90_ms,gbps,"
         "copy_fraction,peers,accuracy\n";
  for (const Result& r : results) {
    const bool timed = r.status == "ok";
    std::string peers;
    for (const auto& [name, ms] : r.peers) peers += (peers.empty() ? "" : ";") + name + "=" + fixed(ms, 6);
    out << r.key.family << "," << r.key.op << "," << r.key.dtype << "," << r.key.direction
        << ",\"" << r.key.shape << "\"," << r.key.elements << "," << r.bytes << "," << r.status
        << "," << csv_number(timed, r.median_ms, 6) << "," << csv_number(timed, r.p10_ms, 6)
        << "," << csv_number(timed, r.p90_ms, 6) << "," << csv_number(timed, r.gbps, 2) << ","
        << csv_number(r.copy_fraction.has_value(), r.copy_fraction.value_or(0), 4) << ",\""
        << peers << "\"," << r.accuracy << "\n";
  }
  return out.str();
}

std::string format_accuracy_markdown(const std::vector<AccuracyRow>& rows) {
  std::ostringstream out;
  out << "| op | dtype | direction | worst ulp | bound | worst rel. error | outside | inputs | measured on |\n"
         "|---|---|---|---|---|---|---|---|---|\n";
  char rel[32];
  for (const AccuracyRow& r : rows) {
    std::snprintf(rel, sizeof rel, "%.2e", r.max_rel_err);
    out << "| " << r.op << " | " << r.dtype << " | " << r.direction << " | " << r.max_ulps
        << " | " << r.bound_ulps << " | " << rel << " | " << r.outside << " | " << r.inputs
        << " | " << r.where << " |\n";
  }
  return out.str();
}

std::string format_accuracy_summary(const std::vector<AccuracyRow>& rows) {
  const char* dtypes[] = {"f32", "f16", "bf16"};
  const char* directions[] = {"forward", "backward", "backward_from_output"};
  std::ostringstream out;
  out << "| op | f32 fwd | f32 bwd | f32 bwd(y) | f16 fwd | f16 bwd | f16 bwd(y) | bf16 fwd "
         "| bf16 bwd | bf16 bwd(y) |\n|---|---|---|---|---|---|---|---|---|---|\n";
  std::vector<std::string> ops;
  for (const AccuracyRow& r : rows)
    if (std::find(ops.begin(), ops.end(), r.op) == ops.end()) ops.push_back(r.op);
  for (const std::string& op : ops) {
    out << "| " << op << " |";
    for (const char* dtype : dtypes)
      for (const char* direction : directions) {
        std::string cell = " ";
        for (const AccuracyRow& r : rows)
          if (r.op == op && r.dtype == dtype && r.direction == direction)
            cell = r.outside ? " " + std::to_string(r.outside) + " OUTSIDE "
                             : " " + std::to_string(r.max_ulps) + "/" +
                                   std::to_string(r.bound_ulps) + " ";
        out << cell << "|";
      }
    out << "\n";
  }
  return out.str();
}

std::string accuracy_to_json(const RunInfo& info, const std::vector<AccuracyRow>& rows) {
  std::ostringstream out;
  out << "{\n  \"tool\": \"cuact-bench --accuracy\",\n  \"device\": \"" << json_escape(info.device)
      << "\",\n  \"rows\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const AccuracyRow& r = rows[i];
    out << (i ? "," : "") << "\n    {\"op\": \"" << r.op << "\", \"dtype\": \"" << r.dtype
        << "\", \"direction\": \"" << r.direction << "\", \"where\": \"" << r.where
        << "\", \"inputs\": " << r.inputs << ", \"max_ulps\": " << r.max_ulps
        << ", \"bound_ulps\": " << r.bound_ulps << ", \"max_rel_err\": " << r.max_rel_err
        << ", \"outside\": " << r.outside << "}";
  }
  out << "\n  ]\n}\n";
  return out.str();
}

bool read_static_model(const std::string& path, std::vector<StaticRow>& rows, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  rows.clear();
  for (std::string line; std::getline(in, line);) {
    const std::string family = json_field(line, "family"), op = json_field(line, "op");
    const std::string form = json_field(line, "form");
    StaticRow r;
    if (family == "elementwise") {
      r.key = {"activation", op, "", form == "from output" ? "backward_from_output" : "", op, 0};
    } else if (family == "fused") {
      r.key = {"fused", fused_bench_op(op, form), "", "", op + " " + form, 0};
    } else if (family == "softmax" && json_field(line, "dispatch") == "true") {
      // fp8 probabilities: the fused family's softmax->fp8 row; the
      // cross-entropy epilogue (dtype "<input>->ce"): its cross_entropy row.
      const std::string dtype = json_field(line, "dtype");
      const bool ce = dtype.size() > 4 && dtype.compare(dtype.size() - 4, 4, "->ce") == 0;
      const bool fp8 = !ce && dtype.find("->") != std::string::npos;
      r.key = {fp8 || ce ? "fused" : "softmax", ce ? "cross_entropy" : fp8 ? "softmax->fp8" : "softmax",
               "", "", op + " cols=" + json_field(line, "cols"), 0};
    } else {
      continue;  // kernels the bench does not time as a row of their own
    }
    if (r.key.op.empty()) continue;
    r.key.dtype = json_field(line, "dtype");
    if (const size_t arrow = r.key.dtype.find("->"); arrow != std::string::npos)
      r.key.dtype.resize(arrow);  // an fp8 row's input dtype, as the bench names it
    if (r.key.direction.empty()) r.key.direction = json_field(line, "direction");
    r.predicted = {std::atof(json_field(line, "fraction_H100").c_str()),
                   std::atof(json_field(line, "fraction_H200").c_str())};
    r.binding = json_field(line, "binding_H200");
    rows.push_back(r);
  }
  if (rows.empty()) error = path + " holds no rows of the static model";
  return !rows.empty();
}

std::optional<Prediction> lowest_prediction(const std::vector<StaticRow>& rows,
                                            const CaseKey& key) {
  std::optional<Prediction> low;
  auto matches = [](const std::string& want, const std::string& have) {
    return want.empty() || want == have;
  };
  for (const StaticRow& r : rows) {
    if (!matches(key.op, r.key.op) || !matches(key.dtype, r.key.dtype) ||
        !matches(key.direction, r.key.direction))
      continue;
    if (!low) low = r.predicted;
    low->h100 = std::min(low->h100, r.predicted.h100);
    low->h200 = std::min(low->h200, r.predicted.h200);
  }
  return low;
}

std::string format_static_table(const std::vector<StaticRow>& rows) {
  std::ostringstream out;
  out << "| op | dtype | direction | kernel | H100 | H200 | binding (H200) |\n"
         "|---|---|---|---|---|---|---|\n";
  for (const StaticRow& r : rows)
    out << "| " << r.key.op << " | " << r.key.dtype << " | " << r.key.direction << " | "
        << r.key.shape << " | " << fixed(r.predicted.h100, 2) << " | "
        << fixed(r.predicted.h200, 2) << " | " << r.binding << " |\n";
  return out.str();
}

HostCheckRow run_on_host(const HostCheck& check) {
  HostCheckRow row;
  row.key = check.key;
  try {
    check.run(row);
  } catch (const std::exception& e) {
    row.error = e.what();
    std::fprintf(stderr, "cuact-bench: %s %s %s: the host run stopped: %s\n", row.key.op.c_str(),
                 row.key.dtype.c_str(), row.key.direction.c_str(), e.what());
  }
  return row;
}

std::string format_host_checks(const std::vector<HostCheckRow>& rows) {
  std::ostringstream out;
  out << "| op | dtype | direction | shapes run | results | outside | worst error / bound |\n"
         "|---|---|---|---|---|---|---|\n";
  for (const HostCheckRow& r : rows)
    out << "| " << r.key.op << " | " << r.key.dtype << " | " << r.key.direction << " | "
        << r.key.shape << " | " << r.results << " | "
        << (r.error.empty() ? std::to_string(r.outside) : "stopped: " + r.error) << " | "
        << (r.worst ? fixed(*r.worst, 3) : "-") << " |\n";
  return out.str();
}

std::string format_overview(const std::vector<std::string>& ops,
                            const std::vector<AccuracyRow>& accuracy,
                            const std::vector<HostCheckRow>& host_checks,
                            const std::vector<StaticRow>& predicted) {
  std::ostringstream out;
  char line[256];
  const char* const format = "%-15s %-6s %-6s %-6s %-9s %-12s %s\n";
  std::snprintf(line, sizeof line, format, "op", "f32", "f16", "bf16", "accuracy", "run on host",
                "predicted of copy, H100 / H200");
  out << line;
  std::string not_run;
  int64_t functor_results = 0, functor_outside = 0;
  int64_t kernel_results = 0, kernel_outside = 0, stopped = 0;
  bool kernels_shown = false;
  for (const std::string& op : ops) {
    int64_t op_results = 0, op_outside = 0;
    bool op_functors = false, op_kernels = false, op_stopped = false;
    for (const AccuracyRow& r : accuracy)
      if (r.op == op) {
        op_functors = true;
        op_results += r.inputs;
        op_outside += r.outside;
      }
    functor_results += op_results;
    functor_outside += op_outside;
    for (const HostCheckRow& r : host_checks)
      if (r.key.op == op) {
        op_kernels = true;
        op_stopped = op_stopped || !r.error.empty();
        op_outside += r.outside;
        kernel_results += r.results;
        kernel_outside += r.outside;
        stopped += r.error.empty() ? 0 : 1;
      }
    kernels_shown = kernels_shown || op_kernels;
    auto cell = [&](const char* dtype) {
      return op_functors ? accuracy_cell(accuracy, op, dtype)
                         : host_check_cell(host_checks, op, dtype);
    };
    const bool checked = op_functors || op_kernels;
    const char* verdict = !checked ? "-" : op_outside || op_stopped ? "FAIL" : "pass";
    if (!checked) not_run += (not_run.empty() ? "" : ", ") + op;
    const std::optional<Prediction> p = lowest_prediction(predicted, {"", op, "", "", "", 0});
    std::snprintf(line, sizeof line, format, op.c_str(), cell("f32").c_str(), cell("f16").c_str(),
                  cell("bf16").c_str(), verdict,
                  op_functors ? "functors" : op_kernels ? "kernel code" : "-",
                  p ? ratio(*p).c_str() : "-");
    out << line;
  }
  if (!not_run.empty()) out << "\nnot run without a GPU: " << not_run << "\n";
  if (functor_results > 0 || kernels_shown)
    out << "\naccuracy against the double-precision reference (docs/ACCURACY.md); "
           "nothing is timed:\n";
  if (functor_results > 0)
    out << "  functors: the device functors run on the host over the accuracy grid; each dtype\n"
           "    shows the worst/bound ulp of its direction closest to the bound "
           "(OUT: outside it);\n    "
        << functor_outside << " of " << functor_results << " results outside the contract\n";
  if (kernels_shown)
    out << "  kernel code: the kernels' own code run on the host (CPU emulators, not a GPU) at\n"
           "    small shapes of each row (--verbose lists them); each dtype shows softmax's worst\n"
           "    error as a fraction of its bound, a fused form's ok (OUT: outside the rule);\n    "
        << kernel_outside << " of " << kernel_results << " results outside the rule"
        << (stopped ? "; runs stopped: " + std::to_string(stopped) + " (stderr says why)" : "")
        << "\n";
  return out.str();
}

}  // namespace cuact::bench
