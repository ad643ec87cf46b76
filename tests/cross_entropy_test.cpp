// The cross-entropy forward's device code, run on the host: the count
// step, the softmax kernels' rows with the cross-entropy sink under every
// algorithm (registers, block cache, cluster slices, register cluster,
// streaming), the reduce step; judged against the double reference by one
// rule per dtype (cross_entropy_accuracy.h). And the device entry point's
// argument checks (refused before any device work).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cross_entropy_accuracy.h"
#include "cuact/cross_entropy.h"
#include "element_io.h"
#include "softmax_simulation.h"

namespace cuact::test {
namespace {

std::vector<unsigned char> bytes_of(DType dtype, const std::vector<double>& v) {
  std::vector<unsigned char> b(v.size() * dtype_size(dtype) + 16);
  for (size_t i = 0; i < v.size(); ++i) detail::store_element(dtype, b.data(), static_cast<int64_t>(i), v[i]);
  return b;
}

struct CallShape {
  SoftmaxAlgorithm algorithm = SoftmaxAlgorithm::automatic;
  bool dlogits = true;
  bool in_place = false;
  bool i32 = false;
};

// Simulates the problem's call (every output asked) and judges it.
CrossEntropyCheck simulate_and_check(const CrossEntropyProblem& p, const CallShape& run,
                                     SoftmaxAlgorithm* ran = nullptr) {
  std::vector<unsigned char> x = bytes_of(p.dtype, p.logits);
  std::vector<unsigned char> w = bytes_of(p.ce.weight_dtype, p.weight);
  CrossEntropy ce = p.ce;
  ce.weight = p.weight.empty() ? nullptr : w.data();
  std::vector<int32_t> t32(p.targets.begin(), p.targets.end());
  const size_t rows = static_cast<size_t>(p.rows);
  CrossEntropyGot got;
  got.loss.assign(rows, -7.0f);
  got.lse.assign(rows, -7.0f);
  got.z_loss.assign(rows, -7.0f);
  std::vector<unsigned char> dl(x.size(), 0xAB);
  CrossEntropyOutputs out;
  out.loss = got.loss.data();
  out.lse = got.lse.data();
  out.z_loss = got.z_loss.data();
  out.reduced = &got.reduced;
  if (run.dlogits) out.dlogits = run.in_place ? x.data() : dl.data();
  int32_t bad = -1;
  out.bad_targets = &bad;
  std::vector<float> workspace(4 + rows);
  const SoftmaxAlgorithm a = simulate_cross_entropy(
      run.algorithm, ce, p.dtype, x.data(), p.rows, p.vocab, p.stride,
      run.i32 ? static_cast<const void*>(t32.data()) : p.targets.data(),
      run.i32 ? IndexType::i32 : IndexType::i64, out, {workspace.data(), workspace.size() * 4});
  if (ran != nullptr) *ran = a;
  if (run.dlogits) {
    const unsigned char* d = run.in_place ? x.data() : dl.data();
    got.dlogits.resize(p.logits.size());
    for (size_t i = 0; i < p.logits.size(); ++i)
      got.dlogits[i] = detail::load_element(p.dtype, d, static_cast<int64_t>(i));
    // The gaps between rows (stride > vocab) stay as they were.
    for (int64_t r = 0; r < p.rows; ++r)
      for (int64_t j = p.vocab; j < p.stride; ++j) {
        const size_t i = static_cast<size_t>(r * p.stride + j);
        const double before = run.in_place ? p.logits[i]
                                           : detail::load_element(p.dtype, std::vector<unsigned char>(8, 0xAB).data(), 0);
        EXPECT_EQ(got.dlogits[i], before) << "gap written at row " << r << " col " << j;
        got.dlogits[i] = 0;
      }
  }
  EXPECT_EQ(bad, 0);
  return check_cross_entropy(p, got);
}

std::string describe(const CrossEntropyCheck& c) {
  std::string s = std::to_string(c.failures) + " of " + std::to_string(c.values) + " outside";
  for (const std::string& f : c.first_failures) s += "\n  " + f;
  return s;
}

TEST(CrossEntropyKernels, EveryAlgorithmAndOptionMatchTheReference) {
  struct Shape {
    SoftmaxAlgorithm algorithm;
    int64_t rows, vocab, stride;
  };
  const Shape shapes[] = {
      {SoftmaxAlgorithm::automatic, 9, 1, 1},      {SoftmaxAlgorithm::automatic, 9, 7, 9},
      {SoftmaxAlgorithm::automatic, 6, 100, 100},  {SoftmaxAlgorithm::automatic, 5, 1000, 1003},
      {SoftmaxAlgorithm::automatic, 5, 1025, 1025}, {SoftmaxAlgorithm::automatic, 3, 4096, 4096},
      {SoftmaxAlgorithm::block_per_row, 3, 2049, 2051},
      {SoftmaxAlgorithm::cluster_per_row, 3, 50257, 50257},
      {SoftmaxAlgorithm::cluster_per_row, 2, 65536, 65536},
      {SoftmaxAlgorithm::streaming, 3, 5003, 5008},
  };
  const auto& options = cross_entropy_option_sets();
  uint64_t seed = 1;
  int64_t values = 0;
  double worst = 0;
  std::string where;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const Shape& s : shapes)
      for (const auto& [name, ce] : options) {
        if (ce.smoothing_form == LabelSmoothing::megatron && s.vocab == 1) continue;  // refused
        const CrossEntropyProblem p =
            make_cross_entropy_problem(name, ce, dtype, s.rows, s.vocab, s.stride, seed++);
        const CrossEntropyCheck c = simulate_and_check(p, {s.algorithm});
        values += c.values;
        if (c.worst_ratio > worst) {
          worst = c.worst_ratio;
          where = std::string(dtype_name(dtype)) + " " + name + " [" + std::to_string(s.rows) +
                  ", " + std::to_string(s.vocab) + "]: " + c.worst;
        }
        EXPECT_TRUE(c.ok()) << dtype_name(dtype) << " " << name << " [" << s.rows << ", "
                            << s.vocab << "] stride " << s.stride << " algorithm "
                            << static_cast<int>(s.algorithm) << ": " << describe(c);
      }
  std::printf("cross-entropy: %lld results judged, worst error %.3f of its bound (%s)\n",
              static_cast<long long>(values), worst, where.c_str());
}

TEST(CrossEntropyKernels, InPlaceInt32TargetsAndNoDlogits) {
  for (DType dtype : {DType::f32, DType::bf16})
    for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                               SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming}) {
      CrossEntropy ce;
      ce.label_smoothing = 0.05f;
      const CrossEntropyProblem p = make_cross_entropy_problem("in place", ce, dtype, 4, 512, 520, 3);
      const CallShape in_place{a, true, true, true};
      EXPECT_TRUE(simulate_and_check(p, in_place).ok()) << static_cast<int>(a);
      const CallShape forward_only{a, false, false, false};
      EXPECT_TRUE(simulate_and_check(p, forward_only).ok()) << static_cast<int>(a);
    }
}

