// The softmax host API without a GPU: argument checks return a status that
// names the problem (never a crash), the device entry points and the CPU
// reference reject the same calls, descriptors carry their defaults, and with
// no device a valid call says so cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuact/cuact.h"
#include "gpu_guard.h"

namespace cuact {
namespace {

alignas(16) float g_in[256];
alignas(16) float g_grad[256];
alignas(16) float g_out[256];
alignas(16) float g_mask[256];

struct BadCall {
  const char* what;
  Direction direction;
  Softmax op;
  DType dtype;
  const void* in;
  const void* grad;
  void* out;
  int64_t rows, cols;
  StatusCode expected;
};

std::vector<BadCall> bad_calls() {
  const auto fwd = Direction::forward, bwd = Direction::backward;
  const Softmax sm = Softmax::softmax();
  const char* c = reinterpret_cast<const char*>(g_in);
  const int64_t huge = std::numeric_limits<int64_t>::max() / 4;
  Softmax unknown_kind = sm, unknown_algorithm = sm;
  unknown_kind.kind = static_cast<SoftmaxKind>(9);
  unknown_algorithm.algorithm = static_cast<SoftmaxAlgorithm>(9);
  Softmax causal_without_rows = sm;
  causal_without_rows.causal = true;
  return {
      {"null x", fwd, sm, DType::f32, nullptr, nullptr, g_out, 2, 8, StatusCode::null_pointer},
      {"null y", fwd, sm, DType::f32, g_in, nullptr, nullptr, 2, 8, StatusCode::null_pointer},
      {"null y (backward)", bwd, sm, DType::f32, nullptr, g_grad, g_out, 2, 8,
       StatusCode::null_pointer},
      {"null dy", bwd, sm, DType::f32, g_in, nullptr, g_out, 2, 8, StatusCode::null_pointer},
      {"null dx", bwd, sm, DType::f16, g_in, g_grad, nullptr, 2, 8, StatusCode::null_pointer},
      {"negative rows", fwd, sm, DType::f32, g_in, nullptr, g_out, -1, 8, StatusCode::invalid_size},
      {"negative cols", fwd, sm, DType::f32, g_in, nullptr, g_out, 2, -8, StatusCode::invalid_size},
      {"cols 0 with rows", fwd, sm, DType::f32, g_in, nullptr, g_out, 2, 0,
       StatusCode::invalid_size},
      {"rows*cols overflow", fwd, sm, DType::f32, g_in, nullptr, g_out, huge, 16,
       StatusCode::invalid_size},
      {"rows*cols*elem overflow", fwd, sm, DType::bf16, g_in, nullptr, g_out, int64_t{1} << 31,
       int64_t{1} << 31, StatusCode::invalid_size},
      {"mask_rows*cols overflow", fwd, sm.with_mask(g_mask, huge), DType::f32, g_in, nullptr, g_out,
       2, 16, StatusCode::invalid_size},
      {"misaligned x", fwd, sm, DType::f32, c + 2, nullptr, g_out, 2, 8,
       StatusCode::misaligned_pointer},
      {"misaligned dy", bwd, sm, DType::bf16, g_in, c + 1, g_out, 2, 8,
       StatusCode::misaligned_pointer},
      {"misaligned mask", fwd, sm.with_mask(c + 2, DType::f32), DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::misaligned_pointer},
      {"partial overlap", fwd, sm, DType::f32, g_in, nullptr, g_in + 1, 2, 8,
       StatusCode::overlapping_buffers},
      {"dx overlaps dy", bwd, sm, DType::f32, g_in, g_grad, g_grad + 3, 2, 8,
       StatusCode::overlapping_buffers},
      {"y is the mask", fwd, sm.with_mask(g_out), DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::overlapping_buffers},
      {"y overlaps the mask", fwd, sm.with_mask(g_out + 12, 1), DType::f32, g_in, nullptr, g_out, 2,
       8, StatusCode::overlapping_buffers},
      // Backward reads the mask too (the columns the forward hid): the same checks.
      {"dx is the mask", bwd, sm.with_mask(g_out), DType::f32, g_in, g_grad, g_out, 2, 8,
       StatusCode::overlapping_buffers},
      {"dx overlaps the mask", bwd, sm.with_mask(g_out + 12, 1), DType::f32, g_in, g_grad, g_out, 2,
       8, StatusCode::overlapping_buffers},
      {"misaligned mask (backward)", bwd, sm.with_mask(c + 2, DType::f32), DType::f32, g_in, g_grad,
       g_out, 2, 8, StatusCode::misaligned_pointer},
      {"the mask's dtype is not the data's (backward)", bwd, sm.with_mask(g_mask, DType::bf16),
       DType::f32, g_in, g_grad, g_out, 2, 8, StatusCode::invalid_parameter},
      {"mask_rows*cols overflow (backward)", bwd, sm.with_mask(g_mask, huge), DType::f32, g_in,
       g_grad, g_out, 2, 16, StatusCode::invalid_size},
      {"NaN scale", fwd, Softmax::softmax(NAN), DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"infinite scale", fwd, Softmax::log_softmax(INFINITY), DType::f32, g_in, nullptr, g_out, 2,
       8, StatusCode::invalid_parameter},
      {"the mask's dtype is not the data's", fwd, sm.with_mask(g_mask, DType::bf16), DType::f32,
       g_in, nullptr, g_out, 2, 8, StatusCode::invalid_parameter},
      {"mask_rows 0", fwd, sm.with_mask(g_mask, 0), DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"mask_row_repeat 0", fwd, sm.with_mask(g_mask, 1, 0), DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"causal without rows", fwd, causal_without_rows, DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"causal offset too large", fwd, sm.with_causal(2, int64_t{1} << 62), DType::f32, g_in,
       nullptr, g_out, 2, 8, StatusCode::invalid_parameter},
      {"unknown kind", fwd, unknown_kind, DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"unknown algorithm", fwd, unknown_algorithm, DType::f32, g_in, nullptr, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"unknown dtype", fwd, sm, static_cast<DType>(7), g_in, nullptr, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"unknown direction", static_cast<Direction>(9), sm, DType::f32, g_in, g_grad, g_out, 2, 8,
       StatusCode::invalid_parameter},
      {"backward from output", Direction::backward_from_output, sm, DType::f32, g_in, g_grad, g_out,
       2, 8, StatusCode::unsupported},
  };
}

TEST(SoftmaxArgumentChecks, DeviceApiAndReferenceRejectTheSameCalls) {
  for (const BadCall& c : bad_calls()) {
    const Status device = softmax(c.direction, c.op, c.dtype, c.in, c.grad, c.out, c.rows, c.cols);
    const Status host =
        reference::softmax(c.direction, c.op, c.dtype, c.in, c.grad, c.out, c.rows, c.cols);
    EXPECT_EQ(device.code(), c.expected) << c.what << ": " << device.message();
    EXPECT_EQ(host.code(), c.expected) << c.what << ": " << host.message();
    EXPECT_NE(std::string(device.detail()), "success") << c.what;
  }
}

// Strides and [outer, dim, inner]: the same statuses from both entry points.
TEST(SoftmaxArgumentChecks, ShapesAndStridesDeviceApiAndReferenceAgree) {
  const auto fwd = Direction::forward, bwd = Direction::backward;
  const Softmax sm = Softmax::softmax();
  const SoftmaxShape rows = SoftmaxShape::rows(4, 16);  // 64 elements of the 256
  struct ShapeCall {
    const char* what;
    Direction direction;
    Softmax op;
    const void* in;
    const void* grad;
    void* out;
    SoftmaxShape shape;
    StatusCode expected;
  };
  const std::vector<ShapeCall> calls = {
      {"negative in_stride", fwd, sm, g_in, nullptr, g_out, rows.with_strides(-1, 0),
       StatusCode::invalid_size},
      {"in_stride below cols", fwd, sm, g_in, nullptr, g_out, rows.with_strides(15, 0),
       StatusCode::invalid_size},
      {"out_stride below cols", fwd, sm, g_in, nullptr, g_out, rows.with_strides(0, 8),
       StatusCode::invalid_size},
      {"grad_stride below cols", bwd, sm, g_in, g_grad, g_out, rows.with_strides(0, 0, 3),
       StatusCode::invalid_size},
      {"stride below dim*inner", fwd, sm, g_in, nullptr, g_out,
       SoftmaxShape::middle(2, 4, 8).with_strides(31, 0), StatusCode::invalid_size},
      {"inner 0", fwd, sm, g_in, nullptr, g_out, SoftmaxShape::middle(2, 4, 0),
       StatusCode::invalid_size},
      {"mask stride below cols", fwd, sm.with_mask(g_mask, 1, 1, 9), g_in, nullptr, g_out, rows,
       StatusCode::invalid_size},
      {"negative mask stride", fwd, sm.with_mask(g_mask, 1, 1, -2), g_in, nullptr, g_out, rows,
       StatusCode::invalid_parameter},
      {"mask with inner > 1", fwd, sm.with_mask(g_mask), g_in, nullptr, g_out,
       SoftmaxShape::middle(2, 4, 8), StatusCode::unsupported},
      {"causal with inner > 1", fwd, sm.with_causal(4), g_in, nullptr, g_out,
       SoftmaxShape::middle(2, 4, 8), StatusCode::unsupported},
      {"mask with inner > 1 (backward)", bwd, sm.with_mask(g_mask), g_in, g_grad, g_out,
       SoftmaxShape::middle(2, 4, 8), StatusCode::unsupported},
      {"causal with inner > 1 (backward)", bwd, sm.with_causal(4), g_in, g_grad, g_out,
       SoftmaxShape::middle(2, 4, 8), StatusCode::unsupported},
      {"mask stride below cols (backward)", bwd, sm.with_mask(g_mask, 1, 1, 9), g_in, g_grad,
       g_out, rows, StatusCode::invalid_size},
      {"in place with another stride", fwd, sm, g_in, nullptr, g_in, rows.with_strides(16, 32),
       StatusCode::overlapping_buffers},
      {"dx over dy with another stride", bwd, sm, g_in, g_grad, g_grad,
       rows.with_strides(0, 20, 16), StatusCode::overlapping_buffers},
      {"strided y runs into x", fwd, sm, g_in, nullptr, g_in + 16, rows.with_strides(32, 32),
       StatusCode::overlapping_buffers},
      {"the strided mask overlaps y", fwd, sm.with_mask(g_out + 40, 2, 1, 64), g_in, nullptr,
       g_out, rows, StatusCode::overlapping_buffers},
      {"stride overflow", fwd, sm, g_in, nullptr, g_out,
       rows.with_strides(std::numeric_limits<int64_t>::max() / 2, 0), StatusCode::invalid_size},
  };
  for (const ShapeCall& c : calls) {
    const Status device = softmax(c.direction, c.op, DType::f32, c.in, c.grad, c.out, c.shape);
    const Status host =
        reference::softmax(c.direction, c.op, DType::f32, c.in, c.grad, c.out, c.shape);
    EXPECT_EQ(device.code(), c.expected) << c.what << ": " << device.message();
    EXPECT_EQ(host.code(), c.expected) << c.what << ": " << host.message();
  }
  // Valid: padded rows, a padded mask, exact aliasing at one stride, a
  // single row whose strides differ, the middle dimension, outer == 0.
  const std::vector<ShapeCall> fine = {
      {"padded rows", fwd, sm, g_in, nullptr, g_out, rows.with_strides(20, 24), StatusCode::success},
      {"padded mask", fwd, sm.with_mask(g_mask, 4, 1, 20), g_in, nullptr, g_out, rows,
       StatusCode::success},
      {"padded mask (backward)", bwd, sm.with_mask(g_mask, 4, 1, 20).with_causal(4, 2), g_in,
       g_grad, g_out, rows, StatusCode::success},
      {"in place, one stride", fwd, sm, g_in, nullptr, g_in, rows.with_strides(32, 32),
       StatusCode::success},
      {"one row, two strides", bwd, sm, g_in, g_grad, g_grad,
       SoftmaxShape::rows(1, 16).with_strides(0, 40, 20), StatusCode::success},
      {"middle", bwd, Softmax::log_softmax(), g_in, g_grad, g_out, SoftmaxShape::middle(3, 5, 7),
       StatusCode::success},
      {"outer 0, null", fwd, sm, nullptr, nullptr, nullptr, SoftmaxShape::middle(0, 5, 7),
       StatusCode::success},
  };
  for (const ShapeCall& c : fine)
    EXPECT_TRUE(reference::softmax(c.direction, c.op, DType::f32, c.in, c.grad, c.out, c.shape).ok())
        << c.what;
}

TEST(SoftmaxArgumentChecks, ZeroRowsIsANoOpEvenWithNullPointers) {
  for (Direction d : {Direction::forward, Direction::backward})
    for (DType t : {DType::f32, DType::f16, DType::bf16})
      for (int64_t cols : {0, 5}) {
        EXPECT_TRUE(softmax(d, Softmax::softmax(), t, nullptr, nullptr, nullptr, 0, cols).ok());
        EXPECT_TRUE(
            reference::softmax(d, Softmax::softmax(), t, nullptr, nullptr, nullptr, 0, cols).ok());
      }
}

TEST(SoftmaxArgumentChecks, ExactAliasingIsAllowedAndBackwardTakesTheMask) {
  EXPECT_TRUE(reference::softmax(Direction::forward, Softmax::softmax(), DType::f32, g_in, nullptr,
                                 g_in, 4, 64)
                  .ok());
  EXPECT_TRUE(reference::softmax(Direction::backward, Softmax::log_softmax(), DType::f32, g_in,
                                 g_grad, g_grad, 4, 64)
                  .ok());
  EXPECT_TRUE(reference::softmax(Direction::backward, Softmax::softmax(), DType::f32, g_in, g_grad,
                                 g_in, 4, 64)
                  .ok());
  // Backward takes the forward's op, mask included (it decides the hidden
  // columns): the mask may share bytes with y or dy (all read), in place too,
  // but not with dx.
  for (const float* m : {g_mask, g_in, g_grad}) {
    const Softmax masked = Softmax::log_softmax().with_mask(m).with_causal(4, 30);
    EXPECT_TRUE(
        reference::softmax(Direction::backward, masked, DType::f32, g_in, g_grad, g_out, 4, 64).ok());
  }
  EXPECT_TRUE(reference::softmax(Direction::backward, Softmax::softmax().with_mask(g_mask),
                                 DType::f32, g_in, g_grad, g_grad, 4, 64)
                  .ok());
  EXPECT_EQ(reference::softmax(Direction::backward, Softmax::softmax().with_mask(g_out), DType::f32,
                               g_in, g_grad, g_out, 4, 64)
                .code(),
            StatusCode::overlapping_buffers);
}

TEST(SoftmaxArgumentChecks, TypedOverloadsCheckToo) {
  const Softmax op = Softmax::softmax();
  EXPECT_EQ(softmax_forward(op, static_cast<const float*>(nullptr), g_out, 2, 4).code(),
            StatusCode::null_pointer);
  EXPECT_EQ(softmax_backward(op, reinterpret_cast<const __half*>(g_in), nullptr,
                             reinterpret_cast<__half*>(g_out), 2, 4)
                .code(),
            StatusCode::null_pointer);
  EXPECT_EQ(softmax_forward(op, reinterpret_cast<const __nv_bfloat16*>(g_in),
                            reinterpret_cast<__nv_bfloat16*>(g_out), 2, 0)
                .code(),
            StatusCode::invalid_size);
  SoftmaxAlgorithm chosen;
  EXPECT_EQ(softmax_selected_algorithm(Direction::forward, op, DType::f32, 0, &chosen).code(),
            StatusCode::invalid_size);
  EXPECT_EQ(softmax_selected_algorithm(Direction::forward, op, DType::f32, 8, nullptr).code(),
            StatusCode::null_pointer);
}

TEST(SoftmaxNoDevice, AValidCallReturnsNoDeviceWithoutCrashing) {
  if (test::gpu_unavailable_reason().empty())
    GTEST_SKIP() << "a GPU is present here, so the no-device path cannot be exercised";
  for (DType t : {DType::f32, DType::f16, DType::bf16})
    for (Direction d : {Direction::forward, Direction::backward}) {
      const Status s = softmax(d, Softmax::log_softmax(0.5f), t, g_in, g_grad, g_out, 4, 8);
      EXPECT_EQ(s.code(), StatusCode::no_device) << s.message();
      EXPECT_NE(s.cuda_error(), cudaSuccess);
    }
  SoftmaxAlgorithm chosen;
  EXPECT_EQ(
      softmax_selected_algorithm(Direction::forward, Softmax::softmax(), DType::f16, 100, &chosen)
          .code(),
      StatusCode::no_device);
}

TEST(SoftmaxDescriptors, ConstructorsAndModifiers) {
  const Softmax d;
  EXPECT_EQ(d.kind, SoftmaxKind::softmax);
  EXPECT_EQ(d.scale, 1.0f);
  EXPECT_EQ(d.mask, nullptr);
  EXPECT_FALSE(d.causal);
  EXPECT_EQ(d.algorithm, SoftmaxAlgorithm::automatic);
  EXPECT_TRUE(validate(d).ok());
  const Softmax a = Softmax::log_softmax(0.125f).with_mask(g_mask, 7, 3).with_causal(7, 2);
  EXPECT_EQ(a.kind, SoftmaxKind::log_softmax);
  EXPECT_EQ(a.scale, 0.125f);
  EXPECT_EQ(a.mask, g_mask);
  EXPECT_EQ(a.mask_rows, 7);
  EXPECT_EQ(a.mask_row_repeat, 3);
  EXPECT_TRUE(a.causal);
  EXPECT_EQ(a.causal_rows, 7);
  EXPECT_EQ(a.causal_offset, 2);
  EXPECT_TRUE(validate(a).ok());
  EXPECT_EQ(Softmax::softmin(2.0f).kind, SoftmaxKind::softmin);
  EXPECT_EQ(Softmax::softmax().with_algorithm(SoftmaxAlgorithm::streaming).algorithm,
            SoftmaxAlgorithm::streaming);
  EXPECT_STREQ(softmax_kind_name(SoftmaxKind::log_softmax), "log_softmax");
  EXPECT_STREQ(softmax_algorithm_name(SoftmaxAlgorithm::block_per_row), "block_per_row");
  EXPECT_STREQ(softmax_kind_name(static_cast<SoftmaxKind>(9)), "unknown");
}

}  // namespace
}  // namespace cuact
