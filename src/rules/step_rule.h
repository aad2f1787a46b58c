#pragma once
// A step rule turns a schedule and the sampler's options into the plan of
// the reverse loop: its timesteps and, for each, the coefficients of the
// update (ddpm::PlannedStep), in double precision on the host. Backends never
// see the rule: they run the generic update of kernels/step_rule.cuh with the
// float copy of these coefficients. A new sampler is one file here defining
// its plan function, plus its entry in rules/registry.cpp.
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ddpm/plan.h"
#include "ddpm/sampler_options.h"
#include "ddpm/schedule.h"

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

// What a rule accepts beyond the options every rule takes (prediction type
// epsilon and v, spacing, explicit timesteps, inference steps, steps_offset,
// rescaled betas); make_plan refuses the rest by name.
struct RuleTakes {
  bool eta = false;                // DDIM's eta
  bool clip_x0 = false;            // diffusers' clip_sample
  bool thresholding = false;       // dynamic thresholding
  bool variance_type = false;      // DDPM's fixed_small / fixed_large (read from configs)
  bool karras_sigmas = false;      // use_karras_sigmas
  bool multistep_keys = false;     // solver_order, lower_order_final, final_sigmas_type
  bool dpm_solver_keys = false;    // euler_at_final, use_lu_lambdas, lambda_min_clipped
  bool unipc_keys = false;         // solver_type, disable_corrector
  bool sample_prediction = true;   // prediction type "sample"
  bool clip_by_default = false;    // a config without clip_sample clips (DDPM, DDIM)
};

// A scheduler-config key that ddpm runs only at one value (JSON text), so
// that another value is refused by name rather than ignored.
struct FixedConfigKey {
  const char* key;
  const char* value;
  const char* why = nullptr;  // said after the value in the refusal
};

struct RuleEntry {
  SamplerKind kind;
  const char* name;                 // the CLI's and Python's name
  PlanRule plan;
  RuleCheck check;                  // the rule's own value checks (ranges, combinations)
  TimestepSpacing default_spacing;  // diffusers' default for the scheduler
  const char* diffusers_class;      // the scheduler it reproduces
  const char* diffusers_algorithm;  // its algorithm_type within that class, or null
  int diffusers_solver_order;       // the solver_order that picks it within its class (0: any)
  RuleTakes takes;
  bool fractional_timesteps;        // the model sees float32 timesteps (sigma space)
  int model_calls_per_step;
  int history_depth;                // earlier steps' x0_hats a step may combine
  const double* default_betas;      // the class's beta_start, beta_end
  std::span<const FixedConfigKey> fixed_config_keys;
  std::optional<SamplerKind> lower_order_sampler;  // what it is at a lower solver_order
};

// Every rule, in SamplerKind order.
std::span<const RuleEntry> rule_entries();
const RuleEntry& rule_for(SamplerKind kind);
// The names of the rules for which `takes` is true (all with null), "a, b, c".
std::string rule_names(bool (*takes)(const RuleEntry&) = nullptr);

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
// Refuses, by name, every option the rule's entry does not take (eta,
// clipping, thresholding, Karras sigmas, the multistep, DPM-Solver and UniPC
// keys, prediction type sample), saying which rules take it.
void refuse_untaken_options(const SamplerOptions& options);

}  // namespace ddpm::detail
