#pragma once
// The Gaussian draws of the CUDA kernels, under the mapping of
// noise_counter.cuh: Philox4x32-10 keyed by the seed, the global sample index
// as cuRAND's subsequence, and the (stream, step, element group) counter as
// the offset. The state lives in registers for one group and is dropped: no
// RNG state in global memory, nothing depends on the launch configuration.
#include <cstdint>

#include <curand_kernel.h>

#include "noise_counter.cuh"

namespace ddpm::kernels {

// The normals of elements 4*group .. 4*group+3 of global sample `sample`.
__device__ __forceinline__ float4 normal4(std::uint64_t seed, std::uint64_t sample,
                                          NoiseStream stream, std::uint32_t step,
                                          std::uint64_t group) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, sample, noise_offset(stream, step, group), &state);
  return curand_normal4(&state);
}

}  // namespace ddpm::kernels
