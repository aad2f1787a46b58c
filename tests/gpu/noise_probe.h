#pragma once
// The normals the specification assigns to (seed, sample, stream, step,
// element), drawn on the device by the test's own cuRAND kernel: the mapping
// of kernels/noise_counter.cuh written out independently of the engine.
#include <cstdint>
#include <vector>

#include "kernels/noise_counter.cuh"

namespace ddpm::gpu_test {

std::vector<float> draw_normals_on_device(std::uint64_t seed, std::int64_t first_sample,
                                          kernels::NoiseStream stream, std::uint32_t step,
                                          std::int64_t batch, std::int64_t dim);

}  // namespace ddpm::gpu_test
