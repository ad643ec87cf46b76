// cuact-bench: checks every activation kernel against the CPU reference and
// times it against a 16-byte streaming copy over the same bytes.
//
//   cuact-bench [--n ELEMENTS] [--runs R] [--help]
//
// Without a GPU it says so, times the CPU reference instead and exits 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "accuracy.h"
#include "cuact/cuact.h"

namespace {

using cuact::Activation;
using cuact::Direction;
using cuact::DType;

constexpr DType kDTypes[] = {DType::f32, DType::f16, DType::bf16};
constexpr Direction kDirections[] = {Direction::forward, Direction::backward};

struct Options {
  int64_t n = int64_t{1} << 27;  // elements per buffer on the GPU
  int64_t cpu_n = int64_t{1} << 18;
  int runs = 20;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: cuact-bench [--n ELEMENTS] [--runs R]\n"
          "  Checks each activation x dtype x direction against the CPU reference, then\n"
          "  times it on the GPU (median of R runs, L2 flushed between runs) against a\n"
          "  16-byte streaming copy moving the same bytes. Without a GPU: times the CPU\n"
          "  reference and exits 0.\n");
      std::exit(0);
    } else if (a == "--n" && i + 1 < argc) {
      o.n = std::atoll(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      o.runs = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "cuact-bench: unknown argument '%s' (see --help)\n", a.c_str());
      return false;
    }
  }
  return o.n > 0;
}

// ---------------------------------------------------------------- CPU part

int run_cpu_part(const Options& o) {
  std::printf("CPU reference throughput (double precision, %lld elements per call)\n",
              static_cast<long long>(o.cpu_n));
  std::printf("%-14s %-5s %-9s %12s\n", "activation", "dtype", "direction", "Melem/s");
  std::vector<double> x(o.cpu_n), dy(o.cpu_n);
  for (int64_t i = 0; i < o.cpu_n; ++i) {
    x[i] = -8.0 + 16.0 * static_cast<double>(i) / o.cpu_n;
    dy[i] = cuact::test::test_gradient(i);
  }
  for (int k = 0; k < cuact::kNumActivationKinds; ++k) {
    const Activation act = Activation::with_defaults(static_cast<cuact::ActivationKind>(k));
    for (DType dtype : kDTypes) {
      const auto in = cuact::test::to_buffer(dtype, x), grad = cuact::test::to_buffer(dtype, dy);
      std::vector<unsigned char> out(in.size());
      for (Direction dir : kDirections) {
        const auto t0 = std::chrono::steady_clock::now();
        const cuact::Status s =
            cuact::reference::activation(dir, act, dtype, in.data(), grad.data(), out.data(), o.cpu_n);
        const double sec =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!s.ok()) {
          std::printf("%-14s %-5s %-9s  error: %s\n", cuact::activation_name(act.kind),
                      cuact::dtype_name(dtype), cuact::direction_name(dir), s.message().c_str());
          return 1;
        }
        std::printf("%-14s %-5s %-9s %12.1f\n", cuact::activation_name(act.kind),
                    cuact::dtype_name(dtype), cuact::direction_name(dir), o.cpu_n / sec / 1e6);
      }
    }
  }
  return 0;
}

// ---------------------------------------------------------------- GPU part

// The roofline: read `inputs` streams and write one, 16 bytes at a time.
template <int Inputs>
__global__ void streaming_copy(const uint4* __restrict__ a, const uint4* __restrict__ b,
                               uint4* __restrict__ out, int64_t n16) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n16;
       i += stride) {
    uint4 v = a[i];
    if (Inputs == 2) {
      const uint4 w = b[i];
      v.x ^= w.x; v.y ^= w.y; v.z ^= w.z; v.w ^= w.w;
    }
    out[i] = v;
  }
}

