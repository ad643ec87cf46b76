// The softmax kernels on a GPU against the double reference, by the rule of
// bench/accuracy/softmax_accuracy.h: every algorithm (forced, and automatic) x dtype x
// direction x option set over the column grid and rows {1, 3, 64, 4099}
// (rows x cols capped at 2^21 per shape), aligned, misaligned and in place;
// hand-made special rows; saturated outputs, whose backward takes the hidden
// columns from the mask and causal settings; a 2^24 + 1 column row; more
// than 2^31 elements through each algorithm; graph capture; many host
// threads; every device.
#include <gtest/gtest.h>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "accuracy.h"
#include "cuact/cuact.h"
#include "device_buffer.h"
#include "device_limits.h"
#include "gpu_guard.h"
#include "softmax_accuracy.h"
#include "strided_buffer.h"

namespace cuact::test {
namespace {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

constexpr int64_t kShapeBudget = int64_t{1} << 21;  // elements per shape in the grid
const int64_t kRows[] = {1, 3, 64, 4099};

// Whether the current device runs thread-block clusters (sm_90+).
bool device_has_clusters() {
  int device = 0, clusters = 0;
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&clusters, cudaDevAttrClusterLaunch, device) == cudaSuccess &&
         clusters != 0;
}

enum class Layout { aligned, misaligned, mismatched, in_place };
const char* layout_name(Layout l) {
  switch (l) {
    case Layout::aligned: return "aligned";
    case Layout::misaligned: return "misaligned";  // every buffer one element past 16 bytes
    case Layout::mismatched: return "mismatched";  // x/y one element off, others aligned
    default: return "in_place";
  }
}

// Runs one problem on the device in `layout` and judges it; returns false
// (with failures added) when the rule is broken.
void run_problem(const SoftmaxProblem& p, SoftmaxAlgorithm algorithm, Layout layout,
                 cudaStream_t stream) {
  const size_t elem = dtype_size(p.dtype);
  const auto in = to_buffer(p.dtype, p.in), grad = to_buffer(p.dtype, p.grad),
             mask = to_buffer(p.dtype, p.mask);
  const size_t bytes = in.size();
  DeviceBuffer in_d(bytes), grad_d(bytes), out_d(bytes), mask_d(mask.size());
  ASSERT_TRUE(in_d.ok() && grad_d.ok() && out_d.ok() && mask_d.ok());
  const size_t shift = layout == Layout::aligned ? 0 : elem;
  unsigned char* in_p = in_d.at(shift);
  unsigned char* grad_p = grad_d.at(layout == Layout::mismatched ? 0 : shift);
  // In place: y over x forward, dx over dy backward.
  unsigned char* out_p = layout != Layout::in_place          ? out_d.at(shift)
                         : p.direction == Direction::forward ? in_p
                                                             : grad_p;
  unsigned char* mask_p = mask_d.at(layout == Layout::mismatched ? 0 : shift);
  CUDA_OK(cudaMemcpyAsync(in_p, in.data(), bytes, cudaMemcpyHostToDevice, stream));
  if (!grad.empty())
    CUDA_OK(cudaMemcpyAsync(grad_p, grad.data(), bytes, cudaMemcpyHostToDevice, stream));
  if (!mask.empty())
    CUDA_OK(cudaMemcpyAsync(mask_p, mask.data(), mask.size(), cudaMemcpyHostToDevice, stream));
  if (layout != Layout::in_place) CUDA_OK(cudaMemsetAsync(out_p, 0xff, bytes, stream));
  const Softmax op = p.options.descriptor(p.rows, p.cols, mask.empty() ? nullptr : mask_p, p.dtype)
                         .with_algorithm(algorithm);
  const Status s = softmax(p.direction, op, p.dtype, in_p, grad_p, out_p, p.rows, p.cols, stream);
  ASSERT_TRUE(s.ok()) << s.message();
  std::vector<unsigned char> result(bytes);
  CUDA_OK(cudaMemcpyAsync(result.data(), out_p, bytes, cudaMemcpyDeviceToHost, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  const SoftmaxCheck check =
      check_softmax(p.dtype, p.expected, from_buffer(p.dtype, result), p.rows, p.cols);
  for (const std::string& f : check.first_failures) ADD_FAILURE() << f;
  ASSERT_TRUE(check.ok()) << check.failures << " elements and " << check.row_sum_failures
                          << " row sums outside the rule (worst error " << check.worst_ratio
                          << " of the bound)";
}

class SoftmaxKernelVsReference : public testing::TestWithParam<SoftmaxCase> {};

TEST_P(SoftmaxKernelVsReference, ColumnGridRowsAndLayouts) {
  CUACT_SKIP_WITHOUT_GPU();
  const SoftmaxCase c = GetParam();
  if (c.algorithm == SoftmaxAlgorithm::cluster_per_row && !device_has_clusters())
    GTEST_SKIP() << "the device has no thread-block clusters (sm_90+)";
  const SoftmaxOptions& options = softmax_option_sets()[c.options];
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  int shapes = 0;
  for (int64_t cols : softmax_test_cols()) {
    // CUACT_TEST_SMALL=1 (compute-sanitizer runs): rows up to 4097 columns;
    // the forced algorithms still run every kernel on them.
    if (small_sizes_only() && cols > 4097) continue;
    SoftmaxAlgorithm chosen = SoftmaxAlgorithm::automatic;
    const Status st = softmax_selected_algorithm(
        c.direction, Softmax::softmax().with_algorithm(c.algorithm), c.dtype, cols, &chosen);
    if (c.algorithm != SoftmaxAlgorithm::automatic && st.code() == StatusCode::unsupported)
      continue;  // the forced algorithm cannot take this row length (its refusal is tested below)
    ASSERT_TRUE(st.ok()) << st.message();
    if (c.algorithm == SoftmaxAlgorithm::automatic) {
      EXPECT_NE(chosen, SoftmaxAlgorithm::automatic);
      if (cols <= 1024) {
        EXPECT_EQ(chosen, SoftmaxAlgorithm::warp_per_row) << cols;
      }
    } else {
      EXPECT_EQ(chosen, c.algorithm);
    }
    for (int64_t rows : kRows) {
      if (rows > 1 && rows * cols > kShapeBudget) continue;
      const SoftmaxProblem p =
          make_softmax_problem(options, c.direction, c.dtype, rows, cols, 1000 + rows);
      for (Layout layout :
           {Layout::aligned, Layout::misaligned, Layout::mismatched, Layout::in_place}) {
        if (layout != Layout::aligned && rows * cols > (int64_t{1} << 17)) continue;
        SCOPED_TRACE(testing::Message()
                     << "cols=" << cols << " rows=" << rows << " " << layout_name(layout));
        run_problem(p, c.algorithm, layout, stream);
        if (HasFatalFailure()) return;
        ++shapes;
      }
    }
  }
  RecordProperty("shapes", std::to_string(shapes));
  EXPECT_GT(shapes, 0) << "no row length ran";  // every algorithm takes some of the grid
  CUDA_OK(cudaStreamDestroy(stream));
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, SoftmaxKernelVsReference,
                         testing::ValuesIn(softmax_cases(
                             {SoftmaxAlgorithm::automatic, SoftmaxAlgorithm::warp_per_row,
                              SoftmaxAlgorithm::block_per_row, SoftmaxAlgorithm::cluster_per_row,
                              SoftmaxAlgorithm::streaming})),
                         [](const auto& info) { return softmax_case_name(info.param); });

// Strided rows (padded x, y, dy, dx and mask, each its own stride) through
// every row algorithm as the dispatch picks it, and the middle dimension of
// [outer, dim, inner]: against the reference, every guard byte around and
// between the strided extents intact.
TEST(SoftmaxKernelLayouts, StridedRowsAndMiddleDimensionsMatchTheReference) {
  CUACT_SKIP_WITHOUT_GPU();
  struct Shape {
    int64_t outer, dim, inner, in_pad, grad_pad, out_pad;
    size_t misalign;
  };
  const Shape shapes[] = {
      {64, 100, 1, 4, 8, 12, 0},  {33, 1024, 1, 8, 8, 8, 0},   {7, 3000, 1, 5, 3, 1, 1},
      {3, 70000, 1, 8, 16, 24, 0}, {2, 300000, 1, 3, 3, 3, 0}, {16, 100, 64, 0, 0, 0, 0},
      {4, 1000, 24, 8, 0, 0, 1},  {512, 7, 2, 0, 0, 0, 0},     {2, 5000, 8, 16, 16, 16, 0},
      {1, 20000, 3, 0, 0, 0, 0},
  };
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (const Shape& sh : shapes)
    for (DType t : {DType::f32, DType::f16, DType::bf16})
      for (Direction d : {Direction::forward, Direction::backward})
        for (size_t o = 0; o < softmax_option_sets().size(); ++o) {
          const SoftmaxOptions& options = softmax_option_sets()[o];
          const bool row_options = options.mask_rows != 0 || options.causal_rows > 0;
          if (sh.inner > 1 && row_options) continue;  // rows only
          const int64_t lines = sh.outer * sh.inner, dense = sh.dim * sh.inner;
          SCOPED_TRACE(testing::Message() << "[" << sh.outer << "," << sh.dim << "," << sh.inner
                                          << "] " << dtype_name(t) << " " << direction_name(d)
                                          << " " << options.name);
          const SoftmaxProblem p = make_softmax_problem(options, d, t, lines, sh.dim, 11);
          StridedBuffer in(t, sh.outer, sh.dim, sh.inner, dense + sh.in_pad, sh.misalign);
          StridedBuffer grad(t, sh.outer, sh.dim, sh.inner, dense + sh.grad_pad, sh.misalign);
          StridedBuffer out(t, sh.outer, sh.dim, sh.inner, dense + sh.out_pad, sh.misalign);
          const int64_t mask_rows = std::max<int64_t>(options.mask_rows_for(lines), 1);
          StridedBuffer mask(t, mask_rows, sh.dim, 1, sh.dim + 8, sh.misalign);
          in.scatter(to_buffer(t, p.in));
          if (d == Direction::backward) grad.scatter(to_buffer(t, p.grad));
          if (!p.mask.empty()) mask.scatter(to_buffer(t, p.mask));
          DeviceBuffer in_d(in.image_bytes), grad_d(grad.image_bytes), out_d(out.image_bytes),
              mask_d(mask.image_bytes);
          ASSERT_TRUE(in_d.ok() && grad_d.ok() && out_d.ok() && mask_d.ok());
          for (auto [host, dev] : {std::pair<StridedBuffer*, DeviceBuffer*>{&in, &in_d},
                                   {&grad, &grad_d}, {&out, &out_d}, {&mask, &mask_d}})
            CUDA_OK(cudaMemcpy(dev->at(), host->image(), host->image_bytes, cudaMemcpyHostToDevice));
          Softmax op =
              options.descriptor(lines, sh.dim,
                                 p.mask.empty() ? nullptr : mask_d.at(mask.element_offset()), t);
          op.mask_stride = sh.dim + 8;
          const SoftmaxShape shape = SoftmaxShape::middle(sh.outer, sh.dim, sh.inner)
                                         .with_strides(in.stride, out.stride, grad.stride);
          const Status st = softmax(d, op, t, in_d.at(in.element_offset()),
                                    grad_d.at(grad.element_offset()),
                                    out_d.at(out.element_offset()), shape, stream);
          ASSERT_TRUE(st.ok()) << st.message();
          CUDA_OK(cudaStreamSynchronize(stream));
          CUDA_OK(cudaMemcpy(out.image(), out_d.at(), out.image_bytes, cudaMemcpyDeviceToHost));
          const SoftmaxCheck check =
              check_softmax(t, p.expected, from_buffer(t, out.gather()), lines, sh.dim);
          for (const std::string& f : check.first_failures) ADD_FAILURE() << f;
          ASSERT_TRUE(check.ok()) << check.failures << " elements outside the rule";
          ASSERT_EQ(out.touched_guards(), 0) << "bytes outside the shape were written";
        }
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST(SoftmaxKernelChoice, ForcedAlgorithmsRefuseRowsTheyCannotTake) {
  CUACT_SKIP_WITHOUT_GPU();
  SoftmaxAlgorithm chosen;
  const Softmax warp = Softmax::softmax().with_algorithm(SoftmaxAlgorithm::warp_per_row);
  EXPECT_EQ(softmax_selected_algorithm(Direction::forward, warp, DType::f32, 1025, &chosen).code(),
            StatusCode::unsupported);
  const Softmax block = Softmax::softmax().with_algorithm(SoftmaxAlgorithm::block_per_row);
  EXPECT_EQ(
      softmax_selected_algorithm(Direction::forward, block, DType::f32, int64_t{1} << 20, &chosen)
          .code(),
      StatusCode::unsupported);
  // A refused call launches nothing and says why.
  DeviceBuffer buf(2048 * 4);
  const Status s = softmax_forward(warp, reinterpret_cast<const float*>(buf.at()),
                                   reinterpret_cast<float*>(buf.at()), 1, 2048);
  EXPECT_EQ(s.code(), StatusCode::unsupported) << s.message();
  // Automatic: a warp's registers up to 1024 columns, a block's up to 16384,
  // then clusters, shared memory while it fits, then streaming.
  ASSERT_TRUE(
      softmax_selected_algorithm(Direction::forward, Softmax::softmax(), DType::f16, 1024, &chosen)
          .ok());
  EXPECT_EQ(chosen, SoftmaxAlgorithm::warp_per_row);
  ASSERT_TRUE(
      softmax_selected_algorithm(Direction::forward, Softmax::softmax(), DType::f16, 4097, &chosen)
          .ok());
  EXPECT_EQ(chosen, SoftmaxAlgorithm::block_per_row);
  ASSERT_TRUE(softmax_selected_algorithm(Direction::backward, Softmax::softmax(), DType::f32,
                                         int64_t{1} << 20, &chosen)
                  .ok());
  EXPECT_EQ(chosen, SoftmaxAlgorithm::streaming);
  // Past a block's registers, rows on pack boundaries: a cluster's registers
  // where the device has clusters, else the block's shared memory.
  ASSERT_TRUE(softmax_selected_algorithm(Direction::forward, Softmax::softmax(), DType::bf16,
                                         20000, &chosen)
                  .ok());
  EXPECT_EQ(chosen, device_has_clusters() ? SoftmaxAlgorithm::cluster_per_row
                                          : SoftmaxAlgorithm::block_per_row);
  // A vocabulary-sized row: a cluster of blocks where the device has them.
  ASSERT_TRUE(softmax_selected_algorithm(Direction::forward, Softmax::softmax(), DType::f32,
                                         151936, &chosen)
                  .ok());
  EXPECT_EQ(chosen, device_has_clusters() ? SoftmaxAlgorithm::cluster_per_row
                                          : SoftmaxAlgorithm::streaming);
}

// The launch plan's occupancy rules (resident_blocks, on the cached device
// limits) against the driver's calculator, for a probe kernel over block
// sizes and dynamic shared memory up to the opt-in limit.
__global__ void occupancy_probe_kernel(float* out) {
  extern __shared__ float probe_shared[];
  probe_shared[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = probe_shared[(threadIdx.x + 1) % blockDim.x];
}

TEST(SoftmaxOccupancy, ResidentBlocksMatchTheDriver) {
  CUACT_SKIP_WITHOUT_GPU();
  cuact::detail::DeviceLimits d;
  ASSERT_EQ(cuact::detail::current_device_limits(&d), cudaSuccess);
  cudaFuncAttributes attr;
  CUDA_OK(cudaFuncGetAttributes(&attr, occupancy_probe_kernel));
  const int room = d.smem_optin - static_cast<int>(attr.sharedSizeBytes);
  CUDA_OK(cudaFuncSetAttribute(occupancy_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               room));
  for (int threads : {128, 256, 512, 1024})
    for (int bytes : {0, 4096, 49152, 100000, 150000, room}) {
      int driver = 0;
      CUDA_OK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&driver, occupancy_probe_kernel,
                                                            threads, static_cast<size_t>(bytes)));
      EXPECT_EQ(cuact::detail::resident_blocks(d, threads, attr.numRegs,
                                               static_cast<int64_t>(attr.sharedSizeBytes) + bytes),
                driver)
          << threads << " threads, " << bytes << " bytes";
    }
}

// docs/SPEC.md's special rows, through every algorithm, against the reference
// exactly where the result is NaN, -inf, 0 or 1.
TEST(SoftmaxKernelSpecialRows, NaNEmptyInfiniteAndOverflowProneRows) {
  CUACT_SKIP_WITHOUT_GPU();
  const double inf = INFINITY, nan = NAN;
  const std::vector<std::vector<double>> rows = {
      {1.0, nan, 2.0, 3.0, 0.5},       {-inf, -inf, -inf, -inf, -inf},
      {inf, 1.0, 2.0, 3.0, 0.5},       {-inf, 5.0, -inf, -inf, -inf},
      {1e4, 1e4 - 8, -1e4, -inf, 0.0}, {88.75, -88.75, 88.75, 0.0, 1.0},
  };
  const int64_t cols = 5, n = static_cast<int64_t>(rows.size());
  DeviceBuffer in_d(n * cols * 4), out_d(n * cols * 4);
  for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                             SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16})
      for (const Softmax& base :
           {Softmax::softmax(), Softmax::log_softmax(), Softmax::softmin(-1.0f)}) {
        const Softmax op = base.with_algorithm(a);
        if (a == SoftmaxAlgorithm::cluster_per_row && !device_has_clusters()) continue;
        std::vector<double> x;
        for (const auto& r : rows)
          for (double v : r) x.push_back(reference::round_to(dtype, v));
        const auto in = to_buffer(dtype, x);
        CUDA_OK(cudaMemcpy(in_d.at(), in.data(), in.size(), cudaMemcpyHostToDevice));
        ASSERT_TRUE(
            softmax(Direction::forward, op, dtype, in_d.at(), nullptr, out_d.at(), n, cols)
                .ok());
        std::vector<unsigned char> out(in.size()), expect_buf(in.size());
        CUDA_OK(cudaMemcpy(out.data(), out_d.at(), out.size(), cudaMemcpyDeviceToHost));
        ASSERT_TRUE(reference::softmax(Direction::forward, op, dtype, in.data(), nullptr,
                                       expect_buf.data(), n, cols)
                        .ok());
        const auto got = from_buffer(dtype, out), expect = from_buffer(dtype, expect_buf);
        for (size_t i = 0; i < got.size(); ++i) {
          SCOPED_TRACE(testing::Message()
                       << softmax_algorithm_name(a) << " " << dtype_name(dtype) << " "
                       << softmax_kind_name(op.kind) << " row " << i / cols << " col " << i % cols);
          if (std::isnan(expect[i])) {
            EXPECT_TRUE(std::isnan(got[i])) << got[i];
          } else if (!std::isfinite(expect[i]) || expect[i] == 0 || expect[i] == 1) {
            EXPECT_EQ(got[i], expect[i]);
          } else {
            EXPECT_NEAR(got[i], expect[i], 1e-2 * std::fabs(expect[i]) + 1e-6);
          }
        }
      }
}

// Backward decides the hidden columns from the mask and causal settings, not
// from y (docs/SPEC.md): bench/accuracy/softmax_accuracy.h's saturated rows
// (log_softmax -inf from overflow and -inf inputs, softmax 0 from underflow;
// masks, causal, non-finite dy at hidden columns and at a visible saturated
// one) through every algorithm, both directions, every layout.
TEST(SoftmaxKernelSaturation, HiddenColumnsComeFromTheMaskAndCausalNotFromY) {
  CUACT_SKIP_WITHOUT_GPU();
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  int runs = 0;
  for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::automatic, SoftmaxAlgorithm::warp_per_row,
                             SoftmaxAlgorithm::block_per_row, SoftmaxAlgorithm::cluster_per_row,
                             SoftmaxAlgorithm::streaming}) {
    if (a == SoftmaxAlgorithm::cluster_per_row && !device_has_clusters()) continue;
    for (DType dtype : {DType::f32, DType::f16, DType::bf16})
      for (Direction d : {Direction::backward, Direction::forward})
        for (const SoftmaxOptions& options : saturation_option_sets())
          for (int64_t cols : {2, 8, 37, 40, 1100, 5000, 20000, 70000}) {
            SoftmaxAlgorithm chosen;
            const Status st = softmax_selected_algorithm(
                d, Softmax::softmax().with_algorithm(a), dtype, cols, &chosen);
            if (a != SoftmaxAlgorithm::automatic && st.code() == StatusCode::unsupported) continue;
            ASSERT_TRUE(st.ok()) << st.message();
            const SoftmaxProblem p = make_saturated_softmax_problem(options, d, dtype, cols, 3);
            for (Layout layout :
                 {Layout::aligned, Layout::misaligned, Layout::mismatched, Layout::in_place}) {
              SCOPED_TRACE(testing::Message()
                           << softmax_algorithm_name(a) << " " << dtype_name(dtype) << " "
                           << direction_name(d) << " " << options.name << " cols=" << cols << " "
                           << layout_name(layout));
              run_problem(p, a, layout, stream);
              if (HasFatalFailure()) return;
              ++runs;
            }
          }
  }
  EXPECT_GT(runs, 0);
  CUDA_OK(cudaStreamDestroy(stream));
}

