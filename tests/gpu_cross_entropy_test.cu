// The cross-entropy forward on a GPU against the double reference, by the
// rule of bench/accuracy/cross_entropy_accuracy.h: every dtype and option
// set over widths that reach each softmax algorithm (registers, block cache,
// clusters on sm_90, streaming), dlogits apart and in place; the backward
// from the saved lse; the same bits on a second run; bad targets (NaN rows
// and the flag).
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cross_entropy_accuracy.h"
#include "cuact/cuact.h"
#include "device_buffer.h"
#include "element_io.h"
#include "gpu_guard.h"

namespace cuact::test {
namespace {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

struct DeviceRun {
  CrossEntropyGot got;
  std::vector<unsigned char> dlogit_bytes;
  int32_t bad = -1;
};

// Runs the problem's forward with every output asked; dlogits over the
// logits where in_place.
void run_on_device(const CrossEntropyProblem& p, bool in_place, DeviceRun* run) {
  const size_t n = p.logits.size(), elem = dtype_size(p.dtype), rows = static_cast<size_t>(p.rows);
  std::vector<unsigned char> x(n * elem), w(p.weight.size() * dtype_size(p.ce.weight_dtype));
  for (size_t i = 0; i < n; ++i) detail::store_element(p.dtype, x.data(), static_cast<int64_t>(i), p.logits[i]);
  for (size_t i = 0; i < p.weight.size(); ++i)
    detail::store_element(p.ce.weight_dtype, w.data(), static_cast<int64_t>(i), p.weight[i]);
  DeviceBuffer dx(x.size()), dd(x.size()), dt(rows * 8), dw(w.size()), words(rows * 12 + 64);
  ASSERT_TRUE(dx.ok() && dd.ok() && dt.ok() && dw.ok() && words.ok());
  CUDA_OK(cudaMemcpy(dx.at(), x.data(), x.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dt.at(), p.targets.data(), rows * 8, cudaMemcpyHostToDevice));
  if (!w.empty()) CUDA_OK(cudaMemcpy(dw.at(), w.data(), w.size(), cudaMemcpyHostToDevice));
  CrossEntropy ce = p.ce;
  ce.weight = p.weight.empty() ? nullptr : dw.at();
  float* loss = reinterpret_cast<float*>(words.at());
  CrossEntropyOutputs out;
  out.loss = loss;
  out.lse = loss + rows;
  out.z_loss = loss + 2 * rows;
  out.reduced = loss + 3 * rows;
  out.bad_targets = reinterpret_cast<int32_t*>(loss + 3 * rows + 1);
  out.dlogits = in_place ? dx.at() : dd.at();
  size_t bytes = 0;
  ASSERT_TRUE(cross_entropy_forward_workspace_size(ce, p.rows, out, &bytes).ok());
  DeviceBuffer ws(bytes);
  ASSERT_TRUE(ws.ok());
  const Status s = cross_entropy_forward(ce, p.dtype, dx.at(), p.rows, p.vocab, p.stride, dt.at(),
                                         IndexType::i64, out, {ws.at(), bytes});
  ASSERT_TRUE(s.ok()) << s.message();
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> host(rows * 3 + 2);
  CUDA_OK(cudaMemcpy(host.data(), loss, host.size() * 4, cudaMemcpyDeviceToHost));
  run->got.loss.assign(host.begin(), host.begin() + rows);
  run->got.lse.assign(host.begin() + rows, host.begin() + 2 * rows);
  run->got.z_loss.assign(host.begin() + 2 * rows, host.begin() + 3 * rows);
  run->got.reduced = host[3 * rows];
  std::memcpy(&run->bad, &host[3 * rows + 1], 4);
  run->dlogit_bytes.resize(x.size());
  CUDA_OK(cudaMemcpy(run->dlogit_bytes.data(), out.dlogits, x.size(), cudaMemcpyDeviceToHost));
  run->got.dlogits.resize(n);
  for (size_t i = 0; i < n; ++i)
    run->got.dlogits[i] = detail::load_element(p.dtype, run->dlogit_bytes.data(), static_cast<int64_t>(i));
  for (int64_t r = 0; r < p.rows; ++r)  // the gaps between rows: not judged
    for (int64_t j = p.vocab; j < p.stride; ++j) run->got.dlogits[static_cast<size_t>(r * p.stride + j)] = 0;
}

TEST(CrossEntropyKernel, WidthsDtypesAndOptionsMatchTheReference) {
  CUACT_SKIP_WITHOUT_GPU();
  struct Shape {
    int64_t rows, vocab, stride;
  };
  std::vector<Shape> shapes = {{33, 1, 1},       {64, 100, 100},   {17, 1000, 1003},
                               {9, 4096, 4096},  {5, 32001, 32001}, {3, 50257, 50257},
                               {3, 131072, 131072}, {2, 262144, 262144}};
  if (!small_sizes_only()) shapes.push_back({2, int64_t{1} << 20, int64_t{1} << 20});
  uint64_t seed = 1;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const Shape& s : shapes)
      for (const auto& [name, ce] : cross_entropy_option_sets()) {
        if (ce.smoothing_form == LabelSmoothing::megatron && s.vocab == 1) continue;
        const CrossEntropyProblem p =
            make_cross_entropy_problem(name, ce, dtype, s.rows, s.vocab, s.stride, seed++);
        for (bool in_place : {false, true}) {
          DeviceRun run;
          run_on_device(p, in_place, &run);
          EXPECT_EQ(run.bad, 0);
          const CrossEntropyCheck c = check_cross_entropy(p, run.got);
          std::string why;
          for (const std::string& f : c.first_failures) why += "\n  " + f;
          EXPECT_TRUE(c.ok()) << dtype_name(dtype) << " " << name << " [" << s.rows << ", "
                              << s.vocab << "]" << (in_place ? " in place" : "") << ": "
                              << c.failures << " of " << c.values << " outside" << why;
        }
      }
}

// The backward from the forward's lse with an upstream gradient, against
// reference::cross_entropy_backward by the same rule.
TEST(CrossEntropyKernel, BackwardFromLseMatchesTheReference) {
  CUACT_SKIP_WITHOUT_GPU();
  uint64_t seed = 500;
  for (DType dtype : {DType::f32, DType::bf16})
    for (const int64_t vocab : {int64_t{100}, int64_t{4096}, int64_t{50257}, int64_t{131072}})
      for (const auto& [name, ce] : cross_entropy_option_sets()) {
        const CrossEntropyProblem p = make_cross_entropy_problem(name, ce, dtype, 7, vocab, vocab, seed++);
        DeviceRun fwd;
        run_on_device(p, false, &fwd);  // its lse
        const size_t n = p.logits.size(), elem = dtype_size(dtype), rows = 7;
        std::vector<unsigned char> x(n * elem), w(p.weight.size() * dtype_size(ce.weight_dtype));
        for (size_t i = 0; i < n; ++i) detail::store_element(dtype, x.data(), static_cast<int64_t>(i), p.logits[i]);
        for (size_t i = 0; i < p.weight.size(); ++i)
          detail::store_element(ce.weight_dtype, w.data(), static_cast<int64_t>(i), p.weight[i]);
        std::vector<float> dloss(ce.reduction == Reduction::none ? rows : 1);
        for (size_t i = 0; i < dloss.size(); ++i) dloss[i] = 0.5f - 0.25f * static_cast<float>(i % 5);
        DeviceBuffer dx(x.size()), dt(rows * 8), dw(w.size()), dl(rows * 4), dd(dloss.size() * 4),
            ws(16);
        ASSERT_TRUE(dx.ok() && dt.ok() && dw.ok() && dl.ok() && dd.ok() && ws.ok());
        CUDA_OK(cudaMemcpy(dx.at(), x.data(), x.size(), cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(dt.at(), p.targets.data(), rows * 8, cudaMemcpyHostToDevice));
        if (!w.empty()) CUDA_OK(cudaMemcpy(dw.at(), w.data(), w.size(), cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(dl.at(), fwd.got.lse.data(), rows * 4, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(dd.at(), dloss.data(), dloss.size() * 4, cudaMemcpyHostToDevice));
        CrossEntropy call = ce;
        call.weight = p.weight.empty() ? nullptr : dw.at();
        const Status s = cross_entropy_backward(
            call, dtype, dx.at(), 7, vocab, vocab, dt.at(), IndexType::i64,
            reinterpret_cast<const float*>(dl.at()), reinterpret_cast<const float*>(dd.at()),
            dx.at() /* in place */, {ws.at(), 16});
        ASSERT_TRUE(s.ok()) << s.message();
        CUDA_OK(cudaMemcpy(x.data(), dx.at(), x.size(), cudaMemcpyDeviceToHost));
        CrossEntropyGot got;
        got.dlogits.resize(n);
        for (size_t i = 0; i < n; ++i) got.dlogits[i] = detail::load_element(dtype, x.data(), static_cast<int64_t>(i));
        const CrossEntropyCheck c = check_cross_entropy(p, got, &dloss);
        std::string why;
        for (const std::string& f : c.first_failures) why += "\n  " + f;
        EXPECT_TRUE(c.ok()) << dtype_name(dtype) << " " << name << " vocab " << vocab << ": "
                            << c.failures << " of " << c.values << " outside" << why;
      }
}

TEST(CrossEntropyKernel, SameBitsOnEveryRun) {
  CUACT_SKIP_WITHOUT_GPU();
  CrossEntropy ce;
  ce.label_smoothing = 0.1f;
  const CrossEntropyProblem p = make_cross_entropy_problem("repeat", ce, DType::bf16, 4099, 3000, 3000, 7);
  DeviceRun a, b;
  run_on_device(p, false, &a);
  run_on_device(p, false, &b);
  EXPECT_EQ(std::memcmp(&a.got.reduced, &b.got.reduced, 4), 0);
  EXPECT_EQ(a.got.loss, b.got.loss);
  EXPECT_EQ(a.dlogit_bytes, b.dlogit_bytes);
}

TEST(CrossEntropyKernel, BadTargetsGiveNanRowsAndTheFlag) {
  CUACT_SKIP_WITHOUT_GPU();
  CrossEntropy ce;
  ce.reduction = Reduction::sum;
  CrossEntropyProblem p = make_cross_entropy_problem("bad", ce, DType::f32, 6, 5000, 5000, 9, 3.0, 0.0, 0);
  p.targets[2] = 5000;
  p.targets[4] = -7;
  DeviceRun run;
  run_on_device(p, false, &run);
  EXPECT_EQ(run.bad, 1);
  EXPECT_TRUE(std::isnan(run.got.reduced));
  for (int64_t r = 0; r < 6; ++r) {
    const bool bad = r == 2 || r == 4;
    EXPECT_EQ(std::isnan(run.got.loss[r]), bad) << r;
    EXPECT_EQ(std::isnan(run.got.dlogits[static_cast<size_t>(r * 5000 + 17)]), bad) << r;
  }
}

}  // namespace
}  // namespace cuact::test
