// The elementwise engine's index plan, walked on the CPU exactly as the
// kernel walks it: every element is covered once, packs are 16-byte aligned
// in every buffer, nothing outside [0, n) is touched, for every length and
// pointer offset in the grid and several grid sizes.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "argument_checks.h"
#include "pack_plan.h"

namespace cuact::detail {
namespace {

const int64_t kLengths[] = {0, 1, 7, 8, 9, 31, 1023, (int64_t{1} << 20) + 3};
constexpr std::uintptr_t kBase = 0x7f0000000000;  // a 16-byte aligned address

struct PlanCase {
  int elem_size;
  int64_t n;
  int in_offset, out_offset;  // bytes past a 16-byte boundary
  int grid_threads;           // total threads walking the plan
};

void walk_and_check(const PlanCase& c) {
  const std::uintptr_t addresses[2] = {kBase + c.out_offset, kBase + 4096 + c.in_offset};
  const PackPlan plan = make_pack_plan(c.n, c.elem_size, addresses, 2);
  std::vector<uint8_t> hits(static_cast<size_t>(c.n), 0);
  int64_t out_of_range = 0, misaligned_packs = 0;
  const int width = kPackBytes / c.elem_size;
  for (int64_t t = 0; t < c.grid_threads; ++t) {
    for_each_assigned(
        plan, t, c.grid_threads,
        [&](int64_t first) {
          for (const std::uintptr_t a : addresses)
            if ((a + first * c.elem_size) % kPackBytes != 0) ++misaligned_packs;
          for (int j = 0; j < width; ++j) {
            if (first + j < 0 || first + j >= c.n) ++out_of_range;
            else ++hits[first + j];
          }
        },
        [&](int64_t i) {
          if (i < 0 || i >= c.n) ++out_of_range;
          else ++hits[i];
        });
  }
  EXPECT_EQ(out_of_range, 0);
  EXPECT_EQ(misaligned_packs, 0);
  int64_t not_once = 0;
  for (uint8_t h : hits) not_once += h != 1;
  EXPECT_EQ(not_once, 0) << "elements covered zero or several times";
  if (c.in_offset == c.out_offset && c.n >= 2 * width) {
    EXPECT_GT(plan.packs, 0) << "equally aligned buffers must take the vector path";
  }
  if (c.in_offset != c.out_offset) {
    EXPECT_EQ(plan.packs, 0);
  }
}

class PackPlanWalk : public testing::TestWithParam<int> {};  // param: element size

TEST_P(PackPlanWalk, CoversEveryElementOnceForEveryLengthAndOffset) {
  const int elem = GetParam();
  for (int64_t n : kLengths)
    for (int in_off = 0; in_off < kPackBytes; in_off += elem)
      for (int out_off : {in_off, (in_off + elem) % kPackBytes})
        for (int threads : {1, 256, 3 * 256 + 0, 132 * 2048}) {
          if (n > 4096 && threads == 1) continue;  // same plan, just slow to walk
          SCOPED_TRACE(testing::Message() << "elem=" << elem << " n=" << n << " in_off="
                                          << in_off << " out_off=" << out_off
                                          << " threads=" << threads);
          walk_and_check({elem, n, in_off, out_off, threads});
          if (HasFatalFailure() || HasNonfatalFailure()) return;
        }
}

INSTANTIATE_TEST_SUITE_P(ElementSizes, PackPlanWalk, testing::Values(2, 4),
                         [](const auto& info) { return "bytes" + std::to_string(info.param); });

TEST(PackPlan, ThreeBuffersMustShareTheirOffset) {
  const std::uintptr_t same[3] = {kBase + 4, kBase + 4100, kBase + 8196};
  const std::uintptr_t differ[3] = {kBase + 4, kBase + 4100, kBase + 8200};
  EXPECT_GT(make_pack_plan(1000, 4, same, 3).packs, 0);
  EXPECT_EQ(make_pack_plan(1000, 4, differ, 3).packs, 0);
  EXPECT_EQ(make_pack_plan(1000, 4, differ, 3).scalar_count(), 1000);
}

TEST(PackPlan, HeadRunsToTheFirstBoundary) {
  const std::uintptr_t a[1] = {kBase + 6};  // 2-byte elements: 5 before the boundary
  const PackPlan p = make_pack_plan(100, 2, a, 1);
  EXPECT_EQ(p.head, 5);
  EXPECT_EQ(p.packs, (100 - 5) / 8);
  EXPECT_EQ(p.scalar_count(), 100 - p.packs * 8);
}

TEST(PackPlan, IndicesAre64Bit) {
  const std::uintptr_t a[2] = {kBase, kBase + 16};
  const int64_t n = (int64_t{1} << 33) + 5;  // more than 2^32 elements
  const PackPlan p = make_pack_plan(n, 2, a, 2);
  EXPECT_EQ(p.packs, n / 8);
  EXPECT_EQ(p.pack_start(p.packs - 1) + 8, p.packs * 8);
  EXPECT_EQ(p.scalar_index(p.scalar_count() - 1), n - 1);
}

TEST(LaunchGeometry, CoversTheWorkOrCapsAtWaves) {
  for (int64_t work : {int64_t{1}, int64_t{255}, int64_t{256}, int64_t{257}, int64_t{1} << 20,
                       int64_t{1} << 34}) {
    const LaunchGeometry g = elementwise_geometry(work, 132, 2048);
    EXPECT_EQ(g.threads, kBlockThreads);
    EXPECT_GE(g.blocks, 1);
    EXPECT_LE(g.blocks, 132 * (2048 / kBlockThreads) * kWaves);
    const int64_t needed = (work + kBlockThreads - 1) / kBlockThreads;
    if (needed <= 132 * 8 * kWaves) {
      EXPECT_EQ(g.blocks, needed);
    }
  }
  EXPECT_GE(elementwise_geometry(1000, 0, 0).blocks, 1);  // nonsense attributes still launch
}

TEST(PackPlan, TheApiRejectsPointersNotAlignedToTheirElement) {
  alignas(16) static float buffer[64];
  const char* base = reinterpret_cast<const char*>(buffer);
  for (int off = 1; off < 4; ++off) {
    const Status s = check_activation_call(Direction::forward, Activation::relu(), DType::f32,
                                           base + off, nullptr, buffer + 32, 8);
    EXPECT_EQ(s.code(), StatusCode::misaligned_pointer) << "offset " << off;
  }
}

}  // namespace
}  // namespace cuact::detail
