// cuact-bench: the benchmark and accuracy tool (see --help and README.md).
//
// Every kernel is checked against the double-precision CPU reference before
// it is timed; timings are CUDA events around single launches with the L2
// flushed before each, reported next to a 16-byte copy kernel moving the same
// bytes in the same run, and next to the peers (cub::DeviceTransform with the
// same functor, cuDNN's legacy activation API where found at build time).
// Without a GPU nothing is timed; it shows what is known (run_without_gpu).
#include <cuda_runtime.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <cub/device/device_transform.cuh>

#include "accuracy.h"
#include "bench_core.h"
#include "cuact/cuact.h"
#include "cuact/device/activations.cuh"
#include "gpu_bench.h"
#include "softmax_accuracy.h"
#include "softmax_simulation.h"

#ifdef CUACT_BENCH_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace cuact::bench {
namespace {

constexpr DType kDTypes[] = {DType::f32, DType::f16, DType::bf16};
constexpr Direction kDirections[] = {Direction::forward, Direction::backward,
                                     Direction::backward_from_output};

std::vector<Activation> default_activations() {
  std::vector<Activation> acts;
  for (int k = 0; k < kNumActivationKinds; ++k)
    acts.push_back(Activation::with_defaults(static_cast<ActivationKind>(k)));
  return acts;
}

bool offers(const Activation& act, Direction d) {
  return d != Direction::backward_from_output || has_backward_from_output(act);
}

// The files --json, --csv and --gallery name, opened (truncated) before any
// work so that an unwritable path fails at once, not after a long run. Only
// those the mode writes: --accuracy writes no CSV, --gallery only its own file.
class Outputs {
 public:
  bool open(const Options& o) {
    const bool gallery = o.mode == Mode::gallery, timing = o.mode == Mode::time;
    return open(json_, gallery ? "" : o.json_path) && open(csv_, timing ? o.csv_path : "") &&
           open(gallery_, gallery ? o.gallery_path : "");
  }
  bool json(const std::string& text) { return write(json_, text); }
  bool csv(const std::string& text) { return write(csv_, text); }
  bool gallery(const std::string& text) { return write(gallery_, text); }

 private:
  struct File {
    std::string path;
    std::ofstream out;
  };
  static bool open(File& f, const std::string& path) {
    f.path = path;
    if (!path.empty()) f.out.open(path);
    return path.empty() || report(f);
  }
  static bool write(File& f, const std::string& text) {
    if (f.path.empty()) return true;
    f.out << text << std::flush;
    return report(f);
  }
  static bool report(File& f) {
    if (!f.out) std::fprintf(stderr, "cuact-bench: cannot write %s\n", f.path.c_str());
    return static_cast<bool>(f.out);
  }
  File json_, csv_, gallery_;
};

CaseKey activation_key(const test::ActivationCase& c) {
  return {"activation", activation_name(c.act.kind), dtype_name(c.dtype),
          direction_name(c.direction), "", 0};
}

// The selected activations, dtypes and the directions each offers.
std::vector<test::ActivationCase> selected_activations(const Options& o) {
  std::vector<test::ActivationCase> cases;
  for (const Activation& act : default_activations())
    for (DType t : kDTypes)
      for (Direction d : kDirections)
        if (offers(act, d) && selected(o, activation_key({act, t, d})))
          cases.push_back({act, t, d});
  return cases;
}

// Every selected case at the operation level (no size): the activations,
// then softmax and the fused forms, forward and backward.
std::vector<CaseKey> selected_cases(const Options& o) {
  std::vector<CaseKey> cases;
  for (const test::ActivationCase& c : selected_activations(o)) cases.push_back(activation_key(c));
  std::vector<std::string> row_ops = {"softmax"};
  for (const std::string& f : fused_op_names()) row_ops.push_back(f);
  for (const std::string& op : row_ops)
    for (DType t : kDTypes)
      for (const char* d : {"forward", "backward"}) {
        CaseKey key{op == "softmax" ? "softmax" : "fused", op, dtype_name(t), d, "", 0};
        if (selected(o, key)) cases.push_back(key);
      }
  return cases;
}

// The softmax rows' shapes [rows, cols]: docs/DESIGN.md's column sweep at
// rows * cols = 2^27 and vocabulary-sized rows.
std::vector<std::pair<int64_t, int64_t>> softmax_shapes() {
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int64_t cols : {32, 64, 128, 256, 512, 1000, 1024, 1025, 2048, 2049, 4096, 8192, 16384,
                       32768, 65536, 131072, 262144})
    shapes.emplace_back((int64_t{1} << 27) / cols, cols);
  for (int64_t rows : {1, 8, 64})
    for (int64_t cols : {128256, 151936}) shapes.emplace_back(rows, cols);
  return shapes;
}

