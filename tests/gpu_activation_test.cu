// The activation kernels on a GPU against the double reference: every
// activation x dtype x direction over the test grid, for lengths around the
// pack width and block size, misaligned and mismatched pointers, in place, a
// non-default stream, and a call captured into a CUDA graph.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cctype>
#include <cstring>
#include <vector>

#include "accuracy.h"
#include "cuact/cuact.h"
#include "device_buffer.h"
#include "gpu_guard.h"

namespace cuact::test {
namespace {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

const int64_t kLengths[] = {0, 1, 3, 31, 32, 33, 1023, 1024, 1025, (int64_t{1} << 20) + 7};

struct Layout {
  const char* name;
  int in_offset, grad_offset, out_offset;  // in elements past a 256-byte aligned base
  bool in_place;                           // out is the `in` buffer
};
const Layout kLayouts[] = {
    {"aligned", 0, 0, 0, false},
    {"misaligned_alike", 1, 1, 1, false},   // head + packs + tail
    {"misaligned_apart", 1, 0, 3, false},   // no shared alignment: scalar fallback
    {"in_place", 3, 3, 3, true},
};

// Host inputs for n elements (the grid, cycled) and their exact results.
struct HostCase {
  std::vector<double> in, grad, exact;
  std::vector<bool> near_root;
};
HostCase make_host_case(const ActivationCase& c, int64_t n) {
  const std::vector<double>& grid = test_inputs(c.dtype);
  HostCase h;
  h.in.resize(n);
  h.grad.resize(n);
  h.exact.resize(n);
  h.near_root.resize(n);
  const bool roots = c.direction != Direction::forward &&
                     tolerance_for(c.act.kind, c.dtype, c.direction).root_allowance > 0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = grid[i % grid.size()];
    h.near_root[i] = roots && near_derivative_zero(c.act, x);
    h.in[i] = direction_input(c.act, c.dtype, c.direction, x);
    h.grad[i] = test_gradient(i);
    h.exact[i] = exact_result(c.act, c.dtype, c.direction, h.in[i], h.grad[i]);
  }
  return h;
}

class KernelVsReference : public testing::TestWithParam<ActivationCase> {};

TEST_P(KernelVsReference, EveryLengthAndLayout) {
  CUACT_SKIP_WITHOUT_GPU();
  const ActivationCase c = GetParam();
  const size_t elem = dtype_size(c.dtype);
  const int64_t max_n = kLengths[std::size(kLengths) - 1];
  const HostCase host = make_host_case(c, max_n);
  const Tolerance tol = tolerance_for(c.act.kind, c.dtype, c.direction);
  const auto in_bytes = to_buffer(c.dtype, host.in);
  const auto grad_bytes = to_buffer(c.dtype, host.grad);

  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceBuffer in(max_n * elem), grad(max_n * elem), out(max_n * elem);
  ASSERT_TRUE(in.ok() && grad.ok() && out.ok());

  for (const Layout& layout : kLayouts)
    for (int64_t n : kLengths) {
      if (n > 2048 && layout.in_offset != 0 && !layout.in_place) continue;  // big n: two layouts
      if (n > 2048 && small_sizes_only()) continue;
      SCOPED_TRACE(testing::Message() << layout.name << " n=" << n);
      unsigned char* in_p = in.at(layout.in_offset * elem);
      unsigned char* grad_p = grad.at(layout.grad_offset * elem);
      unsigned char* out_p = layout.in_place ? in_p : out.at(layout.out_offset * elem);
      CUDA_OK(cudaMemcpyAsync(in_p, in_bytes.data(), n * elem, cudaMemcpyHostToDevice, stream));
      CUDA_OK(cudaMemcpyAsync(grad_p, grad_bytes.data(), n * elem, cudaMemcpyHostToDevice, stream));
      if (!layout.in_place) CUDA_OK(cudaMemsetAsync(out_p, 0xff, n * elem, stream));
      const Status s = activation(c.direction, c.act, c.dtype, in_p, grad_p, out_p, n, stream);
      ASSERT_TRUE(s.ok()) << s.message();
      std::vector<unsigned char> result(n * elem);
      CUDA_OK(cudaMemcpyAsync(result.data(), out_p, n * elem, cudaMemcpyDeviceToHost, stream));
      CUDA_OK(cudaStreamSynchronize(stream));
      const std::vector<double> got = from_buffer(c.dtype, result);
      int64_t failures = 0;
      for (int64_t i = 0; i < n; ++i) {
        const Verdict v = judge(c.dtype, got[i], host.exact[i], host.grad[i], tol, host.near_root[i]);
        if (!v.ok() && ++failures <= 3)
          ADD_FAILURE() << "i=" << i << " in=" << host.in[i] << " dy=" << host.grad[i]
                        << ": got " << got[i] << ", exact " << host.exact[i] << " (" << v.ulps
                        << " ulp, bound " << tol.ulps << ")";
      }
      ASSERT_EQ(failures, 0);
    }
  CUDA_OK(cudaStreamDestroy(stream));
}

INSTANTIATE_TEST_SUITE_P(AllActivations, KernelVsReference,
                         testing::ValuesIn(activation_cases()),
                         [](const auto& info) { return case_name(info.param, info.index); });

TEST(KernelGraph, CapturedCallMatchesDirectCall) {
  CUACT_SKIP_WITHOUT_GPU();
  const int64_t n = 100003;
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = test_inputs(DType::bf16)[i % 65536];
  const auto bytes = to_buffer(DType::bf16, x);
  DeviceBuffer in(n * 2), direct(n * 2), captured(n * 2);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CUDA_OK(cudaMemcpy(in.at(), bytes.data(), n * 2, cudaMemcpyHostToDevice));
  const Activation act = Activation::gelu_tanh();
  ASSERT_TRUE(activation(Direction::forward, act, DType::bf16, in.at(), nullptr,
                         direct.at(), n, stream).ok());

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status s = activation(Direction::forward, act, DType::bf16, in.at(), nullptr,
                              captured.at(), n, stream);
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  ASSERT_TRUE(s.ok()) << s.message();
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<unsigned char> a(n * 2), b(n * 2);
  CUDA_OK(cudaMemcpy(a.data(), direct.at(), n * 2, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(b.data(), captured.at(), n * 2, cudaMemcpyDeviceToHost));
  EXPECT_EQ(std::memcmp(a.data(), b.data(), n * 2), 0);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(KernelDevices, EveryDeviceComputesTheSame) {
  CUACT_SKIP_WITHOUT_GPU();
  int count = 0;
  CUDA_OK(cudaGetDeviceCount(&count));
  for (int d = 0; d < count; ++d) {
    CUDA_OK(cudaSetDevice(d));
    DeviceBuffer buf(4096 * 4);
    std::vector<float> x(4096, -2.5f), y(4096);
    CUDA_OK(cudaMemcpy(buf.at(), x.data(), 4096 * 4, cudaMemcpyHostToDevice));
    ASSERT_TRUE(activation_forward(Activation::relu6(), reinterpret_cast<float*>(buf.at()),
                                   reinterpret_cast<float*>(buf.at()), 4096).ok());
    CUDA_OK(cudaMemcpy(y.data(), buf.at(), 4096 * 4, cudaMemcpyDeviceToHost));
    for (float v : y) ASSERT_EQ(v, 0.0f) << "device " << d;
  }
  CUDA_OK(cudaSetDevice(0));
}

}  // namespace
}  // namespace cuact::test