// The issue's case on the device: fp16 log_softmax([-60000, 60000]) =
// [-inf, 0], backward with dy = [1, 0] gives [1, -1], not [0, 0] (fp32 and
// bf16 with +-3e38), through every algorithm; middle_dim over [1, cols, 8].
TEST(SoftmaxKernelSaturation, SaturatedLogSoftmaxColumnKeepsItsGradient) {
  CUACT_SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::f16, DType::f32, DType::bf16})
    for (int64_t cols : {2, 16, 40}) {
      const double big = reference::round_to(dtype, dtype == DType::f16 ? 60000.0 : 3e38);
      for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                                 SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming,
                                 SoftmaxAlgorithm::middle_dim}) {
        if (a == SoftmaxAlgorithm::cluster_per_row && !device_has_clusters()) continue;
        SCOPED_TRACE(testing::Message() << softmax_algorithm_name(a) << " " << dtype_name(dtype)
                                        << " cols=" << cols);
        const int64_t inner = a == SoftmaxAlgorithm::middle_dim ? 8 : 1;
        std::vector<double> x(static_cast<size_t>(cols * inner), -big),
            dy(x.size(), 0.0);
        for (int64_t j = 0; j < inner; ++j) {
          x[static_cast<size_t>(inner + j)] = big;  // column 1
          dy[static_cast<size_t>(j)] = 1.0;         // column 0
        }
        const auto xb = to_buffer(dtype, x), dyb = to_buffer(dtype, dy);
        DeviceBuffer x_d(xb.size()), dy_d(xb.size()), y_d(xb.size()), dx_d(xb.size());
        CUDA_OK(cudaMemcpy(x_d.at(), xb.data(), xb.size(), cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(dy_d.at(), dyb.data(), dyb.size(), cudaMemcpyHostToDevice));
        const Softmax op = Softmax::log_softmax().with_algorithm(a);
        const SoftmaxShape shape = SoftmaxShape::middle(1, cols, inner);
        ASSERT_TRUE(
            softmax(Direction::forward, op, dtype, x_d.at(), nullptr, y_d.at(), shape).ok());
        ASSERT_TRUE(
            softmax(Direction::backward, op, dtype, y_d.at(), dy_d.at(), dx_d.at(), shape).ok());
        std::vector<unsigned char> yb(xb.size()), dxb(xb.size());
        CUDA_OK(cudaMemcpy(yb.data(), y_d.at(), yb.size(), cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(dxb.data(), dx_d.at(), dxb.size(), cudaMemcpyDeviceToHost));
        const auto y = from_buffer(dtype, yb), dx = from_buffer(dtype, dxb);
        for (int64_t c = 0; c < cols; ++c)
          for (int64_t j = 0; j < inner; ++j) {
            const size_t i = static_cast<size_t>(c * inner + j);
            EXPECT_EQ(y[i], c == 1 ? 0.0 : -INFINITY) << "y col " << c;
            EXPECT_EQ(dx[i], c == 0 ? 1.0 : c == 1 ? -1.0 : 0.0) << "dx col " << c;
          }
      }
    }
}

