// DPM-Solver++(2M), its SDE variant and DPM-Solver++(3M) (Lu et al. 2022,
// algorithm 2; "midpoint" second-order update), as diffusers'
// DPMSolverMultistepScheduler runs them with algorithm_type "dpmsolver++" /
// "sde-dpmsolver++" and solver_order 1, 2 or (dpmsolver++ only) 3, with its
// options final_sigmas_type, lower_order_final, euler_at_final,
// use_lu_lambdas and lambda_min_clipped.
//
// With alpha_t = 1 / sqrt(1 + sigma_t^2), s_t = sigma_t alpha_t (the
// variance-preserving noise scale), lambda = log(alpha / s) = -log(sigma)
// and h = lambda_t - lambda_s, so that exp(-h) = sigma_t / sigma_s:
//   first order   x_t = (s_t / s_s) x_s + alpha_t (1 - exp(-h)) x0_s
//   second order  x_t = (s_t / s_s) x_s - A (1 + 1/(2 r)) x0_s + A / (2 r) x0_prev,
//                 A = alpha_t (exp(-h) - 1), r = h_prev / h
// and the SDE variant multiplies x_s by exp(-h), uses alpha_t (1 - exp(-2h))
// for A's role (with the opposite sign) and adds s_t sqrt(1 - exp(-2h)) z.
//   third order   x_t = (s_t / s_s) x_s - A D0 + alpha_t ((exp(-h) - 1) / h + 1) D1
//                       - alpha_t ((exp(-h) - 1 + h) / h^2 - 1/2) D2
// with D1, D2 the divided differences of the last three x0_hats
// (multistep_dpm_solver_third_order_update), expanded here into weights of
// x0_s, x0_prev and x0_prev2. The 1/2 is diffusers' (0.42): it halves the
// third-order term of Lu et al.'s formula, so the solver converges at
// about order 2; ddpm runs what diffusers runs.
// x0_prev is the previous step's x0_hat (after thresholding): the multistep
// state. The first step is first order; so is the last where diffusers'
// lower_order_final rule says so (always when the final sigma is 0).
//
// Timesteps: linspace and leading take n of n + 1 points and drop t = 0;
// trailing is DDIM's; all of them below the last timestep lambda_min_clipped
// allows. Karras sigmas run from sigma_max to sigma_min of the training
// schedule, Lu's lambdas uniformly in log sigma between them, with timesteps
// from _sigma_to_t, rounded except for the cosine schedule (diffusers'
// squaredcos_cap_v2).
#include <cmath>
#include <functional>
#include <string>

#include "ddpm/error.h"
#include "sigmas.h"
#include "step_rule.h"
#include "core/timesteps.h"

