#include "gpu_bench.h"

#include <algorithm>

namespace cuact::bench {

namespace {

// The roofline: read one or two streams and write one, 16 bytes at a time.
template <int Inputs>
__global__ void streaming_copy(const uint4* __restrict__ a, const uint4* __restrict__ b,
                               uint4* __restrict__ out, int64_t n16) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n16;
       i += stride) {
    uint4 v = a[i];
    if constexpr (Inputs == 2) {
      const uint4 w = b[i];
      v.x ^= w.x;
      v.y ^= w.y;
      v.z ^= w.z;
      v.w ^= w.w;
    }
    out[i] = v;
  }
}

}  // namespace

void progress(const Options& o, size_t done, size_t total, const std::string& what) {
  if (!o.progress) return;
  std::fprintf(stderr, "\r[%zu/%zu] %-60s", done, total, what.c_str());
  if (done == total) std::fprintf(stderr, "\n");
}

Timer::Timer(int runs) : runs_(runs) {
  BENCH_CUDA(cudaEventCreate(&start_));
  BENCH_CUDA(cudaEventCreate(&stop_));
  int dev = 0, l2 = 0;
  BENCH_CUDA(cudaGetDevice(&dev));
  BENCH_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  flush_bytes_ = std::max<size_t>(4 * static_cast<size_t>(l2), size_t{256} << 20);
  BENCH_CUDA(cudaMalloc(&flush_, flush_bytes_));
}

Timer::~Timer() {
  cudaFree(flush_);
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
}

bool Timer::time(const std::function<bool()>& launch, Spread& out) {
  if (!launch()) return false;  // warm-up
  std::vector<double> ms;
  for (int r = 0; r < runs_; ++r) {
    BENCH_CUDA(cudaMemsetAsync(flush_, r & 0xff, flush_bytes_));
    BENCH_CUDA(cudaEventRecord(start_));
    if (!launch()) return false;
    BENCH_CUDA(cudaEventRecord(stop_));
    BENCH_CUDA(cudaEventSynchronize(stop_));
    float t = 0;
    BENCH_CUDA(cudaEventElapsedTime(&t, start_, stop_));
    ms.push_back(t);
  }
  out = spread(ms);
  return true;
}

GpuBench::GpuBench(const Options& o, int64_t max_bytes)
    : options_(o), timer_(o.runs), bytes_(max_bytes + 256) {
  for (void** p : {&a_, &b_, &c_}) {
    BENCH_CUDA(cudaMalloc(p, bytes_));
    BENCH_CUDA(cudaMemset(*p, 0, bytes_));
  }
  int dev = 0;
  BENCH_CUDA(cudaGetDevice(&dev));
  BENCH_CUDA(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, dev));
}

GpuBench::~GpuBench() {
  cudaFree(a_);
  cudaFree(b_);
  cudaFree(c_);
}

double GpuBench::copy_gbps(const std::string& dtype, int64_t elements, int64_t stream_bytes,
                           int inputs) {
  const std::string id = dtype + std::to_string(stream_bytes) + "/" + std::to_string(inputs);
  for (const auto& copy : copies_)
    if (copy.first == id) return copy.second;
  const int64_t n16 = stream_bytes / 16;
  Spread s{};
  timer_.time(
      [&] {
        if (inputs == 1)
          streaming_copy<1><<<sms_ * 16, 256>>>(reinterpret_cast<const uint4*>(a_), nullptr,
                                                reinterpret_cast<uint4*>(c_), n16);
        else
          streaming_copy<2><<<sms_ * 16, 256>>>(reinterpret_cast<const uint4*>(a_),
                                                reinterpret_cast<const uint4*>(b_),
                                                reinterpret_cast<uint4*>(c_), n16);
        return cudaGetLastError() == cudaSuccess;
      },
      s);
  Result r;
  r.key = {"copy", "copy", dtype, inputs == 1 ? "1 in" : "2 in",
           "bytes=" + std::to_string(stream_bytes), elements};
  r.status = "ok";
  r.bytes = (inputs + 1) * n16 * 16;
  r.median_ms = s.median;
  r.p10_ms = s.p10;
  r.p90_ms = s.p90;
  r.gbps = r.bytes / s.median / 1e6;
  r.copy_fraction = 1.0;
  results_.push_back(r);
  copies_.emplace_back(id, r.gbps);
  return r.gbps;
}

void GpuBench::time_case(const CaseKey& key, int64_t bytes, int inputs,
                         const std::function<Status()>& launch, const std::vector<Peer>& peers) {
  Result r;
  r.key = key;
  r.bytes = bytes;
  Status status;
  Spread s{};
  if (!timer_.time(
          [&] {
            status = launch();
            return status.ok();
          },
          s)) {
    r.status = "error";
    r.note = status.message();
    results_.push_back(r);
    return;
  }
  r.status = "ok";
  r.median_ms = s.median;
  r.p10_ms = s.p10;
  r.p90_ms = s.p90;
  r.gbps = bytes / s.median / 1e6;
  const double copy = copy_gbps(key.dtype, key.elements, bytes / (inputs + 1), inputs);
  if (copy > 0) r.copy_fraction = r.gbps / copy;  // (not measured if the copy failed)
  for (const auto& peer : peers) {
    Spread p{};
    if (timer_.time(peer.second, p)) r.peers.emplace_back(peer.first, p.median);
  }
  results_.push_back(r);
}

void GpuBench::wrong(const CaseKey& key, const std::string& why) {
  Result r;
  r.key = key;
  r.status = "wrong";
  r.note = why + "; not timed";
  results_.push_back(r);
}

}  // namespace cuact::bench
