// DDIM (Song et al. 2021, eq. 12), as diffusers' DDIMScheduler.step:
//   x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps_hat + sigma z,
//   sigma = eta sqrt((1 - ab_prev) / (1 - ab_t) (1 - ab_t / ab_prev)).
// eta = 0 is deterministic (the probability-flow ODE, first order); eta = 1
// with every step is DDPM with the posterior variance.
//
// The previous timestep follows diffusers exactly: t - T // num_inference_steps
// for spaced timesteps (which, for "linspace" and for "trailing" when T is not
// a multiple of the step count, is not the next timestep of the list — a
// diffusers quirk kept so that results agree), the next timestep of the list
// for an explicit list, t - 1 with all steps. After the last step alpha_bar
// is 1, or alpha_bar_0 without set_alpha_to_one.
#include <cmath>
#include <sstream>

#include "ddpm/error.h"
#include "step_rule.h"
#include "core/timesteps.h"

namespace ddpm::detail {

void check_ddim_options(const SamplerOptions& o) {
  if (!std::isfinite(o.eta) || o.eta < 0.0) {
    std::ostringstream msg;
    msg << "eta " << o.eta << " is invalid: need a finite eta >= 0";
    throw Error(msg.str());
  }
}

RulePlan plan_ddim(const Schedule& schedule, const SamplerOptions& o) {
  const std::vector<int> timesteps = make_timesteps(schedule.steps(), o);
  RulePlan plan{steps_at(timesteps), 1.0};
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    PlannedStep& s = plan.steps[i];
    const int t = s.timestep;
    if (!o.timesteps.empty()) {
      s.prev_timestep = i + 1 < timesteps.size() ? timesteps[i + 1] : -1;
    } else {
      const int n = o.num_inference_steps == 0 ? schedule.steps() : o.num_inference_steps;
      s.prev_timestep = t - schedule.steps() / n;
    }
    if (s.prev_timestep < 0) s.prev_timestep = -1;
    s.alpha_bar = alpha_bar_at(schedule, t);
    s.alpha_bar_prev = s.prev_timestep >= 0 ? alpha_bar_at(schedule, s.prev_timestep)
                       : o.set_alpha_to_one ? 1.0
                                            : alpha_bar_at(schedule, 0);
    const double ab = s.alpha_bar, ab_prev = s.alpha_bar_prev;
    const double variance = (1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev);
    const double sigma = o.eta * std::sqrt(variance);
    double direction = 1.0 - ab_prev - sigma * sigma;
    if (direction < 0.0 && direction > -1e-12) direction = 0.0;  // rounding at eta = 1
    if (direction < 0.0) {
      std::ostringstream msg;
      msg << "eta " << o.eta << " is too large at t = " << t
          << ": 1 - alpha_bar_prev - sigma^2 = " << direction << " < 0 (use eta <= 1)";
      s.error = msg.str();
      direction = 0.0;
    }
    s.prev_from_x0 = std::sqrt(ab_prev);
    s.prev_from_eps = std::sqrt(direction);
    s.prev_from_sample = 0.0;
    s.sigma = o.eta > 0.0 ? sigma : 0.0;
  }
  return plan;
}

}  // namespace ddpm::detail