namespace ddpm::detail {
namespace {

// n spaced timesteps below `last`.
std::vector<long long> spaced_timesteps(int T, int last, int n, TimestepSpacing spacing, int offset) {
  std::vector<long long> t;
  switch (spacing) {
    case TimestepSpacing::linspace: {
      const std::vector<double> y = numpy_linspace(0.0, last - 1, n + 1);
      for (std::size_t i = y.size() - 1; i >= 1; --i) t.push_back(round_half_even(y[i]));
      break;
    }
    case TimestepSpacing::leading: {
      const long long ratio = last / (n + 1);
      for (int i = n; i >= 1; --i) t.push_back(i * ratio + offset);
      break;
    }
    case TimestepSpacing::trailing:
      for (double v : numpy_arange_down(last, static_cast<double>(T) / n)) t.push_back(round_half_even(v) - 1);
      break;
  }
  return t;
}

// diffusers' last_timestep: T less the number of timesteps whose
// lambda_t = log(sqrt(alpha_bar)) - log(sqrt(1 - alpha_bar)) (float32, as its
// table) is below lambda_min_clipped.
int last_unclipped_timestep(const Schedule& schedule, double lambda_min_clipped) {
  int clipped = 0;
  for (double ab : schedule.alpha_bar()) {
    const double ab32 = ab == 0.0 ? std::ldexp(1.0, -24) : to_float32(ab);
    const double alpha = to_float32(std::sqrt(ab32)), sigma = to_float32(std::sqrt(to_float32(1.0 - ab32)));
    const double lambda = to_float32(to_float32(std::log(alpha)) - to_float32(std::log(sigma)));
    if (lambda < lambda_min_clipped) ++clipped;
  }
  return schedule.steps() - clipped;
}

// Lu et al.'s lambdas: n sigmas uniform in log sigma from the largest
// training sigma to the smallest (diffusers' _convert_to_lu, rho = 1).
std::vector<double> lu_sigmas(const std::vector<double>& logs, int n) {
  const double lambda_max = logs.back(), lambda_min = logs.front();
  std::vector<double> sigmas;
  for (int i = 0; i < n; ++i) {
    const double ramp = n > 1 ? static_cast<double>(i) / (n - 1) : 0.0;
    sigmas.push_back(std::exp(lambda_max + ramp * (lambda_min - lambda_max)));
  }
  return sigmas;
}

}  // namespace

std::vector<double> multistep_timesteps(const Schedule& schedule, const SamplerOptions& o,
                                        const std::function<int()>& last) {
  const int T = schedule.steps();
  std::vector<double> timesteps;
  if (!o.timesteps.empty()) {
    check_timestep_list({o.timesteps.begin(), o.timesteps.end()}, T, "the timestep list");
    timesteps.assign(o.timesteps.begin(), o.timesteps.end());
  } else if (o.num_inference_steps == 0) {
    // No inference steps asked for: every step of the schedule, T-1 to 0, as
    // every rule runs it (diffusers' spacings at n = T repeat timesteps,
    // which a multistep solver cannot step between); Karras sigmas, if
    // asked for, then replace them.
    for (int t = T - 1; t >= 0; --t) timesteps.push_back(t);
  } else {
    const int n = o.num_inference_steps;
    if (n < 1 || n > T) {
      throw Error("inference steps " + std::to_string(n) + " is outside [1, T = " + std::to_string(T) + "]");
    }
    const TimestepSpacing spacing = spacing_of(o);
    const std::vector<long long> list = spaced_timesteps(T, last(), n, spacing, o.steps_offset);
    check_timestep_list(list, T,
                        "the " + to_string(spacing) + " timesteps of " + std::to_string(n) + " inference steps");
    timesteps.assign(list.begin(), list.end());
  }
  return timesteps;
}

// The order the options ask for: dpmpp_3m is order 3 (its default 2 means
// that too); dpmpp_2m at solver_order 3 is the same solver, and
// dpmpp_2m_sde at solver_order 3 its SDE variant.
int dpmpp_order(const SamplerOptions& o) {
  return o.sampler == SamplerKind::dpmpp_3m ? 3 : o.solver_order;
}

void check_dpmpp_options(const SamplerOptions& o) {
  if (o.sampler == SamplerKind::dpmpp_3m && o.solver_order != 2 && o.solver_order != 3) {
    throw Error("the dpmpp_3m sampler is solver_order 3, not " + std::to_string(o.solver_order) +
                "; use dpmpp_2m for orders 1 and 2");
  }
  if (o.solver_order < 1 || o.solver_order > 3) {
    throw Error("solver_order " + std::to_string(o.solver_order) + " is not 1, 2 or 3");
  }
  if (std::isnan(o.lambda_min_clipped)) throw Error("lambda_min_clipped is NaN: give a number or -inf");
  if (o.use_lu_lambdas && o.use_karras_sigmas) {
    throw Error("use_lu_lambdas and use_karras_sigmas exclude each other: give one");
  }
  if (o.use_lu_lambdas && !o.timesteps.empty()) {
    throw Error("an explicit timestep list and use_lu_lambdas exclude each other");
  }
}

RulePlan plan_dpmpp_2m(const Schedule& schedule, const SamplerOptions& o) {
  std::vector<double> timesteps = multistep_timesteps(schedule, o, [&] {
    const int last = last_unclipped_timestep(schedule, o.lambda_min_clipped);
    if (last < 1) throw Error("lambda_min_clipped clips every timestep of the schedule");
    return last;
  });
  const std::vector<double> all = training_sigmas(schedule);
  std::vector<double> sigmas;
  if (o.use_karras_sigmas || o.use_lu_lambdas) {
    const std::vector<double> logs = log_sigmas(all);
    const int count = static_cast<int>(timesteps.size());
    sigmas = o.use_karras_sigmas ? karras_sigmas(all.front(), all.back(), count) : lu_sigmas(logs, count);
    for (std::size_t i = 0; i < sigmas.size(); ++i) {
      const double t = sigma_to_t(sigmas[i], logs);
      timesteps[i] = schedule.kind() == ScheduleKind::cosine ? t : static_cast<double>(round_half_even(t));
    }
  } else {
    for (double t : timesteps) sigmas.push_back(interpolate_sigma(all, t));
  }
  sigmas.push_back(o.final_sigmas_type == FinalSigmasType::sigma_min ? all.front() : 0.0);
  for (double& s : sigmas) s = to_float32(s);

  const bool sde = o.sampler == SamplerKind::dpmpp_2m_sde;
  const int solver_order = dpmpp_order(o);
  const std::size_t n = timesteps.size();
  // diffusers' lower_order_final at the last step, and its second-order
  // step before it (3M).
  const bool last_first_order = o.euler_at_final || (o.lower_order_final && n < 15) ||
                                o.final_sigmas_type == FinalSigmasType::zero;
  const bool second_last_second_order = o.lower_order_final && n < 15;
  RulePlan plan;
  plan.history_x0_slots = solver_order == 3 ? 2 : 1;
  plan.steps.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    PlannedStep& s = plan.steps[i];
    s.model_timestep = timesteps[i];
    s.timestep = static_cast<int>(round_half_even(timesteps[i]));
    s.prev_timestep = i + 1 < n ? static_cast<int>(round_half_even(timesteps[i + 1])) : -1;
    s.noise_step = static_cast<int>(i);
    const double sigma_s = sigmas[i], sigma_t = sigmas[i + 1];
    const double alpha_s = 1.0 / std::sqrt(1.0 + sigma_s * sigma_s);
    const double alpha_t = 1.0 / std::sqrt(1.0 + sigma_t * sigma_t);
    s.alpha_bar = alpha_s * alpha_s;
    s.alpha_bar_prev = alpha_t * alpha_t;
    const double exp_h = sigma_t / sigma_s;  // exp(-h)
    const double noise_ratio = (sigma_t * alpha_t) / (sigma_s * alpha_s);
    // diffusers' choice: lower_order_nums (the steps so far, up to the
    // order) and the lower_order_final rules.
    if (solver_order == 1 || i == 0 || (i + 1 == n && last_first_order)) {
      s.order = 1;
    } else if (solver_order == 2 || i == 1 || (i + 2 == n && second_last_second_order)) {
      s.order = 2;
    } else {
      s.order = 3;
    }
    double weight;  // of D0 = x0_s in the first-order update
    if (sde) {
      s.prev_from_sample = noise_ratio * exp_h;
      weight = alpha_t * (1.0 - exp_h * exp_h);
      s.sigma = sigma_t * alpha_t * std::sqrt(1.0 - exp_h * exp_h);
    } else {
      s.prev_from_sample = noise_ratio;
      weight = alpha_t * (1.0 - exp_h);
    }
    if (s.order == 1) {
      s.prev_from_x0 = weight;
    } else if (s.order == 3) {
      const double h = std::log(sigma_s / sigma_t);
      const double r0 = std::log(sigmas[i - 1] / sigma_s) / h;
      const double r1 = std::log(sigmas[i - 2] / sigmas[i - 1]) / h;
      // x_t = ratio x_s + weight D0 + b D1 + c D2 with D1 = D1_0 (1 + r0 / (r0 + r1))
      // - D1_1 r0 / (r0 + r1), D2 = (D1_0 - D1_1) / (r0 + r1), D1_0 = (x0_s - x0_prev) / r0,
      // D1_1 = (x0_prev - x0_prev2) / r1; the SDE variant's b and c are in 2h.
      const double exp_2h = exp_h * exp_h;
      const double b = sde ? alpha_t * ((1.0 - exp_2h) / (-2.0 * h) + 1.0) : alpha_t * ((exp_h - 1.0) / h + 1.0);
      const double c = sde ? alpha_t * ((1.0 - exp_2h - 2.0 * h) / (4.0 * h * h) - 0.5)
                           : -alpha_t * ((exp_h - 1.0 + h) / (h * h) - 0.5);
      const double on_d10 = b * (1.0 + r0 / (r0 + r1)) + c / (r0 + r1);
      const double on_d11 = -b * r0 / (r0 + r1) - c / (r0 + r1);
      s.prev_from_x0 = weight + on_d10 / r0;
      s.prev_from_x0_prev = -on_d10 / r0 + on_d11 / r1;
      s.prev_from_x0_prev2 = -on_d11 / r1;
    } else {
      // D1 = (x0_s - x0_prev) / r with r = h_prev / h.
      const double h = std::log(sigma_s / sigma_t);
      const double h_prev = std::log(sigmas[i - 1] / sigma_s);
      const double r = h_prev / h;
      s.prev_from_x0 = weight * (1.0 + 0.5 / r);
      s.prev_from_x0_prev = -weight * 0.5 / r;
    }
  }
  return plan;
}

}  // namespace ddpm::detail
