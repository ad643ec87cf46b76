// The host API without a GPU: argument checks return a status naming the
// problem (never a crash), the device API and the CPU reference reject the
// same calls, descriptors carry docs/SPEC.md's defaults, and with no device a
// valid call says so cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cuact/cuact.h"
#include "gpu_guard.h"

namespace cuact {
namespace {

alignas(16) float g_in[64];
alignas(16) float g_grad[64];
alignas(16) float g_out[64];
const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct BadCall {
  const char* what;
  Direction direction;
  Activation act;
  DType dtype;
  const void* in;
  const void* grad;
  void* out;
  int64_t n;
  StatusCode expected;
};

std::vector<BadCall> bad_calls() {
  const auto fwd = Direction::forward, bwd = Direction::backward,
             bfo = Direction::backward_from_output;
  const Activation relu = Activation::relu();
  const char* c = reinterpret_cast<const char*>(g_in);
  Activation unknown = relu;
  unknown.kind = static_cast<ActivationKind>(999);
  return {
      {"null x", fwd, relu, DType::f32, nullptr, nullptr, g_out, 8, StatusCode::null_pointer},
      {"null y", fwd, relu, DType::f32, g_in, nullptr, nullptr, 8, StatusCode::null_pointer},
      {"null dy", bwd, relu, DType::f32, g_in, nullptr, g_out, 8, StatusCode::null_pointer},
      {"null dx", bwd, relu, DType::f16, g_in, g_grad, nullptr, 8, StatusCode::null_pointer},
      {"negative n", fwd, relu, DType::f32, g_in, nullptr, g_out, -1, StatusCode::invalid_size},
      {"huge n", fwd, relu, DType::f32, g_in, nullptr, g_out,
       std::numeric_limits<int64_t>::max() / 2, StatusCode::invalid_size},
      {"odd address f32", fwd, relu, DType::f32, c + 2, nullptr, g_out, 8,
       StatusCode::misaligned_pointer},
      {"odd address bf16", bwd, relu, DType::bf16, g_in, c + 1, g_out, 8,
       StatusCode::misaligned_pointer},
      {"partial overlap", fwd, relu, DType::f32, g_in, nullptr, g_in + 1, 8,
       StatusCode::overlapping_buffers},
      {"dx overlaps dy", bwd, relu, DType::f32, g_in, g_grad, g_grad + 3, 8,
       StatusCode::overlapping_buffers},
      {"NaN slope", fwd, Activation::leaky_relu(kNaN), DType::f32, g_in, nullptr, g_out, 8,
       StatusCode::invalid_parameter},
      {"hardtanh lower > upper", fwd, Activation::hardtanh(1.0f, -1.0f), DType::f32, g_in,
       nullptr, g_out, 8, StatusCode::invalid_parameter},
      {"celu alpha 0", fwd, Activation::celu(0.0f), DType::f32, g_in, nullptr, g_out, 8,
       StatusCode::invalid_parameter},
      {"softplus beta 0", fwd, Activation::softplus(0.0f), DType::f32, g_in, nullptr, g_out, 8,
       StatusCode::invalid_parameter},
      {"softplus beta inf", fwd, Activation::softplus(INFINITY), DType::f32, g_in, nullptr,
       g_out, 8, StatusCode::invalid_parameter},
      {"negative lambda", fwd, Activation::softshrink(-0.5f), DType::f32, g_in, nullptr, g_out, 8,
       StatusCode::invalid_parameter},
      {"NaN threshold", fwd, Activation::threshold(kNaN, 0.0f), DType::f32, g_in, nullptr, g_out,
       8, StatusCode::invalid_parameter},
      {"silu beta inf", fwd, Activation::silu(INFINITY), DType::f32, g_in, nullptr, g_out, 8,
       StatusCode::invalid_parameter},
      {"unknown kind", fwd, unknown, DType::f32, g_in, nullptr, g_out, 8,
       StatusCode::invalid_parameter},
      {"unknown dtype", fwd, relu, static_cast<DType>(7), g_in, nullptr, g_out, 8,
       StatusCode::invalid_parameter},
      {"unknown direction", static_cast<Direction>(9), relu, DType::f32, g_in, g_grad, g_out, 8,
       StatusCode::invalid_parameter},
      {"gelu from output", bfo, Activation::gelu(), DType::f32, g_in, g_grad, g_out, 8,
       StatusCode::unsupported},
      {"elu alpha<0 from output", bfo, Activation::elu(-1.0f), DType::f32, g_in, g_grad, g_out, 8,
       StatusCode::unsupported},
  };
}

TEST(ArgumentChecks, DeviceApiAndReferenceRejectTheSameCalls) {
  for (const BadCall& c : bad_calls()) {
    const Status device = activation(c.direction, c.act, c.dtype, c.in, c.grad, c.out, c.n);
    const Status host = reference::activation(c.direction, c.act, c.dtype, c.in, c.grad, c.out, c.n);
    EXPECT_EQ(device.code(), c.expected) << c.what << ": " << device.message();
    EXPECT_EQ(host.code(), c.expected) << c.what << ": " << host.message();
    EXPECT_FALSE(device.message().empty());
    EXPECT_NE(std::string(device.detail()), "success") << c.what;
  }
}

TEST(ArgumentChecks, ZeroLengthIsANoOpEvenWithNullPointers) {
  for (Direction d : {Direction::forward, Direction::backward})
    for (DType t : {DType::f32, DType::f16, DType::bf16}) {
      EXPECT_TRUE(activation(d, Activation::gelu(), t, nullptr, nullptr, nullptr, 0).ok());
      EXPECT_TRUE(reference::activation(d, Activation::gelu(), t, nullptr, nullptr, nullptr, 0).ok());
    }
}

TEST(ArgumentChecks, ExactAliasingIsAllowed) {
  EXPECT_TRUE(reference::activation(Direction::forward, Activation::relu(), DType::f32, g_in,
                                    nullptr, g_in, 64).ok());
  EXPECT_TRUE(reference::activation(Direction::backward, Activation::relu(), DType::f32, g_in,
                                    g_grad, g_grad, 64).ok());
}

TEST(ArgumentChecks, TypedOverloadsCheckToo) {
  const Activation a = Activation::sigmoid();
  EXPECT_EQ(activation_forward(a, static_cast<const float*>(nullptr), g_out, 4).code(),
            StatusCode::null_pointer);
  EXPECT_EQ(activation_backward(a, reinterpret_cast<const __half*>(g_in), nullptr,
                                reinterpret_cast<__half*>(g_out), 4)
                .code(),
            StatusCode::null_pointer);
  EXPECT_EQ(activation_backward_from_output(Activation::mish(),
                                            reinterpret_cast<const __nv_bfloat16*>(g_in),
                                            reinterpret_cast<const __nv_bfloat16*>(g_grad),
                                            reinterpret_cast<__nv_bfloat16*>(g_out), 4)
                .code(),
            StatusCode::unsupported);
}

TEST(NoDevice, AValidCallReturnsNoDeviceWithoutCrashing) {
  if (test::gpu_unavailable_reason().empty())
    GTEST_SKIP() << "a GPU is present here, so the no-device path cannot be exercised";
  for (DType t : {DType::f32, DType::f16, DType::bf16}) {
    const Status s = activation(Direction::forward, Activation::gelu(), t, g_in, nullptr, g_out, 8);
    EXPECT_EQ(s.code(), StatusCode::no_device) << s.message();
    EXPECT_NE(s.cuda_error(), cudaSuccess);
    EXPECT_NE(s.message().find("no_device"), std::string::npos) << s.message();
  }
}

TEST(Status, MessageNamesCodeDetailAndCudaError) {
  const Status s(StatusCode::cuda_error, "launching failed", cudaErrorInvalidValue);
  EXPECT_EQ(s.message(), std::string("cuda_error: launching failed: cudaErrorInvalidValue: ") +
                             cudaGetErrorString(cudaErrorInvalidValue));
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().message(), "success: success");
}

TEST(Descriptors, NamedConstructorsCarrySpecDefaults) {
  EXPECT_EQ(Activation::leaky_relu().alpha, 0.01f);
  EXPECT_EQ(Activation::elu().alpha, 1.0f);
  EXPECT_EQ(Activation::celu().alpha, 1.0f);
  EXPECT_EQ(Activation::hardtanh().lower, -1.0f);
  EXPECT_EQ(Activation::hardtanh().upper, 1.0f);
  EXPECT_EQ(Activation::silu().beta, 1.0f);
  EXPECT_EQ(Activation::softplus().beta, 1.0f);
  EXPECT_EQ(Activation::softplus().cutoff, 20.0f);
  EXPECT_EQ(Activation::hardshrink().lambda, 0.5f);
  EXPECT_EQ(Activation::softshrink().lambda, 0.5f);
  const Activation t = Activation::threshold(0.25f, -3.0f);
  EXPECT_EQ(t.cutoff, 0.25f);
  EXPECT_EQ(t.value, -3.0f);
  for (int k = 0; k < kNumActivationKinds; ++k) {
    const auto kind = static_cast<ActivationKind>(k);
    EXPECT_EQ(Activation::with_defaults(kind).kind, kind);
    EXPECT_TRUE(validate(Activation::with_defaults(kind)).ok()) << activation_name(kind);
    EXPECT_STRNE(activation_name(kind), "unknown");
  }
}

// A field a kind does not use reads NaN, not a plausible value; a used one
// left unset (a descriptor built field by field) fails validate by name.
TEST(Descriptors, UnusedFieldsAreNaNAndUnsetUsedOnesAreRefused) {
  EXPECT_TRUE(std::isnan(Activation::selu().lambda));
  EXPECT_TRUE(std::isnan(Activation::selu().alpha));
  EXPECT_TRUE(std::isnan(Activation::gelu().beta));
  EXPECT_TRUE(std::isnan(Activation::leaky_relu().lambda));
  EXPECT_TRUE(std::isnan(Activation::hardtanh().alpha));
  for (ActivationKind kind : {ActivationKind::elu, ActivationKind::celu, ActivationKind::leaky_relu,
                              ActivationKind::hardtanh, ActivationKind::softplus,
                              ActivationKind::hardshrink, ActivationKind::softshrink,
                              ActivationKind::threshold, ActivationKind::silu}) {
    Activation a;
    a.kind = kind;
    const Status s = validate(a);
    EXPECT_EQ(s.code(), StatusCode::invalid_parameter) << activation_name(kind);
    float x = 1.0f, y = 0.0f;
    EXPECT_EQ(reference::activation_forward(a, &x, &y, 1).code(), StatusCode::invalid_parameter)
        << activation_name(kind);
  }
}

TEST(Descriptors, BackwardFromOutputWhereSpecGivesIt) {
  int offered = 0;
  for (int k = 0; k < kNumActivationKinds; ++k)
    offered += has_backward_from_output(Activation::with_defaults(static_cast<ActivationKind>(k)));
  EXPECT_EQ(offered, 7);  // identity, relu, sigmoid, tanh, elu, selu, celu
  EXPECT_TRUE(has_backward_from_output(Activation::elu(0.0f)));
  EXPECT_FALSE(has_backward_from_output(Activation::elu(-0.5f)));
  EXPECT_FALSE(has_backward_from_output(Activation::celu(-1.0f)));
}

}  // namespace
}  // namespace cuact
