// libFuzzer target: drives every public entry point's argument checking with
// arbitrary sizes, pointers (null, misaligned, aliasing, partially
// overlapping), dtypes, directions, activation kinds and parameters (NaN,
// +-inf, negative where nonsense), and the CPU reference on small host
// buffers. It asserts that each call returns a known status (never aborts),
// that what docs/SPEC.md forbids is rejected, and that the reference writes only
// inside its output (guard bytes around every buffer; ASan watches too). The
// fused forms (cuact/fused.h) likewise, their reference checked byte by byte:
// a call writes only inside its outputs (y / dx, mask, dbias [cols], dweight
// [channels]) and a rejected call writes nothing.
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
// Three more for the fused forms: bias / weight, dbias / dweight, dropout mask.
alignas(64) uint8_t g_fused_arena[3][kGuard + kCapacity + kGuard];

// Buffers 0-2: g_arena; 3-5: g_fused_arena.
uint8_t* body(int i) { return i < 3 ? g_arena[i] + kGuard : g_fused_arena[i - 3] + kGuard; }

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
  if (r.u8() & 1) {
    // The mask's dtype: mostly the call's, sometimes another or an unknown one.
    const DType mask_dtype = r.u8() & 1 ? dtype : static_cast<DType>(r.u8() % 4);
    op = op.with_mask(r.u8() & 1 ? body(1) : nullptr, mask_dtype, r.count(), r.count());
  }
  if (r.u8() & 1) op = op.with_causal(r.count(), r.count());
  op.algorithm = static_cast<SoftmaxAlgorithm>(r.u8() % 6);  // 5: unknown
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

// ---------------------------------------------------------------- fused forms

void fill_fused_arena(Reader& r) {
  fill_arena(r);
  for (auto& buffer : g_fused_arena) {
    std::memset(buffer, kGuardByte, sizeof buffer);
    for (size_t i = kGuard; i < kGuard + kCapacity; ++i)
      buffer[i] = r.u8() ^ static_cast<uint8_t>(i * 7);
  }
}

void check_fused_guards() {
  check_guards();
  for (auto& buffer : g_fused_arena)
    for (size_t i = 0; i < kGuard; ++i)
      if (buffer[i] != kGuardByte || buffer[kGuard + kCapacity + i] != kGuardByte) {
        std::fprintf(stderr, "cuact fuzz: a fused write outside the arena buffers\n");
        std::abort();
      }
}

// A fused call's pointer: mostly element-aligned inside buffer `own`; else
// null, misaligned, exactly `other`, or (aligned) partially overlapping it.
void* fused_pointer(Reader& r, int own, const void* other) {
  const uint8_t pick = r.u8();
  const int step = pick / 8 % 4;
  auto* o = static_cast<uint8_t*>(const_cast<void*>(other));
  switch (pick % 8) {
    case 0: return nullptr;
    case 1: return o;
    case 2: return o ? o + 4 * (1 + step) : nullptr;
    case 3: return body(own) + 1 + step % 3;
    default: return body(own) + 16 * step;
  }
}

// Bytes from p to the end of the arena buffer holding it (0: none does).
int64_t room(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (int i = 0; i < 6; ++i) {
    const auto b = reinterpret_cast<uintptr_t>(body(i));
    if (a >= b && a < b + kCapacity) return static_cast<int64_t>(b + kCapacity - a);
  }
  return 0;
}

// A byte span a call may read or write.
struct Span {
  const void* p = nullptr;
  int64_t bytes = 0;
  bool used() const { return p != nullptr && bytes > 0; }
};

bool share_bytes(const Span& a, const Span& b) {
  if (!a.used() || !b.used()) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a.p), pb = reinterpret_cast<uintptr_t>(b.p);
  return pa < pb ? pb - pa < static_cast<uintptr_t>(a.bytes)
                 : pa - pb < static_cast<uintptr_t>(b.bytes);
}
// docs/SPEC.md: an output is exactly an input of its shape (in place) or apart from it.
bool badly_overlaps(const Span& out, const Span& in, bool same_shape) {
  return share_bytes(out, in) && !(same_shape && out.p == in.p);
}

bool aligned_to(const void* p, DType dtype) {
  return reinterpret_cast<uintptr_t>(p) % dtype_size(dtype) == 0;
}

