#pragma once
// The timesteps a sampler visits, as diffusers' set_timesteps picks them.
#include <vector>

#include "ddpm/sampler.h"

namespace ddpm::detail {

// Decreasing timesteps in [0, steps) for `options`: all of them, an explicit
// list, or num_inference_steps spaced by timestep_spacing. Throws
// ddpm::Error naming the option for anything diffusers would refuse
// (and for what it would silently get wrong, such as a step past T - 1).
std::vector<int> make_timesteps(int steps, const SamplerOptions& options);

}  // namespace ddpm::detail
