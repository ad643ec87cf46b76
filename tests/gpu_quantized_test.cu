// Quantized (fp8) outputs on a GPU: every activation, direction and format
// over every fp16/bf16 input judged by the rule of quantized_accuracy.h (as
// the CPU suite judges the host run of the same code), the codes and amax
// equal to the host run's bit for bit (NaN codes: any NaN), whole calls
// (bias, GLU, dropout, dact + dbias, both recipes) equal to the emulator's,
// a current-recipe call captured into a CUDA graph, and the softmax forward's
// codes (every algorithm, both recipes) by the same rule with the fp32
// softmax's bound.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "accuracy.h"
#include "cuact/cuact.h"
#include "device_buffer.h"
#include "fused_emulation.h"
#include "gpu_guard.h"
#include "quantized_accuracy.h"
#include "row_calls.h"
#include "softmax_accuracy.h"

namespace cuact::test {
namespace {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

// fp8 outputs run from compute capability 8.9 on (cuact/quantized.h).
#define SKIP_BELOW_SM89()                                                             \
  do {                                                                                \
    int device_ = 0, major_ = 0, minor_ = 0;                                          \
    cudaGetDevice(&device_);                                                          \
    cudaDeviceGetAttribute(&major_, cudaDevAttrComputeCapabilityMajor, device_);      \
    cudaDeviceGetAttribute(&minor_, cudaDevAttrComputeCapabilityMinor, device_);      \
    if (major_ * 10 + minor_ < 89) GTEST_SKIP() << "fp8 outputs need compute capability 8.9+"; \
  } while (0)

bool nan_code(Fp8 f, uint8_t c) { return std::isnan(reference::fp8_value(f, c)); }

// Codes equal, any NaN code matching any other.
int64_t code_mismatches(Fp8 f, const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i)
    bad += a[i] != b[i] && !(nan_code(f, a[i]) && nan_code(f, b[i]));
  return bad;
}

template <class T>
std::vector<T> as_dtype(const std::vector<double>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = device::narrow<T>(static_cast<float>(v[i]));
  return out;
}

TEST(GpuQuantized, EveryActivationEveryHalfInput) {
  CUACT_SKIP_WITHOUT_GPU();
  SKIP_BELOW_SM89();
  for (DType dtype : {DType::f16, DType::bf16}) {
    const std::vector<double>& grid = test_inputs(dtype);
    const int64_t n = static_cast<int64_t>(grid.size());
    const size_t bytes = grid.size() * 2;
    DeviceBuffer in_d(bytes), dy_d(bytes), codes_d(grid.size()), words(16);
    ASSERT_TRUE(in_d.ok() && dy_d.ok() && codes_d.ok() && words.ok());
    auto* scale_d = reinterpret_cast<float*>(words.at(0));
    auto* amax_d = reinterpret_cast<float*>(words.at(4));
    for (const Activation& act : test_activations()) {
      for (Direction direction : {Direction::forward, Direction::backward, Direction::backward_from_output}) {
        if (direction == Direction::backward_from_output && !has_backward_from_output(act)) continue;
        std::vector<double> in(grid.size()), dy(grid.size());
        for (size_t i = 0; i < grid.size(); ++i) {
          in[i] = direction_input(act, dtype, direction, grid[i]);
          dy[i] = direction == Direction::forward ? 0.0 : test_gradient(static_cast<int64_t>(i));
        }
        if (dtype == DType::f16) {
          CUDA_OK(cudaMemcpy(in_d.at(), as_dtype<__half>(in).data(), bytes, cudaMemcpyHostToDevice));
          CUDA_OK(cudaMemcpy(dy_d.at(), as_dtype<__half>(dy).data(), bytes, cudaMemcpyHostToDevice));
        } else {
          CUDA_OK(cudaMemcpy(in_d.at(), as_dtype<__nv_bfloat16>(in).data(), bytes, cudaMemcpyHostToDevice));
          CUDA_OK(cudaMemcpy(dy_d.at(), as_dtype<__nv_bfloat16>(dy).data(), bytes, cudaMemcpyHostToDevice));
        }
        for (Fp8 format : {Fp8::e4m3, Fp8::e5m2}) {
          for (float scale : {1.0f, format == Fp8::e4m3 ? 448.0f / 6.0f : 57344.0f / 6.0f, 0x1p-8f}) {
            CUDA_OK(cudaMemcpy(scale_d, &scale, 4, cudaMemcpyHostToDevice));
            const QuantizedOutput q{codes_d.at(), format, scale_d, amax_d};
            const Status s = activation(direction, act, dtype, in_d.at(), dy_d.at(), q, n);
            ASSERT_TRUE(s.ok()) << s.message();
            std::vector<uint8_t> codes(grid.size());
            float amax = -1;
            CUDA_OK(cudaMemcpy(codes.data(), codes_d.at(), codes.size(), cudaMemcpyDeviceToHost));
            CUDA_OK(cudaMemcpy(&amax, amax_d, 4, cudaMemcpyDeviceToHost));
            const std::string where = describe(act) + " " + dtype_name(dtype) + " " +
                                      direction_name(direction) + " scale " + std::to_string(scale);
            const QuantizedReport r = sweep_quantized(
                act, dtype, direction, format, scale, grid,
                [&](const std::vector<double>&, const std::vector<double>&) { return codes; });
            EXPECT_EQ(r.outside, 0) << where << ": "
                                    << (r.first_failures.empty() ? "" : r.first_failures[0]);
            EXPECT_EQ(code_mismatches(format, codes,
                                      quantize_functors_on_host(act, direction, format, scale, in, dy)),
                      0)
                << where << ": the device's codes differ from the host run of the same code";
            EXPECT_EQ(amax, functor_amax_on_host(act, direction, in, dy)) << where;
          }
        }
      }
    }
  }
}

// Whole calls against the emulator (cuact's own kernel code on the host).
TEST(GpuQuantized, CallsMatchTheEmulator) {
  CUACT_SKIP_WITHOUT_GPU();
  SKIP_BELOW_SM89();
  const int64_t rows = 300, cols = 1031, n = rows * cols;
  std::vector<__nv_bfloat16> x(static_cast<size_t>(2 * n)), dy(static_cast<size_t>(n)), bias(static_cast<size_t>(cols));
  uint32_t s = 3;
  auto next = [&] {
    s = s * 1664525u + 1013904223u;
    return device::narrow<__nv_bfloat16>((static_cast<float>(s >> 8) / 16777216.0f - 0.5f) * 12.0f);
  };
  for (auto& v : x) v = next();
  for (auto& v : dy) v = next();
  for (auto& v : bias) v = next();
  DeviceBuffer x_d(x.size() * 2), dy_d(dy.size() * 2), bias_d(bias.size() * 2), codes_d(static_cast<size_t>(n)),
      dbias_d(static_cast<size_t>(cols) * 4), words(64), ws_d(1 << 22);
  ASSERT_TRUE(x_d.ok() && dy_d.ok() && bias_d.ok() && codes_d.ok() && dbias_d.ok() && words.ok() && ws_d.ok());
  CUDA_OK(cudaMemcpy(x_d.at(), x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dy_d.at(), dy.data(), dy.size() * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(bias_d.at(), bias.data(), bias.size() * 2, cudaMemcpyHostToDevice));
  auto* scale_d = reinterpret_cast<float*>(words.at(0));
  auto* amax_d = reinterpret_cast<float*>(words.at(4));
  auto* inv_d = reinterpret_cast<float*>(words.at(8));
  for (Scaling scaling : {Scaling::delayed, Scaling::current}) {
    for (int kind = 0; kind < 4; ++kind) {  // GLU, bias + dropout + mask, dact + dbias, flat
      const float given = 2.5f;
      CUDA_OK(cudaMemcpy(scale_d, &given, 4, cudaMemcpyHostToDevice));
      const QuantizedOutput q{codes_d.at(), Fp8::e4m3, scale_d, amax_d, inv_d, scaling};
      std::vector<uint8_t> want(static_cast<size_t>(n)), mask(static_cast<size_t>(n));
      std::vector<float> dbias_want(static_cast<size_t>(cols));
      float scale_want = given, amax_want = 0, inv_want = 0;
      std::vector<unsigned char> ws(1 << 22);
      const QuantizedOutput qh{want.data(), Fp8::e4m3, &scale_want, &amax_want, &inv_want, scaling};
      const Dropout drop{0.2f, 5, 9};
      const Activation gelu = Activation::gelu();
      const int64_t out_n = n;
      Status st;
      detail::RowRequest r;
      if (kind == 0) {
        st = glu_forward(Glu::geglu(), DType::bf16, x_d.at(), q, rows, cols);
        r = detail::glu_forward_request(Glu::geglu(), DType::bf16, x.data(), want.data(), rows, cols);
      } else if (kind == 1) {
        DeviceBuffer mask_d(static_cast<size_t>(n));
        st = bias_activation_forward(gelu, DType::bf16, x_d.at(), bias_d.at(), DType::bf16, q, rows, cols,
                                     drop, mask_d.at());
        r = detail::bias_activation_forward_request(gelu, DType::bf16, x.data(), bias.data(), DType::bf16,
                                                    want.data(), rows, cols, drop, mask.data());
        CUDA_OK(cudaDeviceSynchronize());
        std::vector<uint8_t> mask_got(static_cast<size_t>(n));
        CUDA_OK(cudaMemcpy(mask_got.data(), mask_d.at(), mask_got.size(), cudaMemcpyDeviceToHost));
        test::emulate_fused(detail::quantized_request(r, qh, ws.data(), 0), kH100DeviceBlocks);
        EXPECT_EQ(mask_got, mask);
        r = {};
      } else if (kind == 2) {
        size_t bytes = 0;
        ASSERT_TRUE(bias_activation_backward_workspace_size(DType::bf16, rows, cols, q, &bytes).ok());
        st = bias_activation_backward(gelu, DType::bf16, x_d.at(), bias_d.at(), DType::f32, dy_d.at(), q,
                                      dbias_d.at(), rows, cols, Workspace{ws_d.at(), bytes});
        const int64_t reduction = detail::bias_backward_workspace(DType::bf16, rows, cols);
        r = detail::quantized_request(
            detail::bias_activation_backward_request(gelu, DType::bf16, x.data(), bias.data(), DType::f32,
                                                     dy.data(), want.data(), dbias_want.data(), rows, cols,
                                                     Dropout{}, ws.data()),
            qh, ws.data(), reduction);
        test::emulate_fused(r, kH100DeviceBlocks);
        r = {};
      } else {
        st = activation(Direction::forward, Activation::silu(), DType::bf16, x_d.at(6), nullptr,
                        QuantizedOutput{codes_d.at(1), Fp8::e4m3, scale_d, amax_d, inv_d, scaling}, n - 7,
                        Workspace{ws_d.at(), 16});
        want.assign(static_cast<size_t>(n), 0);
        r = detail::activation_request(Direction::forward, Activation::silu(), DType::bf16, x.data() + 3, nullptr,
                                       want.data() + 1, n - 7);
      }
      ASSERT_TRUE(st.ok()) << st.message();
      if (r.rows > 0) test::emulate_fused(detail::quantized_request(r, qh, ws.data(), 0), kH100DeviceBlocks);
      std::vector<uint8_t> got(static_cast<size_t>(out_n));
      float scale_got = 0, amax_got = 0, inv_got = 0;
      CUDA_OK(cudaMemcpy(got.data(), codes_d.at(), got.size(), cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(&scale_got, scale_d, 4, cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(&amax_got, amax_d, 4, cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(&inv_got, inv_d, 4, cudaMemcpyDeviceToHost));
      const size_t from = kind == 3 ? 1 : 0, count = static_cast<size_t>(kind == 3 ? n - 7 : out_n);
      const std::vector<uint8_t> a(got.begin() + from, got.begin() + from + count),
          b(want.begin() + from, want.begin() + from + count);
      EXPECT_EQ(code_mismatches(Fp8::e4m3, a, b), 0) << "kind " << kind;
      EXPECT_EQ(amax_got, amax_want) << "kind " << kind;
      EXPECT_EQ(scale_got, scale_want) << "kind " << kind;
      EXPECT_EQ(inv_got, inv_want) << "kind " << kind;
      if (kind == 2) {
        std::vector<float> dbias_got(static_cast<size_t>(cols));
        CUDA_OK(cudaMemcpy(dbias_got.data(), dbias_d.at(), dbias_got.size() * 4, cudaMemcpyDeviceToHost));
        for (int64_t c = 0; c < cols; ++c)
          EXPECT_NEAR(dbias_got[static_cast<size_t>(c)], dbias_want[static_cast<size_t>(c)],
                      1e-4 * (1 + std::fabs(dbias_want[static_cast<size_t>(c)])))
              << c;
      }
    }
  }
}

// The current recipe captured into a CUDA graph: no host synchronization,
// and a replay gives the eager call's codes and words.
TEST(GpuQuantized, CurrentRecipeInACudaGraph) {
  CUACT_SKIP_WITHOUT_GPU();
  SKIP_BELOW_SM89();
  const int64_t n = 1 << 20;
  DeviceBuffer x_d(static_cast<size_t>(n) * 4), codes_d(static_cast<size_t>(n)), words(64), ws(16);
  ASSERT_TRUE(x_d.ok() && codes_d.ok() && words.ok() && ws.ok());
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = std::sin(0.001f * static_cast<float>(i)) * 30.0f;
  CUDA_OK(cudaMemcpy(x_d.at(), x.data(), x.size() * 4, cudaMemcpyHostToDevice));
  auto* scale_d = reinterpret_cast<float*>(words.at(0));
  QuantizedOutput q{codes_d.at(), Fp8::e5m2, scale_d, nullptr, reinterpret_cast<float*>(words.at(4)),
                    Scaling::current, 1, true};
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  ASSERT_TRUE(activation(Direction::forward, Activation::tanh(), DType::f32, x_d.at(), nullptr, q, n,
                         Workspace{ws.at(), 16}, stream).ok());
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<uint8_t> eager(static_cast<size_t>(n)), replayed(static_cast<size_t>(n));
  CUDA_OK(cudaMemcpy(eager.data(), codes_d.at(), eager.size(), cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemset(codes_d.at(), 0, static_cast<size_t>(n)));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  ASSERT_TRUE(activation(Direction::forward, Activation::tanh(), DType::f32, x_d.at(), nullptr, q, n,
                         Workspace{ws.at(), 16}, stream).ok());
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaMemcpy(replayed.data(), codes_d.at(), replayed.size(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(eager, replayed);
  float scale = 0;
  CUDA_OK(cudaMemcpy(&scale, scale_d, 4, cudaMemcpyDeviceToHost));
  // tanh's amax here is 1 (rounded from 30 sin): scale = 57344 / 2^1 rounded down to a power of two.
  EXPECT_EQ(scale, 16384.0f);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// The softmax forward with an fp8 output: each algorithm the dispatch takes
// (rows of 100 to 2^17 columns, aligned and not), both formats and recipes,
// every code within the fp32 softmax's bound of the exact value, amax and
// scale_inv as the rule says.
TEST(GpuQuantized, SoftmaxForwardEveryAlgorithm) {
  CUACT_SKIP_WITHOUT_GPU();
  SKIP_BELOW_SM89();
  uint64_t seed = 7;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (int64_t cols : {int64_t{100}, int64_t{1000}, int64_t{4096}, int64_t{5001},
                         int64_t{30000}, int64_t{131072}})
      for (size_t o : {size_t{0}, size_t{1}, size_t{4}})
        for (Fp8 format : {Fp8::e4m3, Fp8::e5m2})
          for (Scaling scaling : {Scaling::delayed, Scaling::current}) {
            const SoftmaxOptions& options = softmax_option_sets()[o];
            const int64_t rows = cols > 10000 ? 3 : 40;
            const SoftmaxProblem p =
                make_softmax_problem(options, Direction::forward, dtype, rows, cols, seed++);
            const std::vector<unsigned char> x = to_buffer(dtype, p.in), m = to_buffer(dtype, p.mask);
            const size_t n = static_cast<size_t>(rows * cols);
            DeviceBuffer dx(x.size()), dm(m.size() + 16), dcodes(n + 16), dwords(16);
            ASSERT_TRUE(dx.ok() && dm.ok() && dcodes.ok() && dwords.ok());
            CUDA_OK(cudaMemcpy(dx.at(), x.data(), x.size(), cudaMemcpyHostToDevice));
            if (!m.empty()) CUDA_OK(cudaMemcpy(dm.at(), m.data(), m.size(), cudaMemcpyHostToDevice));
            const float largest = format == Fp8::e4m3 ? 448.0f : 57344.0f;
            CUDA_OK(cudaMemcpy(dwords.at(), &largest, 4, cudaMemcpyHostToDevice));
            auto* words = reinterpret_cast<float*>(dwords.at());
            QuantizedOutput y{dcodes.at(seed % 2), format, words, words + 1, words + 2, scaling};
            const Softmax op = options.descriptor(rows, cols, m.empty() ? nullptr : dm.at(), dtype);
            ASSERT_TRUE(softmax_forward(op, dtype, dx.at(), y, SoftmaxShape::rows(rows, cols)).ok());
            std::vector<uint8_t> codes(n);
            float got[3];
            CUDA_OK(cudaMemcpy(codes.data(), y.data, n, cudaMemcpyDeviceToHost));
            CUDA_OK(cudaMemcpy(got, words, 12, cudaMemcpyDeviceToHost));
            const SoftmaxExpected e32 = expected_softmax(options, Direction::forward, DType::f32,
                                                         rows, cols, p.in, {}, p.mask);
            QuantizedReport r;
            for (size_t i = 0; i < n; ++i)
              judge_code(r, format, got[0], e32.value[i], e32.bound[i], codes[i], false);
            EXPECT_EQ(r.outside, 0) << dtype_name(dtype) << " " << options.name << " cols " << cols;
            EXPECT_EQ(got[2], 1.0f / got[0]);
            if (scaling == Scaling::current) {
              EXPECT_EQ(got[0], detail::scale_from_amax(got[1], format, 0, false));
            }
          }
}

// Block-scaled outputs on a GPU: bias + activation and SwiGLU, every recipe
// (NVFP4 too, its tensor scale given or found; fp8 blocks of 16 to 128) and layout, codes, scales and amax equal to the host run of the kernels'
// code (fused_emulation.h) bit for bit.
TEST(GpuQuantized, BlockScaledCallsMatchTheEmulator) {
  CUACT_SKIP_WITHOUT_GPU();
  SKIP_BELOW_SM89();
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (BlockScale type : {BlockScale::e8m0, BlockScale::e8m0_floor, BlockScale::f32, BlockScale::e4m3})
      for (int block : {32, 16, 64, 128})
        for (ScaleLayout layout : {ScaleLayout::row_major, ScaleLayout::swizzled_128x4,
                                   ScaleLayout::column_major_packed})
          for (const bool glu : {false, true})
           for (Scaling scaling : {Scaling::delayed, Scaling::current}) {
            if (type == BlockScale::e4m3 && block != 16) continue;  // NVFP4: blocks of 16
            if (scaling == Scaling::current && type != BlockScale::e4m3) continue;  // NVFP4's t found
            if (layout == ScaleLayout::column_major_packed && type == BlockScale::f32) continue;
            const bool fp4 = type == BlockScale::e4m3;
            const int64_t rows = 300, cols = glu ? 1000 : 4100;
            const int64_t in_cols = glu ? 2 * cols : cols;
            std::vector<double> x(static_cast<size_t>(rows * in_cols));
            for (size_t i = 0; i < x.size(); ++i)
              x[i] = reference::round_to(dtype, std::sin(0.001 * static_cast<double>(i)) * 8.0);
            const std::vector<unsigned char> xb = to_buffer(dtype, x);
            BlockScaledOutput host{nullptr, Fp8::e4m3, block, type, nullptr, layout, nullptr};
            size_t scale_bytes = 0;
            ASSERT_TRUE(block_scales_size(host, rows, cols, &scale_bytes).ok());
            const size_t n = static_cast<size_t>(rows * cols / (fp4 ? 2 : 1));  // code bytes
            float t = 7.0f / 2688.0f, want_t = t;  // NVFP4's tensor scale (found: written)
            std::vector<uint8_t> codes(n), want(n);
            std::vector<unsigned char> scales(scale_bytes), want_scales(scale_bytes);
            float amax = 0, want_amax = 0;
            DeviceBuffer dx(xb.size()), dcodes(n), dscales(scale_bytes + 16), damax(16), dt(16);
            CUDA_OK(cudaMemcpy(dt.at(), &t, 4, cudaMemcpyHostToDevice));
            ASSERT_TRUE(dx.ok() && dcodes.ok() && dscales.ok() && damax.ok());
            CUDA_OK(cudaMemcpy(dx.at(), xb.data(), xb.size(), cudaMemcpyHostToDevice));
            CUDA_OK(cudaMemset(dscales.at(), 0, scale_bytes));
            BlockScaledOutput dev{dcodes.at(), Fp8::e4m3, block, type, dscales.at(), layout,
                                  reinterpret_cast<float*>(damax.at()),
                                  reinterpret_cast<float*>(dt.at()), scaling};
            const Glu swiglu = Glu::swiglu();
            const Activation gelu = Activation::gelu();
            ASSERT_TRUE((glu ? glu_forward(swiglu, dtype, dx.at(), dev, rows, cols)
                             : bias_activation_forward(gelu, dtype, dx.at(), nullptr, dtype, dev, rows,
                                                       cols))
                            .ok());
            CUDA_OK(cudaMemcpy(codes.data(), dcodes.at(), n, cudaMemcpyDeviceToHost));
            CUDA_OK(cudaMemcpy(scales.data(), dscales.at(), scale_bytes, cudaMemcpyDeviceToHost));
            CUDA_OK(cudaMemcpy(&amax, damax.at(), 4, cudaMemcpyDeviceToHost));
            CUDA_OK(cudaMemcpy(&t, dt.at(), 4, cudaMemcpyDeviceToHost));
            BlockScaledOutput emu{want.data(), Fp8::e4m3, block, type, want_scales.data(), layout,
                                  &want_amax, &want_t, scaling};
            const detail::RowRequest req =
                glu ? detail::glu_forward_request(swiglu, dtype, xb.data(), want.data(), rows, cols)
                    : detail::bias_activation_forward_request(gelu, dtype, xb.data(), nullptr, dtype,
                                                              want.data(), rows, cols, {}, nullptr);
            emulate_fused(detail::block_scaled_request(req, emu), kH100DeviceBlocks);
            EXPECT_EQ(fp4 ? static_cast<int64_t>(codes != want) : code_mismatches(Fp8::e4m3, codes, want), 0)
                << dtype_name(dtype);
            EXPECT_EQ(scales, want_scales) << dtype_name(dtype);
            EXPECT_EQ(amax, want_amax);
            EXPECT_EQ(t, want_t);
          }
}

}  // namespace
}  // namespace cuact::test