// ---------------------------------------------------------------- list

int run_list() {
  std::printf("operations:");
  for (int k = 0; k < kNumActivationKinds; ++k)
    std::printf(" %s", activation_name(static_cast<ActivationKind>(k)));
  std::printf("\n  backward_from_output for:");
  for (const Activation& a : default_activations())
    if (has_backward_from_output(a)) std::printf(" %s", activation_name(a.kind));
  std::printf("\n  softmax (forward, backward): cols 32..262144 at rows*cols = 2^27, and rows 1, 8, 64 "
              "of 128256 and 151936 columns; automatic and every algorithm that takes the row");
  std::printf("\n%s", fused_list().c_str());
  std::printf("\ndtypes: f32 f16 bf16\ndirections: forward backward backward_from_output\n");
  std::printf("sizes (default): 2^20 2^24 2^27 2^28, each aligned, misaligned by one element "
              "and odd (n - 1)\n");
  return 0;
}

// ---------------------------------------------------------------- accuracy

struct DeviceEvaluator {
  const Activation& act;
  DType dtype;
  Direction direction;
  std::vector<double> operator()(const std::vector<double>& in,
                                 const std::vector<double>& dy) const {
    const auto in_b = test::to_buffer(dtype, in), dy_b = test::to_buffer(dtype, dy);
    void *d_in = nullptr, *d_dy = nullptr, *d_out = nullptr;
    std::vector<unsigned char> out_b(in_b.size());
    bool ok = cudaMalloc(&d_in, in_b.size()) == cudaSuccess &&
              cudaMalloc(&d_dy, in_b.size()) == cudaSuccess &&
              cudaMalloc(&d_out, in_b.size()) == cudaSuccess &&
              cudaMemcpy(d_in, in_b.data(), in_b.size(), cudaMemcpyHostToDevice) == cudaSuccess &&
              cudaMemcpy(d_dy, dy_b.data(), in_b.size(), cudaMemcpyHostToDevice) == cudaSuccess;
    ok = ok && cuact::activation(direction, act, dtype, d_in, d_dy, d_out,
                                 static_cast<int64_t>(in.size()))
                   .ok();
    ok = ok && cudaMemcpy(out_b.data(), d_out, out_b.size(), cudaMemcpyDeviceToHost) == cudaSuccess;
    cudaFree(d_in);
    cudaFree(d_dy);
    cudaFree(d_out);
    if (!ok) return std::vector<double>(in.size(), std::nan(""));  // judged as wrong
    return test::from_buffer(dtype, out_b);
  }
};

// Every selected activation, dtype and direction judged over the accuracy
// grid: the kernels on a GPU, else the device functors run on the host.
std::vector<AccuracyRow> check_accuracy(const Options& o, bool gpu) {
  std::vector<AccuracyRow> rows;
  const std::vector<test::ActivationCase> todo = selected_activations(o);
  for (size_t i = 0; i < todo.size(); ++i) {
    const Activation act = todo[i].act;
    const DType dtype = todo[i].dtype;
    const Direction d = todo[i].direction;
    const CaseKey key = activation_key(todo[i]);
    progress(o, i, todo.size(), key.op + " " + key.dtype);
    const test::Evaluator evaluate =
        gpu ? test::Evaluator(DeviceEvaluator{act, dtype, d})
            : test::Evaluator([&](const std::vector<double>& in, const std::vector<double>& dy) {
                return test::evaluate_functors_on_host(act, dtype, d, in, dy);
              });
    const test::SweepReport r = test::sweep(act, dtype, d, test::test_inputs(dtype), evaluate);
    rows.push_back({key.op, key.dtype, key.direction,
                    gpu ? "gpu kernels" : "host functors (no GPU)", r.inputs, r.worst_ulps,
                    r.max_rel_err, r.outside, test::tolerance_for(act.kind, dtype, d).ulps});
  }
  progress(o, todo.size(), todo.size(), "done");
  return rows;
}

int64_t count_outside(const std::vector<AccuracyRow>& rows) {
  int64_t n = 0;
  for (const AccuracyRow& r : rows) n += r.outside;
  return n;
}

