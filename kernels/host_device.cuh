#pragma once
// DDPM_HD marks the per-element math that both backends run: __host__ __device__
// under nvcc, plain inline functions in a host-only build.
#if defined(__CUDACC__)
#define DDPM_HD __host__ __device__ __forceinline__
#else
// always_inline: the CPU kernels are compiled once per instruction set, and an
// out-of-line copy shared between those objects could carry AVX2 code into
// the portable path.
#define DDPM_HD inline __attribute__((always_inline))
#endif
