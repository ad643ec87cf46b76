// The one argument checker of every entry point: a call declares its
// buffers (what each is, how many bytes it spans, its element size, whether
// it is written, which buffers it may be in place of) and its sizes, and
// check_buffers rejects, in this order, a missing buffer, a misaligned one
// and an overlap, each with a status that names the buffer. The device
// entry points and the CPU reference use the same declarations, so both
// reject exactly the same calls.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuact/dtype.h"
#include "cuact/status.h"

namespace cuact::detail {

// The static texts a buffer's statuses carry (Status details are static).
struct BufferName {
  const char* null;        // "x is null"
  const char* misaligned;  // "x is not aligned to its element size"
  const char* overlap;     // "x overlaps another buffer"
};
namespace buffer {
inline constexpr BufferName x{"x is null", "x is not aligned to its element size",
                              "x overlaps another buffer"};
inline constexpr BufferName y{"y is null", "y is not aligned to its element size",
                              "y overlaps another buffer"};
inline constexpr BufferName dy{"dy is null", "dy is not aligned to its element size",
                               "dy overlaps another buffer"};
inline constexpr BufferName dx{"dx is null", "dx is not aligned to its element size",
                               "dx overlaps another buffer"};
inline constexpr BufferName bias{"bias is null", "bias is not aligned to its element size",
                                 "bias overlaps another buffer"};
inline constexpr BufferName dbias{"dbias is null", "dbias is not aligned to its element size",
                                  "dbias overlaps another buffer"};
inline constexpr BufferName weight{"weight is null", "weight is not aligned to its element size",
                                   "weight overlaps another buffer"};
inline constexpr BufferName dweight{"dweight is null", "dweight is not aligned to its element size",
                                    "dweight overlaps another buffer"};
inline constexpr BufferName mask{"mask is null", "mask is not aligned to its element size",
                                 "the mask overlaps another buffer"};
inline constexpr BufferName scale{"scale is null", "scale is not 4-byte aligned",
                                  "scale overlaps another buffer"};
inline constexpr BufferName amax{"amax is null", "amax is not 4-byte aligned",
                                 "amax overlaps another buffer"};
inline constexpr BufferName scale_inv{"scale_inv is null", "scale_inv is not 4-byte aligned",
                                      "scale_inv overlaps another buffer"};
inline constexpr BufferName scales{"scales is null", "scales is not aligned to its entry size",
                                   "scales overlaps another buffer"};
inline constexpr BufferName tensor_scale{"tensor_scale is null (NVFP4 needs it)",
                                         "tensor_scale is not 4-byte aligned",
                                         "tensor_scale overlaps another buffer"};
inline constexpr BufferName counts{"expert counts are null", "expert counts are not 4-byte aligned",
                                   "expert counts overlap another buffer"};
inline constexpr BufferName offsets{"expert offsets are null",
                                    "expert offsets are not 4-byte aligned",
                                    "expert offsets overlap another buffer"};
inline constexpr BufferName error_flag{"the error flag is null", "the error flag is not 4-byte aligned",
                                       "the error flag overlaps another buffer"};
inline constexpr BufferName workspace{
    "workspace is null (the reduction needs the size query's bytes)",
    "workspace is not aligned", "workspace overlaps another buffer"};
}  // namespace buffer

struct Buffer {
  BufferName name;
  const void* data = nullptr;
  int64_t bytes = 0;     // the bytes the call touches (0: none)
  int64_t element = 1;   // its element size: the alignment it needs
  bool output = false;
  bool required = true;  // null is an error (optional buffers: false)
  int alias = 0;         // buffers of one nonzero group may be exactly one buffer (in place)
};

// Missing (null but required, and touched), then misaligned (touched), then
// overlapping buffers, in declaration order. Two buffers may share bytes
// only when neither is written, or when they are one buffer exactly (same
// address and extent) and declared in one alias group; a partial overlap
// within a group is "the output partially overlaps an input".
Status check_buffers(const Buffer* buffers, int count);

// a * b * c elements of `element` bytes, all >= 0: *bytes, or invalid_size
// when they do not fit in a pointer difference.
Status checked_bytes(int64_t element, int64_t a, int64_t b, int64_t c, int64_t* bytes);

// True when [a, a + a_bytes) and [b, b + b_bytes) share a byte (empty ranges share none).
bool spans_overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes);

// The checks shared by every entry point: a known dtype, and a parameter
// dtype that is the data's or fp32 (an fp32 bias or weight with fp16/bf16
// data, as PyTorch's AMP keeps parameters).
Status check_dtype(DType dtype);
Status check_param_dtype(DType dtype, DType param_dtype);

}  // namespace cuact::detail
