// The fused kernels emulated on the CPU (fused_emulation.h: every block and
// thread of the launch's grid through the kernels' own process_chunk and
// block-partial code, on host buffers) against the double reference: every
// fused form, odd shapes, misaligned and in-place buffers, several launch
// geometries; dropout masks reproducible across geometries and layouts and
// consistent between forward and backward; dbias / dweight within the
// reduction tolerance. Also checks the reference's buffer forms round the
// exact values once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <vector>

#include "cuact/reference.h"
#include "fused_testing.h"

namespace cuact::test {
namespace {


// A host buffer whose base is 256-byte aligned, addressed by element offset.
class HostBuffer {
 public:
  HostBuffer(DType dtype, int64_t elements)
      : dtype_(dtype), storage_(static_cast<size_t>(elements + 64) * dtype_size(dtype) + 512) {
    const auto p = reinterpret_cast<std::uintptr_t>(storage_.data());
    base_ = storage_.data() + ((256 - p % 256) % 256);
  }
  void* at(int64_t element_offset) {
    return base_ + element_offset * static_cast<int64_t>(dtype_size(dtype_));
  }
  void write(int64_t element_offset, const std::vector<double>& values) {
    const auto bytes = to_buffer(dtype_, values);
    std::memcpy(at(element_offset), bytes.data(), bytes.size());
  }
  std::vector<double> read(int64_t element_offset, int64_t n) {
    std::vector<unsigned char> bytes(static_cast<size_t>(n) * dtype_size(dtype_));
    std::memcpy(bytes.data(), at(element_offset), bytes.size());
    return from_buffer(dtype_, bytes);
  }

 private:
  DType dtype_;
  std::vector<unsigned char> storage_;
  unsigned char* base_;
};

// Activations the engine sweeps (the per-element math of every activation
// is checked in fused_functor_test, and the GPU suite runs them all).
std::vector<Activation> engine_activations() { return emulated_activations(); }

const DType kDTypes[] = {DType::f32, DType::f16, DType::bf16};

// ---------------------------------------------------------------- bias + activation + dropout

struct BiasCase {
  Activation act;
  DType dtype;
  Shape shape;
  FusedLayout layout;
  bool bias;
  float p;
  int64_t blocks;  // the emulated device's block budget
  DType param_dtype;  // bias and dbias: dtype, or f32 with half data
};

// A bias of param_dtype: fused_operand, made inexact in the data's half
// type when the parameter is fp32 (so reading it as a half would show).
double bias_value(DType param_dtype, int64_t j) {
  const double b = fused_operand(j);
  return param_dtype == DType::f32 ? reference::round_to(DType::f32, b * (1 + 0x1.0p-10 + 0x1.0p-19)) : b;
}

// Runs forward (with mask) and backward (with dbias when there is a bias) of
// one case through the emulator and judges every output.
void run_bias_case(const BiasCase& c) {
  const int64_t rows = c.shape.rows, cols = c.shape.cols, n = rows * cols;
  const DType dtype = c.dtype;
  const Dropout dropout{c.p, 777, 3};
  const bool reductions = c.bias;  // inputs then stay moderate so sums are finite
  std::vector<double> x(n), dy(n), b;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = reductions ? fused_moderate(dtype, i, 1) : fused_input(dtype, i, rows);
    dy[i] = reductions ? fused_moderate(dtype, i, 2) : test_gradient(i);
  }
  if (c.bias)
    for (int64_t j = 0; j < cols; ++j) b.push_back(bias_value(c.param_dtype, j));

  HostBuffer xb(dtype, n), dyb(dtype, n), yb(dtype, n), bb(c.param_dtype, cols),
      dbb(c.param_dtype, cols);
  std::vector<uint8_t> mask_storage(static_cast<size_t>(n) + 16, 0xee);
  const FusedLayout& l = c.layout;
  xb.write(l.in_offset, x);
  dyb.write(l.in_offset, dy);
  if (c.bias) bb.write(l.in_offset, b);
  void* y = l.in_place ? xb.at(l.in_offset) : yb.at(l.out_offset);
  const void* bias = c.bias ? bb.at(l.in_offset) : nullptr;
  uint8_t* mask = mask_storage.data() + 1;  // misaligned on purpose

  emulate_fused(detail::bias_activation_forward_request(c.act, dtype, xb.at(l.in_offset), bias, c.param_dtype, y,
                                                       rows, cols, dropout, mask),
                c.blocks);
  const std::vector<double> got_y = l.in_place ? xb.read(l.in_offset, n) : yb.read(l.out_offset, n);
  const std::vector<uint8_t> got_mask(mask, mask + n);
  EXPECT_EQ(judge_bias_forward(c.act, dtype, rows, cols, x, b, dropout, got_y, &got_mask), 0);
  EXPECT_EQ(mask_storage[0], 0xee);
  EXPECT_EQ(mask_storage[static_cast<size_t>(n) + 1], 0xee) << "mask written past its end";