// --accuracy: docs/ACCURACY.md's summary table (the per-row table with --verbose).
int run_accuracy(const Options& o, bool gpu, const RunInfo& info, Outputs& files) {
  const std::vector<AccuracyRow> rows = check_accuracy(o, gpu);
  std::printf("accuracy against the double-precision reference (%s%s)\n", info.device.c_str(),
              gpu ? "" : ": the device functors run on the host");
  if (o.verbose) std::printf("%s\n", format_accuracy_markdown(rows).c_str());
  std::printf("summary: worst/bound ulp (see README's accuracy contract)\n%s"
              "%lld results outside the stated tolerance\n",
              format_accuracy_summary(rows).c_str(), static_cast<long long>(count_outside(rows)));
  if (!files.json(accuracy_to_json(info, rows))) return 1;
  return count_outside(rows) == 0 ? 0 : 1;
}

// ---------------------------------------------------------------- gallery

// f and f' of every activation on [-6, 6], computed by cuact's kernels (fp32)
// on a GPU, else by the reference.
int run_gallery(const Options& o, bool gpu, Outputs& files) {
  const int points = 601;
  std::vector<double> x(points), ones(points, 1.0);
  for (int i = 0; i < points; ++i) x[i] = -6.0 + 12.0 * i / (points - 1);
  std::string csv = std::string("# sampled by ") +
                    (gpu ? "cuact kernels (f32) on the GPU" : "the CPU reference (no GPU)") +
                    "\nop,x,f,df\n";
  for (const Activation& act : default_activations()) {
    std::vector<double> f(points), df(points);
    if (gpu) {
      f = DeviceEvaluator{act, DType::f32, Direction::forward}(x, ones);
      df = DeviceEvaluator{act, DType::f32, Direction::backward}(x, ones);
    } else {
      for (int i = 0; i < points; ++i) {
        f[i] = reference::forward(act, x[i]);
        df[i] = reference::backward(act, x[i], 1.0);
      }
    }
    char line[160];
    for (int i = 0; i < points; ++i) {
      std::snprintf(line, sizeof line, "%s,%.6g,%.9g,%.9g\n", activation_name(act.kind), x[i],
                    f[i], df[i]);
      csv += line;
    }
  }
  std::printf("gallery: %d points of f and f' for %d activations -> %s\n", points,
              kNumActivationKinds, o.gallery_path.c_str());
  return files.gallery(csv) ? 0 : 1;
}

// ---------------------------------------------------------------- without a GPU

// The static model's table: --static-model, else the source tree's (the
// path is compiled in: CUACT_BENCH_STATIC_MODEL).
std::string static_model_path(const Options& o) {
  return o.static_model_path.empty() ? CUACT_BENCH_STATIC_MODEL : o.static_model_path;
}

// The kernels' own per-row code (softmax_simulation.h) run on the host over
// `rows` rows of each width, each with the algorithm an H100's dispatch picks,
// judged by the softmax rule on the problem the GPU check uses; the
// algorithms run are added to the row's shapes.
void check_softmax_on_host(DType t, Direction d, int64_t rows, const std::vector<int64_t>& widths,
                           HostCheckRow& row) {
  std::vector<SoftmaxAlgorithm> ran;
  for (int64_t cols : widths) {
    const test::SoftmaxProblem p =
        test::make_softmax_problem(test::softmax_option_sets().front(), d, t, rows, cols, 2026);
    // (operator new's storage is 16-byte aligned, as cudaMalloc's: rows on
    // pack boundaries, as in the GPU check.)
    const auto in = test::to_buffer(t, p.in), grad = test::to_buffer(t, p.grad);
    std::vector<unsigned char> out(in.size());
    const SoftmaxAlgorithm a = test::simulate_softmax(SoftmaxAlgorithm::automatic, d,
                                                      Softmax::softmax(), t, in.data(),
                                                      grad.data(), out.data(), rows, cols);
    if (std::find(ran.begin(), ran.end(), a) == ran.end()) ran.push_back(a);
    const test::SoftmaxCheck c =
        test::check_softmax(t, p.expected, test::from_buffer(t, out), rows, cols);
    for (const std::string& f : c.first_failures) std::fprintf(stderr, "softmax check: %s\n", f.c_str());
    row.results += c.elements;
    row.outside += c.failures + c.row_sum_failures;
    row.worst = std::max(row.worst.value_or(0.0), c.worst_ratio);
  }
  for (SoftmaxAlgorithm a : ran) row.key.shape += std::string(" ") + softmax_algorithm_name(a);
}