// a * b * c elements (all >= 0) as bytes of `elem`; sets *overflow when past
// the address space.
int64_t span_bytes(int64_t a, int64_t b, int64_t c, int64_t elem, bool* overflow) {
  if (a == 0 || b == 0 || c == 0) return 0;
  int64_t v = 0;
  if (__builtin_mul_overflow(a, b, &v) || __builtin_mul_overflow(v, c, &v) ||
      __builtin_mul_overflow(v, elem, &v) || v > std::numeric_limits<std::ptrdiff_t>::max()) {
    *overflow = true;
    return 0;
  }
  return v;
}

enum class FusedForm { bias_activation, activation_dropout, glu, prelu, rrelu, workspace_queries };

// One fused call: the form, its sizes, parameters and pointers, from the
// bytes. rows / cols (bias+act), rows / d (GLU), outer / channels / inner
// (PReLU), n (activation+dropout, RReLU: `rows`).
struct FusedArgs {
  FusedForm form = FusedForm::bias_activation;
  bool backward = false;
  Activation act;
  DType dtype = DType::f32;
  int64_t rows = 0, cols = 0, inner = 0;
  Dropout dropout;
  Rrelu rrelu;
  Glu glu;
  void *x = nullptr, *dy = nullptr, *out = nullptr, *param = nullptr, *reduce = nullptr;
  uint8_t* mask = nullptr;
  int workspace_pick = 0;  // 0: null, 1: on out, 2: one byte short, else enough
  // The MoE GLU over expert rows (device calls only: the reference has no
  // such form); the weight and dweight are param and reduce.
  bool expert_rows = false;
  ExpertRows experts;
};

// What the call reads and writes, per docs/SPEC.md and cuact/fused.h.
struct FusedSpans {
  bool negative = false, overflow = false;
  int64_t elements = 0;  // of the main tensor (x)
  Span x, dy, out, param, reduce, mask;
  bool out_same_shape_as_x = true, out_same_shape_as_dy = true;
};

FusedSpans fused_spans(const FusedArgs& a) {
  FusedSpans s;
  const int64_t elem = static_cast<int64_t>(dtype_size(a.dtype));
  int64_t rows = a.rows, cols = a.cols, inner = 1;
  if (a.form == FusedForm::activation_dropout || a.form == FusedForm::rrelu) {
    cols = rows;
    rows = rows == 0 ? 0 : 1;
  }
  if (a.form == FusedForm::prelu) inner = a.inner;
  s.negative = rows < 0 || cols < 0 || inner < 0;
  if (s.negative) return s;
  bool& of = s.overflow;
  const int64_t x_bytes = a.form == FusedForm::glu ? span_bytes(rows, cols, 2 * inner, elem, &of)
                                                   : span_bytes(rows, cols, inner, elem, &of);
  s.elements = x_bytes / elem;
  const int64_t half = a.form == FusedForm::glu ? x_bytes / 2 : x_bytes;
  s.x = {a.x, x_bytes};
  if (a.backward) s.dy = {a.dy, half};
  s.out = {a.out, a.backward ? x_bytes : half};
  s.out_same_shape_as_x = a.form != FusedForm::glu || a.backward;
  s.out_same_shape_as_dy = a.form != FusedForm::glu;
  const bool has_param = a.form == FusedForm::bias_activation || a.form == FusedForm::prelu;
  // The parameter ([cols] / [channels]) is read only by a non-empty call; its
  // gradient is written (zeros for an empty batch) whenever cols / channels > 0.
  if (has_param && x_bytes > 0) s.param = {a.param, span_bytes(cols, 1, 1, elem, &of)};
  if (has_param && a.backward && a.reduce != nullptr)
    s.reduce = {a.reduce, span_bytes(cols, 1, 1, elem, &of)};
  const bool has_mask =
      a.form == FusedForm::bias_activation || a.form == FusedForm::activation_dropout;
  if (has_mask && !a.backward) s.mask = {a.mask, x_bytes / elem};
  return s;
}

bool known_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

