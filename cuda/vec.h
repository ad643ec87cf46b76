// A small vector of N elements of T (4 to 128 bytes: one stream's part of a
// chunk) moved in accesses of up to 16 bytes (or half that where the call's
// alignment allows no more), and its conversion to and from fp32. Host and device: on the host (CPU tests) loads and stores are
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

// The 1-byte code of a quantized output element (fp8: cuact/fp8.h). A stream
// type of its own so that nothing converts it as a number: element() and
// from_floats() refuse it at compile time; the output stage (row_engine.h)
// writes it.
struct Code8 {
  uint8_t bits;
};

// The 1-byte code of a block-scaled fp8 output (output_stage.h): an fp8
// code whose block's scale the output stage writes beside it.
struct BlockCode8 {
  uint8_t bits;
};

// A byte of two NVFP4 (e2m1) codes of a block-scaled output, the first in
// the low nibble: the stream's element is the byte, two results each.
struct BlockCode4 {
  uint8_t bits;
};

// N elements of T (4 to 128 bytes: one chunk of one stream of the row engine)
// held as 32-bit words: what the row engine moves between registers, so that
// fp16/bf16 pairs and fp8 quadruples are never split. element() and
// from_floats() convert the 2- and 4-byte types.
template <class T, int N = kVecWidth<T>>
struct alignas(sizeof(T) * N < 16 ? sizeof(T) * N : 16) Vec {
  static constexpr int kBytes = static_cast<int>(sizeof(T)) * N;
  static constexpr int kWords = kBytes / 4;
  static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16 || kBytes == 32 || kBytes == 64 ||
                    kBytes == 128,
                "a chunk of one stream is 4 to 128 bytes");
  uint32_t w[kWords];
};

// Bytes per access of a stream's Vec of B bytes in a chunk of ChunkBytes on
// the widest stream: every stream moves the same elements per access, so the
// widest stream's 16-byte accesses (`wide`; 8-byte ones otherwise) are
// B * 16 / ChunkBytes (B * 8 / ChunkBytes) bytes here, the alignment the
// plan checks for this stream (row_plan.h, stream_access).
template <int B, int ChunkBytes>
CUACT_HD constexpr int piece_bytes(bool wide) {
  return B * (wide ? kVecBytes : kVecBytes / 2) / ChunkBytes;
}
// A Vec's own chunk (one stream): B bytes, at least one 16-byte access.
template <int B>
inline constexpr int kOwnChunk = B < kVecBytes ? kVecBytes : B;

template <class Pair>
CUACT_HD uint32_t bits_of_pair(const Pair& p) {
  static_assert(sizeof(Pair) == 4, "two 16-bit values");
  uint32_t u;
  memcpy(&u, &p, sizeof(u));
  return u;
}

// The types element() and from_floats() convert (numbers of 2 or 4 bytes).
template <class T>
inline constexpr bool kConvertible =
    std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

// Element j of v in fp32 (exact).
template <class T, int N>
CUACT_HD float element(const Vec<T, N>& v, int j) {
  static_assert(kConvertible<T>, "no fp32 view of this element type");
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
  static_assert(kConvertible<T>, "no rounding from fp32 to this element type here");
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

// The unsigned type of one P-byte access.
template <int P> struct Piece;
template <> struct Piece<16> { using type = uint4; };
template <> struct Piece<8> { using type = uint2; };
template <> struct Piece<4> { using type = unsigned int; };
template <> struct Piece<2> { using type = unsigned short; };

#ifdef __CUDA_ARCH__
// A vector as accesses of P bytes (`wide`) or pairs of P/2-byte ones.
template <int P, class V>
__device__ void load_pieces(V& v, const void* p, bool wide) {
  using U = typename Piece<P>::type;
  using H = typename Piece<P / 2>::type;
  CUACT_UNROLL
  for (int q = 0; q < V::kBytes / P; ++q) {
    char* to = reinterpret_cast<char*>(&v) + P * q;
    if (wide) {
      const U u = reinterpret_cast<const U*>(p)[q];
      memcpy(to, &u, P);
    } else {
      const H a = reinterpret_cast<const H*>(p)[2 * q];
      const H b = reinterpret_cast<const H*>(p)[2 * q + 1];
      memcpy(to, &a, P / 2);
      memcpy(to + P / 2, &b, P / 2);
    }
  }
}
// Stores go through __stwb (st.global.wb): an aggregate store may be split
// into scalar stores where the compiler loses track of the alignment.
template <int P, class V>
__device__ void store_pieces(void* p, const V& v, bool wide) {
  using U = typename Piece<P>::type;
  using H = typename Piece<P / 2>::type;
  CUACT_UNROLL
  for (int q = 0; q < V::kBytes / P; ++q) {
    const char* from = reinterpret_cast<const char*>(&v) + P * q;
    if (wide) {
      U u;
      memcpy(&u, from, P);
      __stwb(reinterpret_cast<U*>(p) + q, u);
    } else {
      H a, b;
      memcpy(&a, from, P / 2);
      memcpy(&b, from + P / 2, P / 2);
      __stwb(reinterpret_cast<H*>(p) + 2 * q, a);
      __stwb(reinterpret_cast<H*>(p) + 2 * q + 1, b);
    }
  }
}
#endif

// Loads the vector at p in accesses of piece_bytes (p is aligned to them):
// ChunkBytes is the call's chunk on its widest stream. `wide` is the same
// for a whole call.
template <class T, int N = kVecWidth<T>, int ChunkBytes = kOwnChunk<static_cast<int>(sizeof(T)) * N>>
CUACT_HD Vec<T, N> load_vec(const T* p, bool wide) {
  using V = Vec<T, N>;
  static_assert(sizeof(V) == V::kBytes, "no padding");
  V v;
#ifdef __CUDA_ARCH__
  load_pieces<piece_bytes<V::kBytes, ChunkBytes>(true)>(v, p, wide);
#else
  (void)wide;
  std::memcpy(static_cast<void*>(&v), p, sizeof(v));
#endif
  return v;
}

// Stores the vector at p, as load_vec reads it.
template <class T, int N, int ChunkBytes = kOwnChunk<static_cast<int>(sizeof(T)) * N>>
CUACT_HD void store_vec(T* p, const Vec<T, N>& v, bool wide) {
  using V = Vec<T, N>;
  static_assert(sizeof(V) == V::kBytes, "no padding: a store moves exactly the chunk's bytes");
#ifdef __CUDA_ARCH__
  store_pieces<piece_bytes<V::kBytes, ChunkBytes>(true)>(p, v, wide);
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
