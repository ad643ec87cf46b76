// Elements of a host buffer of any dtype as doubles, for the CPU reference:
// loads are exact; a store rounds once (reference::round_to), and the
// conversion that follows is exact.
#pragma once

#include <cstdint>

#include "cuact/device/convert.cuh"
#include "cuact/reference.h"
#include "dtype_list.h"

namespace cuact::detail {

inline double load_element(DType dtype, const void* base, int64_t i) {
  return visit_dtype(dtype, [&](auto tag) -> double {
    using T = typename decltype(tag)::type;
    return device::to_float(static_cast<const T*>(base)[i]);
  });
}

inline void store_element(DType dtype, void* base, int64_t i, double v) {
  const float rounded = static_cast<float>(reference::round_to(dtype, v));
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    static_cast<T*>(base)[i] = device::narrow<T>(rounded);
  });
}

}  // namespace cuact::detail
