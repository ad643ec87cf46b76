// Device memory for the GPU suites: `bytes` plus 256 bytes of slack (room for
// the misaligned layouts' offsets), freed when the buffer goes out of scope.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace cuact::test {

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { ok_ = cudaMalloc(&ptr_, bytes + 256) == cudaSuccess; }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  // False when the allocation failed.
  bool ok() const { return ok_; }
  unsigned char* at(size_t byte_offset = 0) const {
    return static_cast<unsigned char*>(ptr_) + byte_offset;
  }

 private:
  void* ptr_ = nullptr;
  bool ok_ = false;
};

}  // namespace cuact::test
