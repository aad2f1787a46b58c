// DDPM ancestral sampling (Ho et al. 2020), as diffusers' DDPMScheduler.step:
// x_prev is drawn from the posterior q(x_prev | x_t, x0_hat) of eq. 7 between
// consecutive timesteps of the (possibly respaced) list, whose beta is
// 1 - alpha_bar_t / alpha_bar_prev:
//   x_prev = sqrt(ab_prev) beta / (1 - ab_t) x0_hat
//          + sqrt(ab_t / ab_prev) (1 - ab_prev) / (1 - ab_t) x_t + sigma z,
// sigma^2 = beta ("fixed_large") or (1 - ab_prev) / (1 - ab_t) beta
// ("fixed_small", floored at 1e-20 as diffusers does), and no noise at t = 0.
#include <algorithm>
#include <cmath>

#include "ddpm/error.h"
#include "step_rule.h"
#include "core/timesteps.h"

namespace ddpm::detail {

void check_ddpm_options(const SamplerOptions&) {}

RulePlan plan_ddpm(const Schedule& schedule, const SamplerOptions& options) {
  const std::vector<int> timesteps = make_timesteps(schedule.steps(), options);
  RulePlan plan{steps_at(timesteps), 1.0};
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    PlannedStep& s = plan.steps[i];
    const int t = s.timestep;
    s.prev_timestep = i + 1 < timesteps.size() ? timesteps[i + 1] : -1;
    s.alpha_bar = alpha_bar_at(schedule, t);
    s.alpha_bar_prev = s.prev_timestep >= 0 ? alpha_bar_at(schedule, s.prev_timestep) : 1.0;
    const double ab = s.alpha_bar, ab_prev = s.alpha_bar_prev;
    const double current_alpha = ab / ab_prev;
    const double current_beta = 1.0 - current_alpha;
    s.prev_from_x0 = std::sqrt(ab_prev) * current_beta / (1.0 - ab);
    s.prev_from_sample = std::sqrt(current_alpha) * (1.0 - ab_prev) / (1.0 - ab);
    s.prev_from_eps = 0.0;
    const double posterior = std::max((1.0 - ab_prev) / (1.0 - ab) * current_beta, 1e-20);
    const double variance = options.variance == VarianceKind::posterior ? posterior : current_beta;
    s.sigma = t > 0 ? std::sqrt(variance) : 0.0;
  }
  return plan;
}

}  // namespace ddpm::detail
