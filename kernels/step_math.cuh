#pragma once
// Per-element DDPM math, shared by the CPU backend and the CUDA kernels so
// that the CPU tests exercise the formulas the GPU runs. The CPU reference
// (src/reference.cpp) implements the same equations separately, in double.
#include "host_device.cuh"
#include "step_coefficients.cuh"

namespace ddpm::kernels {

// q(x_t | x0): x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps.
DDPM_HD float forward_noise(float x0, float eps, const StepCoefficients& c) {
  return c.sqrt_alpha_bar * x0 + c.sqrt_one_minus_alpha_bar * eps;
}

// The v-prediction target (Salimans & Ho 2022): sqrt(ab_t) eps - sqrt(1 - ab_t) x0.
DDPM_HD float velocity_target(float x0, float eps, const StepCoefficients& c) {
  return c.sqrt_alpha_bar * eps - c.sqrt_one_minus_alpha_bar * x0;
}

// q(x_t | x_{t-1}): x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps.
DDPM_HD float forward_one_step(float x_prev, float eps, const StepCoefficients& c) {
  return c.sqrt_alpha * x_prev + c.sqrt_beta * eps;
}

DDPM_HD float clamp_to(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// The mean of p(x_{t-1} | x_t) from predicted eps. Without clipping it is
// (x_t - beta_t/sqrt(1 - ab_t) eps)/sqrt(alpha_t); with clipping, x0 is
// recovered, clipped, and the posterior mean of eq. 7 is taken. The two
// forms agree when nothing is clipped.
DDPM_HD float reverse_mean(float x_t, float eps, const StepCoefficients& c,
                           const ClipSettings& clip) {
  if (clip.enabled) {
    const float x0 = clamp_to(c.sqrt_recip_alpha_bar * x_t - c.sqrt_recipm1_alpha_bar * eps,
                              clip.lo, clip.hi);
    return c.posterior_mean_coef_x0 * x0 + c.posterior_mean_coef_xt * x_t;
  }
  return c.sqrt_recip_alpha * (x_t - c.eps_coef * eps);
}

// x_{t-1} = mean + sigma_t z; sigma is 0 at t = 0, where no z is drawn.
DDPM_HD float reverse_step(float x_t, float eps, float z, const StepCoefficients& c,
                           const ClipSettings& clip) {
  return reverse_mean(x_t, eps, c, clip) + c.sigma * z;
}

// The exact E[eps | x_t] when x0 ~ N(mean, var) element-wise:
// x_t = a x0 + b eps is Gaussian, Cov(eps, x_t) = b, Var(x_t) = a^2 var + b^2.
// With var = 0 it is the oracle (x_t - a x0)/b.
DDPM_HD float gaussian_prior_eps(float x_t, float mean, float var, const StepCoefficients& c) {
  const float a = c.sqrt_alpha_bar;
  const float b = c.sqrt_one_minus_alpha_bar;
  return b * (x_t - a * mean) / (a * a * var + b * b);
}

}  // namespace ddpm::kernels