  // Backward, from the saved x (the forward may have overwritten it in place).
  xb.write(l.in_offset, x);
  void* dx = l.in_place ? xb.at(l.in_offset) : yb.at(l.out_offset);
  std::vector<unsigned char> workspace(
      static_cast<size_t>(detail::bias_backward_workspace(dtype, rows, cols)));
  emulate_fused(detail::bias_activation_backward_request(c.act, dtype, xb.at(l.in_offset), bias, c.param_dtype,
                                                        dyb.at(l.in_offset), dx,
                                                        c.bias ? dbb.at(0) : nullptr, rows, cols,
                                                        dropout, workspace.data()),
                c.blocks);
  const std::vector<double> got_dx = l.in_place ? xb.read(l.in_offset, n) : yb.read(l.out_offset, n);
  const std::vector<double> got_db = c.bias ? dbb.read(0, cols) : std::vector<double>{};
  EXPECT_EQ(judge_bias_backward(c.act, dtype, c.param_dtype, rows, cols, x, b, dy, dropout, got_dx, got_db), 0);
}

class EmulatedBiasActivation : public testing::TestWithParam<DType> {};

TEST_P(EmulatedBiasActivation, EveryShapeLayoutBiasAndDropout) {
  const DType dtype = GetParam();
  for (const Activation& act : engine_activations())
    for (const Shape& shape : fused_shapes())
      for (const FusedLayout& layout : kFusedLayouts)
        for (bool bias : {false, true})
          for (float p : {0.0f, 0.3f}) {
            SCOPED_TRACE(testing::Message() << describe(act) << " " << shape_name(shape) << " "
                                            << layout.name << (bias ? " bias" : "") << " p=" << p);
            run_bias_case({act, dtype, shape, layout, bias, p, 64, dtype});
            if (HasFailure()) return;
          }
}

// An fp32 bias and dbias with fp16/bf16 data (mixed-precision training).
TEST(EmulatedBiasActivation, Fp32BiasWithHalfData) {
  for (DType dtype : {DType::f16, DType::bf16})
    for (const Activation& act : engine_activations())
      for (const Shape& shape : fused_shapes())
        for (const FusedLayout& layout : kFusedLayouts)
          for (float p : {0.0f, 0.3f}) {
            SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << describe(act) << " "
                                            << shape_name(shape) << " " << layout.name
                                            << " p=" << p);
            run_bias_case({act, dtype, shape, layout, true, p, 64, DType::f32});
            if (HasFailure()) return;
          }
}

INSTANTIATE_TEST_SUITE_P(DTypes, EmulatedBiasActivation, testing::ValuesIn(kDTypes),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(EmulatedBiasActivation, ReductionsForSeveralGeometriesAndLongColumns) {
  for (DType dtype : kDTypes)
    for (const Shape& shape : std::vector<Shape>{{1000, 3}, {257, 130}, {3000, 1}})
      for (int64_t blocks : {1, 7, 1024}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << shape_name(shape)
                                        << " blocks " << blocks);
        run_bias_case({Activation::gelu(), dtype, shape, kFusedLayouts[0], true, 0.1f, blocks, dtype});
      }
}

// ---------------------------------------------------------------- dropout reproducibility

// The mask and outputs depend on (seed, offset, element index) only: the same
// for every block budget, for [rows, cols] and [1, rows * cols], aligned or not.
TEST(EmulatedDropout, IdenticalAcrossGeometriesAndLayouts) {
  for (DType dtype : kDTypes) {
    const int64_t rows = 9, cols = 131, n = rows * cols;
    std::vector<double> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = fused_input(dtype, i);
    const Dropout dropout{0.5f, 42, 7};
    std::vector<std::vector<double>> outputs;
    std::vector<std::vector<uint8_t>> masks;
    for (int variant = 0; variant < 6; ++variant) {
      const int64_t r = variant % 2 == 0 ? rows : 1, c = variant % 2 == 0 ? cols : n;
      const int offset = variant >= 4 ? 1 : 0;
      const int64_t blocks = variant >= 2 ? 1 : 1000;
      HostBuffer xb(dtype, n), yb(dtype, n);
      xb.write(offset, x);
      std::vector<uint8_t> mask(static_cast<size_t>(n));
      emulate_fused(detail::bias_activation_forward_request(Activation::gelu(), dtype, xb.at(offset),
                                                           nullptr, dtype, yb.at(offset), r, c, dropout,
                                                           mask.data()),
                    blocks);
      outputs.push_back(yb.read(offset, n));
      masks.push_back(mask);
    }
    for (size_t v = 1; v < outputs.size(); ++v) {
      EXPECT_EQ(masks[v], masks[0]) << dtype_name(dtype) << " variant " << v;
      int64_t differ = 0;
      for (int64_t i = 0; i < n; ++i) differ += ulp_distance(dtype, outputs[v][i], outputs[0][i]) != 0;
      EXPECT_EQ(differ, 0) << dtype_name(dtype) << " variant " << v;
    }
    // A new offset draws a new mask.
    std::vector<uint8_t> other(static_cast<size_t>(n));
    HostBuffer xb(dtype, n), yb(dtype, n);
    xb.write(0, x);
    emulate_fused(detail::bias_activation_forward_request(Activation::gelu(), dtype, xb.at(0),
                                                         nullptr, dtype, yb.at(0), rows, cols,
                                                         Dropout{0.5f, 42, 8}, other.data()),
                  64);
    EXPECT_NE(other, masks[0]);
  }
}

// The state in memory (graph-safe calls): each forward takes {seed, offset}
// into `used` and advances the offset by one, drawing exactly the mask of the
// by-value call with that pair; backward draws from `used`.
TEST(EmulatedDropout, MemoryStateAdvancesPerForwardAndBackwardRegenerates) {
  const DType dtype = DType::bf16;
  const int64_t rows = 7, cols = 301, n = rows * cols;
  std::vector<double> x(n), dy(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = fused_input(dtype, i, 5);
    dy[i] = fused_input(dtype, i, 6);
  }
  HostBuffer xb(dtype, n), dyb(dtype, n), yb(dtype, n), dxb(dtype, n);
  xb.write(0, x);
  dyb.write(0, dy);
  uint64_t state[2] = {42, 7}, used[2] = {0, 0};
  const Dropout graph_safe{0.3f, 0, 0, state, used};
  auto forward = [&](const Dropout& d) {
    std::vector<uint8_t> mask(static_cast<size_t>(n));
    emulate_fused(detail::bias_activation_forward_request(Activation::gelu(), dtype, xb.at(0), nullptr,
                                                         dtype, yb.at(0), rows, cols, d, mask.data()),
                  64);
    return std::make_pair(mask, yb.read(0, n));
  };
  auto backward = [&](const Dropout& d) {
    emulate_fused(detail::bias_activation_backward_request(Activation::gelu(), dtype, xb.at(0), nullptr,
                                                          dtype, dyb.at(0), dxb.at(0), nullptr, rows,
                                                          cols, d, nullptr),
                  64);
    return dxb.read(0, n);
  };
  const auto first = forward(graph_safe);
  EXPECT_EQ(used[0], 42u);
  EXPECT_EQ(used[1], 7u);
  EXPECT_EQ(state[1], 8u) << "each forward advances the offset by one";
  EXPECT_EQ(first.first, forward(Dropout{0.3f, 42, 7}).first);
  const auto second = forward(graph_safe);
  EXPECT_EQ(used[1], 8u);
  EXPECT_EQ(state[1], 9u);
  EXPECT_EQ(second.first, forward(Dropout{0.3f, 42, 8}).first);
  EXPECT_NE(second.first, first.first) << "a new offset draws a new mask";
  // Backward draws from `used` (the second forward's pair) and leaves the state alone.
  const std::vector<double> dx = backward(graph_safe);
  EXPECT_EQ(state[1], 9u);
  EXPECT_EQ(dx, backward(Dropout{0.3f, 42, 8}));
  EXPECT_NE(dx, backward(Dropout{0.3f, 42, 7}));
}