// SPEC: any row length up to at least 2^24 through one call.
TEST(SoftmaxKernelLongRows, TwoToTheTwentyFourPlusOneColumns) {
  CUACT_SKIP_WITHOUT_GPU();
  if (small_sizes_only()) GTEST_SKIP() << "CUACT_TEST_SMALL=1";
  const int64_t cols = (int64_t{1} << 24) + 1;
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  for (DType dtype : {DType::f32, DType::bf16})
    for (Direction d : {Direction::forward, Direction::backward}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " " << direction_name(d));
      const SoftmaxProblem p =
          make_softmax_problem(softmax_option_sets()[0], d, dtype, 1, cols, 24);
      run_problem(p, SoftmaxAlgorithm::automatic, Layout::aligned, stream);
      if (HasFatalFailure()) return;
    }
  CUDA_OK(cudaStreamDestroy(stream));
}

// ---------------------------------------------------------------- > 2^31 elements

// x[i] for the big tests, the same on host and device.
__host__ __device__ float big_pattern(int64_t i) {
  const int64_t k = static_cast<int64_t>((static_cast<uint64_t>(i) * 2654435761u) % 2001u) - 1000;
  return static_cast<float>(k) / 100.0f;
}

__global__ void fill_big(__half* x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = __float2half_rn(big_pattern(i));
}

