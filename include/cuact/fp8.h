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

// A block-scaled output's scale per block of `block` consecutive results of a
// row (docs/SPEC.md, "Block-scaled outputs"):
//   e8m0:       a power of two 2^e stored as the byte e + 127 (OCP MX's E8M0),
//               the smallest e with amax <= largest * 2^e (rounded up, RCEIL:
//               no code saturates; TE's and Blackwell's rule; DeepGEMM's UE8M0)
//   e8m0_floor: e = floor(log2 amax) - emax of the format (the OCP MX spec's)
//   f32:        amax / largest in fp32 (DeepSeek-style blockwise fp8)
//   e4m3:       NVFP4: e2m1 codes (two to a byte, the first in the low
//               nibble) in blocks of 16, each block's scale an e4m3 value
//               relative to an fp32 tensor scale
enum class BlockScale { e8m0, e8m0_floor, f32, e4m3 };

// Where the scale of (row r, block g) of a [rows, groups] scale matrix goes:
//   row_major       r * groups + g
//   column_major    g * rows + r (the "MN-major" layout DeepGEMM reads)
//   swizzled_128x4  cuBLAS's and CUTLASS's block-scaled GEMM layout: tiles of
//                   128 rows x 4 blocks (rows padded to 128, blocks to 4),
//                   tiles in row-major order, (r, g) at (r % 32) * 16 +
//                   (r % 128) / 32 * 4 + g % 4 in its tile of 512
//   column_major_packed  DeepGEMM's packed UE8M0 (1-byte scales only): 32-bit
//                   words of four consecutive blocks of a row (block 4k in the
//                   low byte), the words column-major over rows padded to a
//                   multiple of 4 (TMA's 16 bytes): byte (g / 4) * R4 * 4 +
//                   r * 4 + g % 4 with R4 = rows rounded up to 4 (the padding
//                   is not written)
enum class ScaleLayout { row_major, column_major, swizzled_128x4, column_major_packed };

}  // namespace cuact
