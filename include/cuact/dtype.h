// Element types cuact computes on. Every buffer of one call shares one dtype;
// fp16 and bf16 data are computed in fp32 and rounded once on store.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>

namespace cuact {

enum class DType { f32, f16, bf16 };
inline constexpr int kNumDTypes = 3;

const char* dtype_name(DType dtype);  // "f32", "f16", "bf16"
std::size_t dtype_size(DType dtype);  // bytes per element

template <class T> struct DTypeOf;  // DTypeOf<float>::value == DType::f32
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<__half> { static constexpr DType value = DType::f16; };
template <> struct DTypeOf<__nv_bfloat16> { static constexpr DType value = DType::bf16; };

}  // namespace cuact