TEST(EmulatedDropout, MemoryStateIsCheckedAndTheReferenceWantsValues) {
  alignas(8) uint64_t buf[5] = {};
  const float x = 1.0f;
  float y = 0.0f;
  auto status = [&](const Dropout& d) {
    return bias_activation_forward(Activation::relu(), DType::f32, &x, nullptr, &y, 1, 1, d).code();
  };
  EXPECT_EQ(status(Dropout{0.5f, 0, 0, buf, nullptr}), StatusCode::null_pointer);
  EXPECT_EQ(status(Dropout{0.5f, 0, 0, nullptr, buf}), StatusCode::null_pointer);
  EXPECT_EQ(status(Dropout{0.5f, 0, 0, buf, reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(buf) + 4)}),
            StatusCode::misaligned_pointer);
  EXPECT_EQ(status(Dropout{0.5f, 0, 0, buf, buf + 1}), StatusCode::overlapping_buffers);
  const Status ref = reference::bias_activation_forward(Activation::relu(), DType::f32, &x, nullptr, &y,
                                                        1, 1, Dropout{0.5f, 0, 0, buf, buf + 2});
  EXPECT_EQ(ref.code(), StatusCode::unsupported) << ref.message();
}

// p = 0 is the plain activation, bit for bit; p = 1 gives zeros and a zero mask.
TEST(EmulatedDropout, PZeroIsThePlainActivationAndPOneIsZeros) {
  for (const Activation& act : engine_activations())
    for (DType dtype : kDTypes) {
      const int64_t n = 4099;
      std::vector<double> x(n);
      for (int64_t i = 0; i < n; ++i) x[i] = fused_input(dtype, i, 3);
      HostBuffer xb(dtype, n), yb(dtype, n);
      xb.write(1, x);
      std::vector<uint8_t> mask(static_cast<size_t>(n), 7);
      emulate_fused(detail::bias_activation_forward_request(act, dtype, xb.at(1), nullptr, dtype, yb.at(1),
                                                           1, n, Dropout{0.0f, 1, 2}, mask.data()),
                    16);
      const std::vector<double> plain =
          evaluate_functors_on_host(act, dtype, Direction::forward, x, x);
      const std::vector<double> got = yb.read(1, n);
      int64_t differ = 0;
      for (int64_t i = 0; i < n; ++i) {
        uint64_t a = 0, b = 0;
        std::memcpy(&a, &got[i], 8);
        std::memcpy(&b, &plain[i], 8);
        differ += a != b && !(std::isnan(got[i]) && std::isnan(plain[i]));
      }
      EXPECT_EQ(differ, 0) << describe(act) << " " << dtype_name(dtype);
      EXPECT_EQ(std::count(mask.begin(), mask.end(), 1), n);
      emulate_fused(detail::bias_activation_forward_request(act, dtype, xb.at(1), nullptr, dtype, yb.at(1),
                                                           1, n, Dropout{1.0f, 1, 2}, mask.data()),
                    16);
      for (double v : yb.read(1, n)) ASSERT_TRUE(v == 0 && !std::signbit(v)) << describe(act);
      EXPECT_EQ(std::count(mask.begin(), mask.end(), 0), n);
    }
}

// ---------------------------------------------------------------- GLU

TEST(EmulatedGlu, BothOrdersOddWidthsAndLayouts) {
  const std::vector<Activation> gates = {Activation::sigmoid(), Activation::gelu(),
                                         Activation::relu(), Activation::hardswish(),
                                         Activation::leaky_relu(0.2f)};
  for (DType dtype : kDTypes)
    for (const Activation& act : gates)
      for (GatedHalf half : {GatedHalf::first, GatedHalf::second})
        for (const Shape& s : std::vector<Shape>{{1, 1}, {3, 5}, {4, 8}, {7, 11}, {2, 67}, {5, 128}})
          for (const FusedLayout& layout : kFusedLayouts) {
            const Glu glu{act, half};
            const int64_t rows = s.rows, d = s.cols;
            SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << describe(act) << " "
                                            << (half == GatedHalf::first ? "first" : "second")
                                            << " " << shape_name(s) << " " << layout.name);
            std::vector<double> x(rows * 2 * d), dy(rows * d);
            for (int64_t i = 0; i < rows * d; ++i) dy[i] = test_gradient(i);
            const int64_t gated = half == GatedHalf::first ? 0 : d, other = d - gated;
            // The activated half takes the grid, the other moderate operands.
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < d; ++c) {
                x[r * 2 * d + gated + c] = fused_input(dtype, r * d + c, 5);
                x[r * 2 * d + other + c] = fused_operand(r * d + c + 1);
              }
            HostBuffer xb(dtype, rows * 2 * d), yb(dtype, rows * 2 * d), dyb(dtype, rows * d);
            xb.write(layout.in_offset, x);
            dyb.write(layout.in_offset, dy);
            // Forward (never in place: y is half of x).
            emulate_fused(detail::glu_forward_request(glu, dtype, xb.at(layout.in_offset),
                                                     yb.at(layout.out_offset), rows, d),
                          64);
            const std::vector<double> y = yb.read(layout.out_offset, rows * d);
            EXPECT_EQ(judge_glu_forward(glu, dtype, rows, d, x, y), 0);
            // Backward, in place where the layout says so.
            void* dx = layout.in_place ? xb.at(layout.in_offset) : yb.at(layout.out_offset);
            emulate_fused(detail::glu_backward_request(glu, dtype, xb.at(layout.in_offset),
                                                      dyb.at(layout.in_offset), dx, rows, d),
                          64);
            const std::vector<double> g =
                layout.in_place ? xb.read(layout.in_offset, rows * 2 * d)
                                : yb.read(layout.out_offset, rows * 2 * d);
            EXPECT_EQ(judge_glu_backward(glu, dtype, rows, d, x, dy, g), 0);
            if (HasFailure()) return;
          }
}

