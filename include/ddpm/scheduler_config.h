#pragma once
// A diffusers scheduler configuration (a model's scheduler_config.json) as
// ddpm's schedule and sampler options, so that a model trained with diffusers
// samples here with the settings it was trained with.
//
// Keys missing from the file take the defaults of the diffusers class named
// by "_class_name", which differ from ddpm's own defaults: diffusers' DDPM and
// DDIM clip x0 to [-1, 1] (clip_sample = true), its DDPM uses the posterior
// variance (variance_type "fixed_small"), and the solvers default to linspace
// timesteps. Classes and the samplers they select:
//   DDPMScheduler -> ddpm, DDIMScheduler -> ddim,
//   EulerDiscreteScheduler -> euler, EulerAncestralDiscreteScheduler -> euler_ancestral,
//   DPMSolverMultistepScheduler -> dpmpp_2m (algorithm_type "dpmsolver++") or
//     dpmpp_2m_sde ("sde-dpmsolver++"), with solver_order 2.
// Keys a class does not have are ignored, as diffusers ignores them; values
// ddpm does not implement (solver_order 3, use_exponential_sigmas, a learned
// variance, ...) are refused by name rather than ignored.
#include <optional>
#include <string>

#include "ddpm/sampler.h"
#include "ddpm/schedule.h"

namespace ddpm {

struct SchedulerConfig {
  ScheduleSpec schedule;
  SamplerOptions options;
  // The rule "_class_name" names, when ddpm has it; empty for other classes
  // or no class name.
  std::optional<SamplerKind> sampler;
  std::string class_name;

  // Throws ddpm::Error naming the key for malformed JSON, a value of the
  // wrong type or an unsupported value (e.g. beta_schedule "laplace").
  static SchedulerConfig from_json(const std::string& text);
  static SchedulerConfig load(const std::string& path);
};

// A config's options run by another sampler than its class's (a --sampler
// flag, Python's sampler=): as diffusers' from_config ignores the keys a
// class lacks, the config class's own keys that the new rule has no use for
// (DPM-Solver++'s and UniPC's: solver_order, lower_order_final,
// final_sigmas_type, euler_at_final, use_lu_lambdas, lambda_min_clipped,
// solver_type, disable_corrector) go back to their defaults. And a solver
// order given with it wins over the sampler's name: dpmpp_3m at order 1 or 2
// is dpmpp_2m.
void switch_sampler(SamplerOptions& options, SamplerKind sampler);

}  // namespace ddpm
