// GPU reliability: a run past 2^31 elements (64-bit indexing for real),
// every activation entry point captured into a CUDA graph and replayed
// against the direct call, and concurrent calls from several host threads on
// several streams against the same calls made one at a time.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstring>
#include <thread>
#include <vector>

#include "accuracy.h"
#include "cuact/cuact.h"
#include "gpu_guard.h"

namespace cuact::test {
namespace {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

struct DeviceMemory {
  void* p = nullptr;
  explicit DeviceMemory(size_t bytes) {
    if (cudaMalloc(&p, bytes) != cudaSuccess) p = nullptr;
  }
  ~DeviceMemory() { cudaFree(p); }
  unsigned char* bytes() const { return static_cast<unsigned char*>(p); }
};

double bf16_at(const unsigned char* device, int64_t i) {
  uint16_t bits = 0;
  if (cudaMemcpy(&bits, device + 2 * i, 2, cudaMemcpyDeviceToHost) != cudaSuccess) return NAN;
  std::vector<unsigned char> b(2);
  std::memcpy(b.data(), &bits, 2);
  return from_buffer(DType::bf16, b)[0];
}

TEST(GpuLarge, ForwardAndBackwardPast2To31Elements) {
  CUACT_SKIP_WITHOUT_GPU();
  if (small_sizes_only()) GTEST_SKIP() << "CUACT_TEST_SMALL=1";
  const int64_t n = (int64_t{1} << 31) + 9;  // bf16: 4 GiB per buffer
  size_t free_bytes = 0, total = 0;
  CUDA_OK(cudaMemGetInfo(&free_bytes, &total));
  if (free_bytes < static_cast<size_t>(3 * 2 * n) + (size_t{1} << 30))
    GTEST_SKIP() << "needs 3 x 4 GiB of free GPU memory, has " << (free_bytes >> 20) << " MiB";
  DeviceMemory x(2 * n), dy(2 * n), out(2 * n);
  ASSERT_TRUE(x.p && dy.p && out.p);
  CUDA_OK(cudaMemset(x.p, 0x40, 2 * n));   // every x = bf16 0x4040 = 3.0
  CUDA_OK(cudaMemset(dy.p, 0x3f, 2 * n));  // every dy = bf16 0x3f3f
  CUDA_OK(cudaMemset(out.p, 0xff, 2 * n));
  const Activation act = Activation::gelu();
  const double x0 = bf16_at(x.bytes(), 0), dy0 = bf16_at(dy.bytes(), 0);
  const int64_t probes[] = {0, 1, (int64_t{1} << 31) - 1, int64_t{1} << 31, n - 1};
  for (Direction d : {Direction::forward, Direction::backward}) {
    ASSERT_TRUE(activation(d, act, DType::bf16, x.p, dy.p, out.p, n).ok());
    CUDA_OK(cudaDeviceSynchronize());
    const double exact = exact_result(act, DType::bf16, d, x0, dy0);
    for (int64_t i : probes)
      EXPECT_TRUE(judge(DType::bf16, bf16_at(out.bytes(), i), exact, dy0,
                        tolerance_for(act.kind, DType::bf16, d))
                      .ok())
          << direction_name(d) << " element " << i;
  }
}

TEST(GpuGraphs, EveryEntryPointReplaysLikeTheDirectCall) {
  CUACT_SKIP_WITHOUT_GPU();
  const int64_t n = 70001;
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceMemory in(4 * n), grad(4 * n), direct(4 * n), replayed(4 * n);
  for (const ActivationCase& c : activation_cases()) {
    const size_t bytes = n * dtype_size(c.dtype);
    std::vector<double> xs(n), dys(n);
    for (int64_t i = 0; i < n; ++i) {
      xs[i] = direction_input(c.act, c.dtype, c.direction, test_inputs(c.dtype)[i * 7 % 65536]);
      dys[i] = test_gradient(i);
    }
    CUDA_OK(cudaMemcpy(in.p, to_buffer(c.dtype, xs).data(), bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(grad.p, to_buffer(c.dtype, dys).data(), bytes, cudaMemcpyHostToDevice));
    ASSERT_TRUE(activation(c.direction, c.act, c.dtype, in.p, grad.p, direct.p, n, stream).ok());
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    const Status s = activation(c.direction, c.act, c.dtype, in.p, grad.p, replayed.p, n, stream);
    CUDA_OK(cudaStreamEndCapture(stream, &graph));
    ASSERT_TRUE(s.ok()) << s.message();
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaGraphLaunch(exec, stream));  // replayed twice
    CUDA_OK(cudaStreamSynchronize(stream));
    std::vector<unsigned char> a(bytes), b(bytes);
    CUDA_OK(cudaMemcpy(a.data(), direct.p, bytes, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(b.data(), replayed.p, bytes, cudaMemcpyDeviceToHost));
    EXPECT_EQ(std::memcmp(a.data(), b.data(), bytes), 0) << case_name(c, 0);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

TEST(GpuThreads, ConcurrentCallsOnManyStreamsMatchSerialCalls) {
  CUACT_SKIP_WITHOUT_GPU();
  constexpr int kThreads = 8;
  const int64_t n = small_sizes_only() ? 4099 : (int64_t{1} << 20) + 3;
  const std::vector<Activation> acts = test_activations();
  std::vector<double> xs(n), dys(n);
  for (int64_t i = 0; i < n; ++i) {
    xs[i] = test_inputs(DType::f16)[i % 65536];
    dys[i] = test_gradient(i);
  }
  const auto x_bytes = to_buffer(DType::f16, xs), dy_bytes = to_buffer(DType::f16, dys);
  // Serial results first.
  std::vector<std::vector<unsigned char>> expected(kThreads);
  DeviceMemory x(2 * n), dy(2 * n), y(2 * n);
  CUDA_OK(cudaMemcpy(x.p, x_bytes.data(), 2 * n, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dy.p, dy_bytes.data(), 2 * n, cudaMemcpyHostToDevice));
  for (int t = 0; t < kThreads; ++t) {
    const Activation& act = acts[t * 3 % acts.size()];
    const Direction d = t % 2 ? Direction::backward : Direction::forward;
    ASSERT_TRUE(activation(d, act, DType::f16, x.p, dy.p, y.p, n).ok());
    expected[t].resize(2 * n);
    CUDA_OK(cudaMemcpy(expected[t].data(), y.p, 2 * n, cudaMemcpyDeviceToHost));
  }
  // Then the same calls from kThreads threads at once, 20 times each.
  std::vector<int> mismatches(kThreads, 0), errors(kThreads, 0);
  int device = 0;
  CUDA_OK(cudaGetDevice(&device));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      cudaSetDevice(device);
      cudaStream_t s;
      cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
      DeviceMemory out(2 * n);
      std::vector<unsigned char> got(2 * n);
      const Activation& act = acts[t * 3 % acts.size()];
      const Direction d = t % 2 ? Direction::backward : Direction::forward;
      for (int r = 0; r < 20; ++r) {
        errors[t] += !activation(d, act, DType::f16, x.p, dy.p, out.p, n, s).ok();
        cudaMemcpyAsync(got.data(), out.p, 2 * n, cudaMemcpyDeviceToHost, s);
        cudaStreamSynchronize(s);
        mismatches[t] += std::memcmp(got.data(), expected[t].data(), 2 * n) != 0;
      }
      cudaStreamDestroy(s);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], 0) << "thread " << t;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  }
}

}  // namespace
}  // namespace cuact::test
