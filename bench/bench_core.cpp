#include "bench_core.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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

}  // namespace

std::string usage() {
  return "usage: cuact-bench [options]\n"
         "  Checks every selected kernel against the double-precision CPU reference, then\n"
         "  times it with CUDA events (warm-up, L2 flushed before each run, median and\n"
         "  p10/p90 of --runs runs) next to a 16-byte copy kernel moving the same bytes\n"
         "  (the achievable bandwidth) and the peers built in (cub::DeviceTransform with\n"
         "  the same functor; cuDNN where found at build time). A kernel that fails the\n"
         "  check is reported WRONG and not timed. Without a GPU it says so, reports the\n"
         "  host functors' accuracy and the CPU reference's speed, and exits 0.\n"
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
         "  --no-progress          no progress line on stderr\n"
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
      if (i + 1 >= argc) {
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
    // (no copy fraction without a GPU run: "-", not 0)
    const std::string of_copy = r.copy_fraction > 0 ? fixed(r.copy_fraction, 3) : "-";
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
    out << (i ? "," : "") << "\n    {\"family\": \"" << r.key.family << "\", \"op\": \""
        << r.key.op << "\", \"dtype\": \"" << r.key.dtype << "\", \"direction\": \""
        << r.key.direction << "\", \"shape\": \"" << json_escape(r.key.shape)
        << "\", \"elements\": " << r.key.elements << ", \"bytes\": " << r.bytes
        << ", \"status\": \"" << r.status << "\", \"note\": \"" << json_escape(r.note)
        << "\", \"median_ms\": " << fixed(r.median_ms, 6) << ", \"p10_ms\": "
        << fixed(r.p10_ms, 6) << ", \"p90_ms\": " << fixed(r.p90_ms, 6)
        << ", \"gbps\": " << fixed(r.gbps, 2) << ", \"copy_fraction\": "
        << fixed(r.copy_fraction, 4) << ", \"peers\": {";
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
         "copy_fraction,peers\n";
  for (const Result& r : results) {
    std::string peers;
    for (const auto& [name, ms] : r.peers) peers += (peers.empty() ? "" : ";") + name + "=" + fixed(ms, 6);
    out << r.key.family << "," << r.key.op << "," << r.key.dtype << "," << r.key.direction
        << ",\"" << r.key.shape << "\"," << r.key.elements << "," << r.bytes << "," << r.status
        << "," << fixed(r.median_ms, 6) << "," << fixed(r.p10_ms, 6) << ","
        << fixed(r.p90_ms, 6) << "," << fixed(r.gbps, 2) << "," << fixed(r.copy_fraction, 4)
        << ",\"" << peers << "\"\n";
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

}  // namespace cuact::bench