#define CHECK_CUDA(expr)                                                              \
  do {                                                                                \
    const cudaError_t e_ = (expr);                                                    \
    if (e_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "cuact-bench: %s: %s\n", #expr, cudaGetErrorString(e_));   \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

struct Timer {
  cudaEvent_t start, stop;
  void* flush;
  size_t flush_bytes;
  Timer() {
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    int dev = 0, l2 = 0;
    CHECK_CUDA(cudaGetDevice(&dev));
    CHECK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    flush_bytes = std::max<size_t>(2 * static_cast<size_t>(l2), 64 << 20);
    CHECK_CUDA(cudaMalloc(&flush, flush_bytes));
  }
  // Median milliseconds of `runs` launches, L2 flushed before each.
  template <class Launch>
  double median_ms(int runs, Launch&& launch) {
    launch();  // warm-up
    std::vector<float> ms(runs);
    for (int r = 0; r < runs; ++r) {
      CHECK_CUDA(cudaMemsetAsync(flush, r, flush_bytes));
      CHECK_CUDA(cudaEventRecord(start));
      launch();
      CHECK_CUDA(cudaEventRecord(stop));
      CHECK_CUDA(cudaEventSynchronize(stop));
      CHECK_CUDA(cudaEventElapsedTime(&ms[r], start, stop));
    }
    std::sort(ms.begin(), ms.end());
    return ms[runs / 2];
  }
};

// Runs the kernel on the test grid and judges every element; returns the
// number of elements outside the tolerance.
int64_t verify(const Activation& act, DType dtype, Direction dir) {
  const std::vector<double>& grid = cuact::test::test_inputs(dtype);
  const int64_t n = static_cast<int64_t>(std::min<size_t>(grid.size(), 1 << 20));
  std::vector<double> in(n), dy(n);
  for (int64_t i = 0; i < n; ++i) {
    in[i] = cuact::test::direction_input(act, dtype, dir, grid[i]);
    dy[i] = cuact::test::test_gradient(i);
  }
  const auto in_b = cuact::test::to_buffer(dtype, in), dy_b = cuact::test::to_buffer(dtype, dy);
  void *d_in, *d_dy, *d_out;
  CHECK_CUDA(cudaMalloc(&d_in, in_b.size()));
  CHECK_CUDA(cudaMalloc(&d_dy, in_b.size()));
  CHECK_CUDA(cudaMalloc(&d_out, in_b.size()));
  CHECK_CUDA(cudaMemcpy(d_in, in_b.data(), in_b.size(), cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d_dy, dy_b.data(), in_b.size(), cudaMemcpyHostToDevice));
  const cuact::Status s = cuact::activation(dir, act, dtype, d_in, d_dy, d_out, n);
  std::vector<unsigned char> out_b(in_b.size());
  CHECK_CUDA(cudaMemcpy(out_b.data(), d_out, out_b.size(), cudaMemcpyDeviceToHost));
  cudaFree(d_in);
  cudaFree(d_dy);
  cudaFree(d_out);
  if (!s.ok()) return n;
  const std::vector<double> got = cuact::test::from_buffer(dtype, out_b);
  const cuact::test::Tolerance tol = cuact::test::tolerance_for(act.kind, dtype, dir);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool near_root = dir != Direction::forward && tol.root_allowance > 0 &&
                           cuact::test::near_derivative_zero(act, grid[i]);
    const double exact = cuact::test::exact_result(act, dir, in[i], dy[i]);
    wrong += !cuact::test::judge(dtype, got[i], exact, dy[i], tol, near_root).ok();
  }
  return wrong;
}

int run_gpu_part(const Options& o) {
  int dev = 0;
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDevice(&dev));
  CHECK_CUDA(cudaGetDeviceProperties(&prop, dev));
  std::printf("GPU: %s (sm_%d%d, %d SMs), %lld elements per buffer, median of %d runs\n",
              prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              static_cast<long long>(o.n), o.runs);
  Timer timer;
  void *a, *b, *c;
  const size_t bytes = static_cast<size_t>(o.n) * 4;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  CHECK_CUDA(cudaMalloc(&c, bytes));
  CHECK_CUDA(cudaMemset(a, 0, bytes));
  CHECK_CUDA(cudaMemset(b, 0, bytes));

  std::printf("%-14s %-5s %-9s %9s %9s %9s %s\n", "activation", "dtype", "direction", "ms",
              "GB/s", "of copy", "check");
  for (DType dtype : kDTypes) {
    const int64_t data_bytes = o.n * static_cast<int64_t>(cuact::dtype_size(dtype));
    double copy_gbs[3] = {0, 0, 0};
    for (int inputs = 1; inputs <= 2; ++inputs) {
      const double ms = timer.median_ms(o.runs, [&] {
        if (inputs == 1)
          streaming_copy<1><<<prop.multiProcessorCount * 8, 256>>>(
              static_cast<uint4*>(a), nullptr, static_cast<uint4*>(c), data_bytes / 16);
        else
          streaming_copy<2><<<prop.multiProcessorCount * 8, 256>>>(
              static_cast<uint4*>(a), static_cast<uint4*>(b), static_cast<uint4*>(c),
              data_bytes / 16);
      });
      copy_gbs[inputs] = (inputs + 1) * data_bytes / ms / 1e6;
      std::printf("%-14s %-5s %-9s %9.3f %9.1f %9s\n", "copy", cuact::dtype_name(dtype),
                  inputs == 1 ? "1 in" : "2 in", ms, copy_gbs[inputs], "1.000");
    }
    for (int k = 0; k < cuact::kNumActivationKinds; ++k) {
      const Activation act = Activation::with_defaults(static_cast<cuact::ActivationKind>(k));
      for (Direction dir : kDirections) {
        const int64_t wrong = verify(act, dtype, dir);
        if (wrong != 0) {
          std::printf("%-14s %-5s %-9s  WRONG: %lld elements outside the tolerance, not timed\n",
                      cuact::activation_name(act.kind), cuact::dtype_name(dtype),
                      cuact::direction_name(dir), static_cast<long long>(wrong));
          continue;
        }
        const int inputs = dir == Direction::forward ? 1 : 2;
        const double ms = timer.median_ms(o.runs, [&] {
          const cuact::Status s = cuact::activation(dir, act, dtype, a, b, c, o.n);
          if (!s.ok()) std::fprintf(stderr, "cuact-bench: %s\n", s.message().c_str());
        });
        const double gbs = (inputs + 1) * data_bytes / ms / 1e6;
        std::printf("%-14s %-5s %-9s %9.3f %9.1f %9.3f ok\n", cuact::activation_name(act.kind),
                    cuact::dtype_name(dtype), cuact::direction_name(dir), ms, gbs,
                    gbs / copy_gbs[inputs]);
      }
    }
  }
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("cuact-bench: no CUDA device (%s); GPU timing skipped, running the CPU part.\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "no device found");
    return run_cpu_part(o);
  }
  return run_gpu_part(o);
}
