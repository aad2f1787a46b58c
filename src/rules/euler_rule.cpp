// Euler and Euler ancestral (Karras et al. 2022, algorithm 1 with s_churn = 0;
// k-diffusion's sample_euler_ancestral), as diffusers' EulerDiscreteScheduler
// and EulerAncestralDiscreteScheduler run them, rewritten for the engine's
// variance-preserving state. diffusers keeps x_s = sqrt(1 + sigma^2) x_vp and
// hands the model x_s / sqrt(1 + sigma^2) = x_vp; one Euler step is
//   x_s' = x_s + (x_s - x0_hat) / sigma * (sigma' - sigma)
// so in x_vp terms, with s = sqrt(1 + sigma^2):
//   x_vp' = (s / s') (sigma' / sigma) x_vp + (1 - sigma' / sigma) / s' x0_hat,
// and x0_hat comes from the model output as for any variance-preserving step
// with alpha_bar = 1 / (1 + sigma^2) (exactly diffusers' conversions). The
// ancestral step goes to sigma_down and adds sigma_up z (divided by s').
//
// Timesteps follow diffusers: linspace gives fractional timesteps (749.25),
// sigmas are interpolated in t, Karras sigmas (euler only) get fractional
// timesteps from _sigma_to_t, and a final sigma of 0 ends the list. The
// initial noise is init_noise_sigma = sigma_max (linspace, trailing) or
// sqrt(sigma_max^2 + 1) (leading) in diffusers' x_s, i.e.
// sigma_max / sqrt(1 + sigma_max^2) or 1 in x_vp.
#include <cmath>
#include <string>

#include "ddpm/error.h"
#include "sigmas.h"
#include "step_rule.h"
#include "core/timesteps.h"

namespace ddpm::detail {
namespace {

// The fractional model timesteps of n steps (EulerDiscreteScheduler.set_timesteps).
std::vector<double> euler_timesteps(int T, int n, TimestepSpacing spacing, int offset) {
  std::vector<double> t;
  switch (spacing) {
    case TimestepSpacing::linspace: {
      const std::vector<double> y = numpy_linspace(0.0, T - 1, n);
      for (auto it = y.rbegin(); it != y.rend(); ++it) t.push_back(to_float32(*it));
      break;
    }
    case TimestepSpacing::leading:
      for (int i = n - 1; i >= 0; --i) t.push_back(static_cast<double>(i * (T / n) + offset));
      break;
    case TimestepSpacing::trailing:
      for (double v : numpy_arange_down(T, static_cast<double>(T) / n)) {
        t.push_back(static_cast<double>(round_half_even(v)) - 1.0);
      }
      break;
  }
  return t;
}

}  // namespace

SigmaPlan euler_sigmas(const Schedule& schedule, const SamplerOptions& o, bool allow_karras) {
  const int T = schedule.steps();
  SigmaPlan p;
  const TimestepSpacing spacing = spacing_of(o);
  if (!o.timesteps.empty()) {
    check_timestep_list({o.timesteps.begin(), o.timesteps.end()}, T, "the timestep list");
    p.timesteps.assign(o.timesteps.begin(), o.timesteps.end());
  } else if (o.num_inference_steps == 0) {
    // No inference steps asked for: every step of the schedule, T-1 to 0, as
    // every rule runs it (and as diffusers' constructors set them up before
    // set_timesteps), whatever the spacing and its offset.
    for (int t = T - 1; t >= 0; --t) p.timesteps.push_back(t);
  } else {
    const int n = o.num_inference_steps;
    if (n < 1 || n > T) {
      throw Error("inference steps " + std::to_string(n) + " is outside [1, T = " + std::to_string(T) + "]");
    }
    p.timesteps = euler_timesteps(T, n, spacing, o.steps_offset);
  }
  for (double t : p.timesteps) {
    if (!(t >= 0.0 && t <= T - 1)) {
      throw Error("the " + to_string(spacing) + " timesteps reach " + std::to_string(t) +
                  ", outside [0, " + std::to_string(T) + ")");
    }
  }
  const std::vector<double> all = training_sigmas(schedule);
  for (double t : p.timesteps) p.sigmas.push_back(interpolate_sigma(all, t));
  if (o.use_karras_sigmas && allow_karras) {
    const std::vector<double> logs = log_sigmas(all);
    p.sigmas = karras_sigmas(p.sigmas.back(), p.sigmas.front(), static_cast<int>(p.sigmas.size()));
    for (std::size_t i = 0; i < p.sigmas.size(); ++i) p.timesteps[i] = to_float32(sigma_to_t(p.sigmas[i], logs));
  }
  for (double& s : p.sigmas) s = to_float32(s);
  p.sigmas.push_back(0.0);
  const double sigma_max = p.sigmas.front();
  p.init_noise_sigma = spacing == TimestepSpacing::leading
                           ? std::sqrt(sigma_max * sigma_max + 1.0)
                           : sigma_max;
  return p;
}

namespace {

// The steps common to both rules; `update` fills the weights of step i.
template <typename Update>
RulePlan sigma_plan(const SigmaPlan& p, Update update) {
  RulePlan plan;
  plan.steps.resize(p.timesteps.size());
  for (std::size_t i = 0; i < p.timesteps.size(); ++i) {
    PlannedStep& s = plan.steps[i];
    s.model_timestep = p.timesteps[i];
    s.timestep = static_cast<int>(round_half_even(p.timesteps[i]));
    s.prev_timestep = i + 1 < p.timesteps.size() ? static_cast<int>(round_half_even(p.timesteps[i + 1])) : -1;
    s.noise_step = static_cast<int>(i);
    const double sigma = p.sigmas[i], next = p.sigmas[i + 1];
    s.alpha_bar = 1.0 / (1.0 + sigma * sigma);
    s.alpha_bar_prev = 1.0 / (1.0 + next * next);
    update(s, sigma, next);
  }
  const double sigma_max = p.sigmas.front();
  plan.initial_noise_scale = p.init_noise_sigma / std::sqrt(1.0 + sigma_max * sigma_max);
  return plan;
}

}  // namespace

void check_euler_options(const SamplerOptions&) {}

void check_euler_ancestral_options(const SamplerOptions&) {}

RulePlan plan_euler(const Schedule& schedule, const SamplerOptions& o) {
  return sigma_plan(euler_sigmas(schedule, o, true), [](PlannedStep& s, double sigma, double next) {
    const double scale = std::sqrt(1.0 + sigma * sigma), scale_next = std::sqrt(1.0 + next * next);
    s.prev_from_sample = scale / scale_next * (next / sigma);
    s.prev_from_x0 = (1.0 - next / sigma) / scale_next;
  });
}

RulePlan plan_euler_ancestral(const Schedule& schedule, const SamplerOptions& o) {
  return sigma_plan(euler_sigmas(schedule, o, false), [](PlannedStep& s, double sigma, double next) {
    const double up = std::sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
    const double down = std::sqrt(std::max(0.0, next * next - up * up));
    const double scale = std::sqrt(1.0 + sigma * sigma), scale_next = std::sqrt(1.0 + next * next);
    s.prev_from_sample = scale / scale_next * (down / sigma);
    s.prev_from_x0 = (1.0 - down / sigma) / scale_next;
    s.sigma = up / scale_next;
  });
}

}  // namespace ddpm::detail