// The interleaves a GLU of width d is checked with: split halves, gpt-oss's
// 1, and the largest power of two up to 32 dividing d (a vector's multiple
// where d allows).
std::vector<int64_t> interleaves_of(int64_t d) {
  std::vector<int64_t> k = {0, 1};
  int64_t p = 32;
  while (p > 1 && d % p != 0) p /= 2;
  if (p > 1) k.push_back(p);
  return k;
}

// Clamped gates (every emulated kind, both orders) and row weights with
// their gradient, split and interleaved: forward and backward against the
// reference, d weight within the reduction bound, in place and not, weights
// in the data's dtype and fp32, geometries that give a row one block or
// several.
TEST(EmulatedGlu, ClampedAndWeightedWithRowWeightGradient) {
  const std::vector<Glu> glus = {
      Glu::clamped_swiglu(),                                      // gpt-oss: limit 7, offset 1
      Glu::clamped_swiglu(1.702f, 2.5f, 0.0f),                    // TE's offset 0
      Glu{Activation::gelu(), GatedHalf::second, 2.5f, -0.5f},    // any gate, either order
      Glu{Activation::relu(), GatedHalf::first, 1.0f, 1.0f},
      Glu::swiglu(),                                              // unclamped, weighted
  };
  const std::vector<Shape> shapes = {{1, 1}, {3, 5}, {4, 8}, {7, 11}, {2, 67}, {5, 128}, {3, 1000}};
  for (DType dtype : kDTypes)
    for (DType weight_dtype : {dtype, DType::f32})
      for (const Glu& base : glus)
        for (const Shape& s : shapes)
          for (const int64_t interleave : interleaves_of(s.cols))
          for (const FusedLayout& layout : kFusedLayouts) {
            const int64_t rows = s.rows, d = s.cols;
            Glu glu = base;
            glu.interleave = interleave;
            SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " (weight " << dtype_name(weight_dtype)
                                            << ") " << describe(glu.act) << " limit " << glu.limit
                                            << " offset " << glu.offset << " interleave " << interleave
                                            << " " << shape_name(s) << " " << layout.name);
            // Smooth halves in [-4, 4] (so d weight's sums stay finite) with
            // the clamps' edges planted: +-limit and values just past them.
            std::vector<double> x(rows * 2 * d), dy(rows * d), w(rows);
            for (int64_t i = 0; i < rows * 2 * d; ++i) {
              const double edge = reference::round_to(dtype, glu.limit);
              const double planted[] = {edge, -edge, reference::round_to(dtype, edge * 1.01),
                                        -reference::round_to(dtype, edge * 1.01)};
              x[i] = i % 7 == 3 && std::isfinite(edge) ? planted[(i / 7) % 4] : fused_moderate(dtype, i, 1);
            }
            for (int64_t i = 0; i < rows * d; ++i) dy[i] = fused_moderate(dtype, i, 2);
            for (int64_t r = 0; r < rows; ++r)
              w[r] = reference::round_to(weight_dtype, fused_operand(r + 2) * (1 + 0x1.0p-10 + 0x1.0p-19));
            HostBuffer xb(dtype, rows * 2 * d), yb(dtype, rows * 2 * d), dyb(dtype, rows * d);
            HostBuffer wb(weight_dtype, rows), dwb(weight_dtype, rows);
            xb.write(layout.in_offset, x);
            dyb.write(layout.in_offset, dy);
            wb.write(0, w);
            emulate_fused(detail::weighted_glu_request(
                              detail::glu_forward_request(glu, dtype, xb.at(layout.in_offset),
                                                          yb.at(layout.out_offset), rows, d),
                              rows, wb.at(0), weight_dtype),
                          64);
            EXPECT_EQ(judge_glu_forward(glu, dtype, rows, d, x, yb.read(layout.out_offset, rows * d), w), 0);
            // Unweighted: the clamps alone.
            emulate_fused(detail::glu_forward_request(glu, dtype, xb.at(layout.in_offset),
                                                      yb.at(layout.out_offset), rows, d),
                          64);
            EXPECT_EQ(judge_glu_forward(glu, dtype, rows, d, x, yb.read(layout.out_offset, rows * d)), 0);
            for (int64_t blocks : {2, 64}) {
              xb.write(layout.in_offset, x);
              void* dx = layout.in_place ? xb.at(layout.in_offset) : yb.at(layout.out_offset);
              std::vector<unsigned char> ws(
                  static_cast<size_t>(detail::glu_backward_workspace(glu, dtype, rows, d)) + 16);
              detail::RowRequest r = detail::weighted_glu_request(
                  detail::glu_backward_request(glu, dtype, xb.at(layout.in_offset),
                                               dyb.at(layout.in_offset), dx, rows, d),
                  rows, wb.at(0), weight_dtype, dwb.at(0), ws.data());
              r.max_blocks = blocks;
              emulate_fused(r, blocks);
              const std::vector<double> g = layout.in_place ? xb.read(layout.in_offset, rows * 2 * d)
                                                            : yb.read(layout.out_offset, rows * 2 * d);
              EXPECT_EQ(judge_glu_backward(glu, dtype, rows, d, x, dy, g, w, weight_dtype, dwb.read(0, rows)), 0);
            }
            if (HasFailure()) return;
          }
}

