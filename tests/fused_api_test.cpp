// The fused entry points without a GPU: argument checks name the problem and
// the device API and the CPU reference reject the same calls; empty calls are
// no-ops; workspace size queries are pure functions of dtype and shape; a
// valid call with no device says so cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cuact/cuact.h"
#include "row_calls.h"
#include "gpu_guard.h"

namespace cuact {
namespace {

alignas(256) float g_a[512];
alignas(256) float g_b[512];
alignas(256) float g_c[512];
alignas(256) float g_d[512];
alignas(256) uint8_t g_mask[2048];
alignas(256) int32_t g_counts[64];
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const int64_t kHuge = std::numeric_limits<int64_t>::max() / 2;

struct BadCall {
  std::string what;
  StatusCode expected;
  std::function<Status()> device;
  std::function<Status()> host;  // null: the reference has no such argument (workspace)
};

char* bytes(float* p) { return reinterpret_cast<char*>(p); }

std::vector<BadCall> bad_calls() {
  const Activation gelu = Activation::gelu();
  const auto f32 = DType::f32;
  const Dropout none{};
  std::vector<BadCall> calls;
  // bias + activation forward: (x, bias, y, rows, cols, dropout, mask)
  auto bias_fwd = [&](std::string what, StatusCode code, Activation act, DType dtype, const void* x,
                      const void* bias, void* y, int64_t rows, int64_t cols, Dropout d,
                      uint8_t* mask) {
    calls.push_back({"bias forward: " + what, code,
                     [=] { return bias_activation_forward(act, dtype, x, bias, y, rows, cols, d, mask); },
                     [=] {
                       return reference::bias_activation_forward(act, dtype, x, bias, y, rows, cols,
                                                                 d, mask);
                     }});
  };
  bias_fwd("null x", StatusCode::null_pointer, gelu, f32, nullptr, nullptr, g_b, 2, 8, none, nullptr);
  bias_fwd("null y", StatusCode::null_pointer, gelu, f32, g_a, nullptr, nullptr, 2, 8, none, nullptr);
  bias_fwd("negative rows", StatusCode::invalid_size, gelu, f32, g_a, nullptr, g_b, -1, 8, none, nullptr);
  bias_fwd("negative cols", StatusCode::invalid_size, gelu, f32, g_a, nullptr, g_b, 2, -8, none, nullptr);
  bias_fwd("huge", StatusCode::invalid_size, gelu, f32, g_a, nullptr, g_b, kHuge, 4, none, nullptr);
  bias_fwd("p NaN", StatusCode::invalid_parameter, gelu, f32, g_a, nullptr, g_b, 2, 8, Dropout{kNaN}, nullptr);
  bias_fwd("p > 1", StatusCode::invalid_parameter, gelu, f32, g_a, nullptr, g_b, 2, 8, Dropout{1.5f}, nullptr);
  bias_fwd("p < 0", StatusCode::invalid_parameter, gelu, f32, g_a, nullptr, g_b, 2, 8, Dropout{-0.1f}, nullptr);
  bias_fwd("bad activation", StatusCode::invalid_parameter, Activation::celu(0.0f), f32, g_a, nullptr, g_b, 2, 8, none, nullptr);
  bias_fwd("unknown dtype", StatusCode::invalid_parameter, gelu, static_cast<DType>(9), g_a, nullptr, g_b, 2, 8, none, nullptr);
  bias_fwd("misaligned x", StatusCode::misaligned_pointer, gelu, f32, bytes(g_a) + 2, nullptr, g_b, 2, 8, none, nullptr);
  bias_fwd("misaligned bias", StatusCode::misaligned_pointer, gelu, f32, g_a, bytes(g_c) + 1, g_b, 2, 8, none, nullptr);
  bias_fwd("y partially overlaps x", StatusCode::overlapping_buffers, gelu, f32, g_a, nullptr, g_a + 1, 2, 8, none, nullptr);
  bias_fwd("bias overlaps y", StatusCode::overlapping_buffers, gelu, f32, g_a, g_b + 3, g_b, 2, 8, none, nullptr);
  bias_fwd("mask overlaps y", StatusCode::overlapping_buffers, gelu, f32, g_a, nullptr, g_b, 2, 8, none,
           reinterpret_cast<uint8_t*>(g_b));
  // bias + activation backward: (x, bias, dy, dx, dbias)
  auto bias_bwd = [&](std::string what, StatusCode code, const void* x, const void* bias,
                      const void* dy, void* dx, void* dbias, int64_t rows, int64_t cols, Dropout d) {
    calls.push_back({"bias backward: " + what, code,
                     [=] {
                       return bias_activation_backward(gelu, f32, x, bias, dy, dx, dbias, rows,
                                                       cols, d, {g_d, sizeof(g_d)});
                     },
                     [=] {
                       return reference::bias_activation_backward(gelu, f32, x, bias, dy, dx, dbias,
                                                                  rows, cols, d);
                     }});
  };
  bias_bwd("null dy", StatusCode::null_pointer, g_a, nullptr, nullptr, g_b, nullptr, 2, 8, none);
  bias_bwd("null dx", StatusCode::null_pointer, g_a, nullptr, g_c, nullptr, nullptr, 2, 8, none);
  bias_bwd("dx partially overlaps dy", StatusCode::overlapping_buffers, g_a, nullptr, g_c, g_c + 2, nullptr, 2, 8, none);
  bias_bwd("dbias overlaps dx", StatusCode::overlapping_buffers, g_a, nullptr, g_c, g_b, g_b + 4, 2, 8, none);
  bias_bwd("dbias partially overlaps bias", StatusCode::overlapping_buffers, g_a, g_d + 100, g_c, g_b, g_d + 101, 2, 8, none);
  bias_bwd("misaligned dbias", StatusCode::misaligned_pointer, g_a, nullptr, g_c, g_b, bytes(g_d) + 2, 2, 8, none);
  bias_bwd("misaligned dbias, empty batch", StatusCode::misaligned_pointer, nullptr, nullptr, nullptr, nullptr, bytes(g_d) + 2, 0, 8, none);
  bias_bwd("p > 1", StatusCode::invalid_parameter, g_a, nullptr, g_c, g_b, nullptr, 2, 8, Dropout{2.0f});
  // The workspace (device API only).
  calls.push_back({"bias backward: null workspace", StatusCode::null_pointer,
                   [] { return bias_activation_backward(Activation::gelu(), DType::f32, g_a, g_c, g_b, g_b, g_d, 2, 8, {}, {nullptr, 0}); },
                   nullptr});
  calls.push_back({"bias backward: small workspace", StatusCode::invalid_size,
                   [] { return bias_activation_backward(Activation::gelu(), DType::f32, g_a, g_c, g_b, g_b, g_d, 2, 8, {}, {g_mask, 4}); },
                   nullptr});
  calls.push_back({"bias backward: workspace overlaps x", StatusCode::overlapping_buffers,
                   [] { return bias_activation_backward(Activation::gelu(), DType::f32, g_a, g_c, g_b, g_b, g_d, 2, 8, {}, {g_a, sizeof(g_a)}); },
                   nullptr});
  // GLU
  auto glu_call = [&](std::string what, StatusCode code, Glu glu, const void* x, const void* dy,
                      void* out, int64_t rows, int64_t d, bool backward) {
    calls.push_back({std::string(backward ? "glu backward: " : "glu forward: ") + what, code,
                     [=] {
                       return backward ? glu_backward(glu, DType::f32, x, dy, out, rows, d)
                                       : glu_forward(glu, DType::f32, x, out, rows, d);
                     },
                     [=] {
                       return backward ? reference::glu_backward(glu, DType::f32, x, dy, out, rows, d)
                                       : reference::glu_forward(glu, DType::f32, x, out, rows, d);
                     }});
  };
  glu_call("null x", StatusCode::null_pointer, Glu::swiglu(), nullptr, nullptr, g_b, 2, 8, false);
  glu_call("negative d", StatusCode::invalid_size, Glu::swiglu(), g_a, nullptr, g_b, 2, -8, false);
  glu_call("negative rows", StatusCode::invalid_size, Glu::geglu(), g_a, g_c, g_b, -2, 8, true);
  glu_call("y overlaps x", StatusCode::overlapping_buffers, Glu::glu(), g_a, nullptr, g_a + 8, 2, 8, false);
  glu_call("y is x", StatusCode::overlapping_buffers, Glu::glu(), g_a, nullptr, g_a, 2, 8, false);
  glu_call("unknown half", StatusCode::invalid_parameter, Glu{Activation::relu(), static_cast<GatedHalf>(5)}, g_a, nullptr, g_b, 2, 8, false);
  glu_call("bad gate", StatusCode::invalid_parameter, Glu{Activation::softplus(-1.0f), GatedHalf::first}, g_a, nullptr, g_b, 2, 8, false);
  glu_call("null dy", StatusCode::null_pointer, Glu::reglu(), g_a, nullptr, g_b, 2, 8, true);
  glu_call("dx overlaps dy", StatusCode::overlapping_buffers, Glu::reglu(), g_a, g_b + 4, g_b, 2, 8, true);
  glu_call("dx partially overlaps x", StatusCode::overlapping_buffers, Glu::reglu(), g_a, g_c, g_a + 1, 2, 8, true);
  glu_call("limit 0", StatusCode::invalid_parameter, Glu::clamped_swiglu(1.702f, 0.0f), g_a, nullptr, g_b, 2, 8, false);
  glu_call("limit NaN", StatusCode::invalid_parameter, Glu::clamped_swiglu(1.702f, kNaN), g_a, g_c, g_b, 2, 8, true);
  glu_call("negative limit", StatusCode::invalid_parameter, Glu::clamped_swiglu(1.702f, -7.0f), g_a, nullptr, g_b, 2, 8, false);
  glu_call("infinite offset", StatusCode::invalid_parameter, Glu::clamped_swiglu(1.702f, 7.0f, INFINITY), g_a, g_c, g_b, 2, 8, true);
  glu_call("negative interleave", StatusCode::invalid_parameter, Glu::clamped_swiglu(1.702f, 7.0f, 1.0f, -1), g_a, nullptr, g_b, 2, 8, false);
  glu_call("interleave not dividing d", StatusCode::invalid_size, Glu::clamped_swiglu(1.702f, 7.0f, 1.0f, 3), g_a, g_c, g_b, 2, 8, true);
  // Weighted GLU: (weight, weight dtype, dweight)
  auto weighted = [&](std::string what, StatusCode code, DType dtype, const void* weight, DType wdtype,
                      void* out, void* dweight, Workspace ws, bool backward) {
    calls.push_back({std::string(backward ? "weighted glu backward: " : "weighted glu forward: ") + what, code,
                     [=] {
                       return backward ? glu_backward(Glu::swiglu(), dtype, g_a, weight, wdtype, g_c, out,
                                                      dweight, 2, 8, ws)
                                       : glu_forward(Glu::swiglu(), dtype, g_a, weight, wdtype, out, 2, 8);
                     },
                     [=] {
                       return backward ? reference::glu_backward(Glu::swiglu(), dtype, g_a, weight, wdtype,
                                                                 g_c, out, dweight, 2, 8)
                                       : reference::glu_forward(Glu::swiglu(), dtype, g_a, weight, wdtype,
                                                                out, 2, 8);
                     }});
  };
  const Workspace big{g_mask, sizeof(g_mask)};
  weighted("null weight", StatusCode::null_pointer, DType::f32, nullptr, DType::f32, g_b, nullptr, {}, false);
  weighted("null weight", StatusCode::null_pointer, DType::f32, nullptr, DType::f32, g_b, g_d, big, true);
  weighted("f16 weight with f32 data", StatusCode::unsupported, DType::f32, g_d, DType::f16, g_b, nullptr, {}, false);
  weighted("misaligned weight", StatusCode::misaligned_pointer, DType::f32, bytes(g_d) + 2, DType::f32, g_b, nullptr, {}, false);
  weighted("weight overlaps y", StatusCode::overlapping_buffers, DType::f32, g_b + 1, DType::f32, g_b, nullptr, {}, false);
  weighted("dweight overlaps dx", StatusCode::overlapping_buffers, DType::f32, g_d, DType::f32, g_b, g_b + 4, big, true);
  weighted("misaligned dweight", StatusCode::misaligned_pointer, DType::bf16, g_d, DType::f32, g_b, bytes(g_d) + 64 + 2, big, true);
  // Expert rows (no reference form: the reference runs valid rows as calls of their own)
  auto expert = [&](std::string what, StatusCode code, Glu glu, ExpertRows e, int64_t rows,
                    const void* weight, void* dweight, bool backward) {
    calls.push_back({std::string(backward ? "expert glu backward: " : "expert glu forward: ") + what, code,
                     [=] {
                       return backward ? glu_backward(glu, DType::f32, g_a, weight, DType::f32, g_c, g_b,
                                                      dweight, rows, 4, e, Workspace{g_mask, sizeof(g_mask)})
                                       : glu_forward(glu, DType::f32, g_a, weight, DType::f32, g_b, rows, 4, e);
                     },
                     nullptr});
  };
  const Glu swiglu = Glu::swiglu();
  for (bool backward : {false, true}) {
    expert("no experts", StatusCode::invalid_size, swiglu, {g_counts, nullptr, 0}, 4, nullptr, nullptr, backward);
    expert("neither counts nor offsets", StatusCode::null_pointer, swiglu, {nullptr, nullptr, 2}, 4, nullptr, nullptr, backward);
    expert("counts and offsets", StatusCode::invalid_parameter, swiglu, {g_counts, g_counts + 8, 2}, 4, nullptr, nullptr, backward);
    expert("rows not a multiple of experts", StatusCode::invalid_size, swiglu, {g_counts, nullptr, 3}, 4, nullptr, nullptr, backward);
    expert("1025 masked experts", StatusCode::unsupported, swiglu, {g_counts, nullptr, 1025}, 1025, nullptr, nullptr, backward);
    expert("misaligned counts", StatusCode::misaligned_pointer, swiglu,
           {reinterpret_cast<const int32_t*>(g_mask + 2), nullptr, 2}, 4, nullptr, nullptr, backward);
    expert("misaligned offsets", StatusCode::misaligned_pointer, swiglu,
           {nullptr, reinterpret_cast<const int32_t*>(g_mask + 2), 2}, 4, nullptr, nullptr, backward);
    expert("error flag overlaps the output", StatusCode::overlapping_buffers, swiglu,
           {g_counts, nullptr, 2, reinterpret_cast<int32_t*>(g_b)}, 4, nullptr, nullptr, backward);
    expert("a gate the MoE forms lack", StatusCode::unsupported, Glu{Activation::tanh(), GatedHalf::first},
           {g_counts, nullptr, 2}, 4, nullptr, nullptr, backward);
    expert("misaligned weight", StatusCode::misaligned_pointer, swiglu, {g_counts, nullptr, 2}, 4,
           bytes(g_d) + 2, nullptr, backward);
  }
  expert("dweight without weight", StatusCode::null_pointer, swiglu, {g_counts, nullptr, 2}, 4, nullptr, g_d, true);
  expert("counts overlap the workspace", StatusCode::overlapping_buffers, swiglu,
         {reinterpret_cast<const int32_t*>(g_mask), nullptr, 2}, 4, g_c + 256, g_d, true);
  // PReLU
  calls.push_back({"prelu forward: null weight", StatusCode::null_pointer,
                   [] { return prelu_forward(DType::f16, g_a, nullptr, g_b, 2, 3, 4); },
                   [] { return reference::prelu_forward(DType::f16, g_a, nullptr, g_b, 2, 3, 4); }});
  calls.push_back({"prelu forward: weight overlaps y", StatusCode::overlapping_buffers,
                   [] { return prelu_forward(DType::f32, g_a, g_b + 1, g_b, 2, 3, 4); },
                   [] { return reference::prelu_forward(DType::f32, g_a, g_b + 1, g_b, 2, 3, 4); }});
  calls.push_back({"prelu forward: negative channels", StatusCode::invalid_size,
                   [] { return prelu_forward(DType::f32, g_a, g_c, g_b, 2, -3, 4); },
                   [] { return reference::prelu_forward(DType::f32, g_a, g_c, g_b, 2, -3, 4); }});
  calls.push_back({"prelu backward: dweight overlaps dx", StatusCode::overlapping_buffers,
                   [] { return prelu_backward(DType::f32, g_a, g_c, g_d, g_b, g_b + 2, 2, 3, 4, {g_mask, sizeof(g_mask)}); },
                   [] { return reference::prelu_backward(DType::f32, g_a, g_c, g_d, g_b, g_b + 2, 2, 3, 4); }});
  calls.push_back({"prelu backward: null dy", StatusCode::null_pointer,
                   [] { return prelu_backward(DType::f32, g_a, g_c, nullptr, g_b, nullptr, 2, 3, 4); },
                   [] { return reference::prelu_backward(DType::f32, g_a, g_c, nullptr, g_b, nullptr, 2, 3, 4); }});
  // RReLU
  auto rrelu_call = [&](std::string what, StatusCode code, Rrelu r, const void* dy, bool backward) {
    calls.push_back({"rrelu: " + what, code,
                     [=] {
                       return backward ? rrelu_backward(r, DType::bf16, g_a, dy, g_b, 8)
                                       : rrelu_forward(r, DType::bf16, g_a, g_b, 8);
                     },
                     [=] {
                       return backward ? reference::rrelu_backward(r, DType::bf16, g_a, dy, g_b, 8)
                                       : reference::rrelu_forward(r, DType::bf16, g_a, g_b, 8);
                     }});
  };
  rrelu_call("lower > upper", StatusCode::invalid_parameter, Rrelu{0.5f, 0.25f}, nullptr, false);
  rrelu_call("NaN lower", StatusCode::invalid_parameter, Rrelu{kNaN, 0.25f}, nullptr, false);
  rrelu_call("infinite upper", StatusCode::invalid_parameter, Rrelu{0.1f, INFINITY}, nullptr, false);
  rrelu_call("null dy", StatusCode::null_pointer, Rrelu{}, nullptr, true);
  rrelu_call("dx partially overlaps dy", StatusCode::overlapping_buffers, Rrelu{}, bytes(g_b) + 2, true);
  return calls;
}

TEST(FusedArgumentChecks, DeviceApiAndReferenceRejectTheSameCalls) {
  for (const BadCall& c : bad_calls()) {
    const Status device = c.device();
    EXPECT_EQ(device.code(), c.expected) << c.what << ": " << device.message();
    EXPECT_NE(std::string(device.detail()), "success") << c.what;
    if (c.host) {
      const Status host = c.host();
      EXPECT_EQ(host.code(), c.expected) << c.what << " (reference): " << host.message();
      EXPECT_STREQ(host.detail(), device.detail()) << c.what;
    }
  }
}

TEST(FusedArgumentChecks, EmptyCallsAreNoOpsEvenWithNullPointers) {
  for (DType t : {DType::f32, DType::f16, DType::bf16}) {
    EXPECT_TRUE(bias_activation_forward(Activation::gelu(), t, nullptr, nullptr, nullptr, 0, 5).ok());
    EXPECT_TRUE(bias_activation_forward(Activation::gelu(), t, nullptr, nullptr, nullptr, 5, 0).ok());
    EXPECT_TRUE(bias_activation_backward(Activation::gelu(), t, nullptr, nullptr, nullptr, nullptr,
                                         nullptr, 0, 5).ok());
    EXPECT_TRUE(activation_dropout_forward(Activation::relu(), t, nullptr, nullptr, 0, Dropout{0.5f}).ok());
    EXPECT_TRUE(activation_dropout_backward(Activation::relu(), t, nullptr, nullptr, nullptr, 0, Dropout{0.5f}).ok());
    EXPECT_TRUE(glu_forward(Glu::swiglu(), t, nullptr, nullptr, 0, 16).ok());
    EXPECT_TRUE(glu_backward(Glu::swiglu(), t, nullptr, nullptr, nullptr, 16, 0).ok());
    EXPECT_TRUE(prelu_forward(t, nullptr, nullptr, nullptr, 0, 3, 4).ok());
    EXPECT_TRUE(prelu_backward(t, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 0, 4).ok());
    EXPECT_TRUE(rrelu_forward(Rrelu{}, t, nullptr, nullptr, 0).ok());
    EXPECT_TRUE(rrelu_backward(Rrelu{}, t, nullptr, nullptr, nullptr, 0).ok());
    EXPECT_TRUE(reference::glu_forward(Glu::geglu(), t, nullptr, nullptr, 0, 16).ok());
    EXPECT_TRUE(reference::prelu_backward(t, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 0, 4).ok());
  }
  EXPECT_EQ(activation_dropout_forward(Activation::relu(), DType::f32, g_a, g_b, -1, {}).code(),
            StatusCode::invalid_size);
}

// An empty batch's dbias / dweight is zeros (the reference writes them; the
// device API clears them on the stream).
TEST(FusedArgumentChecks, EmptyBatchGradientsAreZeros) {
  float dbias[5] = {1, 2, 3, 4, 5};
  ASSERT_TRUE(reference::bias_activation_backward(Activation::gelu(), DType::f32, nullptr, nullptr,
                                                  nullptr, nullptr, dbias, 0, 5).ok());
  for (float v : dbias) EXPECT_EQ(v, 0.0f);
  float dweight[3] = {1, 2, 3};
  ASSERT_TRUE(reference::prelu_backward(DType::f32, nullptr, nullptr, nullptr, nullptr, dweight, 4,
                                        3, 0).ok());
  for (float v : dweight) EXPECT_EQ(v, 0.0f);
}

// Found by the fuzzer: an empty batch must not make the checks, the
// references or the size queries overflow, allocate or loop over a huge
// dimension; a parameter [cols] / [channels] past the address space is refused.
TEST(FusedArgumentChecks, EmptyBatchesWithHugeDimensionsAreSafe) {
  const int64_t huge = int64_t{1} << 40, past = std::numeric_limits<int64_t>::max();
  // Nothing to reduce and no dbias / dweight: no-ops, without cols-sized scratch.
  EXPECT_TRUE(reference::bias_activation_backward(Activation::gelu(), DType::f32, nullptr, nullptr,
                                                  nullptr, nullptr, nullptr, 0, huge).ok());
  EXPECT_TRUE(reference::prelu_backward(DType::f32, nullptr, nullptr, nullptr, nullptr, nullptr, 0,
                                        huge, 1).ok());
  // Empty rows, huge outer: returns at once.
  EXPECT_TRUE(reference::bias_activation_forward(Activation::gelu(), DType::f32, nullptr, nullptr,
                                                 nullptr, huge, 0).ok());
  EXPECT_TRUE(reference::prelu_forward(DType::f32, nullptr, nullptr, nullptr, huge, 0, 4).ok());
  EXPECT_TRUE(reference::glu_forward(Glu::geglu(), DType::f32, nullptr, nullptr, huge, 0).ok());
  // (found by the fuzzer: the GLU backward looped over the rows of a d = 0 call)
  EXPECT_TRUE(reference::glu_backward(Glu::geglu(), DType::f32, nullptr, nullptr, nullptr, huge, 0).ok());
  EXPECT_TRUE(reference::glu_backward(Glu::clamped_swiglu(), DType::f32, nullptr, nullptr, nullptr,
                                      huge, 0).ok());
  EXPECT_TRUE(reference::glu_forward(Glu::swiglu(), DType::f32, nullptr, g_d, DType::f32, nullptr,
                                     huge, 0).ok());
  // bias / dbias and weight / dweight of more bytes than the address space.
  EXPECT_EQ(bias_activation_backward(Activation::gelu(), DType::f32, nullptr, nullptr, nullptr,
                                     nullptr, nullptr, 0, past).code(),
            StatusCode::invalid_size);
  EXPECT_EQ(bias_activation_forward(Activation::gelu(), DType::f32, nullptr, nullptr, nullptr, 0,
                                    past).code(),
            StatusCode::invalid_size);
  EXPECT_EQ(prelu_backward(DType::f32, nullptr, nullptr, nullptr, nullptr, nullptr, 0, past / 2, 1)
                .code(),
            StatusCode::invalid_size);
  size_t bytes = 0;
  EXPECT_EQ(bias_activation_backward_workspace_size(DType::f32, 0, past, &bytes).code(),
            StatusCode::invalid_size);
  // Partials that would overflow the size arithmetic: refused, not wrapped.
  EXPECT_EQ(bias_activation_backward_workspace_size(DType::bf16, 1, (int64_t{1} << 62) - 1, &bytes)
                .code(),
            StatusCode::invalid_size);
}

TEST(FusedWorkspace, SizeQueriesArePureAndModest) {
  size_t bytes = 1;
  ASSERT_TRUE(bias_activation_backward_workspace_size(DType::f16, 0, 4096, &bytes).ok());
  EXPECT_EQ(bytes, 0u);
  ASSERT_TRUE(bias_activation_backward_workspace_size(DType::f16, 8192, 4096, &bytes).ok());
  EXPECT_EQ(bytes, static_cast<size_t>(detail::bias_backward_workspace(DType::f16, 8192, 4096)));
  // Per-block partials: a small fraction of the 8192 x 4096 input.
  EXPECT_LE(bytes, size_t{8192} * 4096 * 2 / 16);
  EXPECT_GE(bytes, size_t{4096} * 4);
  ASSERT_TRUE(prelu_backward_workspace_size(DType::bf16, 32, 64, 56 * 56, &bytes).ok());
  EXPECT_EQ(bytes, static_cast<size_t>(detail::prelu_backward_workspace(DType::bf16, 32, 64, 56 * 56)));
  EXPECT_LE(bytes, size_t{32} * 64 * 56 * 56 * 2 / 16);
  EXPECT_EQ(bias_activation_backward_workspace_size(DType::f32, 4, 4, nullptr).code(),
            StatusCode::null_pointer);
  EXPECT_EQ(bias_activation_backward_workspace_size(DType::f32, -4, 4, &bytes).code(),
            StatusCode::invalid_size);
  EXPECT_EQ(prelu_backward_workspace_size(DType::f32, 4, 4, -1, &bytes).code(),
            StatusCode::invalid_size);
  EXPECT_EQ(prelu_backward_workspace_size(static_cast<DType>(5), 4, 4, 1, &bytes).code(),
            StatusCode::invalid_parameter);
}

TEST(FusedWorkspace, WeightedGluNeedsItsWorkspaceForDweight) {
  size_t bytes = 0;
  ASSERT_TRUE(glu_backward_workspace_size(DType::bf16, 4096, 2880, &bytes).ok());
  EXPECT_EQ(bytes, static_cast<size_t>(detail::glu_backward_workspace(Glu::swiglu(), DType::bf16, 4096, 2880)));
  EXPECT_GE(bytes, size_t{4096} * 4);                     // a partial per row at least
  EXPECT_LE(bytes, size_t{4096} * 2 * 2880 * 2 / 16);     // a small fraction of x
  ASSERT_TRUE(glu_backward_workspace_size(DType::f32, 0, 2880, &bytes).ok());
  EXPECT_EQ(bytes, 0u);
  EXPECT_EQ(glu_backward_workspace_size(DType::f32, -1, 8, &bytes).code(), StatusCode::invalid_size);
  EXPECT_EQ(glu_backward_workspace_size(DType::f32, 1, 8, nullptr).code(), StatusCode::null_pointer);
  // dweight without workspace, or with too little: refused before anything runs.
  EXPECT_EQ(glu_backward(Glu::swiglu(), DType::f32, g_a, g_d, DType::f32, g_c, g_b, g_d + 64, 2, 8)
                .code(),
            StatusCode::null_pointer);
  EXPECT_EQ(glu_backward(Glu::swiglu(), DType::f32, g_a, g_d, DType::f32, g_c, g_b, g_d + 64, 2, 8,
                         Workspace{g_mask, 4})
                .code(),
            StatusCode::invalid_size);
}

TEST(FusedNoDevice, ValidCallsReturnNoDeviceWithoutCrashing) {
  if (test::gpu_unavailable_reason().empty())
    GTEST_SKIP() << "a GPU is present here, so the no-device path cannot be exercised";
  const std::vector<std::function<Status()>> calls = {
      [] { return bias_activation_forward(Activation::gelu(), DType::f32, g_a, g_c, g_b, 4, 8, Dropout{0.5f}, g_mask); },
      [] { return bias_activation_backward(Activation::silu(), DType::f16, g_a, g_c, g_b, g_b, g_d, 4, 8, Dropout{0.5f}, {g_mask, sizeof(g_mask)}); },
      [] { return bias_activation_backward(Activation::silu(), DType::f16, nullptr, nullptr, nullptr, nullptr, g_d, 0, 8); },
      [] { return glu_forward(Glu::geglu(), DType::bf16, g_a, g_b, 4, 8); },
      [] { return glu_backward(Glu::glu(), DType::f32, g_a, g_c, g_b, 4, 8); },
      [] { return glu_forward(Glu::swiglu(), DType::f32, g_a, nullptr, DType::f32, g_b, 4, 8, ExpertRows{g_counts, nullptr, 2}); },
      [] { return glu_backward(Glu::clamped_swiglu(), DType::f32, g_a, g_c + 256, DType::f32, g_d, g_b, g_d + 256, 4, 8,
                               ExpertRows{nullptr, g_counts, 2}, {g_mask, sizeof(g_mask)}); },
      [] { return glu_backward(Glu::swiglu(), DType::f32, g_a, g_c, DType::f32, g_d, g_b, g_d + 256, 4, 0,
                               ExpertRows{g_counts, nullptr, 2}); },
      [] { return prelu_forward(DType::f32, g_a, g_c, g_b, 2, 3, 4); },
      [] { return prelu_backward(DType::f32, g_a, g_c, g_d, g_b, g_c + 100, 2, 3, 4, {g_mask, sizeof(g_mask)}); },
      [] { return rrelu_forward(Rrelu{0.1f, 0.3f, true}, DType::f32, g_a, g_b, 8); },
      [] { return rrelu_backward(Rrelu{}, DType::f32, g_a, g_c, g_b, 8); },
  };
  for (size_t i = 0; i < calls.size(); ++i) {
    const Status s = calls[i]();
    EXPECT_EQ(s.code(), StatusCode::no_device) << "call " << i << ": " << s.message();
  }
}

TEST(FusedDescriptors, GluShortcutsAndTypedOverloads) {
  EXPECT_EQ(Glu::glu().act.kind, ActivationKind::sigmoid);
  EXPECT_EQ(Glu::glu().gated, GatedHalf::second);
  EXPECT_EQ(Glu::swiglu().act.kind, ActivationKind::silu);
  EXPECT_EQ(Glu::swiglu(1.702f).act.beta, 1.702f);
  EXPECT_EQ(Glu::geglu().act.kind, ActivationKind::gelu);
  EXPECT_EQ(Glu::geglu_tanh().act.kind, ActivationKind::gelu_tanh);
  EXPECT_EQ(Glu::reglu().act.kind, ActivationKind::relu);
  for (const Glu& g : {Glu::swiglu(), Glu::geglu(), Glu::geglu_tanh(), Glu::reglu()})
    EXPECT_EQ(g.gated, GatedHalf::first);
  const Rrelu r;
  EXPECT_EQ(r.lower, 1.0f / 8.0f);
  EXPECT_EQ(r.upper, 1.0f / 3.0f);
  EXPECT_FALSE(r.training);
  // Typed overloads pick the dtype from the pointers and accept nullptr options.
  const float* x = g_a;
  EXPECT_EQ(bias_activation_forward(Activation::relu(), x, nullptr, static_cast<float*>(nullptr), 2, 8).code(),
            StatusCode::null_pointer);
  const __half* hx = reinterpret_cast<const __half*>(g_a);
  EXPECT_EQ(glu_forward(Glu::swiglu(), hx, static_cast<__half*>(nullptr), 2, 8).code(),
            StatusCode::null_pointer);
  EXPECT_EQ(bias_activation_backward(Activation::relu(), x, nullptr, x, static_cast<float*>(nullptr),
                                     nullptr, 2, 8).code(),
            StatusCode::null_pointer);
  const __nv_bfloat16* bx = reinterpret_cast<const __nv_bfloat16*>(g_a);
  EXPECT_EQ(prelu_backward(bx, bx, bx, static_cast<__nv_bfloat16*>(nullptr), nullptr, 1, 2, 3).code(),
            StatusCode::null_pointer);
  EXPECT_EQ(rrelu_forward(Rrelu{}, bx, static_cast<__nv_bfloat16*>(nullptr), 4).code(),
            StatusCode::null_pointer);
}

}  // namespace
}  // namespace cuact
