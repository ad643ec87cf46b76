// cuact-bench's GPU timing machinery, shared by its sections (elementwise
// activations and softmax in cuact_bench.cu, the fused forms in
// fused_bench.cpp): device buffers, CUDA-event timing with the L2 flushed
// before each launch, and the 16-byte copy kernel every row is compared with;
// and the sections' entry points (with and without a GPU).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bench_core.h"
#include "cuact/status.h"

namespace cuact::bench {

// The bench's own CUDA calls (allocation, copies, events) must succeed: a
// failure ends the run with the call and the error named.
#define BENCH_CUDA(expr)                                                            \
  do {                                                                              \
    const cudaError_t e_ = (expr);                                                  \
    if (e_ != cudaSuccess) {                                                        \
      std::fprintf(stderr, "cuact-bench: %s: %s\n", #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

// One progress line on stderr, rewritten in place with \r (unless --no-progress;
// main turns it off when stderr is not a terminal).
void progress(const Options& o, size_t done, size_t total, const std::string& what);

// Median and spread of single launches, each after an L2 flush.
class Timer {
 public:
  explicit Timer(int runs);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  // One warm-up launch, then `runs` timed ones. False when a launch failed.
  bool time(const std::function<bool()>& launch, Spread& out);

 private:
  int runs_;
  cudaEvent_t start_{}, stop_{};
  void* flush_ = nullptr;
  size_t flush_bytes_ = 0;
};

// A peer of a timed kernel: a name and a launch (false when it cannot run the case).
using Peer = std::pair<std::string, std::function<bool()>>;

// What every GPU timing shares: three device buffers (a: input, b: second
// input, c: output) of the bytes asked for (plus 256 for misaligned
// layouts), the timer, the copy kernel's bandwidth per (dtype, bytes, input
// streams) measured in this run, and the results.
class GpuBench {
 public:
  GpuBench(const Options& o, int64_t max_bytes);
  ~GpuBench();
  GpuBench(const GpuBench&) = delete;
  GpuBench& operator=(const GpuBench&) = delete;

  char* a(int64_t offset_bytes = 0) const { return static_cast<char*>(a_) + offset_bytes; }
  char* b(int64_t offset_bytes = 0) const { return static_cast<char*>(b_) + offset_bytes; }
  char* c(int64_t offset_bytes = 0) const { return static_cast<char*>(c_) + offset_bytes; }
  int64_t buffer_bytes() const { return bytes_; }
  const Options& options() const { return options_; }
  std::vector<Result>& results() { return results_; }

  // Times one verified kernel moving `bytes` (reading `inputs` streams,
  // writing one) and its peers; records the row with its fraction of the
  // copy kernel over the same bytes and the same number of input streams.
  void time_case(const CaseKey& key, int64_t bytes, int inputs,
                 const std::function<Status()>& launch, const std::vector<Peer>& peers);
  // Records a kernel that failed its check against the reference (not timed).
  void wrong(const CaseKey& key, const std::string& why);

 private:
  // The copy kernel's GB/s over `inputs` input streams and one output of
  // stream_bytes each, timed once per distinct shape and recorded as a row.
  double copy_gbps(const std::string& dtype, int64_t elements, int64_t stream_bytes, int inputs);

  const Options& options_;
  Timer timer_;
  int64_t bytes_;
  void *a_ = nullptr, *b_ = nullptr, *c_ = nullptr;
  int sms_ = 0;
  std::vector<std::pair<std::string, double>> copies_;
  std::vector<Result> results_;
};

// The fused forms (fused_bench.cpp): bias + GELU fused and as two calls,
// GELU + dropout, SwiGLU/GeGLU, PReLU and RReLU, each checked against the
// reference first. Adds 1 to `failures` per kernel that fails its check.
void time_fused(const Options& o, GpuBench& bench, int& failures);
// The largest buffer time_fused needs, in bytes.
int64_t fused_max_bytes();
// The fused rows --list describes.
std::string fused_list();
// The fused forms' operation names, as --op takes them.
std::vector<std::string> fused_op_names();
// Without a GPU: each selected fused row's check on the host (the kernels'
// own code, fused_emulation.h, at small shapes of the row; no GPU needed).
std::vector<HostCheck> fused_host_checks(const Options& o);

}  // namespace cuact::bench