// Large logits (|z| ~ 1e4) and rows where the target's probability
// underflows: the loss is lse - z_t, not -log(p_t) of a rounded p.
TEST(CrossEntropyKernels, LargeLogitsKeepTheLoss) {
  CrossEntropy ce;
  ce.reduction = Reduction::sum;
  for (DType dtype : {DType::f32, DType::bf16}) {
    const CrossEntropyProblem p =
        make_cross_entropy_problem("large", ce, dtype, 6, 3000, 3000, 11, 300.0, 1e4, 0);
    const CrossEntropyCheck c = simulate_and_check(p, {});
    EXPECT_TRUE(c.ok()) << describe(c);
  }
}

TEST(CrossEntropyKernels, EmptyMeanIsNanOrZero) {
  for (bool zero : {false, true}) {
    CrossEntropy ce;
    ce.empty_mean_is_zero = zero;
    CrossEntropyProblem p = make_cross_entropy_problem("all ignored", ce, DType::f32, 4, 64, 64, 5);
    for (int64_t& t : p.targets) t = ce.ignore_index;
    std::vector<unsigned char> x = bytes_of(DType::f32, p.logits);
    std::vector<float> loss(4, -1), dl(4 * 64, -1), workspace(8);
    float reduced = -1;
    CrossEntropyOutputs out;
    out.loss = loss.data();
    out.reduced = &reduced;
    out.dlogits = dl.data();
    simulate_cross_entropy(SoftmaxAlgorithm::automatic, ce, DType::f32, x.data(), 4, 64, 64,
                           p.targets.data(), IndexType::i64, out, {workspace.data(), 32});
    if (zero) EXPECT_EQ(reduced, 0.0f);
    else EXPECT_TRUE(std::isnan(reduced));
    for (float v : loss) EXPECT_EQ(v, 0.0f);
    for (float v : dl) EXPECT_EQ(v, 0.0f);
  }
}

