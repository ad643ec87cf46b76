// The 8-bit floating-point formats cuact writes (the OCP FP8 formats: CUDA's
// __nv_fp8_e4m3 / __nv_fp8_e5m2, PyTorch's float8_e4m3fn / float8_e5m2).
// docs/SPEC.md ("fp8 formats") states how values are rounded to them.
#pragma once

namespace cuact {

// Codes are sign (0x80) | exponent field | mantissa field.
//   e4m3: 4 exponent bits (bias 7), 3 mantissa bits. Largest finite 448 (0x7E),
//         smallest normal 2^-6, smallest subnormal 2^-9. No infinities; the
//         only NaN codes are 0x7F and 0xFF.
//   e5m2: 5 exponent bits (bias 15), 2 mantissa bits: IEEE-style. Largest
//         finite 57344 (0x7B), smallest normal 2^-14, smallest subnormal
//         2^-16; +-inf 0x7C / 0xFC; NaN 0x7D-0x7F, 0xFD-0xFF.
enum class Fp8 { e4m3, e5m2 };

}  // namespace cuact