// Without a GPU, each selected softmax dtype and direction checked on the
// host: 4 rows of every width the bench times.
std::vector<HostCheck> softmax_host_checks(const Options& o) {
  constexpr int64_t rows = 4;
  std::vector<int64_t> widths;
  for (const auto& shape : softmax_shapes())
    if (std::find(widths.begin(), widths.end(), shape.second) == widths.end())
      widths.push_back(shape.second);
  const auto [lo, hi] = std::minmax_element(widths.begin(), widths.end());
  const std::string shapes = std::to_string(rows) + " rows x " + std::to_string(widths.size()) +
                             " widths " + std::to_string(*lo) + ".." + std::to_string(*hi) +
                             ", as an H100 dispatches:";
  std::vector<HostCheck> checks;
  for (DType t : kDTypes)
    for (Direction d : {Direction::forward, Direction::backward}) {
      const CaseKey key{"softmax", "softmax", dtype_name(t), direction_name(d), shapes, 0};
      if (!selected(o, key)) continue;
      checks.push_back(
          {key, [=](HostCheckRow& row) { check_softmax_on_host(t, d, rows, widths, row); }});
    }
  return checks;
}

// Every selected softmax and fused row checked on the host, one by one.
std::vector<HostCheckRow> check_on_host(const Options& o) {
  std::vector<HostCheck> checks = softmax_host_checks(o);
  for (HostCheck& c : fused_host_checks(o)) checks.push_back(std::move(c));
  std::vector<HostCheckRow> rows;
  for (size_t i = 0; i < checks.size(); ++i) {
    const CaseKey& k = checks[i].key;
    progress(o, i, checks.size(), k.op + " " + k.dtype + " " + k.direction + " on the host");
    rows.push_back(run_on_host(checks[i]));
  }
  progress(o, checks.size(), checks.size(), "done");
  return rows;
}

// What is known without a GPU, per selected operation: the accuracy of what
// can run on the host (an activation's device functors over the accuracy
// grid; a softmax or fused row's kernel code at small shapes: check_on_host)
// and the static model's predicted fraction of copy. Nothing is timed: CPU
// timings say nothing about the kernels. The files get one row per
// operation, dtype and direction with the prediction: status "host_checked"
// with the verdict (accuracy) for the rows checked on the host, "not_run"
// for the others.
int run_without_gpu(const Options& o, const RunInfo& info, Outputs& files) {
  const std::vector<AccuracyRow> accuracy = check_accuracy(o, false);
  const std::vector<HostCheckRow> host_checks = check_on_host(o);
  const std::vector<CaseKey> cases = selected_cases(o);
  std::vector<StaticRow> model, predicted;
  std::string note;  // where the predictions come from, or why there are none
  const std::string path = static_model_path(o);
  if (read_static_model(path, model, note)) {
    for (const CaseKey& key : cases)  // in the bench's order
      for (const StaticRow& r : model)
        if (r.key.op == key.op && r.key.dtype == key.dtype && r.key.direction == key.direction)
          predicted.push_back(r);
    note = "predicted: the static model of libcuact's sm_90 machine code (H100 SXM / H200),\n"
           "  not a measurement; the lowest over each op's dtypes, directions and kernels\n"
           "  (" + path + ")";
  } else {
    note = "predicted: not shown (" + note + "; --static-model FILE)";
  }
  std::vector<std::string> ops;
  for (const CaseKey& key : cases)
    if (std::find(ops.begin(), ops.end(), key.op) == ops.end()) ops.push_back(key.op);
  std::printf("%s%s\n", format_overview(ops, accuracy, host_checks, predicted).c_str(),
              note.c_str());
  if (!o.verbose) std::printf("every row: --verbose\n");
  if (o.verbose && !accuracy.empty())
    std::printf("\naccuracy, every row:\n%s", format_accuracy_markdown(accuracy).c_str());
  if (o.verbose && !host_checks.empty())
    std::printf("\nkernel code run on the host, every row:\n%s",
                format_host_checks(host_checks).c_str());
  if (o.verbose && !predicted.empty())
    std::printf("\npredicted fraction of copy, every kernel:\n%s",
                format_static_table(predicted).c_str());
  std::vector<Result> results;
  for (const CaseKey& key : cases) {
    Result r;
    r.key = key;
    r.status = "not_run";
    r.note = "not timed without a GPU";
    r.predicted = lowest_prediction(predicted, key);
    for (const HostCheckRow& h : host_checks)
      if (h.key.op == key.op && h.key.dtype == key.dtype && h.key.direction == key.direction) {
        r.status = "host_checked";
        r.accuracy = h.ok() ? "pass" : "FAIL";
        char worst[64] = "";
        if (h.worst)
          std::snprintf(worst, sizeof worst, "; worst error %.3f of the bound", *h.worst);
        r.note = "not timed; the kernels' code run on the host at " + h.key.shape + worst +
                 (h.error.empty() ? "" : "; stopped: " + h.error);
      }
    results.push_back(r);
  }
  const bool host_ok = std::all_of(host_checks.begin(), host_checks.end(),
                                   [](const HostCheckRow& h) { return h.ok(); });
  const bool written = files.json(to_json(info, results)) && files.csv(to_csv(results));
  return count_outside(accuracy) == 0 && host_ok && written ? 0 : 1;
}

