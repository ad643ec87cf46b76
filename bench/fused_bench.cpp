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
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

#include "cuact/cuact.h"
#include "cross_entropy_accuracy.h"
#include "cuact/reference.h"
#include "fused_accuracy.h"
#include "fused_emulation.h"
#include "gpu_bench.h"
#include "quantized_accuracy.h"
#include "softmax_accuracy.h"
#include "softmax_simulation.h"

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
// An MoE expert's GLU: gpt-oss's clamped SwiGLU at its width, 2880, a
// routing weight (fp32) per token row, backward with d weight.
constexpr int64_t kMoeRows = 16384, kMoeWidth = 2880;
// The last layer of a language model: the fused cross-entropy (mean loss,
// dlogits written in the same pass) over Llama 3's vocabulary.
constexpr int64_t kCeRows = 1536, kCeVocab = 128256;
// The fp8 rows: e4m3 forward, e5m2 backward (Transformer Engine's hybrid
// recipe), delayed scaling with this scale (and one current-scaling row).
constexpr float kFp8Scale = 16.0f;
// Softmax probabilities into e4m3 (FP8 attention's P): rows of 4096 columns.
constexpr int64_t kSoftmaxFp8Cols = 4096, kSoftmaxFp8Rows = kElementwiseN / kSoftmaxFp8Cols;
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

// Routing weights of `rows` tokens: moderate fp32 values, zero included.
std::vector<double> moe_weights(int64_t rows) {
  std::vector<double> w(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) w[r] = test::fused_operand(r + 2);
  return w;
}

// "" when the call succeeded and nothing failed the judge, else why not.
std::string verdict(const Status& s, int64_t failures) {
  if (!s.ok()) return std::string("the check call failed: ") + s.message();
  if (failures == 0) return "";
  return std::to_string(failures) + " values outside the fused tolerance against the CPU reference";
}

// ---------------------------------------------------------------- fp8 outputs