TEST(SoftmaxKernelIndexing, MoreThanTwoToThe31ElementsThroughEachAlgorithm) {
  CUACT_SKIP_WITHOUT_GPU();
  if (small_sizes_only()) GTEST_SKIP() << "CUACT_TEST_SMALL=1";
  struct Shape {
    SoftmaxAlgorithm expected;
    int64_t rows, cols;
  };
  // f16 forward caches fp32: one block holds 57856 columns, a 16-block
  // cluster 925575 (on an H100/H200).
  const Shape shapes[] = {
      {SoftmaxAlgorithm::warp_per_row, (int64_t{1} << 21) + 3, 1024},
      {SoftmaxAlgorithm::block_per_row, (int64_t{1} << 17) + 3, 16384},
      {device_has_clusters() ? SoftmaxAlgorithm::cluster_per_row : SoftmaxAlgorithm::streaming,
       (int64_t{1} << 15) + 1, 65544},
      {SoftmaxAlgorithm::streaming, (int64_t{1} << 11) + 1, (int64_t{1} << 20) + 8},
  };
  for (const Shape& s : shapes) {
    const int64_t n = s.rows * s.cols;
    ASSERT_GT(n, int64_t{1} << 31);
    SoftmaxAlgorithm chosen;
    ASSERT_TRUE(softmax_selected_algorithm(Direction::forward, Softmax::softmax(), DType::f16,
                                           s.cols, &chosen)
                    .ok());
    EXPECT_EQ(chosen, s.expected);
    DeviceBuffer x(n * 2), y(n * 2);
    if (!x.ok() || !y.ok())
      GTEST_SKIP() << "needs 2 x " << (n * 2 >> 30) << " GiB of device memory";
    fill_big<<<1024, 256>>>(reinterpret_cast<__half*>(x.at()), n);
    CUDA_OK(cudaGetLastError());
    ASSERT_TRUE(softmax_forward(Softmax::log_softmax(), reinterpret_cast<const __half*>(x.at()),
                                reinterpret_cast<__half*>(y.at()), s.rows, s.cols)
                    .ok());
    CUDA_OK(cudaDeviceSynchronize());
    // Rows at the start, across 2^31 and at the end.
    for (int64_t row : {int64_t{0}, (int64_t{1} << 31) / s.cols, s.rows - 1}) {
      std::vector<__half> got(static_cast<size_t>(s.cols));
      CUDA_OK(
          cudaMemcpy(got.data(), y.at(row * s.cols * 2), s.cols * 2, cudaMemcpyDeviceToHost));
      std::vector<double> xr(static_cast<size_t>(s.cols)), g(xr.size());
      for (int64_t j = 0; j < s.cols; ++j) {
        xr[j] = __half2float(__float2half_rn(big_pattern(row * s.cols + j)));
        g[j] = __half2float(got[j]);
      }
      SoftmaxOptions o = softmax_option_sets()[1];
      o.scale = 1.0f;
      const SoftmaxExpected e =
          expected_softmax(o, Direction::forward, DType::f16, 1, s.cols, xr, {}, {});
      const SoftmaxCheck check = check_softmax(DType::f16, e, g, 1, s.cols);
      for (const std::string& f : check.first_failures) ADD_FAILURE() << "row " << row << ": " << f;
      EXPECT_TRUE(check.ok()) << softmax_algorithm_name(s.expected) << " row " << row;
    }
  }
}