// The backward from the saved lse: the forward's lse (simulated), an
// upstream gradient (one word, or per row for none), dlogits apart and in
// place, every option set and dtype, widths 1 to 50,257.
TEST(CrossEntropyKernels, BackwardFromLseMatchesTheReference) {
  const int64_t shapes[][3] = {{9, 1, 1}, {6, 100, 103}, {5, 1025, 1025}, {3, 50257, 50257}};
  uint64_t seed = 100;
  int64_t values = 0;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const auto& s : shapes)
      for (const auto& [name, ce] : cross_entropy_option_sets())
        for (bool in_place : {false, true}) {
          if (ce.smoothing_form == LabelSmoothing::megatron && s[1] == 1) continue;
          const CrossEntropyProblem p =
              make_cross_entropy_problem(name, ce, dtype, s[0], s[1], s[2], seed++);
          std::vector<unsigned char> x = bytes_of(dtype, p.logits);
          std::vector<unsigned char> w = bytes_of(ce.weight_dtype, p.weight);
          CrossEntropy call = ce;
          call.weight = p.weight.empty() ? nullptr : w.data();
          // The forward's lse, then the backward over the same logits.
          std::vector<float> lse(static_cast<size_t>(p.rows)), words(4 + p.rows);
          float reduced = 0;
          CrossEntropyOutputs out;
          out.lse = lse.data();
          out.reduced = &reduced;
          simulate_cross_entropy(SoftmaxAlgorithm::automatic, call, dtype, x.data(), p.rows,
                                 p.vocab, p.stride, p.targets.data(), IndexType::i64, out,
                                 {words.data(), words.size() * 4});
          std::vector<float> dloss(ce.reduction == Reduction::none ? p.rows : 1);
          for (size_t i = 0; i < dloss.size(); ++i) dloss[i] = 0.5f - 0.25f * static_cast<float>(i % 5);
          std::vector<unsigned char> dl(x.size(), 0xAB);
          simulate_cross_entropy_backward(call, dtype, x.data(), p.rows, p.vocab, p.stride,
                                          p.targets.data(), IndexType::i64, lse.data(),
                                          dloss.data(), in_place ? x.data() : dl.data(),
                                          {words.data(), 16});
          CrossEntropyGot got;
          const unsigned char* d = in_place ? x.data() : dl.data();
          got.dlogits.resize(p.logits.size());
          for (size_t i = 0; i < p.logits.size(); ++i)
            got.dlogits[i] = detail::load_element(dtype, d, static_cast<int64_t>(i));
          for (int64_t r = 0; r < p.rows; ++r)  // the gaps between rows: not judged
            for (int64_t j = p.vocab; j < p.stride; ++j)
              got.dlogits[static_cast<size_t>(r * p.stride + j)] = 0;
          const CrossEntropyCheck c = check_cross_entropy(p, got, &dloss);
          values += c.values;
          EXPECT_TRUE(c.ok()) << dtype_name(dtype) << " " << name << " [" << s[0] << ", " << s[1]
                              << "]" << (in_place ? " in place" : "") << ": " << describe(c);
        }
  std::printf("cross-entropy backward: %lld results judged\n", static_cast<long long>(values));
}