// The exact results (before scaling) of the fp8 rows' forms, per element.
std::vector<double> exact_act(const Activation& act, const std::vector<double>& x,
                              const std::vector<double>& bias, int64_t cols) {
  std::vector<double> e(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    e[i] = reference::forward(act, bias.empty() ? x[i]
                                                : reference::bias_preactivation(
                                                      x[i], bias[i % static_cast<size_t>(cols)]));
  return e;
}
std::vector<double> exact_dact(const Activation& act, const std::vector<double>& x,
                               const std::vector<double>& bias, int64_t cols,
                               const std::vector<double>& dy) {
  std::vector<double> e(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    e[i] = reference::backward(
        act, bias.empty() ? x[i] : reference::bias_preactivation(x[i], bias[i % static_cast<size_t>(cols)]),
        dy[i]);
  return e;
}
// The GLU's x [rows, 2d] split into its gated and linear halves, and the exact results.
std::vector<double> exact_glu(const Glu& glu, const std::vector<double>& x, int64_t rows,
                              int64_t d, std::vector<double>& gated) {
  std::vector<double> e(static_cast<size_t>(rows * d));
  gated.assign(e.size(), 0.0);
  const int64_t g = glu.gated == GatedHalf::first ? 0 : d, l = d - g;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) {
      const auto i = static_cast<size_t>(r * d + c);
      gated[i] = x[static_cast<size_t>(r * 2 * d + g + c)];
      e[i] = reference::forward(glu.act, gated[i]) * x[static_cast<size_t>(r * 2 * d + l + c)];
    }
  return e;
}
// Codes outside the quantized rule (quantized_accuracy.h).
int64_t fp8_outside(const Activation& act, Direction direction, Fp8 format, float scale,
                    int products, const std::vector<double>& in, const std::vector<double>& dy,
                    const std::vector<double>& exact, const std::vector<uint8_t>& codes) {
  const test::QuantizedJudge judge{act, direction, format, scale, products};
  return judge.judge_all(in, dy, exact, codes).outside;
}
// The softmax->fp8 row's problem (plain softmax, ordinary and extreme rows)
// and the codes outside the quantized rule with the fp32 softmax's bound.
test::SoftmaxProblem softmax_fp8_problem(DType t, int64_t rows) {
  return test::make_softmax_problem(test::softmax_option_sets().front(), Direction::forward, t,
                                    rows, kSoftmaxFp8Cols, 2026);
}
int64_t softmax_fp8_outside(const test::SoftmaxProblem& p, float scale,
                            const std::vector<uint8_t>& codes) {
  const test::SoftmaxExpected e32 = test::expected_softmax(
      p.options, Direction::forward, DType::f32, p.rows, p.cols, p.in, {}, p.mask);
  test::QuantizedReport r;
  for (size_t i = 0; i < codes.size(); ++i)
    test::judge_code(r, Fp8::e4m3, scale, e32.value[i], e32.bound[i], codes[i], false);
  return r.outside;
}
// The block-scaled rows: GELU (bias-less) or SwiGLU into e4m3 codes with
// row-major scales, MXFP8 (blocks of 32, E8M0) or DeepSeek-style 1x128
// (fp32 scales).
struct BlockRow {
  const char* name;
  bool glu;
  int block;
  BlockScale scale_type;
  int scale_bytes() const { return scale_type == BlockScale::f32 ? 4 : 1; }
  BlockScaledOutput output(void* codes, void* scales) const {
    return {codes, Fp8::e4m3, block, scale_type, scales, ScaleLayout::row_major};
  }
};
constexpr BlockRow kBlockRows[] = {{"gelu->mxfp8", false, 32, BlockScale::e8m0},
                                   {"swiglu->mxfp8", true, 32, BlockScale::e8m0},
                                   {"swiglu->fp8 1x128", true, 128, BlockScale::f32}};
// A block-scaled row's request over host or device buffers.
detail::RowRequest block_request(DType t, const BlockRow& row, const void* x, void* codes,
                                 void* scales, int64_t rows, int64_t cols) {
  const detail::RowRequest r =
      row.glu ? detail::glu_forward_request(Glu::swiglu(), t, x, codes, rows, cols)
              : detail::bias_activation_forward_request(Activation::gelu(), t, x, nullptr, t, codes,
                                                        rows, cols, {}, nullptr);
  return detail::block_scaled_request(r, row.output(codes, scales));
}
// Codes and scales that differ from the expected ones.
int64_t block_mismatches(const std::vector<uint8_t>& codes, const std::vector<uint8_t>& scales,
                         const std::vector<uint8_t>& want, const std::vector<uint8_t>& want_scales) {
  int64_t bad = 0;
  for (size_t i = 0; i < codes.size(); ++i) bad += codes[i] != want[i];
  for (size_t i = 0; i < scales.size(); ++i) bad += scales[i] != want_scales[i];
  return bad;
}
std::vector<uint8_t> download_codes(const void* p, int64_t n) {
  std::vector<uint8_t> c(static_cast<size_t>(n));
  if (n > 0) BENCH_CUDA(cudaMemcpy(c.data(), p, c.size(), cudaMemcpyDeviceToHost));
  return c;
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
        params_(static_cast<size_t>(std::max({kBiasCols, kPreluChannels, kMoeRows}) * 4)),
        grads_(static_cast<size_t>(std::max({kBiasCols, kPreluChannels, kMoeRows}) * 4)),
        workspace_(max_workspace()),
        words_(64) {
    // The delayed recipe's scale, read by every fp8 row (words: scale, amax, scale_inv).
    BENCH_CUDA(cudaMemcpy(words_.get(16), &kFp8Scale, sizeof kFp8Scale, cudaMemcpyHostToDevice));
  }

  void run(int& failures) {
    std::vector<FusedCase> cases;
    for (DType t : kDTypes) {
      add_bias_gelu(t, cases);
      add_dropout(t, cases);
      for (const char* name : {"swiglu", "geglu"})
        for (int64_t d : kGluWidths)
          for (int64_t rows : kGluRows) add_glu(t, name, rows, d, cases);
      add_moe_glu(t, cases);
      add_cross_entropy(t, cases);
      add_prelu(t, cases);
      add_rrelu(t, cases);
      add_fp8(t, cases);
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

  // The MoE GLU: clamped SwiGLU, x [rows, 2d] with fp32 weights [rows] ->
  // y [rows, d]; backward dx [rows, 2d] and d weight [rows].
  void add_moe_glu(DType t, std::vector<FusedCase>& cases) {
    const Glu glu = Glu::clamped_swiglu();
    const int64_t rows = kMoeRows, d = kMoeWidth, es = dtype_size(t);
    const std::string shape = std::to_string(rows) + "x" + std::to_string(d);
    GpuBench& b = bench_;
    void* weight = params_.get(static_cast<size_t>(rows * 4));
    void* dweight = grads_.get(static_cast<size_t>(rows * 4));
    const size_t ws_bytes = moe_workspace(t, rows), check_ws_bytes = moe_workspace(t, kCheckRows);
    void* ws = workspace_.get(std::max(ws_bytes, check_ws_bytes));
    const std::vector<double> w = moe_weights(rows);
    const std::vector<double> check_w(w.begin(), w.begin() + kCheckRows);
    auto check = [=, &b](bool backward) {
      const auto x = glu_input(glu, t, kCheckRows, d), dy = operands(kCheckRows * d, 2);
      upload(t, b.a(), x);
      upload(t, b.b(), dy);
      upload(DType::f32, weight, check_w);
      Status s = glu_forward(glu, t, b.a(), weight, DType::f32, b.c(), kCheckRows, d);
      int64_t failures = s.ok() ? test::judge_glu_forward(glu, t, kCheckRows, d, x,
                                                          download(t, b.c(), kCheckRows * d), check_w)
                                : 0;
      if (s.ok() && backward) {
        s = glu_backward(glu, t, b.a(), weight, DType::f32, b.b(), b.c(), dweight, kCheckRows, d,
                         {ws, check_ws_bytes});
        if (s.ok())
          failures += test::judge_glu_backward(glu, t, kCheckRows, d, x, dy,
                                               download(t, b.c(), kCheckRows * 2 * d), check_w,
                                               DType::f32, download(DType::f32, dweight, kCheckRows));
      }
      upload(DType::f32, weight, w);  // the timed calls' weights
      return verdict(s, failures);
    };
    FusedCase fwd;
    fwd.key = key("moe swiglu", t, "forward", shape + " weighted", rows * d);
    fwd.bytes = 3 * rows * d * es + rows * 4;  // read [rows, 2d] and the weights, write [rows, d]
    fwd.inputs = 2;
    fwd.check = [=] { return check(false); };
    fwd.launch = [=, &b] { return glu_forward(glu, t, b.a(), weight, DType::f32, b.c(), rows, d); };
    add(cases, fwd);
    FusedCase bwd;
    bwd.key = key("moe swiglu", t, "backward", shape + " dweight", rows * d);
    bwd.bytes = 5 * rows * d * es + 2 * rows * 4;  // read x, dy, the weights; write dx, d weight
    bwd.inputs = 2;
    bwd.check = [=] { return check(true); };
    bwd.launch = [=, &b] {
      return glu_backward(glu, t, b.a(), weight, DType::f32, b.b(), b.c(), dweight, rows, d,
                          {ws, ws_bytes});
    };
    add(cases, bwd);
  }

  // Cross-entropy, the fused mode: logits [rows, vocab] in, the mean loss
  // and dlogits out (one read, one write), judged on a slice first.
  void add_cross_entropy(DType t, std::vector<FusedCase>& cases) {
    const int64_t rows = kCeRows, vocab = kCeVocab, es = dtype_size(t);
    GpuBench& b = bench_;
    CrossEntropy ce;
    ce.reduction = Reduction::mean;
    int32_t* targets = static_cast<int32_t*>(params_.get(static_cast<size_t>(rows * 4)));
    float* words = static_cast<float*>(grads_.get(static_cast<size_t>((rows + 8) * 4)));
    void* ws = workspace_.get(static_cast<size_t>(ce_workspace(rows)));
    FusedCase c;
    c.key = key("cross_entropy", t, "forward", std::to_string(rows) + "x" + std::to_string(vocab) +
                " mean, dlogits", rows * vocab);
    c.bytes = 2 * rows * vocab * es + rows * 4;
    c.inputs = 1;
    c.check = [=, &b] {
      const test::CrossEntropyProblem p = test::make_cross_entropy_problem(
          "bench", ce, t, kCheckRows, vocab, vocab, 2026, 3.0, 0.0, 0);
      upload(t, b.a(), p.logits);
      std::vector<int32_t> t32(p.targets.begin(), p.targets.end());
      BENCH_CUDA(cudaMemcpy(targets, t32.data(), t32.size() * 4, cudaMemcpyHostToDevice));
      CrossEntropyOutputs out;
      out.loss = words + 8;
      out.reduced = words;
      out.dlogits = b.c();
      const Status s = cross_entropy_forward(ce, t, b.a(), kCheckRows, vocab, vocab, targets,
                                             IndexType::i32, out, {ws, ce_workspace(kCheckRows)});
      if (!s.ok()) return verdict(s, 0);
      test::CrossEntropyGot got;
      got.loss.resize(kCheckRows);
      BENCH_CUDA(cudaMemcpy(got.loss.data(), words + 8, kCheckRows * 4, cudaMemcpyDeviceToHost));
      BENCH_CUDA(cudaMemcpy(&got.reduced, words, 4, cudaMemcpyDeviceToHost));
      got.dlogits = download(t, b.c(), kCheckRows * vocab);
      const test::CrossEntropyCheck r = test::check_cross_entropy(p, got);
      // The timed calls' targets: every row's, a class each.
      std::vector<int32_t> all(static_cast<size_t>(rows));
      for (int64_t i = 0; i < rows; ++i) all[i] = static_cast<int32_t>((i * 7919) % vocab);
      BENCH_CUDA(cudaMemcpy(targets, all.data(), all.size() * 4, cudaMemcpyHostToDevice));
      return verdict(s, r.failures);
    };
    c.launch = [=, &b] {
      CrossEntropyOutputs out;
      out.reduced = words;
      out.dlogits = b.c();
      return cross_entropy_forward(ce, t, b.a(), rows, vocab, vocab, targets, IndexType::i32, out,
                                   {ws, ce_workspace(rows)});
    };
    add(cases, c);
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

  // The fp8 rows: GELU (forward e4m3; also current scaling: two passes over
  // x, counted), dGELU (e5m2), bias + GELU forward and dact + dbias, SwiGLU
  // forward at [8192, 14336], softmax probabilities at [32768, 4096]. Bytes: the input in its dtype, one byte per
  // code (the scale, amax and scale_inv words are negligible). Peer: the
  // same result in two cuact calls (the plain form into the input dtype,
  // then identity into fp8).
  void add_fp8(DType t, std::vector<FusedCase>& cases) {
    const int64_t es = dtype_size(t), n = kElementwiseN, check_n = int64_t{1} << 16;
    const Activation gelu = Activation::gelu(), identity = Activation::identity();
    GpuBench& b = bench_;
    float* words = static_cast<float*>(words_.get(16));
    void* ws = workspace_.get(16);
    const QuantizedOutput e4m3{b.c(), Fp8::e4m3, words, words + 1, words + 2};
    const QuantizedOutput e5m2{b.c(), Fp8::e5m2, words, words + 1, words + 2};
    QuantizedOutput current = e4m3;
    current.scaling = Scaling::current;
    current.scale = words + 3;  // written: the delayed rows' scale stays
    // The unfused peer's intermediate goes to b (an fp8 output is a quarter of c at most).
    auto two_calls = [=, &b](auto plain, QuantizedOutput q, int64_t m) {
      return Peer{"two calls", [=, &b] {
                    return plain().ok() && activation(Direction::forward, identity, t, b.b(), nullptr,
                                                      q, m, {ws, 16}).ok();
                  }};
    };
    for (const bool is_current : {false, true}) {
      const QuantizedOutput q = is_current ? current : e4m3;
      FusedCase fwd;
      fwd.key = key("gelu->fp8", t, "forward",
                    "n=" + std::to_string(n) + (is_current ? " current (two passes)" : ""), n);
      fwd.bytes = n * es * (is_current ? 2 : 1) + n;
      fwd.inputs = 1;
      fwd.check = [=, &b] {
        const auto x = grid(t, check_n, 1);
        upload(t, b.a(), x);
        const Status s = activation(Direction::forward, gelu, t, b.a(), nullptr, q, check_n, {ws, 16});
        float scale = kFp8Scale;
        if (s.ok() && is_current) BENCH_CUDA(cudaMemcpy(&scale, q.scale, 4, cudaMemcpyDeviceToHost));
        return verdict(s, s.ok() ? fp8_outside(gelu, Direction::forward, Fp8::e4m3, scale, 0, x, {},
                                               exact_act(gelu, x, {}, 1), download_codes(b.c(), check_n))
                                 : 0);
      };
      fwd.launch = [=, &b] { return activation(Direction::forward, gelu, t, b.a(), nullptr, q, n, {ws, 16}); };
      fwd.peers = {two_calls([=, &b] { return activation(Direction::forward, gelu, t, b.a(), nullptr, b.b(), n); },
                             q, n)};
      add(cases, fwd);
    }
    FusedCase bwd;
    bwd.key = key("gelu->fp8", t, "backward", "n=" + std::to_string(n), n);
    bwd.bytes = 2 * n * es + n;
    bwd.inputs = 2;
    bwd.check = [=, &b] {
      const auto x = grid(t, check_n, 5), dy = operands(check_n, 1);
      upload(t, b.a(), x);
      upload(t, b.b(), dy);
      const Status s = activation(Direction::backward, gelu, t, b.a(), b.b(), e5m2, check_n);
      return verdict(s, s.ok() ? fp8_outside(gelu, Direction::backward, Fp8::e5m2, kFp8Scale, 0, x, dy,
                                             exact_dact(gelu, x, {}, 1, dy), download_codes(b.c(), check_n))
                               : 0);
    };
    bwd.launch = [=, &b] { return activation(Direction::backward, gelu, t, b.a(), b.b(), e5m2, n); };
    add(cases, bwd);

    const int64_t rows = kBiasRows, cols = kBiasCols, m = rows * cols, check_m = kCheckRows * cols;
    const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
    void* bias = params_.get(static_cast<size_t>(cols * es));
    void* dbias = grads_.get(static_cast<size_t>(cols * es));
    FusedCase bfwd;
    bfwd.key = key("bias+gelu->fp8", t, "forward", shape, m);
    bfwd.bytes = m * es + cols * es + m;
    bfwd.inputs = 1;
    bfwd.check = [=, &b] {
      const auto x = grid(t, check_m, 1), bv = operands(cols, 0);
      upload(t, b.a(), x);
      upload(t, bias, bv);
      const Status s = bias_activation_forward(gelu, t, b.a(), bias, t, e4m3, kCheckRows, cols);
      std::vector<double> z(x.size());
      for (size_t i = 0; i < x.size(); ++i)
        z[i] = reference::bias_preactivation(x[i], bv[i % static_cast<size_t>(cols)]);
      return verdict(s, s.ok() ? fp8_outside(gelu, Direction::forward, Fp8::e4m3, kFp8Scale, 0, z, {},
                                             exact_act(gelu, z, {}, 1), download_codes(b.c(), check_m))
                               : 0);
    };
    bfwd.launch = [=, &b] { return bias_activation_forward(gelu, t, b.a(), bias, t, e4m3, rows, cols); };
    bfwd.peers = {two_calls([=, &b] { return bias_activation_forward(gelu, t, b.a(), bias, b.b(), rows, cols); },
                            e4m3, m)};
    add(cases, bfwd);

    const size_t ws_bytes = bias_workspace(t, rows), check_ws_bytes = bias_workspace(t, kCheckRows);
    void* rws = workspace_.get(std::max(ws_bytes, check_ws_bytes));
    FusedCase bbwd;
    bbwd.key = key("bias+gelu->fp8", t, "backward", shape + " dbias", m);
    bbwd.bytes = 2 * m * es + m + 2 * cols * es;
    bbwd.inputs = 2;
    bbwd.check = [=, &b] {
      const auto x = smooth(t, check_m, 1), bv = operands(cols, 0), dy = smooth(t, check_m, 2);
      upload(t, b.a(), x);
      upload(t, bias, bv);
      upload(t, b.b(), dy);
      const Status s = bias_activation_backward(gelu, t, b.a(), bias, t, b.b(), e5m2, dbias, kCheckRows,
                                                cols, {rws, check_ws_bytes});
      std::vector<double> z(x.size());
      for (size_t i = 0; i < x.size(); ++i)
        z[i] = reference::bias_preactivation(x[i], bv[i % static_cast<size_t>(cols)]);
      return verdict(s, s.ok() ? fp8_outside(gelu, Direction::backward, Fp8::e5m2, kFp8Scale, 0, z, dy,
                                             exact_dact(gelu, z, {}, 1, dy), download_codes(b.c(), check_m))
                               : 0);
    };
    bbwd.launch = [=, &b] {
      return bias_activation_backward(gelu, t, b.a(), bias, t, b.b(), e5m2, dbias, rows, cols,
                                      {rws, ws_bytes});
    };
    add(cases, bbwd);

    const Glu glu = Glu::swiglu();
    const int64_t grows = kGluRows[1], d = kGluWidths[1];
    FusedCase gfwd;
    gfwd.key = key("swiglu->fp8", t, "forward", std::to_string(grows) + "x" + std::to_string(d), grows * d);
    gfwd.bytes = 2 * grows * d * es + grows * d;
    gfwd.inputs = 2;
    gfwd.check = [=, &b] {
      const auto x = glu_input(glu, t, kCheckRows, d);
      upload(t, b.a(), x);
      const Status s = glu_forward(glu, t, b.a(), e4m3, kCheckRows, d);
      std::vector<double> gated;
      const std::vector<double> exact = exact_glu(glu, x, kCheckRows, d, gated);
      return verdict(s, s.ok() ? fp8_outside(glu.act, Direction::forward, Fp8::e4m3, kFp8Scale, 1, gated,
                                             {}, exact, download_codes(b.c(), kCheckRows * d))
                               : 0);
    };
    gfwd.launch = [=, &b] { return glu_forward(glu, t, b.a(), e4m3, grows, d); };
    gfwd.peers = {two_calls([=, &b] { return glu_forward(glu, t, b.a(), b.b(), grows, d); }, e4m3, grows * d)};
    add(cases, gfwd);

    const int64_t srows = kSoftmaxFp8Rows, scols = kSoftmaxFp8Cols;
    FusedCase sfwd;
    sfwd.key = key("softmax->fp8", t, "forward", std::to_string(srows) + "x" + std::to_string(scols),
                   srows * scols);
    sfwd.bytes = srows * scols * (es + 1);
    sfwd.inputs = 1;
    sfwd.check = [=, &b] {
      const test::SoftmaxProblem p = softmax_fp8_problem(t, kCheckRows);
      upload(t, b.a(), p.in);
      const Status s = softmax_forward(Softmax::softmax(), t, b.a(), e4m3,
                                       SoftmaxShape::rows(kCheckRows, scols));
      return verdict(s, s.ok() ? softmax_fp8_outside(p, kFp8Scale,
                                                     download_codes(b.c(), kCheckRows * scols))
                               : 0);
    };
    sfwd.launch = [=, &b] {
      return softmax_forward(Softmax::softmax(), t, b.a(), e4m3, SoftmaxShape::rows(srows, scols));
    };
    sfwd.peers = {two_calls([=, &b] {
                    return softmax(Direction::forward, Softmax::softmax(), t, b.a(), nullptr, b.b(),
                                   srows, scols);
                  }, e4m3, srows * scols)};
    add(cases, sfwd);

    // Block-scaled rows (kBlockRows): GELU over [16384, 8192] and SwiGLU
    // [8192, 14336]; checked bit for bit against the host run of the same
    // kernel code (fused_emulation.h) on a slice.
    for (const BlockRow& row : kBlockRows) {
      const bool glu = row.glu;
      const int64_t mrows = glu ? kGluRows[1] : kBiasRows, mcols = glu ? kGluWidths[1] : kBiasCols;
      const int64_t m = mrows * mcols;
      FusedCase mx;
      mx.key = key(row.name, t, "forward", std::to_string(mrows) + "x" + std::to_string(mcols), m);
      mx.bytes = (glu ? 2 : 1) * m * es + m + m / row.block * row.scale_bytes();
      mx.inputs = glu ? 2 : 1;
      const int64_t check_scale_bytes = (kCheckRows * mcols + row.block - 1) / row.block * row.scale_bytes();
      void* dscales = params_.get(static_cast<size_t>(check_scale_bytes));
      mx.check = [=, &b] {
        const auto x = glu ? glu_input(Glu::swiglu(), t, kCheckRows, mcols) : grid(t, kCheckRows * mcols, 1);
        upload(t, b.a(), x);
        const BlockScaledOutput y = row.output(b.c(), dscales);
        const Status s = glu ? glu_forward(Glu::swiglu(), t, b.a(), y, kCheckRows, mcols)
                             : bias_activation_forward(Activation::gelu(), t, b.a(), nullptr, t, y,
                                                       kCheckRows, mcols);
        if (!s.ok()) return verdict(s, 0);
        const auto xb = test::to_buffer(t, x);
        std::vector<uint8_t> want(static_cast<size_t>(kCheckRows * mcols)),
            want_scales(static_cast<size_t>(check_scale_bytes));
        test::emulate_fused(block_request(t, row, xb.data(), want.data(), want_scales.data(), kCheckRows, mcols),
                            test::kH100DeviceBlocks);
        return verdict(s, block_mismatches(download_codes(b.c(), kCheckRows * mcols),
                                           download_codes(dscales, check_scale_bytes), want,
                                           want_scales));
      };
      void* scales = b.b();  // [rows, cols / block] entries: far less than the buffer
      mx.launch = [=, &b] {
        const BlockScaledOutput y = row.output(b.c(), scales);
        return glu ? glu_forward(Glu::swiglu(), t, b.a(), y, mrows, mcols)
                   : bias_activation_forward(Activation::gelu(), t, b.a(), nullptr, t, y, mrows, mcols);
      };
      add(cases, mx);
    }
  }

  // Workspace of bias + GELU backward with dbias over [rows, 8192], and of
  // PReLU backward with dweight over [outer, 256, 16384].
  static size_t bias_workspace(DType t, int64_t rows) {
    size_t bytes = 0;
    return workspace_bytes(bias_activation_backward_workspace_size(t, rows, kBiasCols, &bytes), bytes);
  }
  static size_t ce_workspace(int64_t rows) {
    CrossEntropy ce;
    ce.reduction = Reduction::mean;
    CrossEntropyOutputs out;  // the mean without the rows' losses: 4 bytes a row
    out.reduced = reinterpret_cast<float*>(16);
    size_t bytes = 0;
    return workspace_bytes(cross_entropy_forward_workspace_size(ce, rows, out, &bytes), bytes);
  }
  static size_t moe_workspace(DType t, int64_t rows) {
    size_t bytes = 0;
    return workspace_bytes(glu_backward_workspace_size(t, rows, kMoeWidth, &bytes), bytes);
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
                       prelu_workspace(t, kPreluOuter), prelu_workspace(t, 1),
                       moe_workspace(t, kMoeRows), moe_workspace(t, kCheckRows),
                       ce_workspace(kCeRows), ce_workspace(kCheckRows)})
        bytes = std::max(bytes, b);
    return bytes;
  }

  static constexpr int64_t kCheckRows = 4;
  const Options& o_;
  GpuBench& bench_;
  Scratch params_, grads_, workspace_;  // bias / weight, dbias / dweight, reduction workspace
  Scratch words_;                      // the fp8 rows' scale, amax and scale_inv
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
  bytes = std::max(bytes, kCeRows * kCeVocab * 4);
  return bytes;
}

std::vector<std::string> fused_op_names() {
  return {"bias+gelu", "gelu+dropout", "swiglu", "geglu", "moe swiglu", "cross_entropy", "prelu", "rrelu",
          "gelu->fp8", "bias+gelu->fp8", "swiglu->fp8", "softmax->fp8", "gelu->mxfp8",
          "swiglu->mxfp8", "swiglu->fp8 1x128"};
}

std::string fused_list() {
  return "  fused (forward, backward): bias+gelu [16384, 8192] (forward also as two calls: "
         "bias add, then gelu; backward with dbias), gelu+dropout p=0.1 n=2^27 (forward with "
         "and without the mask), swiglu and geglu d 11008, 14336 at 4096, 8192 rows, moe swiglu "
         "(gpt-oss's clamped SwiGLU, fp32 routing weights; backward with d weight) [16384, 2880], "
         "cross_entropy (mean loss and dlogits in one pass) [1536, 128256], prelu "
         "[32, 256, 16384] (backward with dweight), rrelu training n=2^27; with an fp8 output "
         "(e4m3 forward, e5m2 backward, scale 16): gelu->fp8 n=2^27 (forward also with current "
         "scaling: two passes), bias+gelu->fp8 [16384, 8192] (backward: dact + dbias), "
         "swiglu->fp8 forward [8192, 14336], softmax->fp8 forward [32768, 4096]; each also as "
         "two calls (the plain form, then identity into fp8); MXFP8 (blocks of 32, E8M0 "
         "scales): gelu->mxfp8 [16384, 8192], swiglu->mxfp8 [8192, 14336]; blocks of 128 "
         "(fp32 scales): swiglu->fp8 1x128 [8192, 14336]";
}

namespace {

// The fp8 rows' checks on the host (the emulator runs the quantized kernels'
// code; the host words stand for the device's).
template <class Add>
void add_fp8_host_checks(DType t, Add& add) {
  const Activation gelu = Activation::gelu();
  const int64_t rows = kHostRows, n = kHostN;
  auto quantized = [](Fp8 f, float* words, void* codes, bool current) {
    QuantizedOutput q{codes, f, words, words + 1, words + 2};
    if (current) q.scaling = Scaling::current;
    return q;
  };
  add("gelu->fp8", t, "forward", "n=" + std::to_string(n) + ", also current scaling",
      [=](HostCheckRow& row) {
        const auto x = grid(t, n, 1);
        const auto xb = host(t, x);
        for (const bool current : {false, true}) {
          float words[3] = {kFp8Scale, 0, 0};
          std::vector<uint8_t> codes(static_cast<size_t>(n));
          const QuantizedOutput q = quantized(Fp8::e4m3, words, codes.data(), current);
          emulate(detail::quantized_request(
              detail::activation_request(Direction::forward, gelu, t, xb.data(), nullptr, codes.data(), n),
              q, nullptr, 0));
          judged(row, n,
                 fp8_outside(gelu, Direction::forward, Fp8::e4m3, words[0], 0, x, {},
                             exact_act(gelu, x, {}, 1), codes));
        }
      });
  add("gelu->fp8", t, "backward", "n=" + std::to_string(n), [=](HostCheckRow& row) {
    const auto x = grid(t, n, 5), dy = operands(n, 1);
    const auto xb = host(t, x), dyb = host(t, dy);
    float words[3] = {kFp8Scale, 0, 0};
    std::vector<uint8_t> codes(static_cast<size_t>(n));
    emulate(detail::quantized_request(
        detail::activation_request(Direction::backward, gelu, t, xb.data(), dyb.data(), codes.data(), n),
        quantized(Fp8::e5m2, words, codes.data(), false), nullptr, 0));
    judged(row, n,
           fp8_outside(gelu, Direction::backward, Fp8::e5m2, kFp8Scale, 0, x, dy,
                       exact_dact(gelu, x, {}, 1, dy), codes));
  });
  const int64_t cols = kBiasCols, m = rows * cols;
  add("bias+gelu->fp8", t, "forward", dims(rows, cols), [=](HostCheckRow& row) {
    const auto x = grid(t, m, 1), bias = operands(cols, 0);
    const auto xb = host(t, x), bb = host(t, bias);
    float words[3] = {kFp8Scale, 0, 0};
    std::vector<uint8_t> codes(static_cast<size_t>(m));
    emulate(detail::quantized_request(
        detail::bias_activation_forward_request(gelu, t, xb.data(), bb.data(), t, codes.data(), rows, cols,
                                                {}, nullptr),
        quantized(Fp8::e4m3, words, codes.data(), false), nullptr, 0));
    std::vector<double> z(x.size());
    for (size_t i = 0; i < x.size(); ++i)
      z[i] = reference::bias_preactivation(x[i], bias[i % static_cast<size_t>(cols)]);
    judged(row, m,
           fp8_outside(gelu, Direction::forward, Fp8::e4m3, kFp8Scale, 0, z, {}, exact_act(gelu, z, {}, 1),
                       codes));
  });
  add("bias+gelu->fp8", t, "backward", dims(rows, cols) + " dbias", [=](HostCheckRow& row) {
    const auto x = smooth(t, m, 1), bias = operands(cols, 0), dy = smooth(t, m, 2);
    const auto xb = host(t, x), bb = host(t, bias), dyb = host(t, dy);
    auto dbb = room(t, cols);
    float words[3] = {kFp8Scale, 0, 0};
    std::vector<uint8_t> codes(static_cast<size_t>(m));
    const int64_t reduction = detail::bias_backward_workspace(t, rows, cols);
    std::vector<unsigned char> ws(static_cast<size_t>(reduction));
    emulate(detail::quantized_request(
        detail::bias_activation_backward_request(gelu, t, xb.data(), bb.data(), t, dyb.data(), codes.data(),
                                                 dbb.data(), rows, cols, {}, ws.data()),
        quantized(Fp8::e5m2, words, codes.data(), false), ws.data(), reduction));
    std::vector<double> z(x.size());
    for (size_t i = 0; i < x.size(); ++i)
      z[i] = reference::bias_preactivation(x[i], bias[i % static_cast<size_t>(cols)]);
    // dbias: the plain form's reduction rule (fused_accuracy.h) over the
    // unquantized products, computed with the fp32 functor.
    const std::vector<double> dz = exact_dact(gelu, z, {}, 1, dy);
    std::vector<double> sums(static_cast<size_t>(cols), 0.0);
    std::vector<test::ReductionBound> bounds(static_cast<size_t>(cols));
    for (size_t i = 0; i < dz.size(); ++i) {
      sums[i % static_cast<size_t>(cols)] += dz[i];
      bounds[i % static_cast<size_t>(cols)].add(
          dz[i], test::backward_term_error(gelu, DType::f32, z[i], dy[i], dz[i], false));
    }
    int64_t dbias_outside = 0;
    const std::vector<double> dbias = values(t, dbb);
    for (int64_t c = 0; c < cols; ++c)
      dbias_outside += !test::reduction_within(t, dbias[static_cast<size_t>(c)], sums[static_cast<size_t>(c)],
                                               bounds[static_cast<size_t>(c)]);
    judged(row, m + cols,
           fp8_outside(gelu, Direction::backward, Fp8::e5m2, kFp8Scale, 0, z, dy, dz, codes) + dbias_outside);
  });
  const Glu glu = Glu::swiglu();
  add("swiglu->fp8", t, "forward", dims(rows, kGluWidths[1]), [=](HostCheckRow& row) {
    const int64_t d = kGluWidths[1];
    const auto x = glu_input(glu, t, rows, d);
    const auto xb = host(t, x);
    float words[3] = {kFp8Scale, 0, 0};
    std::vector<uint8_t> codes(static_cast<size_t>(rows * d));
    emulate(detail::quantized_request(detail::glu_forward_request(glu, t, xb.data(), codes.data(), rows, d),
                                      quantized(Fp8::e4m3, words, codes.data(), false), nullptr, 0));
    std::vector<double> gated;
    const std::vector<double> exact = exact_glu(glu, x, rows, d, gated);
    judged(row, rows * d,
           fp8_outside(glu.act, Direction::forward, Fp8::e4m3, kFp8Scale, 1, gated, {}, exact, codes));
  });
  for (const BlockRow& block_row : kBlockRows) {
    const bool glu_row = block_row.glu;
    const int64_t mcols = glu_row ? kGluWidths[1] : kBiasCols;
    add(block_row.name, t, "forward", dims(rows, mcols),
        [=](HostCheckRow& row) {
          // The kernels' code on the host against the reference's quantizer
          // on the fp32 results the same code computes (the f32 form on the
          // inputs widened, exactly).
          const auto x = glu_row ? glu_input(Glu::swiglu(), t, rows, mcols) : grid(t, rows * mcols, 1);
          const auto xb = host(t, x), x32 = host(DType::f32, x);
          const int64_t scale_bytes = (rows * mcols + block_row.block - 1) / block_row.block * block_row.scale_bytes();
          std::vector<uint8_t> codes(static_cast<size_t>(rows * mcols)), scales(static_cast<size_t>(scale_bytes));
          emulate(block_request(t, block_row, xb.data(), codes.data(), scales.data(), rows, mcols));
          std::vector<float> fp32(codes.size());
          detail::RowRequest plain =
              glu_row ? detail::glu_forward_request(Glu::swiglu(), DType::f32, x32.data(), fp32.data(), rows, mcols)
                      : detail::bias_activation_forward_request(Activation::gelu(), DType::f32, x32.data(),
                                                                nullptr, DType::f32, fp32.data(), rows, mcols,
                                                                {}, nullptr);
          emulate(plain);
          std::vector<uint8_t> want(codes.size()), want_scales(scales.size());
          const Status s = reference::block_quantize(fp32.data(), rows, mcols,
                                                     block_row.output(want.data(), want_scales.data()));
          judged(row, rows * mcols + rows * mcols / block_row.block,
                 s.ok() ? block_mismatches(codes, scales, want, want_scales) : rows * mcols);
        });
  }
  add("softmax->fp8", t, "forward", dims(rows, kSoftmaxFp8Cols), [=](HostCheckRow& row) {
    const test::SoftmaxProblem p = softmax_fp8_problem(t, rows);
    const auto xb = host(t, p.in);
    float words[3] = {kFp8Scale, 0, 0};
    std::vector<uint8_t> codes(static_cast<size_t>(rows * kSoftmaxFp8Cols));
    test::simulate_softmax_quantized(SoftmaxAlgorithm::automatic, Softmax::softmax(), t, xb.data(),
                                     quantized(Fp8::e4m3, words, codes.data(), false),
                                     SoftmaxShape::rows(rows, kSoftmaxFp8Cols));
    judged(row, rows * kSoftmaxFp8Cols, softmax_fp8_outside(p, kFp8Scale, codes));
  });
}

}  // namespace

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
    add("cross_entropy", t, "forward", dims(rows, kCeVocab) + " mean, dlogits",
        [=](HostCheckRow& row) {
          CrossEntropy ce;
          ce.reduction = Reduction::mean;
          const test::CrossEntropyProblem p =
              test::make_cross_entropy_problem("bench", ce, t, rows, kCeVocab, kCeVocab, 2026, 3.0, 0.0, 0);
          const auto xb = host(t, p.logits);
          auto dlb = room(t, rows * kCeVocab);
          test::CrossEntropyGot got;
          got.loss.resize(static_cast<size_t>(rows));
          std::vector<float> workspace(static_cast<size_t>(rows) + 8);
          CrossEntropyOutputs out;
          out.loss = got.loss.data();
          out.reduced = &got.reduced;
          out.dlogits = dlb.data();
          test::simulate_cross_entropy(SoftmaxAlgorithm::automatic, ce, t, xb.data(), rows, kCeVocab,
                                       kCeVocab, p.targets.data(), IndexType::i64, out,
                                       {workspace.data(), workspace.size() * 4});
          got.dlogits = values(t, dlb);
          const test::CrossEntropyCheck r = test::check_cross_entropy(p, got);
          judged(row, r.values, r.failures);
        });
    {  // The MoE GLU at its width, weighted (and d weight backward).
      const Glu glu = Glu::clamped_swiglu();
      const int64_t d = kMoeWidth;
      const std::vector<double> w = moe_weights(rows);
      add("moe swiglu", t, "forward", dims(rows, d) + " weighted", [=](HostCheckRow& row) {
        const auto x = glu_input(glu, t, rows, d);
        const auto xb = host(t, x), wb = host(DType::f32, w);
        auto yb = room(t, rows * d);
        emulate(detail::weighted_glu_request(
            detail::glu_forward_request(glu, t, xb.data(), yb.data(), rows, d), rows, wb.data(),
            DType::f32));
        judged(row, rows * d, test::judge_glu_forward(glu, t, rows, d, x, values(t, yb), w));
      });
      add("moe swiglu", t, "backward", dims(rows, d) + " dweight", [=](HostCheckRow& row) {
        const auto x = glu_input(glu, t, rows, d), dy = operands(rows * d, 2);
        const auto xb = host(t, x), dyb = host(t, dy), wb = host(DType::f32, w);
        auto dxb = room(t, rows * 2 * d), dwb = room(DType::f32, rows);
        std::vector<unsigned char> ws(static_cast<size_t>(detail::glu_backward_workspace(glu, t, rows, d)));
        emulate(detail::weighted_glu_request(
            detail::glu_backward_request(glu, t, xb.data(), dyb.data(), dxb.data(), rows, d),
            rows, wb.data(), DType::f32, dwb.data(), ws.data()));
        judged(row, rows * 2 * d + rows,
               test::judge_glu_backward(glu, t, rows, d, x, dy, values(t, dxb), w, DType::f32,
                                        values(DType::f32, dwb)));
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
    add_fp8_host_checks(t, add);
  }
  return checks;
}

}  // namespace cuact::bench