// ---------------------------------------------------------------- GPU timing

// The same functor through cub::DeviceTransform (a representative subset:
// each CUB instantiation costs build time), from the public device header.
template <class T, class F>
struct CubForward {
  F f;
  __device__ T operator()(T x) const {
    return cuact::device::narrow<T>(f.forward(cuact::device::to_float(x)));
  }
};
template <class T, class F>
struct CubBackward {
  F f;
  __device__ T operator()(T x, T dy) const {
    return cuact::device::narrow<T>(f.backward(cuact::device::to_float(x), cuact::device::to_float(dy)));
  }
};

template <class T>
bool cub_peer(const Activation& act, Direction d, const void* in, const void* grad, void* out,
              int64_t n) {
  cudaError_t err = cudaErrorNotSupported;
  auto run = [&](auto f) {
    using F = decltype(f);
    const T* x = static_cast<const T*>(in);
    if (d == Direction::forward)
      err = cub::DeviceTransform::Transform(x, static_cast<T*>(out), n, CubForward<T, F>{f});
    else if (d == Direction::backward)
      err = cub::DeviceTransform::Transform(
          ::cuda::std::make_tuple(x, static_cast<const T*>(grad)), static_cast<T*>(out), n,
          CubBackward<T, F>{f});
  };
  switch (act.kind) {
    case ActivationKind::relu: run(cuact::device::Relu<T>({})); break;
    case ActivationKind::gelu: run(cuact::device::Gelu<T>({})); break;
    case ActivationKind::silu: run(cuact::device::Silu<T>({act.beta})); break;
    case ActivationKind::sigmoid: run(cuact::device::Sigmoid<T>({})); break;
    default: return false;
  }
  return err == cudaSuccess;
}

bool cub_peer(DType t, const Activation& act, Direction d, const void* in, const void* grad,
              void* out, int64_t n) {
  switch (t) {
    case DType::f16: return cub_peer<__half>(act, d, in, grad, out, n);
    case DType::bf16: return cub_peer<__nv_bfloat16>(act, d, in, grad, out, n);
    default: return cub_peer<float>(act, d, in, grad, out, n);
  }
}

#ifdef CUACT_BENCH_HAVE_CUDNN
// cuDNN's legacy activation API for the modes it has (backward reads y, dy and x).
class CudnnPeer {
 public:
  CudnnPeer() { ok_ = cudnnCreate(&handle_) == CUDNN_STATUS_SUCCESS; }
  ~CudnnPeer() {
    if (ok_) cudnnDestroy(handle_);
  }
  bool run(DType t, const Activation& act, Direction d, const void* in, const void* grad,
           void* out, int64_t n) {
    cudnnActivationMode_t mode;
    double coef = 0;
    switch (act.kind) {
      case ActivationKind::relu: mode = CUDNN_ACTIVATION_RELU; break;
      case ActivationKind::sigmoid: mode = CUDNN_ACTIVATION_SIGMOID; break;
      case ActivationKind::tanh: mode = CUDNN_ACTIVATION_TANH; break;
      case ActivationKind::relu6: mode = CUDNN_ACTIVATION_CLIPPED_RELU; coef = 6; break;
      case ActivationKind::elu: mode = CUDNN_ACTIVATION_ELU; coef = act.alpha; break;
      case ActivationKind::silu: mode = CUDNN_ACTIVATION_SWISH; break;
      default: return false;
    }
    if (!ok_ || d == Direction::backward_from_output || n > INT32_MAX) return false;
    const cudnnDataType_t type = t == DType::f32 ? CUDNN_DATA_FLOAT
                                 : t == DType::f16 ? CUDNN_DATA_HALF
                                                   : CUDNN_DATA_BFLOAT16;
    cudnnTensorDescriptor_t desc;
    cudnnActivationDescriptor_t adesc;
    cudnnCreateTensorDescriptor(&desc);
    cudnnCreateActivationDescriptor(&adesc);
    bool good = cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, type, 1, 1, 1,
                                           static_cast<int>(n)) == CUDNN_STATUS_SUCCESS &&
                cudnnSetActivationDescriptor(adesc, mode, CUDNN_PROPAGATE_NAN, coef) ==
                    CUDNN_STATUS_SUCCESS;
    if (good && mode == CUDNN_ACTIVATION_SWISH)
      good = cudnnSetActivationDescriptorSwishBeta(adesc, act.beta) == CUDNN_STATUS_SUCCESS;
    const float one = 1.0f, zero = 0.0f;
    if (good && d == Direction::forward)
      good = cudnnActivationForward(handle_, adesc, &one, desc, in, &zero, desc, out) ==
             CUDNN_STATUS_SUCCESS;
    else if (good)  // y := out's previous contents stand in for the saved output
      good = cudnnActivationBackward(handle_, adesc, &one, desc, out, desc, grad, desc, in,
                                     &zero, desc, out) == CUDNN_STATUS_SUCCESS;
    cudnnDestroyActivationDescriptor(adesc);
    cudnnDestroyTensorDescriptor(desc);
    return good;
  }

 private:
  cudnnHandle_t handle_{};
  bool ok_ = false;
};