// A target that is neither a class nor ignore_index: the device's defined
// result (the row's loss and dlogits NaN, the flag set), never a read out
// of the row.
TEST(CrossEntropyKernels, BadTargetsGiveNanRowsAndTheFlag) {
  CrossEntropy ce;
  ce.reduction = Reduction::sum;
  CrossEntropyProblem p = make_cross_entropy_problem("bad", ce, DType::f32, 5, 100, 100, 9, 3.0, 0.0, 0);
  p.targets[1] = 100;
  p.targets[3] = -5;
  std::vector<unsigned char> x = bytes_of(DType::f32, p.logits);
  std::vector<float> loss(5), dl(500), workspace(16);
  float reduced = 0;
  int32_t bad = 0;
  CrossEntropyOutputs out;
  out.loss = loss.data();
  out.reduced = &reduced;
  out.dlogits = dl.data();
  out.bad_targets = &bad;
  for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                             SoftmaxAlgorithm::streaming}) {
    simulate_cross_entropy(a, ce, DType::f32, x.data(), 5, 100, 100, p.targets.data(),
                           IndexType::i64, out, {workspace.data(), 64});
    EXPECT_EQ(bad, 1);
    EXPECT_TRUE(std::isnan(reduced));
    for (int64_t r = 0; r < 5; ++r) {
      const bool is_bad = r == 1 || r == 3;
      EXPECT_EQ(std::isnan(loss[r]), is_bad) << r;
      for (int j = 0; j < 100; ++j) EXPECT_EQ(std::isnan(dl[r * 100 + j]), is_bad) << r << " " << j;
    }
  }
}

