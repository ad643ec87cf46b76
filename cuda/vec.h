// A small vector of N elements of T (16 or 32 bytes) moved as 16-byte
// accesses (or 8-byte ones where a stream's alignment allows no more), and
// its conversion to and from fp32. Host and device: on the host (CPU tests) loads and stores are
// memcpy, which keeps strict aliasing intact.
#pragma once

#include <vector_types.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuact/device/config.h"
#include "cuact/device/convert.cuh"
#include "cuact/device/float_math.cuh"

namespace cuact::detail {

inline constexpr int kVecBytes = 16;

// Elements of T in one 16-byte access.
template <class T>
inline constexpr int kVecWidth = kVecBytes / static_cast<int>(sizeof(T));

// N elements of T (16 or 32 bytes: one chunk of the row engine) held as
// 32-bit words: what the row engine moves between registers, so that
// fp16/bf16 pairs are never split into 16-bit halves. element() and
// from_floats() convert.
template <class T, int N = kVecWidth<T>>
struct alignas(16) Vec {
  static constexpr int kBytes = static_cast<int>(sizeof(T)) * N;
  static constexpr int kWords = kBytes / 4;
  static constexpr int kAccesses = kBytes / kVecBytes;  // 16-byte pieces
  static_assert(kBytes == 16 || kBytes == 32, "one or two 16-byte accesses");
  uint32_t w[kWords];
};

template <class Pair>
CUACT_HD uint32_t bits_of_pair(const Pair& p) {
  static_assert(sizeof(Pair) == 4, "two 16-bit values");
  uint32_t u;
  memcpy(&u, &p, sizeof(u));
  return u;
}

// Element j of v in fp32 (exact).
template <class T, int N>
CUACT_HD float element(const Vec<T, N>& v, int j) {
  if constexpr (sizeof(T) == 4) {
    return device::bits_float(v.w[j]);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const uint32_t word = v.w[j / 2];
    return device::bits_float((j & 1) != 0 ? word & 0xffff0000u : word << 16);
  } else {
    __half_raw r;
    r.x = static_cast<unsigned short>(v.w[j / 2] >> (16 * (j & 1)));
    return device::to_float(__half(r));
  }
}

// The vector of the N values y, each rounded once to T (to nearest even).
template <class T, int N>
CUACT_HD Vec<T, N> from_floats(const float (&y)[N]) {
  Vec<T, N> v;
  CUACT_UNROLL
  for (int q = 0; q < Vec<T, N>::kWords; ++q) {
    if constexpr (sizeof(T) == 4) {
      uint32_t u;
      memcpy(&u, &y[q], sizeof(u));
      v.w[q] = u;
    } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      v.w[q] = bits_of_pair(__floats2bfloat162_rn(y[2 * q], y[2 * q + 1]));
    } else {
      v.w[q] = bits_of_pair(__floats2half2_rn(y[2 * q], y[2 * q + 1]));
    }
  }
  return v;
}

// Loads the vector at p: per 16 bytes one 128-bit access (wide: p is 16-byte
// aligned) or two 64-bit ones (p is 8-byte aligned). `wide` is the same for
// a whole call.
template <class T, int N = kVecWidth<T>>
CUACT_HD Vec<T, N> load_vec(const T* p, bool wide) {
  static_assert(sizeof(Vec<T, N>) == Vec<T, N>::kBytes, "no padding");
  Vec<T, N> v;
#ifdef __CUDA_ARCH__
  CUACT_UNROLL
  for (int q = 0; q < Vec<T, N>::kAccesses; ++q) {
    char* to = reinterpret_cast<char*>(&v) + kVecBytes * q;
    if (wide) {
      const uint4 u = reinterpret_cast<const uint4*>(p)[q];
      memcpy(to, &u, 16);
    } else {
      const uint2 a = reinterpret_cast<const uint2*>(p)[2 * q];
      const uint2 b = reinterpret_cast<const uint2*>(p)[2 * q + 1];
      memcpy(to, &a, 8);
      memcpy(to + 8, &b, 8);
    }
  }
#else
  (void)wide;
  std::memcpy(static_cast<void*>(&v), p, sizeof(v));
#endif
  return v;
}

// Stores the vector at p, as load_vec reads it. The 128-bit store goes through
// __stwb (st.global.wb.v4): an aggregate store may be split into scalar
// stores where the compiler loses track of the alignment.
template <class T, int N>
CUACT_HD void store_vec(T* p, const Vec<T, N>& v, bool wide) {
#ifdef __CUDA_ARCH__
  CUACT_UNROLL
  for (int q = 0; q < Vec<T, N>::kAccesses; ++q) {
    const char* from = reinterpret_cast<const char*>(&v) + kVecBytes * q;
    if (wide) {
      uint4 u;
      memcpy(&u, from, 16);
      __stwb(reinterpret_cast<uint4*>(p) + q, u);
    } else {
      uint2 a, b;
      memcpy(&a, from, 8);
      memcpy(&b, from + 8, 8);
      __stwb(reinterpret_cast<uint2*>(p) + 2 * q, a);
      __stwb(reinterpret_cast<uint2*>(p) + 2 * q + 1, b);
    }
  }
#else
  (void)wide;
  std::memcpy(static_cast<void*>(p), &v, sizeof(v));
#endif
}

template <class T, int N>
CUACT_HD void widen(const Vec<T, N>& v, float (&out)[N]) {
  CUACT_UNROLL
  for (int j = 0; j < N; ++j) out[j] = element(v, j);
}

CUACT_HD bool aligned_to(const void* p, int bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % static_cast<std::uintptr_t>(bytes) == 0;
}

}  // namespace cuact::detail
