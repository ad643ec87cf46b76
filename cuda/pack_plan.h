// The elementwise engine's index plan, kept apart from the kernel so that CPU
// tests can walk exactly the assignment the kernel makes.
//
// n elements split into [head scalars][packs of `width` elements][tail scalars]:
// the head runs up to the first 16-byte boundary, the packs are 16-byte
// aligned in every buffer, the tail is what is left. When the buffers do not
// share their offset modulo 16 bytes, no pack lines up in all of them and
// every element is a scalar (the correct, slower fallback).
#pragma once

#include <cstdint>

#include "float_math.cuh"

namespace cuact::detail {

inline constexpr int kPackBytes = 16;

// kPackBytes of T read or written as one 128-bit access.
template <class T>
struct alignas(kPackBytes) Pack {
  static constexpr int kWidth = kPackBytes / static_cast<int>(sizeof(T));
  T v[kWidth];
};

struct PackPlan {
  int64_t n = 0;
  int64_t head = 0;   // scalar elements before the first pack
  int64_t packs = 0;  // whole packs
  int width = 1;      // elements per pack

  CUACT_HD int64_t pack_start(int64_t p) const { return head + p * width; }
  CUACT_HD int64_t scalar_count() const { return n - packs * width; }
  // The s-th scalar element: the head first, then the tail after the packs.
  CUACT_HD int64_t scalar_index(int64_t s) const { return s < head ? s : s + packs * width; }
  // Work items one thread handles per loop trip: the longer of the two loops.
  CUACT_HD int64_t work_items() const {
    return packs > scalar_count() ? packs : scalar_count();
  }
};

// `addresses` are the byte addresses of every buffer the kernel touches, each
// aligned to elem_size (the API checks this first).
CUACT_HD PackPlan make_pack_plan(int64_t n, int elem_size, const std::uintptr_t* addresses,
                                 int count) {
  PackPlan plan;
  plan.n = n;
  plan.width = kPackBytes / elem_size;
  const std::uintptr_t offset = addresses[0] % kPackBytes;
  for (int i = 1; i < count; ++i) {
    if (addresses[i] % kPackBytes != offset) {
      plan.head = n;  // no common alignment: all scalars
      return plan;
    }
  }
  const int64_t head = static_cast<int64_t>((kPackBytes - offset) % kPackBytes) / elem_size;
  plan.head = head < n ? head : n;
  plan.packs = (n - plan.head) / plan.width;
  return plan;
}

// The grid-stride assignment: thread `thread` of `num_threads` handles packs
// thread, thread + num_threads, ... and then scalars likewise. on_pack gets
// the first element index of a pack, on_scalar an element index.
template <class OnPack, class OnScalar>
CUACT_HD void for_each_assigned(const PackPlan& plan, int64_t thread, int64_t num_threads,
                                OnPack&& on_pack, OnScalar&& on_scalar) {
  for (int64_t p = thread; p < plan.packs; p += num_threads) on_pack(plan.pack_start(p));
  const int64_t scalars = plan.scalar_count();
  for (int64_t s = thread; s < scalars; s += num_threads) on_scalar(plan.scalar_index(s));
}

// Launch geometry: 256-thread blocks, enough for every work item but capped at
// `waves` full waves of resident blocks, so long arrays loop instead of
// launching millions of blocks.
struct LaunchGeometry {
  int blocks = 0;
  int threads = 0;
};
inline constexpr int kBlockThreads = 256;
inline constexpr int kWaves = 32;

CUACT_HD LaunchGeometry elementwise_geometry(int64_t work_items, int sm_count,
                                             int max_threads_per_sm) {
  const int64_t needed = (work_items + kBlockThreads - 1) / kBlockThreads;
  int64_t resident = static_cast<int64_t>(sm_count) * (max_threads_per_sm / kBlockThreads);
  if (resident < 1) resident = 1;
  const int64_t cap = resident * kWaves;
  int64_t blocks = needed < cap ? needed : cap;
  if (blocks < 1) blocks = 1;
  return {static_cast<int>(blocks), kBlockThreads};
}

}  // namespace cuact::detail