// cuDNN's softmax (ACCURATE, per instance) over [rows, cols] as N x C x 1 x 1.
bool cudnn_softmax(DType t, Direction d, const void* in, const void* grad, void* out, int64_t rows,
                   int64_t cols) {
  static cudnnHandle_t handle = [] {
    cudnnHandle_t h = nullptr;
    return cudnnCreate(&h) == CUDNN_STATUS_SUCCESS ? h : nullptr;
  }();
  if (handle == nullptr || rows > INT32_MAX || cols > INT32_MAX) return false;
  const cudnnDataType_t type = t == DType::f32 ? CUDNN_DATA_FLOAT
                               : t == DType::f16 ? CUDNN_DATA_HALF
                                                 : CUDNN_DATA_BFLOAT16;
  cudnnTensorDescriptor_t desc;
  cudnnCreateTensorDescriptor(&desc);
  bool good = cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, type, static_cast<int>(rows),
                                         static_cast<int>(cols), 1, 1) == CUDNN_STATUS_SUCCESS;
  const float one = 1.0f, zero = 0.0f;
  if (good && d == Direction::forward)
    good = cudnnSoftmaxForward(handle, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                               desc, in, &zero, desc, out) == CUDNN_STATUS_SUCCESS;
  else if (good)
    good = cudnnSoftmaxBackward(handle, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                                desc, in, desc, grad, &zero, desc, out) == CUDNN_STATUS_SUCCESS;
  cudnnDestroyTensorDescriptor(desc);
  return good;
}
#endif

// Elementwise activations: every selected op x dtype x direction x size x layout.
void time_activations(const Options& o, GpuBench& bench, const std::vector<int64_t>& sizes,
                      int& failures) {
  struct Layout {
    const char* name;
    int offset;   // elements
    int shorten;  // n - shorten
  };
  const Layout layouts[] = {{"", 0, 0}, {" misaligned", 1, 0}, {" odd", 0, 1}};
#ifdef CUACT_BENCH_HAVE_CUDNN
  static CudnnPeer cudnn;
#endif
  const std::vector<test::ActivationCase> ops = selected_activations(o);
  const size_t total = ops.size() * sizes.size() * 3;
  size_t done = 0;
  for (const test::ActivationCase& op : ops) {
    const Activation act = op.act;
    const DType t = op.dtype;
    const Direction d = op.direction;
    const int es = static_cast<int>(dtype_size(t));
    const test::SweepReport check =
        test::sweep(act, t, d, test::test_inputs(t), DeviceEvaluator{act, t, d});
    for (int64_t n0 : sizes)
      for (const Layout& L : layouts) {
        const int64_t n = n0 - L.shorten;
        CaseKey key{"activation", activation_name(act.kind), dtype_name(t), direction_name(d),
                    "n=" + std::to_string(n) + L.name, n};
        progress(o, ++done, total, key.op + " " + key.dtype + " " + key.direction + " " + key.shape);
        if (check.outside != 0) {
          ++failures;
          bench.wrong(key, std::to_string(check.outside) +
                               " results outside the accuracy tolerance against the CPU reference");
          continue;
        }
        char* pa = bench.a(L.offset * es);
        char* pb = bench.b(L.offset * es);
        char* pc = bench.c(L.offset * es);
        std::vector<Peer> peers = {
            {"cub", [=] { return cub_peer(t, act, d, pa, pb, pc, n); }}};
#ifdef CUACT_BENCH_HAVE_CUDNN
        peers.emplace_back("cudnn", [=] { return cudnn.run(t, act, d, pa, pb, pc, n); });
#endif
        bench.time_case(key, activation_bytes(key.direction, n, es), d == Direction::forward ? 1 : 2,
                        [=] { return cuact::activation(d, act, t, pa, pb, pc, n); }, peers);
      }
  }
}

