// The reliability table: every public entry point x every kind of bad input,
// each call made in a child process so that a crash is counted, not fatal.
// The generated table must match the one in README.md's reliability section
// (between the bad-input-table markers); on a mismatch the test prints the
// table to paste there.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cuact/cuact.h"

#ifndef CUACT_SOURCE_DIR
#error "CUACT_SOURCE_DIR must name the project root"
#endif

namespace cuact {
namespace {

alignas(16) float g_in[64], g_grad[64], g_out[64];
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// One way of calling an entry point with arguments that are fine except for
// the bad input being tried.
struct EntryPoint {
  const char* name;
  // Calls the entry point with (activation, in, grad, out, n, dtype, direction);
  // nullopt where the entry point cannot express the input (a typed overload
  // has no dtype argument).
  std::function<std::optional<Status>(const Activation&, const void*, const void*, void*,
                                      int64_t, DType, Direction)>
      call;
};

struct BadInput {
  const char* name;
  Activation act = Activation::gelu();
  const void* in = g_in;
  const void* grad = g_grad;
  void* out = g_out;
  int64_t n = 16;
  DType dtype = DType::f32;
  Direction direction = Direction::backward;
};

std::vector<BadInput> bad_inputs() {
  const char* bytes = reinterpret_cast<const char*>(g_in);
  Activation unknown = Activation::relu();
  unknown.kind = static_cast<ActivationKind>(200);
  std::vector<BadInput> v;
  auto add = [&](const char* name, auto&& edit) {
    BadInput b;
    b.name = name;
    edit(b);
    v.push_back(b);
  };
  add("null input", [](BadInput& b) { b.in = nullptr; });
  add("null gradient", [](BadInput& b) { b.grad = nullptr; });
  add("null output", [](BadInput& b) { b.out = nullptr; });
  add("negative n", [](BadInput& b) { b.n = -1; });
  add("n = INT64_MIN", [](BadInput& b) { b.n = std::numeric_limits<int64_t>::min(); });
  add("n overflowing bytes", [](BadInput& b) { b.n = std::numeric_limits<int64_t>::max() / 2; });
  add("misaligned input", [&](BadInput& b) { b.in = bytes + 1; });
  add("misaligned output", [&](BadInput& b) { b.out = reinterpret_cast<char*>(g_out) + 2; });
  add("output overlaps input", [](BadInput& b) { b.out = g_in + 1; });
  add("output overlaps gradient", [](BadInput& b) { b.out = g_grad + 3; });
  add("unknown dtype", [](BadInput& b) { b.dtype = static_cast<DType>(9); });
  add("unknown direction", [](BadInput& b) { b.direction = static_cast<Direction>(9); });
  add("unknown activation", [&](BadInput& b) { b.act = unknown; });
  add("NaN parameter", [](BadInput& b) { b.act = Activation::leaky_relu(kNaN); });
  add("infinite parameter", [](BadInput& b) { b.act = Activation::softplus(INFINITY); });
  add("celu alpha = 0", [](BadInput& b) { b.act = Activation::celu(0.0f); });
  add("hardtanh lower > upper", [](BadInput& b) { b.act = Activation::hardtanh(2.0f, 1.0f); });
  add("negative shrink lambda", [](BadInput& b) { b.act = Activation::hardshrink(-1.0f); });
  add("backward from y not offered", [](BadInput& b) {
    b.act = Activation::mish();
    b.direction = Direction::backward_from_output;
  });
  return v;
}

// The softmax counterpart of an activation's bad parameters.
Softmax softmax_like(const Activation& a) {
  Softmax op = Softmax::softmax();
  if (static_cast<int>(a.kind) >= kNumActivationKinds)
    op.kind = static_cast<SoftmaxKind>(77);
  else if (!validate(a).ok())
    op.scale = std::numeric_limits<float>::quiet_NaN();
  return op;
}

std::vector<EntryPoint> entry_points() {
  return {
      {"cuact::activation (device)",
       [](const Activation& a, const void* in, const void* g, void* out, int64_t n, DType t,
          Direction d) { return activation(d, a, t, in, g, out, n); }},
      {"typed forward/backward",
       [](const Activation& a, const void* in, const void* g, void* out, int64_t n, DType t,
          Direction d) -> std::optional<Status> {
         const bool known_direction = d == Direction::forward || d == Direction::backward ||
                                      d == Direction::backward_from_output;
         if (t != DType::f32 || !known_direction) return std::nullopt;
         const auto* x = static_cast<const float*>(in);
         auto* y = static_cast<float*>(out);
         if (d == Direction::forward) return activation_forward(a, x, y, n);
         if (d == Direction::backward_from_output)
           return activation_backward_from_output(a, x, static_cast<const float*>(g), y, n);
         return activation_backward(a, x, static_cast<const float*>(g), y, n);
       }},
      {"reference::activation (host)",
       [](const Activation& a, const void* in, const void* g, void* out, int64_t n, DType t,
          Direction d) { return reference::activation(d, a, t, in, g, out, n); }},
      // Softmax over [n, 4]: a bad activation parameter becomes a NaN scale,
      // an unknown activation kind an unknown softmax kind.
      {"cuact::softmax (device)",
       [](const Activation& a, const void* in, const void* g, void* out, int64_t n, DType t,
          Direction d) -> std::optional<Status> {
         return softmax(d, softmax_like(a), t, in, g, out, n, 4);
       }},
      {"reference::softmax (host)",
       [](const Activation& a, const void* in, const void* g, void* out, int64_t n, DType t,
          Direction d) -> std::optional<Status> {
         return reference::softmax(d, softmax_like(a), t, in, g, out, n, 4);
       }},
  };
}

constexpr int kNotApplicable = 1000;

// Runs the call in a child; returns the status code, kNotApplicable, or
// -signal on a crash.
int call_in_child(const std::function<std::optional<Status>()>& call) {
  int fds[2];
  if (pipe(fds) != 0) return -1000;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const std::optional<Status> s = call();
    const int code = s ? static_cast<int>(s->code()) : kNotApplicable;
    const ssize_t written = write(fds[1], &code, sizeof code);
    _exit(written == sizeof code ? 0 : 1);
  }
  close(fds[1]);
  int code = -1000, wstatus = 0;
  const ssize_t got = read(fds[0], &code, sizeof code);
  close(fds[0]);
  waitpid(pid, &wstatus, 0);
  if (WIFSIGNALED(wstatus)) return -WTERMSIG(wstatus);
  return got == sizeof code ? code : -1000;
}

std::string readme_table() {
  std::ifstream in(std::string(CUACT_SOURCE_DIR) + "/README.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  const std::string begin = "<!-- bad-input-table:begin -->\n", end = "<!-- bad-input-table:end -->";
  const size_t a = s.find(begin), b = s.find(end);
  if (a == std::string::npos || b == std::string::npos) return "(markers not found)";
  return s.substr(a + begin.size(), b - a - begin.size());
}

TEST(Reliability, EveryBadInputGivesANamedStatusAndNothingCrashes) {
  const auto inputs = bad_inputs();
  const auto entries = entry_points();
  std::ostringstream table;
  table << "| bad input |";
  for (const auto& e : entries) table << " " << e.name << " |";
  table << "\n|---|";
  for (size_t i = 0; i < entries.size(); ++i) table << "---|";
  table << "\n";
  int crashes = 0, accepted = 0, calls = 0;
  for (const BadInput& b : inputs) {
    table << "| " << b.name << " |";
    for (const auto& e : entries) {
      const int code = call_in_child(
          [&] { return e.call(b.act, b.in, b.grad, b.out, b.n, b.dtype, b.direction); });
      calls += code != kNotApplicable;
      if (code < 0) {
        ++crashes;
        table << " CRASH (signal " << -code << ") |";
        continue;
      }
      if (code == kNotApplicable) {
        table << " n/a |";
        continue;
      }
      const auto status = static_cast<StatusCode>(code);
      accepted += status == StatusCode::success;
      EXPECT_NE(status, StatusCode::success) << e.name << " accepted: " << b.name;
      table << " " << status_code_name(status) << " |";
    }
    table << "\n";
  }
  table << "\n" << calls << " calls, " << crashes << " crashes, " << accepted
        << " bad inputs accepted.\n";
  EXPECT_EQ(crashes, 0);
  EXPECT_EQ(readme_table(), table.str())
      << "README.md's reliability table is out of date; paste this between its markers:\n"
      << table.str();
}

}  // namespace
}  // namespace cuact
