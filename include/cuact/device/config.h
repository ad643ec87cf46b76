// The macros every cuact device header shares, defined in one place.
//
//   CUACT_HD         __host__ __device__ __forceinline__ under nvcc, inline
//                    otherwise: the functors and index plans compile for the
//                    host too, so CPU tests run exactly the code the kernels run.
//   CUACT_UNROLL     `#pragma unroll` in device code (nothing for the host
//                    compiler, which would warn about an unknown pragma).
//   CUACT_NO_UNROLL  `#pragma unroll 1` in device code.
//   CUACT_HD_NOINLINE a function template kept out of line in device code
//                    (cold paths that would otherwise copy a body once more).
#pragma once

#ifdef __CUDACC__
#define CUACT_HD __host__ __device__ __forceinline__
#define CUACT_HD_NOINLINE __host__ __device__ __noinline__
#else
#define CUACT_HD inline
#define CUACT_HD_NOINLINE
#endif

#ifdef __CUDA_ARCH__
#define CUACT_UNROLL _Pragma("unroll")
#define CUACT_NO_UNROLL _Pragma("unroll 1")
#else
#define CUACT_UNROLL
#define CUACT_NO_UNROLL
#endif
