// Heun's second-order method (Karras et al. 2022, algorithm 1 with
// s_churn = 0), as diffusers' HeunDiscreteScheduler runs it: each step from
// sigma to sigma' calls the model twice. Its plan has 2n - 1 positions, one
// per model call, as diffusers' timesteps [t0, t1, t1, t2, t2, ...]:
//   stage 1 at (sigma, x):     x0_1 from the model; an Euler step to
//                              x_mid = x + (sigma' - sigma) (x - x0_1) / sigma
//   stage 2 at (sigma', x_mid): x0_2 from the model; the average slope,
//                              x' = x + (sigma' - sigma) / 2 ((x - x0_1) / sigma + (x_mid - x0_2) / sigma')
// in diffusers' x_s = sqrt(1 + sigma^2) x. The last step, to sigma' = 0, is
// stage 1 alone (an Euler step that returns x0_1). Stage 2 reads stage 1's
// x0_hat and input sample from the loop's history.
//
// In the engine's variance-preserving state (x_vp = x_s / s, s = sqrt(1 + sigma^2)):
//   stage 1   x_mid = (s / s') (sigma' / sigma) x + (1 - sigma' / sigma) / s' x0_1     (euler's step)
//   stage 2   x'    = (s / s') (1 + d / (2 sigma)) x - d / (2 sigma s') x0_1
//                   + d / (2 sigma') x_mid - d / (2 sigma' s') x0_2,      d = sigma' - sigma
// Timesteps, sigmas (Karras ones too) and the initial noise are Euler's;
// x0 clipping is diffusers' clip_sample.
#include <cmath>

#include "ddpm/error.h"
#include "step_rule.h"
#include "core/timesteps.h"

namespace ddpm::detail {

void check_heun_options(const SamplerOptions&) {}

RulePlan plan_heun(const Schedule& schedule, const SamplerOptions& o) {
  const SigmaPlan p = euler_sigmas(schedule, o, true);
  const std::size_t n = p.timesteps.size();
  RulePlan plan;
  plan.history_x0_slots = 1;
  plan.keeps_last_sample = true;
  const auto timestep_of = [&](std::size_t j) { return static_cast<int>(round_half_even(p.timesteps[j])); };
  for (std::size_t j = 0; j < n; ++j) {
    const double sigma = p.sigmas[j], next = p.sigmas[j + 1];
    const double scale = std::sqrt(1.0 + sigma * sigma), scale_next = std::sqrt(1.0 + next * next);
    PlannedStep first;
    first.stage = 1;
    first.model_timestep = p.timesteps[j];
    first.timestep = timestep_of(j);
    first.prev_timestep = j + 1 < n ? timestep_of(j + 1) : -1;
    first.alpha_bar = 1.0 / (1.0 + sigma * sigma);
    first.alpha_bar_prev = 1.0 / (1.0 + next * next);
    first.prev_from_sample = scale / scale_next * (next / sigma);
    first.prev_from_x0 = (1.0 - next / sigma) / scale_next;
    first.noise_step = static_cast<int>(plan.steps.size());
    plan.steps.push_back(first);
    if (j + 1 == n) break;  // sigma' = 0: the Euler step alone
    PlannedStep second;
    second.stage = 2;
    second.order = 2;
    second.model_timestep = p.timesteps[j + 1];
    second.timestep = timestep_of(j + 1);
    second.prev_timestep = timestep_of(j + 1);  // x' is at sigma' too
    second.alpha_bar = first.alpha_bar_prev;
    second.alpha_bar_prev = first.alpha_bar_prev;
    const double d = next - sigma;
    second.prev_from_last_sample = scale / scale_next * (1.0 + d / (2.0 * sigma));
    second.prev_from_x0_prev = -d / (2.0 * sigma * scale_next);
    second.prev_from_sample = d / (2.0 * next);
    second.prev_from_x0 = -d / (2.0 * next * scale_next);
    second.noise_step = static_cast<int>(plan.steps.size());
    plan.steps.push_back(second);
  }
  const double sigma_max = p.sigmas.front();
  plan.initial_noise_scale = p.init_noise_sigma / std::sqrt(1.0 + sigma_max * sigma_max);
  return plan;
}

}  // namespace ddpm::detail
