// Helpers the rules share: the spacing in use, alpha_bar lookups, steps
// at integer timesteps.
#include "step_rule.h"

namespace ddpm::detail {

TimestepSpacing spacing_of(const SamplerOptions& options) {
  return options.timestep_spacing.value_or(rule_for(options.sampler).default_spacing);
}

double alpha_bar_at(const Schedule& schedule, int t) {
  return schedule.alpha_bar()[static_cast<std::size_t>(t)];
}

std::vector<PlannedStep> steps_at(const std::vector<int>& timesteps) {
  std::vector<PlannedStep> steps(timesteps.size());
  for (std::size_t i = 0; i < timesteps.size(); ++i) {
    steps[i].timestep = timesteps[i];
    steps[i].model_timestep = timesteps[i];
    steps[i].noise_step = timesteps[i];
  }
  return steps;
}

}  // namespace ddpm::detail