// The clamped SwiGLU's kinks over every fp16 / bf16 value: the gated half
// through every 16-bit pattern beside a fixed linear value, then the linear
// half through every pattern beside a fixed gate (g and u at the limit, one
// ulp either side, NaN and infinities included), forward and backward.
TEST(EmulatedGlu, ClampKinksOverEvery16BitValue) {
  for (DType dtype : {DType::f16, DType::bf16})
    for (const Glu& glu : {Glu::clamped_swiglu(), Glu{Activation::gelu(), GatedHalf::second, 7.0f, 0.0f}})
      for (int sweep = 0; sweep < 2; ++sweep) {
        SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << describe(glu.act)
                                        << (sweep == 0 ? " gate sweep" : " linear sweep"));
        const int64_t rows = 256, d = 256;
        const int64_t gated = glu.gated == GatedHalf::first ? 0 : d, other = d - gated;
        std::vector<unsigned char> bits(2);
        std::vector<double> x(rows * 2 * d), dy(rows * d);
        for (int64_t i = 0; i < rows * d; ++i) {
          bits[0] = static_cast<unsigned char>(i & 0xff);
          bits[1] = static_cast<unsigned char>(i >> 8);
          const double every = from_buffer(dtype, bits)[0];
          const double fixed = fused_moderate(dtype, i, sweep + 3);
          const int64_t r = i / d, c = i % d;
          x[r * 2 * d + gated + c] = sweep == 0 ? every : fixed;
          x[r * 2 * d + other + c] = sweep == 0 ? fixed : every;
          dy[i] = test_gradient(i);
        }
        HostBuffer xb(dtype, rows * 2 * d), yb(dtype, rows * 2 * d), dyb(dtype, rows * d);
        xb.write(0, x);
        dyb.write(0, dy);
        emulate_fused(detail::glu_forward_request(glu, dtype, xb.at(0), yb.at(0), rows, d), 64);
        EXPECT_EQ(judge_glu_forward(glu, dtype, rows, d, x, yb.read(0, rows * d)), 0);
        emulate_fused(detail::glu_backward_request(glu, dtype, xb.at(0), dyb.at(0), yb.at(0), rows, d), 64);
        EXPECT_EQ(judge_glu_backward(glu, dtype, rows, d, x, dy, yb.read(0, rows * 2 * d)), 0);
      }
}

// Expert rows (masked [experts, capacity] and grouped by offsets): counts
// drawn per case, 0 and capacity included, an expert holding every token,
// and counts and offsets out of range (clamped, the error flag set). The
// valid rows are judged against the reference as a call of their own; every
// other row of y, dx and dweight must keep its guard bytes.
struct ExpertCase {
  const char* name;
  std::vector<int32_t> counts;   // masked (non-empty), or
  std::vector<int32_t> offsets;  // grouped
  bool bad;                      // the error flag must be set
};

std::vector<ExpertCase> expert_cases(int64_t experts, int64_t capacity) {
  const auto cap = static_cast<int32_t>(capacity);
  std::vector<ExpertCase> cases;
  ExpertCase drawn{"drawn counts", {}, {}, false};
  for (int64_t e = 0; e < experts; ++e)
    drawn.counts.push_back(static_cast<int32_t>((e * 7 + 3) % (capacity + 1)));
  drawn.counts[0] = 0;
  drawn.counts[experts - 1] = cap;
  cases.push_back(drawn);
  ExpertCase skewed{"every token on one expert", std::vector<int32_t>(experts, 0), {}, false};
  skewed.counts[experts / 2] = cap;
  cases.push_back(skewed);
  ExpertCase bad{"counts out of range", drawn.counts, {}, true};
  bad.counts[0] = -3;
  bad.counts[1] = cap + 5;
  cases.push_back(bad);
  const auto rows = static_cast<int32_t>(experts * capacity);
  std::vector<int32_t> offsets = {1};
  for (int64_t e = 1; e < experts; ++e) offsets.push_back(std::min(rows, offsets.back() + static_cast<int32_t>(e % 3)));
  offsets.push_back(rows - 1);
  cases.push_back({"grouped offsets", {}, offsets, false});
  std::vector<int32_t> every;
  for (int64_t e = 0; e <= experts; ++e) every.push_back(static_cast<int32_t>(e * capacity));
  cases.push_back({"grouped, every row", {}, every, false});
  std::vector<int32_t> unordered = offsets;
  unordered.back() = rows + 4;
  if (experts > 1) unordered[1] = unordered[2] + 1;
  cases.push_back({"grouped offsets out of range and decreasing", {}, unordered, true});
  return cases;
}

// The valid token rows of a case, as the kernels read them (clamped).
std::vector<int64_t> valid_rows(const ExpertCase& c, int64_t experts, int64_t capacity) {
  std::vector<int64_t> rows;
  if (!c.counts.empty()) {
    for (int64_t e = 0; e < experts; ++e)
      for (int64_t i = 0; i < std::clamp<int64_t>(c.counts[e], 0, capacity); ++i) rows.push_back(e * capacity + i);
  } else {
    const int64_t all = experts * capacity;
    const int64_t first = std::clamp<int64_t>(c.offsets.front(), 0, all);
    for (int64_t r = first; r < std::clamp<int64_t>(c.offsets.back(), first, all); ++r) rows.push_back(r);
  }
  return rows;
}

