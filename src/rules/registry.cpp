// The step rules by name.
#include "rules/step_rule.h"

#include <string>

#include "ddpm/error.h"

namespace ddpm::detail {

const RuleEntry& rule_for(SamplerKind kind) {
  //                                plan, check, default spacing, diffusers class,
  //                                Karras sigmas, solver_order, float timesteps, calls a step
  static const RuleEntry ddpm{plan_ddpm, check_ddpm_options, TimestepSpacing::leading, "DDPMScheduler",
                              false, false, false, 1};
  static const RuleEntry ddim{plan_ddim, check_ddim_options, TimestepSpacing::leading, "DDIMScheduler",
                              false, false, false, 1};
  static const RuleEntry dpmpp{plan_dpmpp_2m, check_dpmpp_options, TimestepSpacing::linspace,
                               "DPMSolverMultistepScheduler", true, true, false, 1};
  static const RuleEntry euler{plan_euler, check_euler_options, TimestepSpacing::linspace,
                               "EulerDiscreteScheduler", true, false, true, 1};
  static const RuleEntry euler_ancestral{plan_euler_ancestral, check_euler_ancestral_options,
                                         TimestepSpacing::linspace, "EulerAncestralDiscreteScheduler",
                                         false, false, true, 1};
  static const RuleEntry heun{plan_heun, check_heun_options, TimestepSpacing::linspace, "HeunDiscreteScheduler",
                              true, false, true, 2};
  static const RuleEntry unipc{plan_unipc, check_unipc_options, TimestepSpacing::linspace,
                               "UniPCMultistepScheduler", true, true, false, 1};
  switch (kind) {
    case SamplerKind::ddpm: return ddpm;
    case SamplerKind::ddim: return ddim;
    case SamplerKind::dpmpp_2m:
    case SamplerKind::dpmpp_2m_sde:
    case SamplerKind::dpmpp_3m: return dpmpp;
    case SamplerKind::euler: return euler;
    case SamplerKind::euler_ancestral: return euler_ancestral;
    case SamplerKind::heun: return heun;
    case SamplerKind::unipc: return unipc;
  }
  return ddpm;
}

}  // namespace ddpm::detail

namespace ddpm {

SamplerInfo sampler_info(SamplerKind kind) {
  const detail::RuleEntry& rule = detail::rule_for(kind);
  return {to_string(kind), rule.diffusers_class, rule.default_spacing, rule.karras_sigmas, rule.solver_order,
          rule.fractional_timesteps, rule.model_calls_per_step};
}

}  // namespace ddpm

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

void refuse_clip(const SamplerOptions& o, const char* rule) {
  if (o.clip_x0) {
    throw Error(std::string("the ") + rule + " sampler has no x0 clipping in diffusers; use "
                "dynamic thresholding or another sampler");
  }
}

void refuse_thresholding(const SamplerOptions& o, const char* rule) {
  if (o.thresholding) {
    throw Error(std::string("the ") + rule + " sampler has no dynamic thresholding in diffusers");
  }
  if (o.clip_x0) {
    throw Error(std::string("the ") + rule + " sampler has no x0 clipping in diffusers");
  }
}

void refuse_eta(const SamplerOptions& o, const char* rule) {
  if (o.eta != 0.0) {
    throw Error(std::string("eta applies only to the ddim sampler, not ") + rule);
  }
}

void refuse_dpm_solver_options(const SamplerOptions& o, const char* rule) {
  const SamplerOptions defaults;
  const char* given = o.solver_order != defaults.solver_order             ? "solver_order"
                      : o.lower_order_final != defaults.lower_order_final ? "lower_order_final"
                      : o.euler_at_final != defaults.euler_at_final       ? "euler_at_final"
                      : o.use_lu_lambdas != defaults.use_lu_lambdas       ? "use_lu_lambdas"
                      : o.lambda_min_clipped != defaults.lambda_min_clipped ? "lambda_min_clipped"
                      : o.final_sigmas_type != defaults.final_sigmas_type ? "final_sigmas_type"
                                                                          : nullptr;
  if (given != nullptr) {
    const bool unipc_has_it = o.solver_order != defaults.solver_order ||
                              o.lower_order_final != defaults.lower_order_final ||
                              o.final_sigmas_type != defaults.final_sigmas_type;
    throw Error(std::string(given) + " applies to the dpmpp_2m, dpmpp_2m_sde, dpmpp_3m" +
                (unipc_has_it ? ", unipc" : "") + " samplers, not " + rule);
  }
}

void refuse_karras(const SamplerOptions& o, const char* rule) {
  if (o.use_karras_sigmas) {
    throw Error(std::string("Karras sigmas apply to the dpmpp_2m, dpmpp_2m_sde, dpmpp_3m, euler, heun "
                            "and unipc samplers, not ") + rule);
  }
}

void refuse_unipc_options(const SamplerOptions& o, const char* rule) {
  if (o.solver_type != UniPcSolverType::bh2) {
    throw Error(std::string("solver_type ") + to_string(o.solver_type) + " applies to the unipc sampler, not " + rule);
  }
  if (!o.disable_corrector.empty()) {
    throw Error(std::string("disable_corrector applies to the unipc sampler, not ") + rule);
  }
}

}  // namespace ddpm::detail
