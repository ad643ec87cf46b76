// A host image of one strided softmax buffer (cuact::SoftmaxShape): `outer`
// runs of dim*inner elements, `stride` apart, inside guard bytes, with the
// gaps between runs guarded too. Tests scatter dense problems into it,
// gather results out, and check that nothing outside the elements changed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cuact/dtype.h"

namespace cuact::test {

constexpr unsigned char kGuard = 0x7b;  // every byte outside the extents, and in the gaps

// A buffer of `outer` runs of dim*inner elements, `stride` apart, inside guard bytes.
struct StridedBuffer {
  DType dtype;
  int64_t outer, dim, inner, stride;
  size_t elem;
  size_t lead;    // bytes before the image, which starts 16-byte aligned
  size_t offset;  // the first element, in `bytes`
  size_t image_bytes;
  std::vector<unsigned char> bytes;

  StridedBuffer(DType t, int64_t o, int64_t d, int64_t i, int64_t s, size_t misalign)
      : dtype(t), outer(o), dim(d), inner(i), stride(s), elem(dtype_size(t)) {
    const int64_t extent = (outer - 1) * stride + dim * inner;
    image_bytes = static_cast<size_t>(extent) * elem + 64;
    bytes.assign(image_bytes + 16, kGuard);
    const auto base = reinterpret_cast<std::uintptr_t>(bytes.data());
    lead = (16 - base % 16) % 16;
    offset = lead + 16 + misalign * elem;
  }
  unsigned char* data() { return bytes.data() + offset; }
  // The 16-byte aligned image (guards and elements) a device copy holds;
  // its first element is at image() + element_offset().
  unsigned char* image() { return bytes.data() + lead; }
  size_t element_offset() const { return offset - lead; }
  size_t at(int64_t line, int64_t c) const {  // line = o * inner + j
    const int64_t o = line / inner, j = line % inner;
    return offset + static_cast<size_t>(o * stride + c * inner + j) * elem;
  }
  // Dense [outer*inner lines, dim] values of dtype in, or out.
  void scatter(const std::vector<unsigned char>& dense) {
    for (int64_t l = 0; l < outer * inner; ++l)
      for (int64_t c = 0; c < dim; ++c)
        std::memcpy(&bytes[at(l, c)], &dense[static_cast<size_t>(l * dim + c) * elem], elem);
  }
  std::vector<unsigned char> gather() const {
    std::vector<unsigned char> dense(static_cast<size_t>(outer * inner * dim) * elem);
    for (int64_t l = 0; l < outer * inner; ++l)
      for (int64_t c = 0; c < dim; ++c)
        std::memcpy(&dense[static_cast<size_t>(l * dim + c) * elem], &bytes[at(l, c)], elem);
    return dense;
  }
  // Bytes that are not elements of the shape still hold the guard.
  int64_t touched_guards() const {
    std::vector<char> element(bytes.size(), 0);
    for (int64_t l = 0; l < outer * inner; ++l)
      for (int64_t c = 0; c < dim; ++c) std::fill_n(&element[at(l, c)], elem, 1);
    int64_t n = 0;
    for (size_t b = 0; b < bytes.size(); ++b) n += !element[b] && bytes[b] != kGuard;
    return n;
  }
};

}  // namespace cuact::test