// ---------------------------------------------------------------- streams, graphs, threads,
// devices

// block_per_row with more than 48 KiB of shared memory: the kernel's limit
// is raised inside the call, which must also work while capturing.
TEST(SoftmaxKernelGraph, CapturedCallMatchesDirectCall) {
  CUACT_SKIP_WITHOUT_GPU();
  const int64_t rows = 300, cols = 20000, n = rows * cols;
  const SoftmaxProblem p =
      make_softmax_problem(softmax_option_sets()[0], Direction::forward, DType::f32, rows, cols, 5);
  const auto in = to_buffer(DType::f32, p.in);
  DeviceBuffer x(n * 4), direct(n * 4), captured(n * 4);
  CUDA_OK(cudaMemcpy(x.at(), in.data(), n * 4, cudaMemcpyHostToDevice));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const Softmax op = Softmax::softmax(0.5f);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status s = softmax(Direction::forward, op, DType::f32, x.at(), nullptr, captured.at(),
                           rows, cols, stream);
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_TRUE(softmax(Direction::forward, op, DType::f32, x.at(), nullptr, direct.at(), rows,
                      cols, stream)
                  .ok());
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<unsigned char> a(n * 4), b(n * 4);
  CUDA_OK(cudaMemcpy(a.data(), direct.at(), n * 4, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(b.data(), captured.at(), n * 4, cudaMemcpyDeviceToHost));
  EXPECT_EQ(std::memcmp(a.data(), b.data(), n * 4), 0);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// Many host threads, each on its own stream, with different row lengths
// (and so different algorithms and shared-memory sizes) at once.
TEST(SoftmaxKernelThreads, ConcurrentCallsFromManyThreads) {
  CUACT_SKIP_WITHOUT_GPU();
  const int64_t lengths[] = {100, 3000, 30000, 70000};
  std::vector<std::string> errors(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      const int64_t cols = lengths[t % 4], rows = 7;
      const SoftmaxProblem p = make_softmax_problem(softmax_option_sets()[1], Direction::forward,
                                                    DType::bf16, rows, cols, 70 + t);
      const auto in = to_buffer(DType::bf16, p.in);
      cudaStream_t stream;
      DeviceBuffer x(in.size()), y(in.size());
      if (cudaStreamCreate(&stream) != cudaSuccess || !x.ok() || !y.ok()) {
        errors[t] = "setup failed";
        return;
      }
      std::vector<unsigned char> out(in.size());
      for (int repeat = 0; repeat < 20 && errors[t].empty(); ++repeat) {
        cudaMemcpyAsync(x.at(), in.data(), in.size(), cudaMemcpyHostToDevice, stream);
        const Status s = softmax(Direction::forward, p.options.descriptor(rows, cols, nullptr, DType::bf16),
                                 DType::bf16, x.at(), nullptr, y.at(), rows, cols, stream);
        cudaMemcpyAsync(out.data(), y.at(), out.size(), cudaMemcpyDeviceToHost, stream);
        if (!s.ok() || cudaStreamSynchronize(stream) != cudaSuccess) {
          errors[t] = s.message();
          break;
        }
        const SoftmaxCheck c =
            check_softmax(DType::bf16, p.expected, from_buffer(DType::bf16, out), rows, cols);
        if (!c.ok()) errors[t] = c.first_failures.empty() ? "row sums" : c.first_failures[0];
      }
      cudaStreamDestroy(stream);
    });
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 8; ++t) EXPECT_TRUE(errors[t].empty()) << "thread " << t << ": " << errors[t];
}

