#pragma once
// A step rule turns a schedule and the sampler's options into the plan of
// the reverse loop: its timesteps and, for each, the coefficients of the
// update (ddpm::PlannedStep), in double precision on the host. Backends never
// see the rule: they run the generic update of kernels/step_rule.cuh with the
// float copy of these coefficients. A new sampler is one file here defining
// its plan function, plus its entry in rules/registry.cpp.
#include <cstddef>
#include <functional>
#include <vector>

#include "ddpm/sampler.h"

namespace ddpm::detail {

struct RulePlan {
  std::vector<PlannedStep> steps;
  double initial_noise_scale = 1.0;  // x_T = scale * N(0, I)
  // The loop's history (Sampler::history_size()): the x0_hats of this many
  // previous steps, and the previous step's sample (UniPC's corrected one,
  // Heun's first-stage input).
  int history_x0_slots = 0;
  bool keeps_last_sample = false;
};

// Fills, for every step: timestep, model_timestep, noise_step,
// prev_timestep, alpha_bar (of the loop's state at the step),
// alpha_bar_prev, the prev_from_* weights, sigma and order. The
// prediction-type conversion (x0_from_*, eps_from_*), beta and the checks
// are filled in afterwards by make_plan, identically for every rule.
using PlanRule = RulePlan (*)(const Schedule& schedule, const SamplerOptions& options);

// Throws ddpm::Error for options the rule cannot honour.
using RuleCheck = void (*)(const SamplerOptions& options);

struct RuleEntry {
  PlanRule plan;
  RuleCheck check;
  TimestepSpacing default_spacing;  // diffusers' default for the scheduler
  const char* diffusers_class;      // the scheduler it reproduces
  bool karras_sigmas;               // takes use_karras_sigmas
  bool solver_order;                // takes solver_order
  bool fractional_timesteps;        // the model sees float32 timesteps (sigma space)
  int model_calls_per_step;
};

const RuleEntry& rule_for(SamplerKind kind);

// The spacing options ask for, or the rule's default.
TimestepSpacing spacing_of(const SamplerOptions& options);

// The rules (one file each).
RulePlan plan_ddpm(const Schedule& schedule, const SamplerOptions& options);
void check_ddpm_options(const SamplerOptions& options);
RulePlan plan_ddim(const Schedule& schedule, const SamplerOptions& options);
void check_ddim_options(const SamplerOptions& options);
RulePlan plan_dpmpp_2m(const Schedule& schedule, const SamplerOptions& options);
void check_dpmpp_options(const SamplerOptions& options);
RulePlan plan_euler(const Schedule& schedule, const SamplerOptions& options);
void check_euler_options(const SamplerOptions& options);
RulePlan plan_euler_ancestral(const Schedule& schedule, const SamplerOptions& options);
void check_euler_ancestral_options(const SamplerOptions& options);
RulePlan plan_heun(const Schedule& schedule, const SamplerOptions& options);
void check_heun_options(const SamplerOptions& options);
RulePlan plan_unipc(const Schedule& schedule, const SamplerOptions& options);
void check_unipc_options(const SamplerOptions& options);

// Helpers the rules share.
// The sigma-space timesteps of diffusers' Euler and Heun schedulers
// (fractional, from a float32 linspace, or Karras sigmas' sigma_to_t), their
// sigmas (one more: the final 0) and init_noise_sigma in diffusers' x_s.
struct SigmaPlan {
  std::vector<double> timesteps;
  std::vector<double> sigmas;
  double init_noise_sigma = 1.0;
};
SigmaPlan euler_sigmas(const Schedule& schedule, const SamplerOptions& options, bool allow_karras);
// The timesteps of DPMSolverMultistepScheduler and UniPCMultistepScheduler:
// the options' explicit list, every step T-1 .. 0 without inference steps,
// or n spaced below last() (T unless DPM's lambda_min_clipped clips the top;
// asked only then).
std::vector<double> multistep_timesteps(const Schedule& schedule, const SamplerOptions& options,
                                        const std::function<int()>& last);
double alpha_bar_at(const Schedule& schedule, int t);
// Steps for an integer timestep list (the rule fills the rest).
std::vector<PlannedStep> steps_at(const std::vector<int>& timesteps);
// Refuses x0 clipping, thresholding or eta for a rule that has none in diffusers.
void refuse_clip(const SamplerOptions& options, const char* rule);
void refuse_thresholding(const SamplerOptions& options, const char* rule);
void refuse_eta(const SamplerOptions& options, const char* rule);
void refuse_karras(const SamplerOptions& options, const char* rule);
// Refuses DPM-Solver's own options (solver_order, final_sigmas_type, ...) set for another rule.
void refuse_dpm_solver_options(const SamplerOptions& options, const char* rule);
// Refuses UniPC's own options (solver_type, disable_corrector) set for another rule.
void refuse_unipc_options(const SamplerOptions& options, const char* rule);

}  // namespace ddpm::detail