TEST(EmulatedGlu, ExpertRowsMaskedAndGrouped) {
  const std::vector<Glu> glus = {Glu::clamped_swiglu(), Glu::swiglu(),
                                 Glu{Activation::gelu(), GatedHalf::second, 2.5f, -0.5f}};
  const int64_t experts = 5, capacity = 6, rows = experts * capacity;
  constexpr unsigned char kGuard = 0x5a;
  for (DType dtype : kDTypes)
    for (const Glu& base : glus)
      for (const int64_t d : {int64_t{1}, int64_t{24}, int64_t{67}})
        for (const int64_t interleave : interleaves_of(d))
          for (const bool weighted : {false, true})
            for (const ExpertCase& ec : expert_cases(experts, capacity)) {
              Glu glu = base;
              glu.interleave = interleave;
              const DType wdtype = DType::f32;
              SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << describe(glu.act) << " limit "
                                              << glu.limit << " d " << d << " interleave " << interleave
                                              << (weighted ? " weighted " : " ") << ec.name);
              std::vector<double> x(rows * 2 * d), dy(rows * d), w(rows);
              for (int64_t i = 0; i < rows * 2 * d; ++i) x[i] = fused_moderate(dtype, i, 1);
              for (int64_t i = 0; i < rows * d; ++i) dy[i] = fused_moderate(dtype, i, 2);
              for (int64_t r = 0; r < rows; ++r) w[r] = reference::round_to(wdtype, fused_operand(r + 2));
              HostBuffer xb(dtype, rows * 2 * d), yb(dtype, rows * 2 * d), dyb(dtype, rows * d);
              HostBuffer wb(wdtype, rows), dwb(wdtype, rows);
              xb.write(0, x);
              dyb.write(0, dy);
              wb.write(0, w);
              std::vector<int32_t> table = ec.counts.empty() ? ec.offsets : ec.counts;
              int32_t error = 0;
              ExpertRows er;
              (ec.counts.empty() ? er.offsets : er.counts) = table.data();
              er.experts = experts;
              er.error = &error;
              const std::vector<int64_t> valid = valid_rows(ec, experts, capacity);
              const auto n = static_cast<int64_t>(valid.size());
              std::vector<char> is_valid(rows, 0);
              for (int64_t r : valid) is_valid[r] = 1;
              // The valid rows of a [rows, width] tensor, and whether every
              // other row kept its guard bytes.
              auto gather = [&](const std::vector<double>& t, int64_t width) {
                std::vector<double> g;
                for (int64_t r : valid) g.insert(g.end(), t.begin() + r * width, t.begin() + (r + 1) * width);
                return g;
              };
              auto guards_kept = [&](HostBuffer& b, DType t, int64_t width) {
                const auto* p = static_cast<const unsigned char*>(b.at(0));
                const int64_t row_bytes = width * static_cast<int64_t>(dtype_size(t));
                int64_t changed = 0;
                for (int64_t r = 0; r < rows; ++r)
                  if (!is_valid[r])
                    for (int64_t i = 0; i < row_bytes; ++i) changed += p[r * row_bytes + i] != kGuard;
                return changed == 0;
              };
              const std::vector<double> w_valid = weighted ? gather(w, 1) : std::vector<double>{};
              for (int64_t blocks : {2, 64}) {
                std::memset(yb.at(0), kGuard, static_cast<size_t>(rows * d) * dtype_size(dtype));
                detail::RowRequest fwd = detail::glu_forward_request(glu, dtype, xb.at(0), yb.at(0), rows, d);
                if (weighted) fwd = detail::weighted_glu_request(fwd, rows, wb.at(0), wdtype);
                fwd = detail::expert_rows_request(fwd, rows, er);
                fwd.max_blocks = blocks;
                emulate_fused(fwd, blocks);
                EXPECT_EQ(judge_glu_forward(glu, dtype, n, d, gather(x, 2 * d), gather(yb.read(0, rows * d), d),
                                            w_valid),
                          0);
                EXPECT_TRUE(guards_kept(yb, dtype, d)) << "forward, " << blocks << " blocks";

                std::memset(yb.at(0), kGuard, static_cast<size_t>(rows * 2 * d) * dtype_size(dtype));
                std::memset(dwb.at(0), kGuard, static_cast<size_t>(rows) * dtype_size(wdtype));
                std::vector<unsigned char> ws(
                    static_cast<size_t>(detail::glu_backward_workspace(glu, dtype, rows, d)) + 16);
                detail::RowRequest bwd = detail::glu_backward_request(glu, dtype, xb.at(0), dyb.at(0), yb.at(0), rows, d);
                if (weighted) bwd = detail::weighted_glu_request(bwd, rows, wb.at(0), wdtype, dwb.at(0), ws.data());
                bwd = detail::expert_rows_request(bwd, rows, er);
                bwd.max_blocks = blocks;
                emulate_fused(bwd, blocks);
                EXPECT_EQ(judge_glu_backward(glu, dtype, n, d, gather(x, 2 * d), gather(dy, d),
                                             gather(yb.read(0, rows * 2 * d), 2 * d), w_valid, wdtype,
                                             weighted ? gather(dwb.read(0, rows), 1) : std::vector<double>{}),
                          0);
                EXPECT_TRUE(guards_kept(yb, dtype, 2 * d)) << "backward dx, " << blocks << " blocks";
                if (weighted) {
                  EXPECT_TRUE(guards_kept(dwb, wdtype, 1)) << "dweight, " << blocks << " blocks";
                }
              }
              EXPECT_EQ(error, ec.bad ? 1 : 0);
              if (HasFailure()) return;
            }
}

// ---------------------------------------------------------------- PReLU and RReLU

