#pragma once
// The timesteps a sampler visits, as diffusers' set_timesteps picks them.
#include <string>
#include <vector>

#include "ddpm/sampler.h"

namespace ddpm::detail {

// Decreasing timesteps in [0, steps) for `options`: all of them, an explicit
// list, or num_inference_steps spaced by timestep_spacing. Throws
// ddpm::Error naming the option for anything diffusers would refuse
// (and for what it would silently get wrong, such as a step past T - 1).
std::vector<int> make_timesteps(int steps, const SamplerOptions& options);

// The pieces, for rules whose lists differ (DPM-Solver drops t = 0 from n + 1
// points): np.round (half to even); np.linspace(start, stop, n); and
// np.arange(start, 0, -ratio) as NumPy fills it.
long long round_half_even(double v);
std::vector<double> numpy_linspace(double start, double stop, int n);
std::vector<double> numpy_arange_down(double start, double ratio);
// Throws ddpm::Error unless `values` is a strictly decreasing list in [0, steps).
void check_timestep_list(const std::vector<long long>& values, int steps, const std::string& what);

}  // namespace ddpm::detail
