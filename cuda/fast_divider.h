// Division by a divisor fixed at launch, for index arithmetic in kernels.
#pragma once

#include <cstdint>

#include "cuact/device/config.h"

namespace cuact::detail {

// Division of 64-bit unsigned integers by a divisor fixed at launch, with a
// multiply-high and shifts (Granlund & Montgomery 1994, fig. 4.1): the
// device's 64-bit division is a called subroutine, whose call costs the
// register-heavy kernels a spill. Exact for every n < 2^64, 1 <= d <= 2^63.
struct FastDivider {
  uint64_t divisor = 1;
  uint64_t multiplier = 1;
  int shift1 = 0;
  int shift2 = 0;

  FastDivider() = default;
  explicit FastDivider(uint64_t d) : divisor(d) {  // host, d >= 1
    int l = 0;                                     // ceil(log2(d))
    while (l < 63 && (uint64_t{1} << l) < d) ++l;
    const unsigned __int128 numerator =
        (static_cast<unsigned __int128>(1) << 64) * ((static_cast<unsigned __int128>(1) << l) - d);
    multiplier = static_cast<uint64_t>(numerator / d) + 1;
    shift1 = l < 1 ? l : 1;
    shift2 = l > 1 ? l - 1 : 0;
  }

  CUACT_HD uint64_t quotient(uint64_t n) const {
#ifdef __CUDA_ARCH__
    const uint64_t t = __umul64hi(multiplier, n);
#else
    const uint64_t t =
        static_cast<uint64_t>((static_cast<unsigned __int128>(multiplier) * n) >> 64);
#endif
    return (t + ((n - t) >> shift1)) >> shift2;
  }
  CUACT_HD uint64_t remainder(uint64_t n) const { return n - quotient(n) * divisor; }
};

}  // namespace cuact::detail
