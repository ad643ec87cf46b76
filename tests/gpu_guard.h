// GPU suites call CUACT_SKIP_WITHOUT_GPU() first: without a usable device the
// test is skipped with the reason, or fails when CUACT_REQUIRE_GPU=1 (runs on
// GPU machines must not pass by skipping).
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace cuact::test {

// Empty when a CUDA device is usable; otherwise why not (the CUDA error text).
std::string gpu_unavailable_reason();
// True when the environment sets CUACT_REQUIRE_GPU=1.
bool gpu_required();
// True when CUACT_TEST_SMALL=1: GPU suites keep to small sizes (for
// compute-sanitizer runs, which are slow).
bool small_sizes_only();

}  // namespace cuact::test

#define CUACT_SKIP_WITHOUT_GPU()                                                   \
  do {                                                                             \
    const std::string cuact_reason_ = ::cuact::test::gpu_unavailable_reason();     \
    if (!cuact_reason_.empty()) {                                                  \
      if (::cuact::test::gpu_required())                                           \
        FAIL() << "CUACT_REQUIRE_GPU=1 but no GPU is usable: " << cuact_reason_;   \
      GTEST_SKIP() << "no GPU: " << cuact_reason_;                                 \
    }                                                                              \
  } while (0)
