#pragma once
// A step rule turns a schedule and the sampler's timesteps into the
// coefficients of each reverse step (ddpm::PlannedStep), in double precision
// on the host. Backends never see the rule: they run the generic update of
// kernels/step_rule.cuh with the float copy of these coefficients. A new
// sampler is one file here defining its plan function, plus its entry in
// rules/registry.cpp.
#include <cstddef>
#include <vector>

#include "ddpm/sampler.h"

namespace ddpm::detail {

struct RuleContext {
  const Schedule& schedule;
  const SamplerOptions& options;
  const std::vector<int>& timesteps;  // the loop's timesteps, decreasing
};

// Fills, for the step at `index` of ctx.timesteps: timestep, prev_timestep,
// alpha_bar, alpha_bar_prev, the prev_from_* weights and sigma. The
// prediction-type conversion (x0_from_*, eps_from_*), beta and the checks are
// filled in afterwards by make_plan, identically for every rule.
using StepRule = void (*)(const RuleContext& ctx, std::size_t index, PlannedStep& step);

// Throws ddpm::Error for options the rule cannot honour.
using RuleCheck = void (*)(const SamplerOptions& options);

struct RuleEntry {
  StepRule plan_step;
  RuleCheck check;
};

const RuleEntry& rule_for(SamplerKind kind);

// The rules (one file each).
void plan_ddpm_step(const RuleContext& ctx, std::size_t index, PlannedStep& step);
void check_ddpm_options(const SamplerOptions& options);
void plan_ddim_step(const RuleContext& ctx, std::size_t index, PlannedStep& step);
void check_ddim_options(const SamplerOptions& options);

// Helpers the rules share.
// The next timestep in the list, or -1 after the last one.
int next_timestep(const RuleContext& ctx, std::size_t index);
double alpha_bar_at(const Schedule& schedule, int t);

}  // namespace ddpm::detail
