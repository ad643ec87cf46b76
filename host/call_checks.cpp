#include "call_checks.h"

#include <cstdint>
#include <limits>

#include "dtype_list.h"

namespace cuact::detail {

bool spans_overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  if (a == nullptr || b == nullptr || a_bytes <= 0 || b_bytes <= 0) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a);
  const auto pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb ? pb - pa < static_cast<std::uintptr_t>(a_bytes)
                 : pa - pb < static_cast<std::uintptr_t>(b_bytes);
}

Status checked_bytes(int64_t element, int64_t a, int64_t b, int64_t c, int64_t* bytes) {
  const int64_t max = std::numeric_limits<std::ptrdiff_t>::max() / element;
  int64_t n = 1;
  for (const int64_t v : {a, b, c}) {
    if (v == 0) {
      *bytes = 0;
      return {};
    }
    if (n > max / v) return {StatusCode::invalid_size, "the tensor does not fit in the address space"};
    n *= v;
  }
  *bytes = n * element;
  return {};
}

Status check_dtype(DType dtype) {
  return known_dtype(dtype) ? Status{} : Status{StatusCode::invalid_parameter, "unknown dtype"};
}

Status check_param_dtype(DType dtype, DType param_dtype) {
  if (!known_dtype(param_dtype)) return {StatusCode::invalid_parameter, "unknown parameter dtype"};
  if (param_dtype != dtype && param_dtype != DType::f32)
    return {StatusCode::unsupported,
            "a parameter (bias, weight) is in the data's dtype or in f32"};
  return {};
}

Status check_buffers(const Buffer* buffers, int count) {
  for (int i = 0; i < count; ++i) {
    const Buffer& b = buffers[i];
    if (b.required && b.bytes > 0 && b.data == nullptr) return {StatusCode::null_pointer, b.name.null};
  }
  for (int i = 0; i < count; ++i) {
    const Buffer& b = buffers[i];
    if (b.data != nullptr && b.bytes > 0 && reinterpret_cast<std::uintptr_t>(b.data) % b.element != 0)
      return {StatusCode::misaligned_pointer, b.name.misaligned};
  }
  for (int j = 0; j < count; ++j)
    for (int i = 0; i < j; ++i) {
      const Buffer& a = buffers[i];
      const Buffer& b = buffers[j];
      if (!(a.output || b.output) || !spans_overlap(a.data, a.bytes, b.data, b.bytes)) continue;
      const bool group = a.alias != 0 && a.alias == b.alias;
      if (group && a.data == b.data && a.bytes == b.bytes) continue;  // in place
      if (group)
        return {StatusCode::overlapping_buffers,
                "the output partially overlaps an input (only exact aliasing is allowed)"};
      return {StatusCode::overlapping_buffers, (b.output ? b : a).name.overlap};
    }
  return {};
}

}  // namespace cuact::detail
