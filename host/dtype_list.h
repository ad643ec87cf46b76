// The one list of element types cuact computes on: the dispatch, the
// argument checks and the CPU reference's loads and stores all follow it.
// Adding a dtype: its DType (include/cuact/dtype.h), its case here, its
// conversions (include/cuact/device/convert.cuh) and its kernel units
// (CMakeLists.txt) — README.md, "Adding a dtype".
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuact/dtype.h"

namespace cuact::detail {

template <class T>
struct TypeTag {
  using type = T;
};

// What the CPU reference and the descriptors know of a type: its name, and
// its floating-point format (significand bits with the hidden one, the
// smallest normal exponent, the largest finite value) for rounding.
struct DTypeFormat {
  const char* name;
  int digits;
  int min_exponent;
  double max;
};
template <class T> inline constexpr DTypeFormat kFormat{};
template <> inline constexpr DTypeFormat kFormat<float>{"f32", 24, -126, 3.4028234663852886e38};
template <> inline constexpr DTypeFormat kFormat<__half>{"f16", 11, -14, 65504.0};
template <> inline constexpr DTypeFormat kFormat<__nv_bfloat16>{"bf16", 8, -126, 3.3895313892515355e38};

inline bool known_dtype(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16;
}

// fn(TypeTag<T>{}) for the C++ type T of dtype (checked with known_dtype first).
template <class Fn>
decltype(auto) visit_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f16: return fn(TypeTag<__half>{});
    case DType::bf16: return fn(TypeTag<__nv_bfloat16>{});
    default: return fn(TypeTag<float>{});
  }
}

}  // namespace cuact::detail