// What docs/SPEC.md (and cuact/fused.h) forbids in this call; null when nothing.
const char* fused_forbidden(const FusedArgs& a, const FusedSpans& s) {
  if (!known_dtype(a.dtype)) return "unknown dtype accepted";
  if (s.negative) return "negative size accepted";
  if (s.overflow) return "a size past the address space accepted";
  const bool takes_act = a.form == FusedForm::bias_activation ||
                         a.form == FusedForm::activation_dropout || a.form == FusedForm::glu;
  if (takes_act && !params_valid_per_spec(a.act)) return "invalid activation parameters accepted";
  if (a.form == FusedForm::glu && a.glu.gated != GatedHalf::first &&
      a.glu.gated != GatedHalf::second)
    return "unknown gated half accepted";
  if ((a.form == FusedForm::bias_activation || a.form == FusedForm::activation_dropout) &&
      !(a.dropout.p >= 0.0f && a.dropout.p <= 1.0f))
    return "dropout p outside [0, 1] accepted";
  const Rrelu& rr = a.rrelu;
  if (a.form == FusedForm::rrelu &&
      !(std::isfinite(rr.lower) && std::isfinite(rr.upper) && rr.lower <= rr.upper))
    return "rrelu bounds not finite lower <= upper accepted";
  if (s.reduce.used() && !aligned_to(s.reduce.p, a.dtype))
    return "misaligned dbias / dweight accepted";
  if (s.elements == 0) return nullptr;
  if (a.x == nullptr || a.out == nullptr || (a.backward && a.dy == nullptr) ||
      (a.form == FusedForm::prelu && a.param == nullptr))
    return "null pointer accepted";
  for (const void* p : {s.x.p, s.dy.p, s.out.p, s.param.p})
    if (!aligned_to(p, a.dtype)) return "misaligned pointer accepted";
  if (badly_overlaps(s.out, s.x, s.out_same_shape_as_x) ||
      badly_overlaps(s.out, s.dy, s.out_same_shape_as_dy) || badly_overlaps(s.out, s.param, false))
    return "output overlapping an input accepted";
  if (share_bytes(s.mask, s.x) || share_bytes(s.mask, s.out) || share_bytes(s.mask, s.param))
    return "mask overlapping another buffer accepted";
  if (share_bytes(s.reduce, s.x) || share_bytes(s.reduce, s.dy) || share_bytes(s.reduce, s.out) ||
      badly_overlaps(s.reduce, s.param, true))
    return "dbias / dweight overlapping another buffer accepted";
  return nullptr;
}

Status call_fused(const FusedArgs& a, bool on_device, void* workspace, size_t workspace_bytes) {
  const bool bwd = a.backward;
  switch (a.form) {
    case FusedForm::bias_activation:
      if (on_device)
        return bwd ? bias_activation_backward(a.act, a.dtype, a.x, a.param, a.dy, a.out, a.reduce,
                                              a.rows, a.cols, a.dropout,
                                              {workspace, workspace_bytes})
                   : bias_activation_forward(a.act, a.dtype, a.x, a.param, a.out, a.rows, a.cols,
                                             a.dropout, a.mask);
      return bwd ? reference::bias_activation_backward(a.act, a.dtype, a.x, a.param, a.dy, a.out,
                                                       a.reduce, a.rows, a.cols, a.dropout)
                 : reference::bias_activation_forward(a.act, a.dtype, a.x, a.param, a.out, a.rows,
                                                      a.cols, a.dropout, a.mask);
    case FusedForm::activation_dropout:  // device only
      return bwd ? activation_dropout_backward(a.act, a.dtype, a.x, a.dy, a.out, a.rows, a.dropout)
                 : activation_dropout_forward(a.act, a.dtype, a.x, a.out, a.rows, a.dropout,
                                              a.mask);
    case FusedForm::glu:
      if (on_device && a.expert_rows)
        return bwd ? glu_backward(a.glu, a.dtype, a.x, a.param, a.dtype, a.dy, a.out, a.reduce,
                                  a.rows, a.cols, a.experts, {workspace, workspace_bytes})
                   : glu_forward(a.glu, a.dtype, a.x, a.param, a.dtype, a.out, a.rows, a.cols,
                                 a.experts);
      if (on_device)
        return bwd ? glu_backward(a.glu, a.dtype, a.x, a.dy, a.out, a.rows, a.cols)
                   : glu_forward(a.glu, a.dtype, a.x, a.out, a.rows, a.cols);
      return bwd ? reference::glu_backward(a.glu, a.dtype, a.x, a.dy, a.out, a.rows, a.cols)
                 : reference::glu_forward(a.glu, a.dtype, a.x, a.out, a.rows, a.cols);
    case FusedForm::prelu:
      if (on_device)
        return bwd ? prelu_backward(a.dtype, a.x, a.param, a.dy, a.out, a.reduce, a.rows, a.cols,
                                    a.inner, {workspace, workspace_bytes})
                   : prelu_forward(a.dtype, a.x, a.param, a.out, a.rows, a.cols, a.inner);
      return bwd ? reference::prelu_backward(a.dtype, a.x, a.param, a.dy, a.out, a.reduce, a.rows,
                                             a.cols, a.inner)
                 : reference::prelu_forward(a.dtype, a.x, a.param, a.out, a.rows, a.cols, a.inner);
    case FusedForm::rrelu:
      if (on_device)
        return bwd ? rrelu_backward(a.rrelu, a.dtype, a.x, a.dy, a.out, a.rows)
                   : rrelu_forward(a.rrelu, a.dtype, a.x, a.out, a.rows);
      return bwd ? reference::rrelu_backward(a.rrelu, a.dtype, a.x, a.dy, a.out, a.rows)
                 : reference::rrelu_forward(a.rrelu, a.dtype, a.x, a.out, a.rows);
    default: return {};
  }
}