// Rows whose logits are all -inf: lse -inf; counted, loss, z-loss and
// dlogits NaN (PyTorch's NaN), the mean NaN through them; ignored, 0. The
// same from the reference, every algorithm, and the backward from the lse.
TEST(CrossEntropyKernels, AllMinusInfinityRows) {
  for (const float z_loss : {0.0f, 1e-4f}) {
    CrossEntropy ce;
    ce.reduction = Reduction::mean;
    ce.z_loss = z_loss;
    const int64_t rows = 4, vocab = 100;
    CrossEntropyProblem p = make_cross_entropy_problem("-inf rows", ce, DType::f32, rows, vocab, vocab, 9, 3.0, 0.0, 0);
    for (int64_t r : {1, 2})
      for (int64_t j = 0; j < vocab; ++j) p.logits[r * vocab + j] = -INFINITY;
    p.targets[2] = ce.ignore_index;
    std::vector<unsigned char> x = bytes_of(DType::f32, p.logits);
    std::vector<float> ref_loss(rows), ref_lse(rows), ref_zl(rows), ref_dl(rows * vocab);
    float ref_reduced = 0;
    CrossEntropyOutputs ref_out;
    ref_out.loss = ref_loss.data();
    ref_out.lse = ref_lse.data();
    ref_out.z_loss = ref_zl.data();
    ref_out.reduced = &ref_reduced;
    ref_out.dlogits = ref_dl.data();
    ASSERT_TRUE(reference::cross_entropy_forward(ce, DType::f32, x.data(), rows, vocab, vocab, p.targets.data(),
                                                 IndexType::i64, ref_out)
                    .ok());
    EXPECT_EQ(ref_lse[1], -INFINITY);
    EXPECT_EQ(ref_lse[2], -INFINITY);
    EXPECT_TRUE(std::isnan(ref_loss[1]) && std::isnan(ref_zl[1]) && std::isnan(ref_reduced));
    EXPECT_EQ(ref_loss[2], 0.0f);
    for (int64_t j = 0; j < vocab; ++j) {
      EXPECT_TRUE(std::isnan(ref_dl[vocab + j]));
      EXPECT_EQ(ref_dl[2 * vocab + j], 0.0f);
    }
    for (SoftmaxAlgorithm a : {SoftmaxAlgorithm::warp_per_row, SoftmaxAlgorithm::block_per_row,
                               SoftmaxAlgorithm::cluster_per_row, SoftmaxAlgorithm::streaming}) {
      std::vector<float> loss(rows), lse(rows), zl(rows), dl(rows * vocab), workspace(16);
      float reduced = 0;
      int32_t bad = -1;
      CrossEntropyOutputs out;
      out.loss = loss.data();
      out.lse = lse.data();
      out.z_loss = zl.data();
      out.reduced = &reduced;
      out.dlogits = dl.data();
      out.bad_targets = &bad;
      simulate_cross_entropy(a, ce, DType::f32, x.data(), rows, vocab, vocab, p.targets.data(),
                             IndexType::i64, out, {workspace.data(), 64});
      EXPECT_EQ(bad, 0);
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_EQ(std::isnan(loss[r]), std::isnan(ref_loss[r])) << r;
        EXPECT_EQ(std::isnan(zl[r]), std::isnan(ref_zl[r])) << r;
        if (r != 1 && r != 2) continue;
        EXPECT_EQ(lse[r], -INFINITY) << r;
        EXPECT_EQ(std::isnan(loss[r]) ? 0.0f : loss[r], std::isnan(ref_loss[r]) ? 0.0f : ref_loss[r]);
        for (int64_t j = 0; j < vocab; ++j) {
          EXPECT_EQ(std::isnan(dl[r * vocab + j]) ? 1.0f : dl[r * vocab + j],
                    std::isnan(ref_dl[r * vocab + j]) ? 1.0f : ref_dl[r * vocab + j])
              << r << " " << j;
        }
      }
      EXPECT_TRUE(std::isnan(reduced));
      // The backward from the saved lse gives the same rows.
      std::vector<float> bdl(rows * vocab, 5.0f);
      const float dloss = 1.0f;
      simulate_cross_entropy_backward(ce, DType::f32, x.data(), rows, vocab, vocab, p.targets.data(),
                                      IndexType::i64, lse.data(), &dloss, bdl.data(),
                                      {workspace.data(), 64});
      for (int64_t j = 0; j < vocab; ++j) {
        EXPECT_TRUE(std::isnan(bdl[vocab + j])) << j;
        EXPECT_EQ(bdl[2 * vocab + j], 0.0f) << j;
      }
    }
  }
}

