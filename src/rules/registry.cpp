// The step rules by name.
#include "rules/step_rule.h"

namespace ddpm::detail {

const RuleEntry& rule_for(SamplerKind kind) {
  static const RuleEntry ddpm{plan_ddpm_step, check_ddpm_options};
  static const RuleEntry ddim{plan_ddim_step, check_ddim_options};
  switch (kind) {
    case SamplerKind::ddpm: return ddpm;
    case SamplerKind::ddim: return ddim;
  }
  return ddpm;
}

int next_timestep(const RuleContext& ctx, std::size_t index) {
  return index + 1 < ctx.timesteps.size() ? ctx.timesteps[index + 1] : -1;
}

double alpha_bar_at(const Schedule& schedule, int t) {
  return schedule.alpha_bar()[static_cast<std::size_t>(t)];
}

}  // namespace ddpm::detail