void require_known(const Status& s) {
  require(static_cast<int>(s.code()) >= 0 &&
              static_cast<int>(s.code()) <= static_cast<int>(StatusCode::cuda_error),
          "unknown fused status code", s);
  require(s.detail() != nullptr && s.detail()[0] != '\0', "fused status without a detail", s);
}

// The workspace size queries: shape, dtype and result pointer from the bytes.
int fuzz_workspace_queries(const FusedArgs& a, bool null_result) {
  size_t bytes = 0;
  size_t* result = null_result ? nullptr : &bytes;
  const int64_t elem = static_cast<int64_t>(dtype_size(a.dtype));
  bool overflow = false;
  const bool negative = a.rows < 0 || a.cols < 0;
  if (!negative) span_bytes(a.rows, a.cols, 1, elem, &overflow);
  Status s = bias_activation_backward_workspace_size(a.dtype, a.rows, a.cols, result);
  require_known(s);
  if (null_result || !known_dtype(a.dtype) || negative || overflow)
    require(!s.ok(), "bad workspace size query accepted", s);
  const bool prelu_negative = negative || a.inner < 0;
  overflow = false;
  if (!prelu_negative) span_bytes(a.rows, a.cols, a.inner, elem, &overflow);
  s = prelu_backward_workspace_size(a.dtype, a.rows, a.cols, a.inner, result);
  require_known(s);
  if (null_result || !known_dtype(a.dtype) || prelu_negative || overflow)
    require(!s.ok(), "bad prelu workspace size query accepted", s);
  return 0;
}