// The softmax family: every shape of softmax_shapes(), automatic and every
// algorithm that accepts the row.
void time_softmax(const Options& o, GpuBench& bench, int& failures) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = softmax_shapes();
  const SoftmaxAlgorithm algorithms[] = {SoftmaxAlgorithm::automatic, SoftmaxAlgorithm::warp_per_row,
                                         SoftmaxAlgorithm::block_per_row,
                                         SoftmaxAlgorithm::cluster_per_row,
                                         SoftmaxAlgorithm::streaming};
  const test::SoftmaxOptions plain = test::softmax_option_sets().front();
  for (DType t : kDTypes)
    for (Direction d : {Direction::forward, Direction::backward}) {
      CaseKey probe{"softmax", "softmax", dtype_name(t), direction_name(d), "", 0};
      if (!selected(o, probe)) continue;
      const int es = static_cast<int>(dtype_size(t));
      for (const auto& shape : shapes)
        for (SoftmaxAlgorithm alg : algorithms) {
          const int64_t rows = shape.first, cols = shape.second;
          SoftmaxAlgorithm chosen = alg;
          const Softmax op = Softmax::softmax().with_algorithm(alg);
          if (!softmax_selected_algorithm(d, op, t, cols, &chosen).ok()) continue;
          if (alg != SoftmaxAlgorithm::automatic && alg == chosen) {
            // the same kernel as automatic picks: timed once, as automatic
            SoftmaxAlgorithm automatic_choice;
            softmax_selected_algorithm(d, Softmax::softmax(), t, cols, &automatic_choice);
            if (automatic_choice == alg) continue;
          }
          const int64_t n = rows * cols;
          CaseKey key{"softmax", "softmax", dtype_name(t), direction_name(d),
                      std::to_string(rows) + "x" + std::to_string(cols) + " " +
                          (alg == SoftmaxAlgorithm::automatic ? "auto:" : "forced:") +
                          softmax_algorithm_name(chosen),
                      n};
          progress(o, 0, 1, key.dtype + " " + key.direction + " " + key.shape);
          // Check on a few rows first (the kernel depends on cols, not rows).
          const int64_t check_rows = std::max<int64_t>(1, std::min<int64_t>(rows, (1 << 20) / cols));
          const test::SoftmaxProblem problem =
              test::make_softmax_problem(plain, d, t, check_rows, cols, 2026);
          const auto in = test::to_buffer(t, problem.in), grad = test::to_buffer(t, problem.grad);
          BENCH_CUDA(cudaMemcpy(bench.a(), in.data(), in.size(), cudaMemcpyHostToDevice));
          BENCH_CUDA(cudaMemcpy(bench.b(), grad.data(), grad.size(), cudaMemcpyHostToDevice));
          const Status s = softmax(d, op, t, bench.a(), bench.b(), bench.c(), check_rows, cols);
          std::vector<unsigned char> out(in.size());
          BENCH_CUDA(cudaMemcpy(out.data(), bench.c(), out.size(), cudaMemcpyDeviceToHost));
          const test::SoftmaxCheck check = test::check_softmax(
              t, problem.expected, test::from_buffer(t, out), check_rows, cols);
          BENCH_CUDA(cudaMemset(bench.a(), 0, n * es));  // timed data: zeros (finite rows)
          BENCH_CUDA(cudaMemset(bench.b(), 0, n * es));
          if (!s.ok() || !check.ok()) {
            ++failures;
            bench.wrong(key, s.ok() ? std::to_string(check.failures) + " elements outside the softmax tolerance"
                                    : s.message());
            continue;
          }
          std::vector<Peer> peers;
#ifdef CUACT_BENCH_HAVE_CUDNN
          if (alg == SoftmaxAlgorithm::automatic)
            peers.emplace_back("cudnn", [=, &bench] {
              return cudnn_softmax(t, d, bench.a(), bench.b(), bench.c(), rows, cols);
            });
#endif
          bench.time_case(key, (d == Direction::forward ? 2 : 3) * n * es,
                          d == Direction::forward ? 1 : 2,
                          [=, &bench] { return softmax(d, op, t, bench.a(), bench.b(), bench.c(), rows, cols); },
                          peers);
        }
    }
}

