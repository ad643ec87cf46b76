#include "gpu_guard.h"

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>

namespace cuact::test {

std::string gpu_unavailable_reason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess)
    return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  if (count == 0) return "cudaGetDeviceCount found no device";
  return {};
}

bool gpu_required() {
  const char* v = std::getenv("CUACT_REQUIRE_GPU");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace cuact::test
