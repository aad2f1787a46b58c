#pragma once
// Per-element forward-process math and the analytic Gaussian predictor,
// shared by the CPU backend and the CUDA kernels so that the CPU tests
// exercise the formulas the GPU runs. The reverse update is in step_rule.cuh.
// The CPU reference (src/reference/reference.cpp) implements the same equations
// separately, in double.
#include "host_device.cuh"
#include "step_coefficients.cuh"
#include "step_rule.cuh"

namespace ddpm::kernels {

// q(x_t | x0): x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps.
DDPM_HD float forward_noise(float x0, float eps, const ForwardCoefficients& c) {
  return c.sqrt_alpha_bar * x0 + c.sqrt_one_minus_alpha_bar * eps;
}

// The v-prediction target (Salimans & Ho 2022): sqrt(ab_t) eps - sqrt(1 - ab_t) x0.
DDPM_HD float velocity_target(float x0, float eps, const ForwardCoefficients& c) {
  return c.sqrt_alpha_bar * eps - c.sqrt_one_minus_alpha_bar * x0;
}

// q(x_t | x_{t-1}): x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps.
DDPM_HD float forward_one_step(float x_prev, float eps, const ForwardCoefficients& c) {
  return c.sqrt_alpha * x_prev + c.sqrt_beta * eps;
}

// The exact posterior means when x0 ~ N(mean, var) element-wise and
// x_t = a x0 + b eps (a = sqrt(ab_t), b = sqrt(1 - ab_t)): x_t is Gaussian
// with variance a^2 var + b^2, and with r = (x_t - a mean) / (a^2 var + b^2)
//   E[eps | x_t] = b r,   E[x0 | x_t] = mean + a var r.
// Both are finite at a = 0 (zero terminal SNR) and at var = 0 (the oracle).
struct Posterior {
  float x0;
  float eps;
};
DDPM_HD Posterior gaussian_posterior(float x_t, float mean, float var, float a, float b) {
  const float r = (x_t - a * mean) / (a * a * var + b * b);
  return {mean + a * var * r, b * r};
}

// The model output in the type given by `w` (output_weights).
DDPM_HD float gaussian_model_output(float x_t, float mean, float var, float a, float b,
                                    OutputWeights w) {
  const Posterior p = gaussian_posterior(x_t, mean, var, a, b);
  return w.from_eps * p.eps + w.from_x0 * p.x0;
}

}  // namespace ddpm::kernels