int run_gpu_timing(const Options& o, const RunInfo& info, Outputs& files) {
  const std::vector<int64_t> sizes = o.sizes.empty() ? default_sizes() : o.sizes;
  int64_t max_n = int64_t{1} << 27;  // softmax sweep
  for (int64_t n : sizes) max_n = std::max(max_n, n);
  GpuBench bench(o, std::max((max_n + 16) * 4, fused_max_bytes()));
  int failures = 0;
  time_activations(o, bench, sizes, failures);
  time_softmax(o, bench, failures);
  time_fused(o, bench, failures);
  if (o.progress) std::fprintf(stderr, "\n");
  std::printf("%s", format_table(bench.results()).c_str());
  const bool written = files.json(to_json(info, bench.results())) &&
                       files.csv(to_csv(bench.results()));
  return failures == 0 && written ? 0 : 1;
}

// Why no GPU can be used, in words a user can act on. Without a driver the
// runtime reports cudaErrorInsufficientDriver ("CUDA driver version is
// insufficient"), which reads as a version problem: the driver version it
// reports then is 0, and that is said as no GPU/driver found.
std::string why_no_gpu(cudaError_t err) {
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  if (err == cudaSuccess || err == cudaErrorNoDevice ||
      (err == cudaErrorInsufficientDriver && driver == 0))
    return "no GPU/driver found";
  if (err == cudaErrorInsufficientDriver)
    return "the CUDA driver (CUDA " + version(driver) + ") is older than this build's runtime (CUDA " +
           version(runtime) + ")";
  return std::string("no usable GPU: ") + cudaGetErrorString(err);
}

RunInfo describe_device(int runs) {
  RunInfo info;
  info.runs = runs;
  int dev = 0, clock_khz = 0, bus_bits = 0;
  cudaDeviceProp prop{};
  cudaGetDevice(&dev);
  cudaGetDeviceProperties(&prop, dev);
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev);
  info.device = std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) +
                " SMs, " + std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
  info.peak_gbps = 2.0 * clock_khz * 1e3 * (bus_bits / 8) / 1e9;  // double data rate
  return info;
}

}  // namespace
}  // namespace cuact::bench

int main(int argc, char** argv) {
  using namespace cuact::bench;
  Options o;
  std::string error;
  if (!parse_options(argc, argv, o, error)) {
    if (error == "help") {
      std::printf("%s", usage().c_str());
      return 0;
    }
    std::fprintf(stderr, "cuact-bench: %s\n%s", error.c_str(), usage().c_str());
    return 2;
  }
  if (o.mode == Mode::list) return run_list();
  std::vector<std::string> names;
  for (int k = 0; k < cuact::kNumActivationKinds; ++k)
    names.push_back(cuact::activation_name(static_cast<cuact::ActivationKind>(k)));
  names.push_back("softmax");
  for (const std::string& f : fused_op_names()) names.push_back(f);
  if (const std::string bad = check_op_names(o, names); !bad.empty()) {
    std::fprintf(stderr, "cuact-bench: %s\n", bad.c_str());
    return 2;
  }
  Outputs files;
  if (!files.open(o)) return 2;
  // The progress line rewrites itself with \r: only on a terminal, never into a log.
  o.progress = o.progress && isatty(fileno(stderr));

  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  const bool gpu = err == cudaSuccess && count > 0;
  const RunInfo info = gpu ? describe_device(o.runs) : RunInfo{why_no_gpu(err), 0, 0};
  if (o.mode == Mode::gallery) return run_gallery(o, gpu, files);
  if (o.mode == Mode::accuracy) return run_accuracy(o, gpu, info, files);
  if (!gpu) {
    std::printf("cuact-bench: %s: nothing is timed. What is known without one, per operation:\n\n",
                info.device.c_str());
    return run_without_gpu(o, info, files);
  }
  std::printf("GPU: %s, peak %.0f GB/s, median of %d runs\n", info.device.c_str(), info.peak_gbps,
              o.runs);
  return run_gpu_timing(o, info, files);
}
