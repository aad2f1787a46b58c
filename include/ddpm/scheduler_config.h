#pragma once
// A diffusers scheduler configuration (a model's scheduler_config.json) as
// ddpm's schedule and sampler options, so that a model trained with diffusers
// samples here with the settings it was trained with.
//
// Keys missing from the file take the defaults of the diffusers class named
// by "_class_name" (DDPMScheduler, DDIMScheduler), which differ from ddpm's
// own defaults: diffusers clips x0 to [-1, 1] (clip_sample = true) and its
// DDPM uses the posterior variance (variance_type "fixed_small"). Keys that
// ddpm does not use are ignored, as diffusers ignores unexpected keys.
#include <optional>
#include <string>

#include "ddpm/sampler.h"
#include "ddpm/schedule.h"

namespace ddpm {

struct SchedulerConfig {
  ScheduleSpec schedule;
  SamplerOptions options;
  // The rule "_class_name" names, when ddpm has it (DDPMScheduler -> ddpm,
  // DDIMScheduler -> ddim); empty for other classes or no class name.
  std::optional<SamplerKind> sampler;
  std::string class_name;

  // Throws ddpm::Error naming the key for malformed JSON, a value of the
  // wrong type or an unsupported value (e.g. beta_schedule "laplace").
  static SchedulerConfig from_json(const std::string& text);
  static SchedulerConfig load(const std::string& path);
};

}  // namespace ddpm
