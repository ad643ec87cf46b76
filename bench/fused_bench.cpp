// cuact-bench's rows for the fused forms (cuact/fused.h). Each kernel is
// first run on a slice of its timed shape (the same columns, fewer rows:
// the fused kernels' plan depends on the row width, not the row count) and
// judged against the double reference with the rules of fused_accuracy.h;
// one that fails is reported WRONG and not timed. Without a GPU the same
// checks run the kernels' own code on the host (fused_emulation.h) at small
// shapes of each row (fused_host_checks).
//
// Bytes are what the operation must move (parameters and their gradients
// included); the copy kernel it is compared with moves the same bytes with
// the same number of input streams.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

#include "cuact/cuact.h"
#include "fused_accuracy.h"
#include "fused_emulation.h"
#include "gpu_bench.h"

namespace cuact::bench {

namespace {

constexpr DType kDTypes[] = {DType::f32, DType::f16, DType::bf16};

// Shapes (docs/DESIGN.md's fused targets): [rows, cols] = 2^27 elements for the
// bias and dropout forms, an LLM feed-forward layer's gate for the GLU forms.
constexpr int64_t kBiasRows = 16384, kBiasCols = 8192;
constexpr int64_t kElementwiseN = int64_t{1} << 27;
constexpr int64_t kGluRows[] = {4096, 8192};
constexpr int64_t kGluWidths[] = {11008, 14336};
constexpr int64_t kPreluOuter = 32, kPreluChannels = 256, kPreluInner = 16384;
// The rows' random draws: dropout p = 0.1, RReLU in training mode.
constexpr Dropout kDropout{0.1f, 2026, 7};
constexpr Rrelu kRrelu{1.0f / 8.0f, 1.0f / 3.0f, true, 11, 3};

// A device buffer for the parameters, their gradients or the workspace of
// every row, allocated once (pointers into it are captured by the rows).
class Scratch {
 public:
  explicit Scratch(size_t bytes) : bytes_(bytes) { BENCH_CUDA(cudaMalloc(&ptr_, bytes)); }
  ~Scratch() { cudaFree(ptr_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get(size_t bytes) const {
    if (bytes > bytes_) {
      std::fprintf(stderr, "cuact-bench: scratch of %zu bytes asked for %zu\n", bytes_, bytes);
      std::exit(1);
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// The workspace bytes a reducing row needs (the query's failure ends the run).
size_t workspace_bytes(const Status& query, size_t bytes) {
  if (!query.ok()) {
    std::fprintf(stderr, "cuact-bench: workspace size query failed: %s\n", query.message().c_str());
    std::exit(1);
  }
  return bytes;
}

void upload(DType t, void* p, const std::vector<double>& v) {
  const auto bytes = test::to_buffer(t, v);
  BENCH_CUDA(cudaMemcpy(p, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
}
std::vector<double> download(DType t, const void* p, int64_t n) {
  std::vector<unsigned char> bytes(static_cast<size_t>(n) * dtype_size(t));
  BENCH_CUDA(cudaMemcpy(bytes.data(), p, bytes.size(), cudaMemcpyDeviceToHost));
  return test::from_buffer(t, bytes);
}
std::vector<uint8_t> download_mask(const uint8_t* p, int64_t n) {
  std::vector<uint8_t> mask(static_cast<size_t>(n));
  BENCH_CUDA(cudaMemcpy(mask.data(), p, mask.size(), cudaMemcpyDeviceToHost));
  return mask;
}

// Inputs of a check: the dense grid for the activation's argument, smooth
// finite values where a reduction is judged, moderate values for parameters,
// gradients and GLU's linear half (fused_accuracy.h).
std::vector<double> grid(DType t, int64_t n, int64_t phase) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = test::fused_input(t, i, phase);
  return v;
}
std::vector<double> smooth(DType t, int64_t n, int64_t phase) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = test::fused_moderate(t, i, phase);
  return v;
}
std::vector<double> operands(int64_t n, int64_t phase) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = test::fused_operand(i + phase);
  return v;
}

// A GLU check's x [rows, 2d]: the gated half from the dense grid, the linear
// half moderate.
std::vector<double> glu_input(const Glu& glu, DType t, int64_t rows, int64_t d) {
  std::vector<double> x(static_cast<size_t>(rows * 2 * d));
  const int64_t gated = glu.gated == GatedHalf::first ? 0 : d, other = d - gated;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) {
      x[r * 2 * d + gated + c] = test::fused_input(t, r * d + c, 6);
      x[r * 2 * d + other + c] = test::fused_operand(r * d + c + 1);
    }
  return x;
}

Glu glu_named(const std::string& name) { return name == "swiglu" ? Glu::swiglu() : Glu::geglu(); }

// "" when the call succeeded and nothing failed the judge, else why not.
std::string verdict(const Status& s, int64_t failures) {
  if (!s.ok()) return std::string("the check call failed: ") + s.message();
  if (failures == 0) return "";
  return std::to_string(failures) + " values outside the fused tolerance against the CPU reference";
}

// One timed row: its check on a slice, its full-size launch, its peers.
struct FusedCase {
  CaseKey key;
  int64_t bytes = 0;
  int inputs = 1;
  std::function<std::string()> check;
  std::function<Status()> launch;
  std::vector<Peer> peers;
};

class FusedRows {
 public:
  FusedRows(const Options& o, GpuBench& bench)
      : o_(o),
        bench_(bench),
        params_(static_cast<size_t>(std::max(kBiasCols, kPreluChannels) * 4)),
        grads_(static_cast<size_t>(std::max(kBiasCols, kPreluChannels) * 4)),
        workspace_(max_workspace()) {}

  void run(int& failures) {
    std::vector<FusedCase> cases;
    for (DType t : kDTypes) {
      add_bias_gelu(t, cases);
      add_dropout(t, cases);
      for (const char* name : {"swiglu", "geglu"})
        for (int64_t d : kGluWidths)
          for (int64_t rows : kGluRows) add_glu(t, name, rows, d, cases);
      add_prelu(t, cases);
      add_rrelu(t, cases);
    }
    size_t done = 0;
    for (const FusedCase& c : cases) {
      progress(o_, ++done, cases.size(), c.key.op + " " + c.key.dtype + " " + c.key.direction +
                                             " " + c.key.shape);
      const std::string why = c.check();
      if (!why.empty()) {
        ++failures;
        bench_.wrong(c.key, why);
        continue;
      }
      bench_.time_case(c.key, c.bytes, c.inputs, c.launch, c.peers);
    }
  }

 private:
  // Adds the case if --op/--dtype/--direction select it.
  void add(std::vector<FusedCase>& cases, FusedCase c) {
    if (selected(o_, c.key)) cases.push_back(std::move(c));
  }
  static CaseKey key(const char* op, DType t, const char* direction, const std::string& shape,
                     int64_t elements) {
    return {"fused", op, dtype_name(t), direction, shape, elements};
  }

  // bias + GELU over [16384, 8192]: forward (also as two calls, bias add then
  // GELU, the unfused way) and backward with dbias.
  void add_bias_gelu(DType t, std::vector<FusedCase>& cases) {
    const int64_t rows = kBiasRows, cols = kBiasCols, n = rows * cols, es = dtype_size(t);
    const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
    const Activation gelu = Activation::gelu();
    GpuBench& b = bench_;
    void* bias = params_.get(static_cast<size_t>(cols * es));
    void* dbias = grads_.get(static_cast<size_t>(cols * es));
    const size_t ws_bytes = bias_workspace(t, rows);
    const size_t check_ws_bytes = bias_workspace(t, kCheckRows);
    void* ws = workspace_.get(std::max(ws_bytes, check_ws_bytes));

    FusedCase fwd;
    fwd.key = key("bias+gelu", t, "forward", shape, n);
    fwd.bytes = (2 * n + cols) * es;
    fwd.inputs = 1;
    fwd.check = [=, &b] {
      const auto x = grid(t, kCheckRows * cols, 1), bv = operands(cols, 0);
      upload(t, b.a(), x);
      upload(t, bias, bv);
      const Status s = bias_activation_forward(gelu, t, b.a(), bias, b.c(), kCheckRows, cols);
      return verdict(s, s.ok() ? test::judge_bias_forward(gelu, t, kCheckRows, cols, x, bv, {},
                                                          download(t, b.c(), kCheckRows * cols),
                                                          nullptr)
                               : 0);
    };
    fwd.launch = [=, &b] { return bias_activation_forward(gelu, t, b.a(), bias, b.c(), rows, cols); };
    fwd.peers = {{"two calls", [=, &b] {
                    return bias_activation_forward(Activation::identity(), t, b.a(), bias, b.c(),
                                                   rows, cols).ok() &&
                           activation(Direction::forward, gelu, t, b.c(), nullptr, b.c(), n).ok();
                  }}};
    add(cases, fwd);

    FusedCase bwd;
    bwd.key = key("bias+gelu", t, "backward", shape + " dbias", n);
    bwd.bytes = (3 * n + 2 * cols) * es;
    bwd.inputs = 2;
    bwd.check = [=, &b] {
      const int64_t m = kCheckRows * cols;
      const auto x = smooth(t, m, 1), bv = operands(cols, 0), dy = smooth(t, m, 2);
      upload(t, b.a(), x);
      upload(t, bias, bv);
      upload(t, b.b(), dy);
      const Status s = bias_activation_backward(gelu, t, b.a(), bias, b.b(), b.c(), dbias,
                                                kCheckRows, cols, {}, {ws, check_ws_bytes});
      return verdict(s, s.ok() ? test::judge_bias_backward(gelu, t, t, kCheckRows, cols, x, bv, dy, {},
                                                           download(t, b.c(), m),
                                                           download(t, dbias, cols))
                               : 0);
    };
    bwd.launch = [=, &b] {
      return bias_activation_backward(gelu, t, b.a(), bias, b.b(), b.c(), dbias, rows, cols, {},
                                      {ws, ws_bytes});
    };
    add(cases, bwd);
  }

  // GELU + dropout (p = 0.1) over 2^27 elements: forward without and with
  // the mask output (one byte per element), backward regenerating the mask.
  void add_dropout(DType t, std::vector<FusedCase>& cases) {
    const int64_t n = kElementwiseN, es = dtype_size(t), check_n = int64_t{1} << 16;
    const Activation gelu = Activation::gelu();
    const Dropout dropout = kDropout;
    GpuBench& b = bench_;
    for (const bool with_mask : {false, true}) {
      FusedCase fwd;
      fwd.key = key("gelu+dropout", t, "forward",
                    "n=" + std::to_string(n) + (with_mask ? " mask" : ""), n);
      fwd.bytes = 2 * n * es + (with_mask ? n : 0);
      fwd.inputs = 1;
      // The mask goes to buffer b (not read by the forward).
      uint8_t* mask = with_mask ? reinterpret_cast<uint8_t*>(b.b()) : nullptr;
      fwd.check = [=, &b] {
        const auto x = grid(t, check_n, 4);
        upload(t, b.a(), x);
        const Status s = activation_dropout_forward(gelu, t, b.a(), b.c(), check_n, dropout, mask);
        if (!s.ok()) return verdict(s, 0);
        const std::vector<uint8_t> m = mask != nullptr ? download_mask(mask, check_n)
                                                       : std::vector<uint8_t>{};
        return verdict(s, test::judge_bias_forward(gelu, t, 1, check_n, x, {}, dropout,
                                                   download(t, b.c(), check_n),
                                                   mask != nullptr ? &m : nullptr));
      };
      fwd.launch = [=, &b] {
        return activation_dropout_forward(gelu, t, b.a(), b.c(), n, dropout, mask);
      };
      add(cases, fwd);
    }
    FusedCase bwd;
    bwd.key = key("gelu+dropout", t, "backward", "n=" + std::to_string(n), n);
    bwd.bytes = 3 * n * es;
    bwd.inputs = 2;
    bwd.check = [=, &b] {
      const auto x = grid(t, check_n, 5), dy = operands(check_n, 1);
      upload(t, b.a(), x);
      upload(t, b.b(), dy);
      const Status s = activation_dropout_backward(gelu, t, b.a(), b.b(), b.c(), check_n, dropout);
      return verdict(s, s.ok() ? test::judge_bias_backward(gelu, t, t, 1, check_n, x, {}, dy, dropout,
                                                           download(t, b.c(), check_n), {})
                               : 0);
    };
    bwd.launch = [=, &b] {
      return activation_dropout_backward(gelu, t, b.a(), b.b(), b.c(), n, dropout);
    };
    add(cases, bwd);
  }

  // SwiGLU / GeGLU: x [rows, 2d] -> y [rows, d]; backward dx [rows, 2d].
  void add_glu(DType t, const char* name, int64_t rows, int64_t d, std::vector<FusedCase>& cases) {
    const Glu glu = glu_named(name);
    const int64_t es = dtype_size(t);
    const std::string shape = std::to_string(rows) + "x" + std::to_string(d);
    GpuBench& b = bench_;
    auto check_input = [=] { return glu_input(glu, t, kCheckRows, d); };

    FusedCase fwd;
    fwd.key = key(name, t, "forward", shape, rows * d);
    fwd.bytes = 3 * rows * d * es;  // read [rows, 2d], write [rows, d]
    fwd.inputs = 2;
    fwd.check = [=, &b] {
      const auto x = check_input();
      upload(t, b.a(), x);
      const Status s = glu_forward(glu, t, b.a(), b.c(), kCheckRows, d);
      return verdict(s, s.ok() ? test::judge_glu_forward(glu, t, kCheckRows, d, x,
                                                         download(t, b.c(), kCheckRows * d))
                               : 0);
    };
    fwd.launch = [=, &b] { return glu_forward(glu, t, b.a(), b.c(), rows, d); };
    add(cases, fwd);

    FusedCase bwd;
    bwd.key = key(name, t, "backward", shape, rows * d);
    bwd.bytes = 5 * rows * d * es;  // read [rows, 2d] and [rows, d], write [rows, 2d]
    bwd.inputs = 2;
    bwd.check = [=, &b] {
      const auto x = check_input(), dy = operands(kCheckRows * d, 2);
      upload(t, b.a(), x);
      upload(t, b.b(), dy);
      const Status s = glu_backward(glu, t, b.a(), b.b(), b.c(), kCheckRows, d);
      return verdict(s, s.ok() ? test::judge_glu_backward(glu, t, kCheckRows, d, x, dy,
                                                          download(t, b.c(), kCheckRows * 2 * d))
                               : 0);
    };
    bwd.launch = [=, &b] { return glu_backward(glu, t, b.a(), b.b(), b.c(), rows, d); };
    add(cases, bwd);
  }

  // PReLU over [32, 256, 16384]: forward, backward with dweight. The check
  // runs both on one outer slice (judge_prelu judges them together).
  void add_prelu(DType t, std::vector<FusedCase>& cases) {
    const int64_t outer = kPreluOuter, ch = kPreluChannels, inner = kPreluInner;
    const int64_t n = outer * ch * inner, es = dtype_size(t);
    const std::string shape = std::to_string(outer) + "x" + std::to_string(ch) + "x" +
                              std::to_string(inner);
    GpuBench& b = bench_;
    void* weight = params_.get(static_cast<size_t>(ch * es));
    void* dweight = grads_.get(static_cast<size_t>(ch * es));
    const size_t ws_bytes = prelu_workspace(t, outer);
    const size_t check_ws_bytes = prelu_workspace(t, 1);
    void* ws = workspace_.get(std::max(ws_bytes, check_ws_bytes));
    // x in a, dy in b, y and dx in c and c + m elements (the check is 1/32 of the buffers).
    auto check = [=, &b] {
      const int64_t m = ch * inner;
      const test::PreluInputs in = test::prelu_inputs(t, m, ch);
      const std::vector<double>& x = in.x;
      const std::vector<double>& dy = in.dy;
      const std::vector<double>& w = in.weight;
      upload(t, b.a(), x);
      upload(t, weight, w);
      upload(t, b.b(), dy);
      char* dx = b.c(m * es);
      Status s = prelu_forward(t, b.a(), weight, b.c(), 1, ch, inner);
      if (s.ok())
        s = prelu_backward(t, b.a(), weight, b.b(), dx, dweight, 1, ch, inner, {ws, check_ws_bytes});
      return verdict(s, s.ok() ? test::judge_prelu(t, t, 1, ch, inner, x, w, dy, download(t, b.c(), m),
                                                   download(t, dx, m), download(t, dweight, ch))
                               : 0);
    };
    FusedCase fwd;
    fwd.key = key("prelu", t, "forward", shape, n);
    fwd.bytes = (2 * n + ch) * es;
    fwd.inputs = 1;
    fwd.check = check;
    fwd.launch = [=, &b] { return prelu_forward(t, b.a(), weight, b.c(), outer, ch, inner); };
    add(cases, fwd);
    FusedCase bwd;
    bwd.key = key("prelu", t, "backward", shape + " dweight", n);
    bwd.bytes = (3 * n + 2 * ch) * es;
    bwd.inputs = 2;
    bwd.check = check;
    bwd.launch = [=, &b] {
      return prelu_backward(t, b.a(), weight, b.b(), b.c(), dweight, outer, ch, inner, {ws, ws_bytes});
    };
    add(cases, bwd);
  }

  // RReLU in training mode (a slope per element from the generator) over 2^27 elements.
  void add_rrelu(DType t, std::vector<FusedCase>& cases) {
    const int64_t n = kElementwiseN, es = dtype_size(t), check_n = int64_t{1} << 20;
    const Rrelu rrelu = kRrelu;
    GpuBench& b = bench_;
    auto check = [=, &b] {
      const auto x = grid(t, check_n, 8), dy = operands(check_n, 4);
      upload(t, b.a(), x);
      upload(t, b.b(), dy);
      char* dx = b.c(check_n * es);
      Status s = rrelu_forward(rrelu, t, b.a(), b.c(), check_n);
      if (s.ok()) s = rrelu_backward(rrelu, t, b.a(), b.b(), dx, check_n);
      return verdict(s, s.ok() ? test::judge_rrelu(rrelu, t, x, dy, download(t, b.c(), check_n),
                                                   download(t, dx, check_n))
                               : 0);
    };
    const std::string shape = "n=" + std::to_string(n) + " training";
    FusedCase fwd;
    fwd.key = key("rrelu", t, "forward", shape, n);
    fwd.bytes = 2 * n * es;
    fwd.inputs = 1;
    fwd.check = check;
    fwd.launch = [=, &b] { return rrelu_forward(rrelu, t, b.a(), b.c(), n); };
    add(cases, fwd);
    FusedCase bwd;
    bwd.key = key("rrelu", t, "backward", shape, n);
    bwd.bytes = 3 * n * es;
    bwd.inputs = 2;
    bwd.check = check;
    bwd.launch = [=, &b] { return rrelu_backward(rrelu, t, b.a(), b.b(), b.c(), n); };
    add(cases, bwd);
  }

  // Workspace of bias + GELU backward with dbias over [rows, 8192], and of
  // PReLU backward with dweight over [outer, 256, 16384].
  static size_t bias_workspace(DType t, int64_t rows) {
    size_t bytes = 0;
    return workspace_bytes(bias_activation_backward_workspace_size(t, rows, kBiasCols, &bytes), bytes);
  }
  static size_t prelu_workspace(DType t, int64_t outer) {
    size_t bytes = 0;
    return workspace_bytes(
        prelu_backward_workspace_size(t, outer, kPreluChannels, kPreluInner, &bytes), bytes);
  }
  static size_t max_workspace() {
    size_t bytes = 1;
    for (DType t : kDTypes)
      for (size_t b : {bias_workspace(t, kBiasRows), bias_workspace(t, kCheckRows),
                       prelu_workspace(t, kPreluOuter), prelu_workspace(t, 1)})
        bytes = std::max(bytes, b);
    return bytes;
  }

  static constexpr int64_t kCheckRows = 4;
  const Options& o_;
  GpuBench& bench_;
  Scratch params_, grads_, workspace_;  // bias / weight, dbias / dweight, reduction workspace
};

// ---------------------------------------------------------------- without a GPU

// The host checks' shapes: 8 rows of each row's own width (its columns decide
// the plan), 2^16 elements of the flat rows; each dtype runs in well under a
// second on one core.
constexpr int64_t kHostRows = 8, kHostN = int64_t{1} << 16;
constexpr int64_t kHostPreluOuter = 2, kHostPreluChannels = 4;  // 8 rows of kPreluInner

// A call's buffers in host memory, where the emulator reads and writes them
// as the kernels would device memory.
std::vector<unsigned char> host(DType t, const std::vector<double>& v) {
  return test::to_buffer(t, v);
}
std::vector<unsigned char> room(DType t, int64_t n) {
  return std::vector<unsigned char>(static_cast<size_t>(n) * dtype_size(t));
}
std::vector<double> values(DType t, const std::vector<unsigned char>& b) {
  return test::from_buffer(t, b);
}
// The kernels' own code on the host, as an H100 would launch it.
void emulate(const detail::RowRequest& r) { test::emulate_fused(r, test::kH100DeviceBlocks); }
void judged(HostCheckRow& row, int64_t results, int64_t outside) {
  row.results += results;
  row.outside += outside;
}
std::string dims(int64_t rows, int64_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

}  // namespace

void time_fused(const Options& o, GpuBench& bench, int& failures) {
  FusedRows(o, bench).run(failures);
}

int64_t fused_max_bytes() {
  int64_t bytes = kElementwiseN * 4;  // fp32
  for (int64_t rows : kGluRows)
    for (int64_t d : kGluWidths) bytes = std::max(bytes, rows * 2 * d * 4);
  return bytes;
}

std::vector<std::string> fused_op_names() {
  return {"bias+gelu", "gelu+dropout", "swiglu", "geglu", "prelu", "rrelu"};
}

std::string fused_list() {
  return "  fused (forward, backward): bias+gelu [16384, 8192] (forward also as two calls: "
         "bias add, then gelu; backward with dbias), gelu+dropout p=0.1 n=2^27 (forward with "
         "and without the mask), swiglu and geglu d 11008, 14336 at 4096, 8192 rows, prelu "
         "[32, 256, 16384] (backward with dweight), rrelu training n=2^27";
}

std::vector<HostCheck> fused_host_checks(const Options& o) {
  const Activation gelu = Activation::gelu();
  const int64_t rows = kHostRows, n = kHostN;
  std::vector<HostCheck> checks;
  auto add = [&](const char* op, DType t, const char* direction, const std::string& shapes,
                 std::function<void(HostCheckRow&)> run) {
    const CaseKey key{"fused", op, dtype_name(t), direction, shapes, 0};
    if (selected(o, key)) checks.push_back({key, std::move(run)});
  };
  for (DType t : kDTypes) {
    const int64_t cols = kBiasCols, m = rows * cols;
    add("bias+gelu", t, "forward", dims(rows, cols), [=](HostCheckRow& row) {
      const auto x = grid(t, m, 1), bias = operands(cols, 0);
      const auto xb = host(t, x), bb = host(t, bias);
      auto yb = room(t, m);
      emulate(detail::bias_activation_forward_request(gelu, t, xb.data(), bb.data(), t, yb.data(),
                                                      rows, cols, {}, nullptr));
      judged(row, m,
             test::judge_bias_forward(gelu, t, rows, cols, x, bias, {}, values(t, yb), nullptr));
    });
    add("bias+gelu", t, "backward", dims(rows, cols) + " dbias", [=](HostCheckRow& row) {
      const auto x = smooth(t, m, 1), bias = operands(cols, 0), dy = smooth(t, m, 2);
      const auto xb = host(t, x), bb = host(t, bias), dyb = host(t, dy);
      auto dxb = room(t, m), dbb = room(t, cols);
      std::vector<unsigned char> ws(
          static_cast<size_t>(detail::bias_backward_workspace(t, rows, cols)));
      emulate(detail::bias_activation_backward_request(gelu, t, xb.data(), bb.data(), t, dyb.data(),
                                                       dxb.data(), dbb.data(), rows, cols, {},
                                                       ws.data()));
      judged(row, m + cols,
             test::judge_bias_backward(gelu, t, t, rows, cols, x, bias, dy, {}, values(t, dxb),
                                       values(t, dbb)));
    });
    add("gelu+dropout", t, "forward", "n=" + std::to_string(n) + ", and with the mask",
        [=](HostCheckRow& row) {
          const auto x = grid(t, n, 4);
          const auto xb = host(t, x);
          for (const bool with_mask : {false, true}) {
            auto yb = room(t, n);
            std::vector<uint8_t> mask(static_cast<size_t>(with_mask ? n : 0));
            emulate(detail::bias_activation_forward_request(gelu, t, xb.data(), nullptr, t,
                                                            yb.data(), 1, n, kDropout,
                                                            with_mask ? mask.data() : nullptr));
            judged(row, n,
                   test::judge_bias_forward(gelu, t, 1, n, x, {}, kDropout, values(t, yb),
                                            with_mask ? &mask : nullptr));
          }
        });
    add("gelu+dropout", t, "backward", "n=" + std::to_string(n), [=](HostCheckRow& row) {
      const auto x = grid(t, n, 5), dy = operands(n, 1);
      const auto xb = host(t, x), dyb = host(t, dy);
      auto dxb = room(t, n);
      emulate(detail::bias_activation_backward_request(gelu, t, xb.data(), nullptr, t, dyb.data(),
                                                       dxb.data(), nullptr, 1, n, kDropout,
                                                       nullptr));
      judged(row, n,
             test::judge_bias_backward(gelu, t, t, 1, n, x, {}, dy, kDropout, values(t, dxb), {}));
    });
    for (const char* name : {"swiglu", "geglu"}) {
      const Glu glu = glu_named(name);
      const std::string shapes = dims(rows, kGluWidths[0]) + ", " + dims(rows, kGluWidths[1]);
      add(name, t, "forward", shapes, [=](HostCheckRow& row) {
        for (const int64_t d : kGluWidths) {
          const auto x = glu_input(glu, t, rows, d);
          const auto xb = host(t, x);
          auto yb = room(t, rows * d);
          emulate(detail::glu_forward_request(glu, t, xb.data(), yb.data(), rows, d));
          judged(row, rows * d, test::judge_glu_forward(glu, t, rows, d, x, values(t, yb)));
        }
      });
      add(name, t, "backward", shapes, [=](HostCheckRow& row) {
        for (const int64_t d : kGluWidths) {
          const auto x = glu_input(glu, t, rows, d), dy = operands(rows * d, 2);
          const auto xb = host(t, x), dyb = host(t, dy);
          auto dxb = room(t, rows * 2 * d);
          emulate(detail::glu_backward_request(glu, t, xb.data(), dyb.data(), dxb.data(), rows, d));
          judged(row, rows * 2 * d,
                 test::judge_glu_backward(glu, t, rows, d, x, dy, values(t, dxb)));
        }
      });
    }
    // PReLU and RReLU: forward and backward judged together (as on the GPU),
    // for either direction's row.
    const int64_t outer = kHostPreluOuter, ch = kHostPreluChannels, inner = kPreluInner;
    const int64_t pn = outer * ch * inner;
    auto prelu = [=](HostCheckRow& row) {
      const test::PreluInputs in = test::prelu_inputs(t, pn, ch);
      const auto xb = host(t, in.x), wb = host(t, in.weight), dyb = host(t, in.dy);
      auto yb = room(t, pn), dxb = room(t, pn), dwb = room(t, ch);
      std::vector<unsigned char> ws(
          static_cast<size_t>(detail::prelu_backward_workspace(t, outer, ch, inner)));
      emulate(
          detail::prelu_forward_request(t, xb.data(), wb.data(), t, yb.data(), outer, ch, inner));
      emulate(detail::prelu_backward_request(t, xb.data(), wb.data(), t, dyb.data(), dxb.data(),
                                             dwb.data(), outer, ch, inner, ws.data()));
      judged(row, 2 * pn + ch,
             test::judge_prelu(t, t, outer, ch, inner, in.x, in.weight, in.dy, values(t, yb),
                               values(t, dxb), values(t, dwb)));
    };
    const std::string prelu_shape = std::to_string(outer) + "x" + dims(ch, inner);
    add("prelu", t, "forward", prelu_shape, prelu);
    add("prelu", t, "backward", prelu_shape + " dweight", prelu);
    auto rrelu = [=](HostCheckRow& row) {
      const auto x = grid(t, n, 8), dy = operands(n, 4);
      const auto xb = host(t, x), dyb = host(t, dy);
      auto yb = room(t, n), dxb = room(t, n);
      emulate(detail::rrelu_request(kRrelu, t, xb.data(), nullptr, yb.data(), n, false));
      emulate(detail::rrelu_request(kRrelu, t, xb.data(), dyb.data(), dxb.data(), n, true));
      judged(row, 2 * n, test::judge_rrelu(kRrelu, t, x, dy, values(t, yb), values(t, dxb)));
    };
    add("rrelu", t, "forward", "n=" + std::to_string(n) + " training", rrelu);
    add("rrelu", t, "backward", "n=" + std::to_string(n) + " training", rrelu);
  }
  return checks;
}

}  // namespace cuact::bench