TEST(EmulatedPrelu, BothLayoutsWithWeightGradient) {
  struct ChannelShape {
    int64_t outer, channels, inner;
  };
  const ChannelShape shapes[] = {{1, 1, 1}, {4, 3, 1}, {2, 5, 7},   {3, 16, 64},
                                 {1, 7, 1000}, {300, 9, 1}, {2, 3, 4099}};
  struct DTypes {
    DType data, weight;
  };
  const DTypes dtypes[] = {{DType::f32, DType::f32},  {DType::f16, DType::f16},
                           {DType::bf16, DType::bf16}, {DType::f16, DType::f32},
                           {DType::bf16, DType::f32}};
  for (const auto [dtype, weight_dtype] : dtypes)
    for (const ChannelShape& s : shapes)
      for (const FusedLayout& layout : kFusedLayouts)
        for (int64_t blocks : {3, 64}) {
          SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " (weight "
                                          << dtype_name(weight_dtype) << ") " << s.outer << "x"
                                          << s.channels << "x" << s.inner << " " << layout.name
                                          << " blocks " << blocks);
          const int64_t n = s.outer * s.channels * s.inner;
          const PreluInputs in = prelu_inputs(dtype, n, s.channels);
          const std::vector<double>& x = in.x;
          const std::vector<double>& dy = in.dy;
          std::vector<double> w = in.weight;
          for (int64_t c = 0; c < s.channels; ++c) w[c] = bias_value(weight_dtype, c + 2) / 4;
          HostBuffer xb(dtype, n), yb(dtype, n), dyb(dtype, n), wb(weight_dtype, s.channels),
              dwb(weight_dtype, s.channels);
          xb.write(layout.in_offset, x);
          dyb.write(layout.in_offset, dy);
          wb.write(layout.in_offset, w);
          void* y = layout.in_place ? xb.at(layout.in_offset) : yb.at(layout.out_offset);
          emulate_fused(detail::prelu_forward_request(dtype, xb.at(layout.in_offset),
                                                     wb.at(layout.in_offset), weight_dtype, y, s.outer,
                                                     s.channels, s.inner),
                        blocks);
          const std::vector<double> got_y =
              layout.in_place ? xb.read(layout.in_offset, n) : yb.read(layout.out_offset, n);
          xb.write(layout.in_offset, x);
          std::vector<unsigned char> workspace(static_cast<size_t>(
              detail::prelu_backward_workspace(dtype, s.outer, s.channels, s.inner)));
          emulate_fused(detail::prelu_backward_request(dtype, xb.at(layout.in_offset),
                                                      wb.at(layout.in_offset), weight_dtype,
                                                      dyb.at(layout.in_offset), y, dwb.at(0),
                                                      s.outer, s.channels, s.inner,
                                                      workspace.data()),
                        blocks);
          const std::vector<double> got_dx =
              layout.in_place ? xb.read(layout.in_offset, n) : yb.read(layout.out_offset, n);
          const std::vector<double> got_dw = dwb.read(0, s.channels);
          EXPECT_EQ(judge_prelu(dtype, weight_dtype, s.outer, s.channels, s.inner, x, w, dy, got_y, got_dx, got_dw), 0);
          if (HasFailure()) return;
        }
}

TEST(EmulatedRrelu, TrainingAndEvalExactWithRegeneratedSlopes) {
  for (DType dtype : kDTypes)
    for (bool training : {true, false})
      for (const FusedLayout& layout : kFusedLayouts)
        for (int64_t n : {1, 7, 8, 1001}) {
          const Rrelu rrelu{1.0f / 8.0f, 1.0f / 3.0f, training, 99, 4};
          std::vector<double> x(n), dy(n);
          for (int64_t i = 0; i < n; ++i) {
            x[i] = fused_input(dtype, i, 9);
            dy[i] = test_gradient(i);
          }
          HostBuffer xb(dtype, n), yb(dtype, n), dyb(dtype, n);
          xb.write(layout.in_offset, x);
          dyb.write(layout.in_offset, dy);
          void* y = layout.in_place ? xb.at(layout.in_offset) : yb.at(layout.out_offset);
          emulate_fused(detail::rrelu_request(rrelu, dtype, xb.at(layout.in_offset), nullptr, y, n, false), 5);
          const std::vector<double> got_y =
              layout.in_place ? xb.read(layout.in_offset, n) : yb.read(layout.out_offset, n);
          xb.write(layout.in_offset, x);
          emulate_fused(detail::rrelu_request(rrelu, dtype, xb.at(layout.in_offset), dyb.at(layout.in_offset), y, n, true), 5);
          const std::vector<double> got_dx =
              layout.in_place ? xb.read(layout.in_offset, n) : yb.read(layout.out_offset, n);
          EXPECT_EQ(judge_rrelu(rrelu, dtype, x, dy, got_y, got_dx), 0)
              << dtype_name(dtype) << (training ? " training " : " eval ") << layout.name
              << " n=" << n;
        }
}

// RReLU's graph-safe form: each training forward takes the state into `used`
// and advances it, drawing the slopes of the by-value call with that pair;
// backward regenerates them from `used`.
TEST(EmulatedRrelu, MemoryStateAdvancesPerForwardAndBackwardRegenerates) {
  const DType dtype = DType::f16;
  const int64_t n = 1001;
  std::vector<double> x(n), dy(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = -1.0 - static_cast<double>(i % 97) / 8;  // negative: every slope is used
    dy[i] = test_gradient(i);
  }
  HostBuffer xb(dtype, n), yb(dtype, n), dyb(dtype, n);
  xb.write(0, x);
  dyb.write(0, dy);
  uint64_t state[2] = {99, 4}, used[2] = {};
  Rrelu graph_safe{1.0f / 8.0f, 1.0f / 3.0f, true};
  graph_safe.device_state = state;
  graph_safe.device_used = used;
  auto run = [&](const Rrelu& r, bool backward) {
    emulate_fused(detail::rrelu_request(r, dtype, xb.at(0), backward ? dyb.at(0) : nullptr, yb.at(0), n,
                                        backward),
                  5);
    return yb.read(0, n);
  };
  const std::vector<double> y1 = run(graph_safe, false), y2 = run(graph_safe, false);
  EXPECT_EQ(state[1], 6u);
  EXPECT_EQ(used[1], 5u);
  EXPECT_EQ(y1, run(Rrelu{1.0f / 8.0f, 1.0f / 3.0f, true, 99, 4}, false));
  EXPECT_EQ(y2, run(Rrelu{1.0f / 8.0f, 1.0f / 3.0f, true, 99, 5}, false));
  EXPECT_NE(y1, y2);
  EXPECT_EQ(run(graph_safe, true), run(Rrelu{1.0f / 8.0f, 1.0f / 3.0f, true, 99, 5}, true));
  EXPECT_EQ(state[1], 6u) << "backward leaves the state alone";
  EXPECT_EQ(reference::rrelu_forward(graph_safe, dtype, xb.at(0), yb.at(0), n).code(),
            StatusCode::unsupported);
}

