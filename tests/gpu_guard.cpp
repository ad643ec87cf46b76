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

namespace {
bool env_is_one(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}
}  // namespace

bool gpu_required() { return env_is_one("CUACT_REQUIRE_GPU"); }
bool small_sizes_only() { return env_is_one("CUACT_TEST_SMALL"); }

}  // namespace cuact::test
