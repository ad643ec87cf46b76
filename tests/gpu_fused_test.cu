// The fused kernels on a GPU against the double reference (the rules of
// fused_accuracy.h and the tables of fused_testing.h, shared with the CPU
// emulation suite): every fused form x
// activation x dtype x direction over odd shapes and misaligned / in-place
// layouts; dropout masks identical across launch configurations, layouts and
// the CPU emulation, and consistent between forward and backward; dbias and
// dweight within the reduction bound for several geometries; calls captured
// into a CUDA graph; more than 2^31 elements in one call.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cuact/cuact.h"
#include "row_calls.h"
#include "fused_testing.h"
#include "device_buffer.h"
#include "gpu_guard.h"

namespace cuact::test {
namespace {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

std::vector<double> download(DType dtype, const void* p, int64_t n) {
  std::vector<unsigned char> bytes(static_cast<size_t>(n) * dtype_size(dtype));
  if (n > 0) EXPECT_EQ(cudaMemcpy(bytes.data(), p, bytes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  return from_buffer(dtype, bytes);
}
void upload(DType dtype, void* p, const std::vector<double>& v) {
  const auto bytes = to_buffer(dtype, v);
  if (!bytes.empty())
    EXPECT_EQ(cudaMemcpy(p, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), cudaSuccess);
}

struct GpuCase {
  Activation act;
  DType dtype;
};
std::vector<GpuCase> gpu_cases() {
  std::vector<GpuCase> cases;
  for (const Activation& act : fused_activations())
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) cases.push_back({act, dtype});
  return cases;
}
std::string gpu_case_name(const testing::TestParamInfo<GpuCase>& info) {
  std::string name = describe(info.param.act) + "_" + dtype_name(info.param.dtype) + "_" +
                     std::to_string(info.index);
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

// ---------------------------------------------------------------- bias + activation + dropout

// Forward (with mask) and backward (with dbias) of one case on `stream`.
void run_bias_on_gpu(const Activation& act, DType dtype, Shape shape, const FusedLayout& l, bool bias,
                     float p, cudaStream_t stream) {
  const int64_t rows = shape.rows, cols = shape.cols, n = rows * cols;
  const size_t elem = dtype_size(dtype);
  const Dropout dropout{p, 2025, 17};
  std::vector<double> x(n), dy(n), b;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = bias ? fused_moderate(dtype, i, 1) : fused_input(dtype, i, rows);
    dy[i] = bias ? fused_moderate(dtype, i, 2) : test_gradient(i);
  }
  if (bias)
    for (int64_t j = 0; j < cols; ++j) b.push_back(fused_operand(j));
  DeviceBuffer xb(n * elem), dyb(n * elem), yb(n * elem), bb(cols * elem), dbb(cols * elem),
      mb(n + 16);
  ASSERT_TRUE(xb.ok() && dyb.ok() && yb.ok() && bb.ok() && dbb.ok() && mb.ok());
  void* xp = xb.at(l.in_offset * elem);
  void* dyp = dyb.at(l.in_offset * elem);
  void* yp = l.in_place ? xp : yb.at(l.out_offset * elem);
  void* bp = bias ? bb.at(l.in_offset * elem) : nullptr;
  uint8_t* mask = mb.at(1);
  upload(dtype, xp, x);
  upload(dtype, dyp, dy);
  if (bias) upload(dtype, bp, b);

  Status s = bias_activation_forward(act, dtype, xp, bp, yp, rows, cols, dropout, mask, stream);
  ASSERT_TRUE(s.ok()) << s.message();
  CUDA_OK(cudaStreamSynchronize(stream));
  const std::vector<double> y = download(dtype, yp, n);
  std::vector<uint8_t> m(static_cast<size_t>(n));
  CUDA_OK(cudaMemcpy(m.data(), mask, n, cudaMemcpyDeviceToHost));
  EXPECT_EQ(judge_bias_forward(act, dtype, rows, cols, x, b, dropout, y, &m), 0);

  upload(dtype, xp, x);  // in place: the forward overwrote x
  size_t ws_bytes = 0;
  ASSERT_TRUE(bias_activation_backward_workspace_size(dtype, rows, cols, &ws_bytes).ok());
  DeviceBuffer ws(ws_bytes);
  ASSERT_TRUE(ws.ok());
  void* dxp = l.in_place ? xp : yb.at(l.out_offset * elem);
  s = bias_activation_backward(act, dtype, xp, bp, dyp, dxp, bias ? dbb.at() : nullptr, rows, cols,
                               dropout, {ws.at(), ws_bytes}, stream);
  ASSERT_TRUE(s.ok()) << s.message();
  CUDA_OK(cudaStreamSynchronize(stream));
  const std::vector<double> dx = download(dtype, dxp, n);
  const std::vector<double> db = bias ? download(dtype, dbb.at(), cols) : std::vector<double>{};
  EXPECT_EQ(judge_bias_backward(act, dtype, dtype, rows, cols, x, b, dy, dropout, dx, db), 0);
}

class GpuFusedBias : public testing::TestWithParam<GpuCase> {};

TEST_P(GpuFusedBias, EveryShapeLayoutBiasAndDropout) {
  CUACT_SKIP_WITHOUT_GPU();
  const GpuCase c = GetParam();
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (const Shape& shape : fused_shapes())
    for (const FusedLayout& layout : kFusedLayouts)
      for (const auto& [bias, p] : {std::pair{false, 0.0f}, std::pair{true, 0.3f}}) {
        SCOPED_TRACE(testing::Message() << shape_name(shape) << " " << layout.name
                                        << (bias ? " bias" : "") << " p=" << p);
        run_bias_on_gpu(c.act, c.dtype, shape, layout, bias, p, stream);
        if (HasFailure()) break;
      }
  // Many blocks and long rows (one layout: the reference is the slow part).
  if (!small_sizes_only())
    run_bias_on_gpu(c.act, c.dtype, {257, 4099}, kFusedLayouts[1], true, 0.3f, stream);
  cudaStreamDestroy(stream);
}

INSTANTIATE_TEST_SUITE_P(AllActivations, GpuFusedBias, testing::ValuesIn(gpu_cases()), gpu_case_name);

// ---------------------------------------------------------------- GLU

class GpuFusedGlu : public testing::TestWithParam<GpuCase> {};

TEST_P(GpuFusedGlu, BothOrdersOddWidthsAndLayouts) {
  CUACT_SKIP_WITHOUT_GPU();
  const GpuCase c = GetParam();
  const DType dtype = c.dtype;
  const size_t elem = dtype_size(dtype);
  const std::vector<Shape> shapes = {{1, 1}, {3, 5}, {4, 8}, {7, 11}, {2, 67}, {5, 128}, {33, 1000}, {3, 11008}};
  for (GatedHalf half : {GatedHalf::first, GatedHalf::second})
    for (const Shape& s : shapes)
      for (const FusedLayout& l : kFusedLayouts) {
        const Glu glu{c.act, half};
        const int64_t rows = s.rows, d = s.cols;
        SCOPED_TRACE(testing::Message() << (half == GatedHalf::first ? "first" : "second") << " "
                                        << shape_name(s) << " " << l.name);
        const int64_t gated = half == GatedHalf::first ? 0 : d, other = d - gated;
        std::vector<double> x(rows * 2 * d), dy(rows * d);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t col = 0; col < d; ++col) {
            x[r * 2 * d + gated + col] = fused_input(dtype, r * d + col, 5);
            x[r * 2 * d + other + col] = fused_operand(r * d + col + 1);
          }
        for (int64_t i = 0; i < rows * d; ++i) dy[i] = test_gradient(i);
        DeviceBuffer xb(rows * 2 * d * elem), yb(rows * 2 * d * elem), dyb(rows * d * elem);
        ASSERT_TRUE(xb.ok() && yb.ok() && dyb.ok());
        void* xp = xb.at(l.in_offset * elem);
        void* dyp = dyb.at(l.in_offset * elem);
        upload(dtype, xp, x);
        upload(dtype, dyp, dy);
        Status st = glu_forward(glu, dtype, xp, yb.at(l.out_offset * elem), rows, d);
        ASSERT_TRUE(st.ok()) << st.message();
        EXPECT_EQ(judge_glu_forward(glu, dtype, rows, d, x, download(dtype, yb.at(l.out_offset * elem), rows * d)), 0);
        void* dxp = l.in_place ? xp : yb.at(l.out_offset * elem);
        st = glu_backward(glu, dtype, xp, dyp, dxp, rows, d);
        ASSERT_TRUE(st.ok()) << st.message();
        EXPECT_EQ(judge_glu_backward(glu, dtype, rows, d, x, dy, download(dtype, dxp, rows * 2 * d)), 0);
        if (HasFailure()) return;
      }
}

INSTANTIATE_TEST_SUITE_P(AllActivations, GpuFusedGlu, testing::ValuesIn(gpu_cases()), gpu_case_name);

// ---------------------------------------------------------------- PReLU and RReLU

class GpuFusedPrelu : public testing::TestWithParam<DType> {};

TEST_P(GpuFusedPrelu, BothLayoutsWithWeightGradient) {
  CUACT_SKIP_WITHOUT_GPU();
  const DType dtype = GetParam();
  const size_t elem = dtype_size(dtype);
  struct ChannelShape {
    int64_t outer, channels, inner;
  };
  const ChannelShape shapes[] = {{1, 1, 1},    {4, 3, 1},   {2, 5, 7},      {3, 16, 64},
                                 {1, 7, 1000}, {300, 9, 1}, {32, 64, 3136}, {4096, 768, 1}};
  for (const ChannelShape& s : shapes)
    for (const FusedLayout& l : kFusedLayouts) {
      SCOPED_TRACE(testing::Message() << s.outer << "x" << s.channels << "x" << s.inner << " " << l.name);
      const int64_t n = s.outer * s.channels * s.inner;
      const PreluInputs in = prelu_inputs(dtype, n, s.channels);
      const std::vector<double>& x = in.x;
      const std::vector<double>& dy = in.dy;
      const std::vector<double>& w = in.weight;
      DeviceBuffer xb(n * elem), yb(n * elem), dyb(n * elem), wb(s.channels * elem), dwb(s.channels * elem);
      ASSERT_TRUE(xb.ok() && yb.ok() && dyb.ok() && wb.ok() && dwb.ok());
      void* xp = xb.at(l.in_offset * elem);
      void* wp = wb.at(l.in_offset * elem);
      void* yp = l.in_place ? xp : yb.at(l.out_offset * elem);
      upload(dtype, xp, x);
      upload(dtype, dyb.at(l.in_offset * elem), dy);
      upload(dtype, wp, w);
      Status st = prelu_forward(dtype, xp, wp, yp, s.outer, s.channels, s.inner);
      ASSERT_TRUE(st.ok()) << st.message();
      const std::vector<double> y = download(dtype, yp, n);
      upload(dtype, xp, x);
      size_t ws_bytes = 0;
      ASSERT_TRUE(prelu_backward_workspace_size(dtype, s.outer, s.channels, s.inner, &ws_bytes).ok());
      DeviceBuffer ws(ws_bytes);
      st = prelu_backward(dtype, xp, wp, dyb.at(l.in_offset * elem), yp, dwb.at(), s.outer,
                          s.channels, s.inner, {ws.at(), ws_bytes});
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(judge_prelu(dtype, dtype, s.outer, s.channels, s.inner, x, w, dy, y, download(dtype, yp, n),
                            download(dtype, dwb.at(), s.channels)),
                0);
      if (HasFailure()) return;
    }
}

// The MoE GLU on the device: clamped gates, routing weights in the data's
// dtype and fp32, d weight; MoE widths (gpt-oss's 2880) and odd ones; in
// place and not. Run twice: d weight's bits must repeat (no atomics).
TEST_P(GpuFusedPrelu, MoeGluClampedAndWeighted) {
  CUACT_SKIP_WITHOUT_GPU();
  const DType dtype = GetParam();
  const size_t elem = dtype_size(dtype);
  const std::vector<Shape> shapes = {{1, 1}, {7, 11}, {5, 128}, {33, 1000}, {300, 2880}, {3, 14336}};
  const std::vector<Glu> glus = {Glu::clamped_swiglu(), Glu{Activation::gelu(), GatedHalf::second, 2.5f, -0.5f},
                                 Glu::swiglu()};
  for (DType weight_dtype : {dtype, DType::f32})
    for (const Glu& base : glus)
      for (const Shape& s : shapes)
        for (const int64_t interleave : {int64_t{0}, int64_t{1}, s.cols % 32 == 0 ? int64_t{32} : int64_t{0}})
        for (const FusedLayout& l : kFusedLayouts) {
          const int64_t rows = s.rows, d = s.cols;
          Glu glu = base;
          glu.interleave = interleave;
          const size_t welem = dtype_size(weight_dtype);
          SCOPED_TRACE(testing::Message() << describe(glu.act) << " limit " << glu.limit << " interleave "
                                          << interleave << " weight "
                                          << dtype_name(weight_dtype) << " " << shape_name(s) << " " << l.name);
          std::vector<double> x(rows * 2 * d), dy(rows * d), w(rows);
          for (int64_t i = 0; i < rows * 2 * d; ++i) x[i] = fused_moderate(dtype, i, 1);
          for (int64_t i = 0; i < rows * d; ++i) dy[i] = fused_moderate(dtype, i, 2);
          for (int64_t r = 0; r < rows; ++r) w[r] = reference::round_to(weight_dtype, fused_operand(r + 2));
          DeviceBuffer xb(rows * 2 * d * elem), yb(rows * 2 * d * elem), dyb(rows * d * elem),
              wb(rows * welem), dwb(rows * welem);
          ASSERT_TRUE(xb.ok() && yb.ok() && dyb.ok() && wb.ok() && dwb.ok());
          void* xp = xb.at(l.in_offset * elem);
          void* dyp = dyb.at(l.in_offset * elem);
          upload(dtype, xp, x);
          upload(dtype, dyp, dy);
          upload(weight_dtype, wb.at(), w);
          void* yp = yb.at(l.out_offset * elem);
          Status st = glu_forward(glu, dtype, xp, wb.at(), weight_dtype, yp, rows, d);
          ASSERT_TRUE(st.ok()) << st.message();
          EXPECT_EQ(judge_glu_forward(glu, dtype, rows, d, x, download(dtype, yp, rows * d), w), 0);
          size_t ws_bytes = 0;
          ASSERT_TRUE(glu_backward_workspace_size(glu, dtype, rows, d, &ws_bytes).ok());
          DeviceBuffer ws(ws_bytes);
          std::vector<double> first_dw;
          for (int run = 0; run < 2; ++run) {
            upload(dtype, xp, x);
            void* dxp = l.in_place ? xp : yp;
            st = glu_backward(glu, dtype, xp, wb.at(), weight_dtype, dyp, dxp, dwb.at(), rows, d,
                              {ws.at(), ws_bytes});
            ASSERT_TRUE(st.ok()) << st.message();
            const std::vector<double> dw = download(weight_dtype, dwb.at(), rows);
            if (run == 0) {
              EXPECT_EQ(judge_glu_backward(glu, dtype, rows, d, x, dy, download(dtype, dxp, rows * 2 * d), w,
                                           weight_dtype, dw),
                        0);
              first_dw = dw;
            } else {
              EXPECT_EQ(std::memcmp(first_dw.data(), dw.data(), dw.size() * sizeof(double)), 0)
                  << "d weight differs between two runs";
            }
          }
          if (HasFailure()) return;
        }
}

// Expert rows on the device: masked counts (drawn, 0 and capacity, every
// token on one expert, out of range) and grouped offsets; the valid rows
// judged as a call of their own, every other row's guard bytes kept, the
// error flag set exactly for the bad table, dweight's bits equal over runs.
TEST_P(GpuFusedPrelu, MoeGluExpertRowsMaskedAndGrouped) {
  CUACT_SKIP_WITHOUT_GPU();
  const DType dtype = GetParam();
  const size_t elem = dtype_size(dtype);
  const int64_t experts = 8, capacity = 96, rows = experts * capacity;
  constexpr unsigned char kGuard = 0x5a;
  struct Table {
    const char* name;
    bool masked;
    std::vector<int32_t> values;
    bool bad;
  };
  std::vector<Table> tables = {
      {"drawn counts", true, {0, 17, 96, 5, 64, 1, 33, 96}, false},
      {"every token on one expert", true, {0, 0, 0, 96, 0, 0, 0, 0}, false},
      {"counts out of range", true, {-1, 17, 200, 5, 64, 1, 33, 96}, true},
      {"grouped offsets", false, {3, 10, 10, 200, 300, 301, 500, 600, 700}, false},
      {"grouped offsets decreasing", false, {3, 10, 9, 200, 300, 301, 500, 600, 700}, true},
  };
  for (const Glu& glu : {Glu::clamped_swiglu(), Glu::clamped_swiglu(1.702f, 7.0f, 1.0f, 1), Glu::swiglu()})
    for (const int64_t d : {int64_t{1000}, int64_t{2880}})
      for (const Table& t : tables) {
        SCOPED_TRACE(testing::Message() << describe(glu.act) << " limit " << glu.limit << " interleave "
                                        << glu.interleave << " d " << d << " " << t.name);
        std::vector<int64_t> valid;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t e = r / capacity, i = r % capacity;
          const bool in = t.masked ? i < std::clamp<int64_t>(t.values[e], 0, capacity)
                                   : r >= t.values.front() && r < t.values.back();
          if (in) valid.push_back(r);
        }
        const auto n = static_cast<int64_t>(valid.size());
        std::vector<double> x(rows * 2 * d), dy(rows * d), w(rows);
        for (int64_t i = 0; i < rows * 2 * d; ++i) x[i] = fused_moderate(dtype, i, 1);
        for (int64_t i = 0; i < rows * d; ++i) dy[i] = fused_moderate(dtype, i, 2);
        for (int64_t r = 0; r < rows; ++r) w[r] = reference::round_to(DType::f32, fused_operand(r + 2));
        auto gather = [&](const std::vector<double>& v, int64_t width) {
          std::vector<double> g;
          for (int64_t r : valid) g.insert(g.end(), v.begin() + r * width, v.begin() + (r + 1) * width);
          return g;
        };
        // Bytes of the rows outside `valid` of [rows, width] elements of `size` bytes that lost their guard.
        auto guards_lost = [&](const void* p, int64_t width, size_t size) {
          std::vector<unsigned char> host(rows * width * size);
          EXPECT_EQ(cudaMemcpy(host.data(), p, host.size(), cudaMemcpyDeviceToHost), cudaSuccess);
          std::vector<char> is_valid(rows, 0);
          for (int64_t r : valid) is_valid[r] = 1;
          int64_t lost = 0;
          for (int64_t r = 0; r < rows; ++r)
            if (!is_valid[r])
              for (size_t i = 0; i < width * size; ++i) lost += host[r * width * size + i] != kGuard;
          return lost;
        };
        DeviceBuffer xb(rows * 2 * d * elem), yb(rows * 2 * d * elem), dyb(rows * d * elem), wb(rows * 4),
            dwb(rows * 4), table(t.values.size() * 4), flag(4);
        ASSERT_TRUE(xb.ok() && yb.ok() && dyb.ok() && wb.ok() && dwb.ok() && table.ok() && flag.ok());
        upload(dtype, xb.at(), x);
        upload(dtype, dyb.at(), dy);
        upload(DType::f32, wb.at(), w);
        ASSERT_EQ(cudaMemcpy(table.at(), t.values.data(), t.values.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemset(flag.at(), 0, 4), cudaSuccess);
        ExpertRows er;
        (t.masked ? er.counts : er.offsets) = reinterpret_cast<const int32_t*>(table.at());
        er.experts = experts;
        er.error = reinterpret_cast<int32_t*>(flag.at());
        ASSERT_EQ(cudaMemset(yb.at(), kGuard, rows * d * elem), cudaSuccess);
        Status st = glu_forward(glu, dtype, xb.at(), wb.at(), DType::f32, yb.at(), rows, d, er);
        ASSERT_TRUE(st.ok()) << st.message();
        EXPECT_EQ(judge_glu_forward(glu, dtype, n, d, gather(x, 2 * d), gather(download(dtype, yb.at(), rows * d), d),
                                    gather(w, 1)),
                  0);
        EXPECT_EQ(guards_lost(yb.at(), d, elem), 0) << "forward";
        size_t ws_bytes = 0;
        ASSERT_TRUE(glu_backward_workspace_size(glu, dtype, rows, d, &ws_bytes).ok());
        DeviceBuffer ws(ws_bytes);
        std::vector<double> first_dw;
        for (int run = 0; run < 2; ++run) {
          ASSERT_EQ(cudaMemset(yb.at(), kGuard, rows * 2 * d * elem), cudaSuccess);
          ASSERT_EQ(cudaMemset(dwb.at(), kGuard, rows * 4), cudaSuccess);
          st = glu_backward(glu, dtype, xb.at(), wb.at(), DType::f32, dyb.at(), yb.at(), dwb.at(), rows, d, er,
                            {ws.at(), ws_bytes});
          ASSERT_TRUE(st.ok()) << st.message();
          const std::vector<double> dw = gather(download(DType::f32, dwb.at(), rows), 1);
          if (run == 0) {
            EXPECT_EQ(judge_glu_backward(glu, dtype, n, d, gather(x, 2 * d), gather(dy, d),
                                         gather(download(dtype, yb.at(), rows * 2 * d), 2 * d), gather(w, 1),
                                         DType::f32, dw),
                      0);
            EXPECT_EQ(guards_lost(yb.at(), 2 * d, elem), 0) << "dx";
            EXPECT_EQ(guards_lost(dwb.at(), 1, 4), 0) << "dweight";
            first_dw = dw;
          } else {
            EXPECT_EQ(std::memcmp(first_dw.data(), dw.data(), dw.size() * sizeof(double)), 0)
                << "d weight differs between two runs";
          }
        }
        int32_t error = -1;
        ASSERT_EQ(cudaMemcpy(&error, flag.at(), 4, cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(error, t.bad ? 1 : 0);
        if (HasFailure()) return;
      }
}

TEST_P(GpuFusedPrelu, RreluTrainingAndEvalWithRegeneratedSlopes) {
  CUACT_SKIP_WITHOUT_GPU();
  const DType dtype = GetParam();
  const size_t elem = dtype_size(dtype);
  for (bool training : {true, false})
    for (const FusedLayout& l : kFusedLayouts)
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{1001}, (int64_t{1} << 20) + 3}) {
        SCOPED_TRACE(testing::Message() << (training ? "training " : "eval ") << l.name << " n=" << n);
        const Rrelu rrelu{1.0f / 8.0f, 1.0f / 3.0f, training, 99, 4};
        std::vector<double> x(n), dy(n);
        for (int64_t i = 0; i < n; ++i) {
          x[i] = fused_input(dtype, i, 9);
          dy[i] = test_gradient(i);
        }
        DeviceBuffer xb(n * elem), yb(n * elem), dyb(n * elem);
        ASSERT_TRUE(xb.ok() && yb.ok() && dyb.ok());
        void* xp = xb.at(l.in_offset * elem);
        void* yp = l.in_place ? xp : yb.at(l.out_offset * elem);
        upload(dtype, xp, x);
        upload(dtype, dyb.at(l.in_offset * elem), dy);
        ASSERT_TRUE(rrelu_forward(rrelu, dtype, xp, yp, n).ok());
        const std::vector<double> y = download(dtype, yp, n);
        upload(dtype, xp, x);
        ASSERT_TRUE(rrelu_backward(rrelu, dtype, xp, dyb.at(l.in_offset * elem), yp, n).ok());
        EXPECT_EQ(judge_rrelu(rrelu, dtype, x, dy, y, download(dtype, yp, n)), 0);
      }
}

INSTANTIATE_TEST_SUITE_P(DTypes, GpuFusedPrelu,
                         testing::Values(DType::f32, DType::f16, DType::bf16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// ---------------------------------------------------------------- dropout: reproducibility

// Masks and outputs depend on (seed, offset, element index) only: the same
// for a 1-block grid and the device-sized grid, for [rows, cols] and
// [1, rows * cols], aligned or not; and the masks equal the CPU emulation's.
TEST(GpuFusedDropout, IdenticalAcrossLaunchConfigurationsLayoutsAndTheCpu) {
  CUACT_SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    const size_t elem = dtype_size(dtype);
    const int64_t rows = 257, cols = 1031, n = rows * cols;
    const Dropout dropout{0.5f, 42, 7};
    std::vector<double> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = fused_input(dtype, i);
    std::vector<std::vector<unsigned char>> outputs;
    std::vector<std::vector<uint8_t>> masks;
    for (int variant = 0; variant < 6; ++variant) {
      const int64_t r = variant % 2 == 0 ? rows : 1, c = variant % 2 == 0 ? cols : n;
      const int offset = variant >= 4 ? 1 : 0;
      DeviceBuffer xb(n * elem), yb(n * elem), mb(n);
      ASSERT_TRUE(xb.ok() && yb.ok() && mb.ok());
      upload(dtype, xb.at(offset * elem), x);
      detail::RowRequest request = detail::bias_activation_forward_request(
          Activation::silu(), dtype, xb.at(offset * elem), nullptr, dtype, yb.at(offset * elem), r, c,
          dropout, mb.at());
      request.max_blocks = variant >= 2 && variant < 4 ? 1 : 0;  // one block vs the device's grid
      const Status s = detail::run_rows(request, nullptr);
      ASSERT_TRUE(s.ok()) << s.message();
      std::vector<unsigned char> out(n * elem);
      std::vector<uint8_t> m(static_cast<size_t>(n));
      CUDA_OK(cudaMemcpy(out.data(), yb.at(offset * elem), n * elem, cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(m.data(), mb.at(), n, cudaMemcpyDeviceToHost));
      outputs.push_back(out);
      masks.push_back(m);
    }
    for (size_t v = 1; v < outputs.size(); ++v) {
      EXPECT_EQ(outputs[v], outputs[0]) << dtype_name(dtype) << " variant " << v;
      EXPECT_EQ(masks[v], masks[0]) << dtype_name(dtype) << " variant " << v;
    }
    std::vector<uint8_t> cpu_mask(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      cpu_mask[i] = reference::dropout_keeps(dropout, static_cast<uint64_t>(i)) ? 1 : 0;
    EXPECT_EQ(masks[0], cpu_mask) << dtype_name(dtype);
  }
}

// The backward regenerates the forward's mask: dx is exactly 0 where the
// forward dropped, and dy * scale * f'(x) where it kept.
TEST(GpuFusedDropout, BackwardUsesTheForwardMask) {
  CUACT_SKIP_WITHOUT_GPU();
  const DType dtype = DType::bf16;
  const int64_t rows = 513, cols = 777, n = rows * cols;
  const Dropout dropout{0.25f, 5, 1234};
  std::vector<double> x(n), ones(n, 1.0);
  for (int64_t i = 0; i < n; ++i) x[i] = fused_moderate(dtype, i, 0);
  DeviceBuffer xb(n * 2), yb(n * 2), dyb(n * 2), dxb(n * 2), mb(n);
  ASSERT_TRUE(xb.ok() && yb.ok() && dyb.ok() && dxb.ok() && mb.ok());
  upload(dtype, xb.at(), x);
  upload(dtype, dyb.at(), ones);
  const Activation act = Activation::identity();  // dx = scale exactly where kept
  ASSERT_TRUE(bias_activation_forward(act, dtype, xb.at(), nullptr, yb.at(), rows, cols, dropout, mb.at()).ok());
  ASSERT_TRUE(bias_activation_backward(act, dtype, xb.at(), nullptr, dyb.at(), dxb.at(), nullptr, rows, cols, dropout).ok());
  std::vector<uint8_t> m(static_cast<size_t>(n));
  CUDA_OK(cudaMemcpy(m.data(), mb.at(), n, cudaMemcpyDeviceToHost));
  const std::vector<double> dx = download(dtype, dxb.at(), n);
  const double scale = reference::round_to(dtype, reference::dropout_scale(dropout.p));
  int64_t wrong = 0, kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    kept += m[i];
    wrong += m[i] ? dx[i] != scale : dx[i] != 0;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_NEAR(static_cast<double>(kept), n * 0.75, 6 * std::sqrt(n * 0.25 * 0.75));
  // The activation + dropout entry points are the one-row form of the same call.
  DeviceBuffer dx2(n * 2);
  ASSERT_TRUE(activation_dropout_backward(act, dtype, xb.at(), dyb.at(), dx2.at(), n, dropout).ok());
  EXPECT_EQ(download(dtype, dx2.at(), n), dx);
}

// ---------------------------------------------------------------- reductions

TEST(GpuFusedReductions, DbiasForSeveralGeometriesAndShapes) {
  CUACT_SKIP_WITHOUT_GPU();
  const std::vector<Shape> shapes = {{8192, 1000}, {3, 100003}, {100000, 3}, {2048, 4096}};
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const Shape& s : shapes)
      for (int64_t max_blocks : {int64_t{0}, int64_t{7}}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << shape_name(s) << " blocks " << max_blocks);
        const size_t elem = dtype_size(dtype);
        const int64_t n = s.rows * s.cols;
        std::vector<double> x(n), dy(n), b(s.cols);
        for (int64_t i = 0; i < n; ++i) {
          x[i] = fused_moderate(dtype, i, 5);
          dy[i] = fused_moderate(dtype, i, 6);
        }
        for (int64_t j = 0; j < s.cols; ++j) b[j] = fused_operand(j);
        DeviceBuffer xb(n * elem), dyb(n * elem), dxb(n * elem), bb(s.cols * elem), dbb(s.cols * elem);
        ASSERT_TRUE(xb.ok() && dyb.ok() && dxb.ok() && bb.ok() && dbb.ok());
        upload(dtype, xb.at(), x);
        upload(dtype, dyb.at(), dy);
        upload(dtype, bb.at(), b);
        size_t ws_bytes = 0;
        ASSERT_TRUE(bias_activation_backward_workspace_size(dtype, s.rows, s.cols, &ws_bytes).ok());
        DeviceBuffer ws(ws_bytes);
        detail::RowRequest request = detail::bias_activation_backward_request(
            Activation::gelu(), dtype, xb.at(), bb.at(), dtype, dyb.at(), dxb.at(), dbb.at(), s.rows,
            s.cols, Dropout{0.1f, 1, 2}, ws.at());
        request.max_blocks = max_blocks;
        ASSERT_TRUE(detail::run_rows(request, nullptr).ok());
        EXPECT_EQ(judge_bias_backward(Activation::gelu(), dtype, dtype, s.rows, s.cols, x, b, dy,
                                      Dropout{0.1f, 1, 2}, download(dtype, dxb.at(), n),
                                      download(dtype, dbb.at(), s.cols)),
                  0);
      }
}

// ---------------------------------------------------------------- graphs, devices, 64-bit sizes

TEST(GpuFusedGraph, CapturedCallsMatchDirectCalls) {
  CUACT_SKIP_WITHOUT_GPU();
  const DType dtype = DType::f16;
  const int64_t rows = 300, cols = 1000, n = rows * cols;
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = fused_moderate(dtype, i, 7);
  DeviceBuffer xb(n * 2), dyb(n * 2), bb(cols * 2), dx1(n * 2), dx2(n * 2), db1(cols * 2), db2(cols * 2),
      g1(n), g2(n);
  upload(dtype, xb.at(), x);
  upload(dtype, dyb.at(), x);
  upload(dtype, bb.at(), std::vector<double>(cols, 0.5));
  size_t ws_bytes = 0;
  ASSERT_TRUE(bias_activation_backward_workspace_size(dtype, rows, cols, &ws_bytes).ok());
  DeviceBuffer ws(ws_bytes);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const Dropout d{0.2f, 9, 9};
  auto enqueue = [&](void* dx, void* db, void* y) {
    Status s = bias_activation_backward(Activation::gelu_tanh(), dtype, xb.at(), bb.at(), dyb.at(),
                                        dx, db, rows, cols, d, {ws.at(), ws_bytes}, stream);
    if (s.ok()) s = glu_forward(Glu::swiglu(), dtype, xb.at(), y, rows, cols / 2, stream);
    return s;
  };
  ASSERT_TRUE(enqueue(dx1.at(), db1.at(), g1.at()).ok());
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status s = enqueue(dx2.at(), db2.at(), g2.at());
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  ASSERT_TRUE(s.ok()) << s.message();
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_EQ(download(dtype, dx1.at(), n), download(dtype, dx2.at(), n));
  EXPECT_EQ(download(dtype, db1.at(), cols), download(dtype, db2.at(), cols)) << "the sums are deterministic";
  EXPECT_EQ(download(dtype, g1.at(), rows * cols / 2), download(dtype, g2.at(), rows * cols / 2));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// Graph-safe dropout (Dropout::device_state): a forward + backward captured
// once and replayed three times draws the masks of the by-value calls with
// offsets o, o + 1, o + 2 (three different masks), and each replay's backward
// regenerates its own forward's mask.
TEST(GpuFusedGraph, ReplaysDrawFreshMasksFromTheDeviceState) {
  CUACT_SKIP_WITHOUT_GPU();
  const DType dtype = DType::bf16;
  const int64_t rows = 64, cols = 1000, n = rows * cols;
  std::vector<double> x(n), dy(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = fused_moderate(dtype, i, 3);
    dy[i] = fused_moderate(dtype, i, 4);
  }
  DeviceBuffer xb(n * 2), dyb(n * 2), yb(n * 2), dxb(n * 2), mb(n), y2(n * 2), dx2(n * 2), m2(n), st(32);
  upload(dtype, xb.at(), x);
  upload(dtype, dyb.at(), dy);
  auto* state = reinterpret_cast<uint64_t*>(st.at());
  uint64_t* used = state + 2;
  const uint64_t start[2] = {1234, 50};
  CUDA_OK(cudaMemcpy(state, start, sizeof start, cudaMemcpyHostToDevice));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const Dropout graph_safe{0.25f, 0, 0, state, used};
  auto enqueue = [&](const Dropout& d, void* y, uint8_t* mask, void* dx) {
    Status s = bias_activation_forward(Activation::gelu(), dtype, xb.at(), nullptr, y, rows, cols, d,
                                       mask, stream);
    if (s.ok())
      s = bias_activation_backward(Activation::gelu(), dtype, xb.at(), nullptr, dyb.at(), dx, nullptr,
                                   rows, cols, d, {}, stream);
    return s;
  };
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status captured = enqueue(graph_safe, yb.at(), mb.at(), dxb.at());
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  ASSERT_TRUE(captured.ok()) << captured.message();
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  std::vector<std::vector<uint8_t>> masks;
  for (uint64_t replay = 0; replay < 3; ++replay) {
    CUDA_OK(cudaGraphLaunch(exec, stream));
    // The same calls by value, with the pair this replay used.
    ASSERT_TRUE(enqueue(Dropout{0.25f, 1234, 50 + replay}, y2.at(), m2.at(), dx2.at()).ok());
    CUDA_OK(cudaStreamSynchronize(stream));
    std::vector<uint8_t> mask(static_cast<size_t>(n)), expect(static_cast<size_t>(n));
    CUDA_OK(cudaMemcpy(mask.data(), mb.at(), n, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(expect.data(), m2.at(), n, cudaMemcpyDeviceToHost));
    EXPECT_EQ(mask, expect) << "replay " << replay;
    EXPECT_EQ(download(dtype, yb.at(), n), download(dtype, y2.at(), n)) << "replay " << replay;
    EXPECT_EQ(download(dtype, dxb.at(), n), download(dtype, dx2.at(), n)) << "replay " << replay;
    for (const auto& earlier : masks) EXPECT_NE(mask, earlier) << "replay " << replay;
    masks.push_back(mask);
  }
  uint64_t after[4] = {};
  CUDA_OK(cudaMemcpy(after, state, sizeof after, cudaMemcpyDeviceToHost));
  EXPECT_EQ(after[0], 1234u);
  EXPECT_EQ(after[1], 53u) << "each replay's forward advanced the offset by one";
  EXPECT_EQ(after[3], 52u) << "the last replay used offset 52";
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// One call over more than 2^31 elements (fp16: 4 GiB per buffer): the element
// index, the Philox counter and the addresses are 64-bit.
TEST(GpuFusedLarge, DropoutBeyond2To31Elements) {
  CUACT_SKIP_WITHOUT_GPU();
  if (small_sizes_only()) GTEST_SKIP() << "CUACT_TEST_SMALL=1";
  const int64_t n = (int64_t{1} << 31) + 4099;
  DeviceBuffer xb(n * 2), mb(n);
  if (!xb.ok() || !mb.ok()) GTEST_SKIP() << "not enough device memory for 2 x 4 GiB";
  CUDA_OK(cudaMemset(xb.at(), 0x3c, n * 2));  // every half is 0x3c3c = 1.0586
  const Dropout d{0.5f, 77, 88};
  ASSERT_TRUE(activation_dropout_forward(Activation::relu(), DType::f16, xb.at(), xb.at(), n, d, mb.at()).ok());
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t tail = 8192;
  std::vector<uint8_t> m(tail);
  CUDA_OK(cudaMemcpy(m.data(), mb.at(n - tail), tail, cudaMemcpyDeviceToHost));
  const std::vector<double> y = download(DType::f16, xb.at((n - tail) * 2), tail);
  const double one = 1.0 + 60.0 / 1024.0;  // fp16 0x3c3c
  int64_t wrong = 0;
  for (int64_t i = 0; i < tail; ++i) {
    const bool kept = reference::dropout_keeps(d, static_cast<uint64_t>(n - tail + i));
    wrong += m[i] != (kept ? 1 : 0);
    wrong += y[i] != (kept ? reference::round_to(DType::f16, one * 2) : 0.0);
  }
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace cuact::test
