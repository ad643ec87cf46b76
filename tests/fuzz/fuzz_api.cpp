// libFuzzer target: drives every public entry point's argument checking with
// arbitrary sizes, pointers (null, misaligned, aliasing, partially
// overlapping), dtypes, directions, activation kinds and parameters (NaN,
// +-inf, negative where nonsense), and the CPU reference on small host
// buffers. It asserts that each call returns a known status (never aborts),
// that what SPEC.md forbids is rejected, and that the reference writes only
// inside its output (guard bytes around every buffer; ASan watches too).
//
// Build: configure with -DCUACT_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
// (tests/fuzz/run_fuzz.sh does it); run: cuact_fuzz_api corpus_dir.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <limits>

#include "cuact/cuact.h"

namespace {

using namespace cuact;

// Reads fields from the fuzzer's bytes; past the end it reads zeros.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  // A float parameter: often a special value, else raw bits.
  float param() {
    static const float kSpecial[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 6.0f, 20.0f, 1e-40f,
                                     std::numeric_limits<float>::quiet_NaN(),
                                     std::numeric_limits<float>::infinity(),
                                     -std::numeric_limits<float>::infinity(), 3.4e38f, -3.4e38f};
    const uint8_t pick = u8();
    if (pick < 2 * std::size(kSpecial)) return kSpecial[pick % std::size(kSpecial)];
    const uint32_t bits = u32();
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  int64_t count() {
    static const int64_t kCounts[] = {0, 1, 7, 8, 9, 31, 64, 255, 256, -1, -7,
                                      std::numeric_limits<int64_t>::min(),
                                      std::numeric_limits<int64_t>::max(),
                                      std::numeric_limits<int64_t>::max() / 2,
                                      int64_t{1} << 40};
    const uint8_t pick = u8();
    return pick < 64 ? kCounts[pick % std::size(kCounts)] : (u8() % 257);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Host arena: three buffers of kCapacity bytes, each between guard zones.
constexpr size_t kCapacity = 256 * 4 + 32;
constexpr size_t kGuard = 64;
constexpr uint8_t kGuardByte = 0xA5;
alignas(64) uint8_t g_arena[3][kGuard + kCapacity + kGuard];

uint8_t* body(int i) { return g_arena[i] + kGuard; }

void fill_arena(Reader& r) {
  for (auto& buffer : g_arena) {
    std::memset(buffer, kGuardByte, sizeof buffer);
    for (size_t i = kGuard; i < kGuard + kCapacity; ++i) buffer[i] = r.u8() ^ static_cast<uint8_t>(i);
  }
}

void check_guards() {
  for (auto& buffer : g_arena)
    for (size_t i = 0; i < kGuard; ++i)
      if (buffer[i] != kGuardByte || buffer[kGuard + kCapacity + i] != kGuardByte) {
        std::fprintf(stderr, "cuact fuzz: a write outside the output buffer\n");
        std::abort();
      }
}

// A pointer for one argument: null, inside buffer `own` at an offset (often
// misaligned), or aliasing / partially overlapping another buffer.
const void* choose_pointer(Reader& r, int own, const void* other) {
  switch (r.u8() % 8) {
    case 0: return nullptr;
    case 1: return other;  // exact aliasing
    case 2: return other ? static_cast<const uint8_t*>(other) + 2 + (r.u8() % 8) : nullptr;
    default: return body(own) + (r.u8() % 32);
  }
}

void require(bool condition, const char* what, const Status& s) {
  if (!condition) {
    std::fprintf(stderr, "cuact fuzz: %s (status %s)\n", what, s.message().c_str());
    std::abort();
  }
}

bool params_valid_per_spec(const Activation& a) {
  auto bad = [](float v) { return std::isnan(v); };
  switch (a.kind) {
    case ActivationKind::hardtanh: return !bad(a.lower) && !bad(a.upper) && a.lower <= a.upper;
    case ActivationKind::leaky_relu:
    case ActivationKind::elu: return !bad(a.alpha);
    case ActivationKind::celu: return !bad(a.alpha) && a.alpha != 0.0f;
    case ActivationKind::silu: return std::isfinite(a.beta);
    case ActivationKind::softplus: return a.beta > 0 && std::isfinite(a.beta) && !bad(a.cutoff);
    case ActivationKind::hardshrink:
    case ActivationKind::softshrink: return a.lambda >= 0;
    case ActivationKind::threshold: return !bad(a.cutoff);
    default: return static_cast<int>(a.kind) >= 0 && static_cast<int>(a.kind) < kNumActivationKinds;
  }
}

bool device_present() {
  static const bool present = [] {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  }();
  return present;
}

// The softmax family: options from the bytes (kind, scale, mask, causal,
// forced algorithm), [rows, cols] from the counts. The reference runs only
// where its buffers hold rows * cols elements (the device call without a GPU
// touches no memory).
int fuzz_softmax(Reader& r, bool on_device, Direction direction, DType dtype, const void* in,
                 const void* grad, void* out) {
  Softmax op;
  op.kind = static_cast<SoftmaxKind>(r.u8() % 4);
  op.scale = r.param();
  if (r.u8() & 1) op = op.with_mask(r.u8() & 1 ? body(1) : nullptr, r.count(), r.count());
  if (r.u8() & 1) op = op.with_causal(r.count(), r.count());
  op.algorithm = static_cast<SoftmaxAlgorithm>(r.u8() % 5);
  const int64_t rows = r.count(), cols = r.count();
  const bool fits = rows >= 0 && cols >= 0 && (cols == 0 || rows <= 256 / std::max<int64_t>(cols, 1));
  Status s;
  if (on_device) {
    if (device_present() && rows > 0) return 0;
    s = softmax(direction, op, dtype, in, grad, out, rows, cols, nullptr);
  } else {
    if (!fits) return 0;
    s = reference::softmax(direction, op, dtype, in, grad, out, rows, cols);
    check_guards();
  }
  require(static_cast<int>(s.code()) >= 0 &&
              static_cast<int>(s.code()) <= static_cast<int>(StatusCode::cuda_error),
          "unknown softmax status code", s);
  if (rows < 0 || cols < 0) require(!s.ok(), "negative softmax size accepted", s);
  if (!std::isfinite(op.scale)) require(!s.ok(), "non-finite softmax scale accepted", s);
  if (on_device && s.ok()) require(rows == 0, "device softmax succeeded without a device", s);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const int entry = r.u8() % 5;  // 0: reference, 1: device API, 2: descriptors, 3/4: softmax
  Activation act;
  act.kind = static_cast<ActivationKind>(r.u8() % (kNumActivationKinds + 2));  // 2 unknown kinds
  act.alpha = r.param();
  act.beta = r.param();
  act.lambda = r.param();
  act.lower = r.param();
  act.upper = r.param();
  act.cutoff = r.param();
  act.value = r.param();
  const auto direction = static_cast<Direction>(r.u8() % 4);  // one unknown direction
  const auto dtype = static_cast<DType>(r.u8() % 4);          // one unknown dtype
  const int64_t n = r.count();
  fill_arena(r);
  const void* in = choose_pointer(r, 0, nullptr);
  const void* grad = choose_pointer(r, 1, in);
  void* out = const_cast<void*>(choose_pointer(r, 2, r.u8() & 1 ? in : grad));

  if (entry >= 3) return fuzz_softmax(r, entry == 4, direction, dtype, in, grad, out);
  if (entry == 2) {
    const Status s = validate(act);
    require(s.ok() == params_valid_per_spec(act), "validate disagrees with SPEC.md", s);
    (void)has_backward_from_output(act);
    (void)activation_name(act.kind);
    return 0;
  }

  // The device API touches no memory without a GPU; with one, only null,
  // negative or rejected calls are made (host pointers must not reach a kernel).
  Status s;
  if (entry == 1) {
    if (device_present() && n > 0) return 0;
    s = activation(direction, act, dtype, in, grad, out, n, nullptr);
  } else {
    s = reference::activation(direction, act, dtype, in, grad, out, n);
    check_guards();
  }
  require(static_cast<int>(s.code()) >= 0 &&
              static_cast<int>(s.code()) <= static_cast<int>(StatusCode::cuda_error),
          "unknown status code", s);
  require(s.detail() != nullptr && s.detail()[0] != '\0', "status without a detail", s);
  if (n < 0) require(!s.ok(), "negative n accepted", s);
  if (!params_valid_per_spec(act)) require(!s.ok(), "invalid parameters accepted", s);
  if (n > 0 && (in == nullptr || out == nullptr)) require(!s.ok(), "null pointer accepted", s);
  if (s.ok() && n > 0) {
    const size_t elem = dtype_size(dtype);
    require(reinterpret_cast<uintptr_t>(in) % elem == 0 && reinterpret_cast<uintptr_t>(out) % elem == 0,
            "misaligned pointer accepted", s);
    require(static_cast<size_t>(n) * elem <= kCapacity, "accepted a size past the buffers", s);
  }
  if (entry == 1 && s.ok()) require(n == 0, "device call succeeded without a device", s);
  return 0;
}