// ---------------------------------------------------------------- the reference's buffer forms

// The buffer forms of the reference round the exact values once: they agree
// bit for bit with round_to of the scalar pieces (checked on one case per form).
TEST(ReferenceBuffers, RoundTheExactValuesOnce) {
  const DType dtype = DType::bf16;
  const int64_t rows = 6, cols = 19, n = rows * cols;
  const Activation act = Activation::gelu_tanh();
  std::vector<double> x(n), dy(n), b(cols);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = fused_moderate(dtype, i, 1);
    dy[i] = fused_moderate(dtype, i, 2);
  }
  for (int64_t j = 0; j < cols; ++j) b[j] = fused_operand(j);
  const Dropout dropout{0.4f, 5, 6};
  const auto xs = to_buffer(dtype, x), dys = to_buffer(dtype, dy), bs = to_buffer(dtype, b);
  std::vector<unsigned char> y(xs.size()), dx(xs.size()), db(bs.size());
  std::vector<uint8_t> mask(static_cast<size_t>(n));
  ASSERT_TRUE(reference::bias_activation_forward(act, dtype, xs.data(), bs.data(), y.data(), rows,
                                                 cols, dropout, mask.data())
                  .ok());
  ASSERT_TRUE(reference::bias_activation_backward(act, dtype, xs.data(), bs.data(), dys.data(),
                                                  dx.data(), db.data(), rows, cols, dropout)
                  .ok());
  const std::vector<double> yv = from_buffer(dtype, y), dxv = from_buffer(dtype, dx),
                            dbv = from_buffer(dtype, db);
  const double scale = reference::dropout_scale(dropout.p);
  std::vector<double> sums(cols, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double z = reference::bias_preactivation(x[i], b[i % cols]);
    const bool kept = reference::dropout_keeps(dropout, static_cast<uint64_t>(i));
    EXPECT_EQ(mask[i], kept ? 1 : 0);
    EXPECT_EQ(yv[i], reference::round_to(dtype, kept ? reference::forward(act, z) * scale : 0.0));
    const double dz = kept ? reference::backward(act, z, dy[i] * scale) : 0.0;
    EXPECT_EQ(dxv[i], reference::round_to(dtype, dz));
    sums[i % cols] += dz;
  }
  for (int64_t j = 0; j < cols; ++j) EXPECT_EQ(dbv[j], reference::round_to(dtype, sums[j]));
}


// ---------------------------------------------------------------- plain activations

// The flat path (a buffer of n elements is one row of whole 16-byte chunks
// plus a head and a tail): every length around the vector widths, aligned,
// misaligned and in place, through the engine on the host, must give the
// functors' own results bit for bit.
TEST(EmulatedActivation, FlatBuffersMatchTheFunctorsBitForBit) {
  const int64_t lengths[] = {1, 3, 7, 8, 9, 31, 64, 65, 1000, 4099};
  for (DType dtype : kDTypes)
    for (const Activation& act : engine_activations())
      for (Direction direction : {Direction::forward, Direction::backward,
                                  Direction::backward_from_output}) {
        if (direction == Direction::backward_from_output && !has_backward_from_output(act))
          continue;
        for (int64_t n : lengths)
          for (const FusedLayout& l : kFusedLayouts) {
            SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << describe(act) << " "
                                            << direction_name(direction) << " n=" << n << " "
                                            << l.name);
            std::vector<double> in(n), dy(n);
            for (int64_t i = 0; i < n; ++i) {
              in[i] = direction_input(act, dtype, direction, fused_input(dtype, i, 7));
              dy[i] = test_gradient(i);
            }
            const bool backward = direction != Direction::forward;
            HostBuffer inb(dtype, n), dyb(dtype, n), outb(dtype, n);
            inb.write(l.in_offset, in);
            dyb.write(l.out_offset, dy);
            void* out = l.in_place ? inb.at(l.in_offset) : outb.at(l.out_offset);
            emulate_fused(detail::activation_request(direction, act, dtype, inb.at(l.in_offset),
                                                     backward ? dyb.at(l.out_offset) : nullptr,
                                                     out, n),
                          64);
            const std::vector<double> got =
                l.in_place ? inb.read(l.in_offset, n) : outb.read(l.out_offset, n);
            const std::vector<double> want = evaluate_functors_on_host(act, dtype, direction, in, dy);
            int64_t differ = 0;
            for (int64_t i = 0; i < n; ++i)
              if (ulp_distance(dtype, got[i], want[i]) != 0 && ++differ <= 3)
                ADD_FAILURE() << "element " << i << ": got " << got[i] << ", functor " << want[i];
            if (differ != 0) return;
          }
      }
}

// A functor the emulator does not instantiate is refused, never skipped.
TEST(EmulatedActivation, OtherFunctorsAreRefused) {
  std::vector<float> x(8, 1.0f), y(8);
  EXPECT_THROW(emulate_fused(detail::activation_request(Direction::forward, Activation::mish(),
                                                        DType::f32, x.data(), nullptr, y.data(), 8),
                             64),
               std::invalid_argument);
}

}  // namespace
}  // namespace cuact::test