// The device entry point refuses bad arguments before any device work
// (so these run without a GPU), each with its named status.
TEST(CrossEntropyApi, RefusesBadArguments) {
  alignas(16) static float logits[64] = {};
  alignas(16) static int64_t targets[4] = {};
  alignas(16) static float words[64] = {};
  float reduced = 0;
  CrossEntropy ce;
  CrossEntropyOutputs out;
  out.reduced = &reduced;
  size_t need = 0;
  ASSERT_TRUE(cross_entropy_forward_workspace_size(ce, 4, out, &need).ok());
  EXPECT_EQ(need, 16u + 16u);  // the words, and the rows' losses a mean reads
  const Workspace ws{words, need};
  auto call = [&](const CrossEntropy& c, DType dtype, const void* x, int64_t rows, int64_t vocab,
                  int64_t stride, const CrossEntropyOutputs& o, Workspace w) {
    return cross_entropy_forward(c, dtype, x, rows, vocab, stride, targets, IndexType::i64, o, w)
        .code();
  };
  EXPECT_EQ(call(ce, DType::f32, logits, -1, 16, 16, out, ws), StatusCode::invalid_size);
  EXPECT_EQ(call(ce, DType::f32, logits, 4, 0, 16, out, ws), StatusCode::invalid_size);
  EXPECT_EQ(call(ce, DType::f32, logits, 4, 16, 8, out, ws), StatusCode::invalid_size);
  EXPECT_EQ(call(ce, DType::f32, logits, 1, (int64_t{1} << 24) + 1, int64_t{1} << 25, out, ws),
            StatusCode::invalid_size);
  EXPECT_EQ(call(ce, DType::f32, nullptr, 4, 16, 16, out, ws), StatusCode::null_pointer);
  EXPECT_EQ(call(ce, static_cast<DType>(99), logits, 4, 16, 16, out, ws),
            StatusCode::invalid_parameter);
  CrossEntropy bad = ce;
  bad.label_smoothing = 1.5f;
  EXPECT_EQ(call(bad, DType::f32, logits, 4, 16, 16, out, ws), StatusCode::invalid_parameter);
  bad = ce;
  bad.softcap = -1.0f;
  EXPECT_EQ(call(bad, DType::f32, logits, 4, 16, 16, out, ws), StatusCode::invalid_parameter);
  bad = ce;
  bad.smoothing_form = LabelSmoothing::megatron;
  bad.weight = logits;
  EXPECT_EQ(call(bad, DType::f32, logits, 4, 16, 16, out, ws), StatusCode::invalid_parameter);
  CrossEntropyOutputs no_reduced;
  EXPECT_EQ(call(ce, DType::f32, logits, 4, 16, 16, no_reduced, ws), StatusCode::null_pointer);
  EXPECT_EQ(call(ce, DType::f32, logits, 4, 16, 16, out, {words, need - 4}),
            StatusCode::invalid_size);
  EXPECT_EQ(call(ce, DType::f32, logits, 4, 16, 16, out, {}), StatusCode::null_pointer);
  CrossEntropyOutputs misaligned = out;
  misaligned.lse = reinterpret_cast<float*>(reinterpret_cast<char*>(words) + 34);
  EXPECT_EQ(call(ce, DType::f32, logits, 4, 16, 16, misaligned, ws),
            StatusCode::misaligned_pointer);
  CrossEntropyOutputs overlapping = out;
  overlapping.loss = logits + 2;  // inside the logits (which are not written)
  EXPECT_EQ(call(ce, DType::f32, logits, 4, 16, 16, overlapping, ws),
            StatusCode::overlapping_buffers);
  // The backward: its buffers as the forward's, plus lse and dloss.
  size_t backward_bytes = 0;
  ASSERT_TRUE(cross_entropy_backward_workspace_size(&backward_bytes).ok());
  EXPECT_EQ(backward_bytes, 16u);
  auto backward = [&](const float* lse, const float* dloss, void* dlogits, Workspace w) {
    return cross_entropy_backward(ce, DType::f32, logits, 4, 16, 16, targets, IndexType::i64, lse,
                                  dloss, dlogits, w)
        .code();
  };
  float* lse = words + 8;
  float* dloss = words + 12;
  EXPECT_EQ(backward(nullptr, dloss, logits, ws), StatusCode::null_pointer);
  EXPECT_EQ(backward(lse, nullptr, logits, ws), StatusCode::null_pointer);
  EXPECT_EQ(backward(lse, dloss, nullptr, ws), StatusCode::null_pointer);
  EXPECT_EQ(backward(lse, dloss, logits, {}), StatusCode::null_pointer);
  EXPECT_EQ(backward(lse, dloss, logits, {words + 32, 8}), StatusCode::invalid_size);
  EXPECT_EQ(backward(lse, dloss, logits + 1, ws), StatusCode::overlapping_buffers);
  EXPECT_EQ(backward(lse, dloss, words, ws), StatusCode::overlapping_buffers);  // over lse
  EXPECT_EQ(backward(reinterpret_cast<float*>(reinterpret_cast<char*>(lse) + 2), dloss, logits,
                     ws),
            StatusCode::misaligned_pointer);
  CrossEntropyOutputs shifted = out;
  shifted.dlogits = logits + 1;  // partly over the logits: only the logits exactly are allowed
  EXPECT_EQ(call(ce, DType::f32, logits, 3, 16, 16, shifted, ws), StatusCode::overlapping_buffers);
}

}  // namespace
}  // namespace cuact::test
