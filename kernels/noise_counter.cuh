#pragma once
// Where each Gaussian draw comes from. Every draw is a pure function of
// (seed, global sample index, element, stream, step), never of how the work
// is split: Philox4x32-10 is keyed by the seed, the sample index is cuRAND's
// subsequence, and the 64-bit counter within it is
//     ((stream << 28 | step) << 32) | (element / 4)
// so that curand_init(seed, sample, 4 * counter) followed by curand_normal4
// yields the normals for elements 4g .. 4g+3.
#include <cstdint>

#include "host_device.cuh"

namespace ddpm::kernels {

enum class NoiseStream : std::uint32_t {
  reverse = 0,           // z in the reverse step at step t
  forward = 1,           // eps drawn for q(x_t | x0) at step t
  initial = 2,           // x_T, step 0
  forward_one_step = 3,  // eps drawn for q(x_t | x_{t-1}) at step t
};

inline constexpr int kStepBits = 28;

DDPM_HD std::uint64_t noise_counter(NoiseStream stream, std::uint32_t step, std::uint64_t group) {
  const std::uint64_t tag = (static_cast<std::uint64_t>(stream) << kStepBits) | step;
  return (tag << 32) | group;
}

// The offset argument of curand_init: cuRAND counts it in 32-bit outputs.
DDPM_HD std::uint64_t noise_offset(NoiseStream stream, std::uint32_t step, std::uint64_t group) {
  return 4 * noise_counter(stream, step, group);
}

}  // namespace ddpm::kernels
