#include "step_table.h"

#include <cmath>

namespace ddpm::detail {

std::vector<kernels::StepCoefficients> make_step_table(const Schedule& s, VarianceKind variance) {
  std::vector<kernels::StepCoefficients> table(static_cast<std::size_t>(s.steps()));
  for (int t = 0; t < s.steps(); ++t) {
    const double var = variance == VarianceKind::beta ? s.beta()[t] : s.posterior_variance()[t];
    kernels::StepCoefficients& c = table[t];
    c.sqrt_alpha_bar = static_cast<float>(s.sqrt_alpha_bar()[t]);
    c.sqrt_one_minus_alpha_bar = static_cast<float>(s.sqrt_one_minus_alpha_bar()[t]);
    c.sqrt_recip_alpha = static_cast<float>(s.sqrt_recip_alpha()[t]);
    c.eps_coef = static_cast<float>(s.eps_coef()[t]);
    // No noise is added on the last step (t = 0), whatever the variance choice.
    c.sigma = t == 0 ? 0.0f : static_cast<float>(std::sqrt(var));
    c.sqrt_recip_alpha_bar = static_cast<float>(s.sqrt_recip_alpha_bar()[t]);
    c.sqrt_recipm1_alpha_bar = static_cast<float>(s.sqrt_recipm1_alpha_bar()[t]);
    c.posterior_mean_coef_x0 = static_cast<float>(s.posterior_mean_coef_x0()[t]);
    c.posterior_mean_coef_xt = static_cast<float>(s.posterior_mean_coef_xt()[t]);
    c.sqrt_alpha = static_cast<float>(std::sqrt(s.alpha()[t]));
    c.sqrt_beta = static_cast<float>(std::sqrt(s.beta()[t]));
    c.pad_ = 0.0f;
  }
  return table;
}

kernels::ClipSettings make_clip_settings(const std::optional<ClipRange>& clip) {
  kernels::ClipSettings settings;
  if (clip) {
    settings.enabled = true;
    settings.lo = clip->lo;
    settings.hi = clip->hi;
  }
  return settings;
}

}  // namespace ddpm::detail