// The fused entry points (cuact/fused.h) on the device (argument checks: no
// GPU, or only calls that touch no memory) or the CPU reference (on the arena,
// where every buffer the call touches fits, or where it must be rejected).
// Reads its own fields before filling the arena, so short inputs reach it.
int fuzz_fused(Reader& r, bool on_device, const Activation& act, Direction direction, DType dtype,
               int64_t n) {
  FusedArgs a;
  a.form = static_cast<FusedForm>(r.u8() % 6);
  a.backward = direction != Direction::forward;
  a.act = act;
  a.dtype = dtype;
  a.rows = n;
  a.cols = r.count();
  a.inner = r.count();
  a.dropout.p = r.param();
  a.dropout.seed = r.u8();
  a.dropout.offset = r.u8();
  a.rrelu.lower = r.param();
  a.rrelu.upper = r.param();
  a.rrelu.training = r.u8() & 1;
  a.rrelu.seed = a.dropout.seed;
  a.rrelu.offset = a.dropout.offset;
  a.glu = {act, static_cast<GatedHalf>(r.u8() % 3)};  // one unknown half
  // The MoE GLU's clamps (limit and offset any parameter) and layout (an
  // interleave from -1 to 6, dividing d or not).
  if (r.u8() % 4 == 0) {
    a.glu.limit = r.param();
    a.glu.offset = r.param();
  }
  a.glu.interleave = r.u8() % 4 == 0 ? static_cast<int64_t>(r.u8() % 8) - 1 : 0;
  a.x = fused_pointer(r, 0, nullptr);
  a.dy = fused_pointer(r, 1, a.x);
  a.out = fused_pointer(r, 2, r.u8() & 1 ? a.x : a.dy);
  a.param = fused_pointer(r, 3, a.out);
  a.reduce = fused_pointer(r, 4, r.u8() & 1 ? a.out : a.param);
  a.mask = static_cast<uint8_t*>(fused_pointer(r, 5, r.u8() & 1 ? a.out : a.x));
  a.workspace_pick = r.u8() % 4;
  const bool null_result = (r.u8() & 7) == 0;
  if (on_device && a.form == FusedForm::glu && r.u8() % 4 == 0) {
    a.expert_rows = true;
    const uint8_t pick = r.u8();
    auto* table = static_cast<const int32_t*>(fused_pointer(r, 3, a.out));
    (pick & 1 ? a.experts.offsets : a.experts.counts) = table;
    if (pick & 2) a.experts.counts = a.experts.offsets = table;  // both: refused
    a.experts.experts = r.count();
    a.experts.error = static_cast<int32_t*>(fused_pointer(r, 4, a.out));
  }
  fill_fused_arena(r);

  if (a.form == FusedForm::workspace_queries) return fuzz_workspace_queries(a, null_result);
  if (!on_device && a.form == FusedForm::activation_dropout) return 0;  // no reference form
  const FusedSpans spans = fused_spans(a);
  const char* forbidden = fused_forbidden(a, spans);
  const bool must_reject = forbidden != nullptr;
  Status s;
  if (on_device) {
    // With a GPU only calls that touch no memory (host pointers must not reach a kernel).
    if (device_present() && (a.rows > 0 || a.cols > 0 || a.inner > 0)) return 0;
    size_t needed = 0;  // the backward's workspace
    if (a.backward && a.form == FusedForm::bias_activation)
      (void)bias_activation_backward_workspace_size(a.dtype, a.rows, a.cols, &needed);
    if (a.backward && a.form == FusedForm::prelu)
      (void)prelu_backward_workspace_size(a.dtype, a.rows, a.cols, a.inner, &needed);
    static uint8_t workspace[16];  // never dereferenced: no kernel runs
    void* w = a.workspace_pick == 0 ? nullptr : a.workspace_pick == 1 ? a.out : workspace;
    const size_t w_bytes = a.workspace_pick == 2 && needed > 0 ? needed - 1 : needed;
    s = call_fused(a, true, w, w_bytes);
    require_known(s);
    // A non-empty reduction needs the query's bytes, apart from the other buffers.
    const bool reduces = spans.reduce.used() && spans.elements > 0;
    if (reduces && (w == nullptr || w_bytes < needed || w == a.out))
      require(!s.ok(), "missing, short or overlapping workspace accepted", s);
    if (a.expert_rows && (a.experts.experts <= 0 || (a.experts.counts == nullptr) ==
                                                         (a.experts.offsets == nullptr)))
      require(!s.ok(), "expert rows without experts, or with both or neither table, accepted", s);
    if (s.ok())
      require(spans.elements == 0 && !spans.reduce.used(),
              "fused device call succeeded without a device", s);
  } else {
    // Where nothing must be rejected, run only if every touched buffer fits the arena.
    if (!must_reject)
      for (const Span& span : {spans.x, spans.dy, spans.out, spans.param, spans.reduce, spans.mask})
        if (span.used() && room(span.p) < span.bytes) return 0;
    static uint8_t before[6][kCapacity];
    for (int i = 0; i < 6; ++i) std::memcpy(before[i], body(i), kCapacity);
    s = call_fused(a, false, nullptr, 0);
    check_fused_guards();
    require_known(s);
    // Every changed byte lies in an output the call may write; none if it refused.
    const Span outputs[] = {spans.out, spans.mask, spans.reduce};
    for (int i = 0; i < 6; ++i)
      for (size_t j = 0; j < kCapacity; ++j) {
        if (before[i][j] == body(i)[j]) continue;
        require(s.ok(), "a rejected fused reference call wrote", s);
        const Span byte{body(i) + j, 1};
        bool inside = false;
        for (const Span& o : outputs) inside = inside || share_bytes(byte, o);
        require(inside, "the fused reference wrote outside its outputs", s);
      }
  }
  if (must_reject) require(!s.ok(), forbidden, s);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  // 0: reference, 1: device API, 2: descriptors, 3/4: softmax, 5/6: fused (reference / device)
  const int entry = r.u8() % 7;
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
  if (entry >= 5) return fuzz_fused(r, entry == 6, act, direction, dtype, n);
  fill_arena(r);
  const void* in = choose_pointer(r, 0, nullptr);
  const void* grad = choose_pointer(r, 1, in);
  void* out = const_cast<void*>(choose_pointer(r, 2, r.u8() & 1 ? in : grad));

  if (entry >= 3) return fuzz_softmax(r, entry == 4, direction, dtype, in, grad, out);
  if (entry == 2) {
    const Status s = validate(act);
    require(s.ok() == params_valid_per_spec(act), "validate disagrees with docs/SPEC.md", s);
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
