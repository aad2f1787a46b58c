#pragma once
// Sigma-space helpers of the solvers (DPM-Solver++, Euler), with diffusers'
// semantics: sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), interpolation
// in t, Karras et al.'s spacing and the fractional timestep of a sigma. The
// lists diffusers builds are float32 (astype(np.float32)); to_float32 rounds
// ddpm's double values the same way before the coefficients are formed.
#include <vector>

#include "ddpm/schedule.h"

namespace ddpm::detail {

// The training sigmas, t = 0 .. T-1, as diffusers' float32 array holds them
// (from float32 alpha_bar). A zero-SNR last step (alpha_bar = 0) counts as
// alpha_bar = 2^-24, as diffusers' solvers set it.
std::vector<double> training_sigmas(const Schedule& schedule);
// Their logarithms, rounded to float32 as numpy's log of that array is.
std::vector<double> log_sigmas(const std::vector<double>& sigmas);

// np.interp(t, np.arange(T), sigmas).
double interpolate_sigma(const std::vector<double>& sigmas, double t);

// Karras et al. 2022, eq. 5 with rho = 7: n sigmas from sigma_max down to sigma_min.
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n);

// diffusers' _sigma_to_t: the fractional timestep whose log-sigma
// interpolates to log(sigma).
double sigma_to_t(double sigma, const std::vector<double>& log_sigmas);

double to_float32(double v);

}  // namespace ddpm::detail