// Limits are queried per call on the current device: every device works,
// including the shared-memory opt-in of block_per_row.
TEST(SoftmaxKernelDevices, EveryDeviceComputesTheSame) {
  CUACT_SKIP_WITHOUT_GPU();
  int count = 0;
  CUDA_OK(cudaGetDeviceCount(&count));
  const int64_t rows = 5, cols = 30000;
  const SoftmaxProblem p =
      make_softmax_problem(softmax_option_sets()[0], Direction::forward, DType::f32, rows, cols, 9);
  const auto in = to_buffer(DType::f32, p.in);
  for (int d = 0; d < count; ++d) {
    CUDA_OK(cudaSetDevice(d));
    DeviceBuffer x(in.size()), y(in.size());
    CUDA_OK(cudaMemcpy(x.at(), in.data(), in.size(), cudaMemcpyHostToDevice));
    ASSERT_TRUE(softmax(Direction::forward, Softmax::softmax(), DType::f32, x.at(), nullptr,
                        y.at(), rows, cols)
                    .ok())
        << "device " << d;
    std::vector<unsigned char> out(in.size());
    CUDA_OK(cudaMemcpy(out.data(), y.at(), out.size(), cudaMemcpyDeviceToHost));
    EXPECT_TRUE(
        check_softmax(DType::f32, p.expected, from_buffer(DType::f32, out), rows, cols).ok())
        << "device " << d;
  }
  CUDA_OK(cudaSetDevice(0));
}

}  // namespace
}  // namespace cuact::test
