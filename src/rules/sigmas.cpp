#include "sigmas.h"

#include <algorithm>
#include <cmath>

namespace ddpm::detail {

std::vector<double> training_sigmas(const Schedule& schedule) {
  std::vector<double> sigmas;
  sigmas.reserve(schedule.alpha_bar().size());
  for (double ab : schedule.alpha_bar()) {
    // diffusers' ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in float32:
    // 1 - ab is exact in float32 (ab >= 1/2 near t = 0, where it matters),
    // and the quotient and root, each rounded to float32, are what double
    // arithmetic rounded to float32 gives. Near t = 0 this rounding moves
    // sigma by up to 2e-4 relative, and Karras sigmas inherit it from sigma_min.
    const double ab32 = ab == 0.0 ? std::ldexp(1.0, -24) : to_float32(ab);
    sigmas.push_back(to_float32(std::sqrt(to_float32((1.0 - ab32) / ab32))));
  }
  return sigmas;
}

std::vector<double> log_sigmas(const std::vector<double>& sigmas) {
  std::vector<double> logs;
  logs.reserve(sigmas.size());
  for (double s : sigmas) logs.push_back(to_float32(std::log(s)));  // np.log of a float32 array
  return logs;
}

double interpolate_sigma(const std::vector<double>& sigmas, double t) {
  const double last = static_cast<double>(sigmas.size() - 1);
  if (t <= 0.0) return sigmas.front();
  if (t >= last) return sigmas.back();
  const auto low = static_cast<std::size_t>(std::floor(t));
  const double w = t - static_cast<double>(low);
  return w == 0.0 ? sigmas[low] : sigmas[low] + w * (sigmas[low + 1] - sigmas[low]);
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n) {
  constexpr double rho = 7.0;
  const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
  std::vector<double> sigmas;
  for (int i = 0; i < n; ++i) {
    const double ramp = n > 1 ? static_cast<double>(i) / (n - 1) : 0.0;
    sigmas.push_back(std::pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho));
  }
  return sigmas;
}

double sigma_to_t(double sigma, const std::vector<double>& log_sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  // The last index whose log-sigma is <= log_sigma (0 when none is), at most T - 2.
  std::size_t low = 0;
  for (std::size_t i = 0; i < log_sigmas.size(); ++i) {
    if (log_sigma - log_sigmas[i] >= 0.0) low = i;
  }
  low = std::min(low, log_sigmas.size() - 2);
  const double lo = log_sigmas[low], hi = log_sigmas[low + 1];
  const double w = std::clamp((lo - log_sigma) / (lo - hi), 0.0, 1.0);
  return (1.0 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

double to_float32(double v) { return static_cast<double>(static_cast<float>(v)); }

}  // namespace ddpm::detail
