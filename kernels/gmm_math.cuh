#pragma once
// E[eps | x_t] for x0 drawn from an isotropic Gaussian mixture, one sample
// (row) at a time; shared by the CPU predictor and the CUDA kernel.
//
// With a = sqrt(alpha_bar_t), b = sqrt(1 - alpha_bar_t) and component k
// (weight w_k, mean mu_k, std s_k), x_t | k ~ N(a mu_k, v_k I) with
// v_k = a^2 s_k^2 + b^2, and E[eps | x_t, k] = b/v_k (x_t - a mu_k).
// The responsibilities r_k ∝ w_k N(x_t; a mu_k, v_k I) are normalised with
// the largest log-density subtracted, so that far-out x_t does not underflow.
#include <math.h>

#include "host_device.cuh"

namespace ddpm::kernels {

struct GmmView {
  int dim = 0;
  int components = 0;
  const float* log_weights = nullptr;  // K
  const float* means = nullptr;        // K x dim
  const float* variances = nullptr;    // K (std^2)
};

DDPM_HD float gmm_component_log_density(const float* x, const GmmView& g, int k, float a,
                                        float b) {
  const float v = a * a * g.variances[k] + b * b;
  const float* mu = g.means + static_cast<long long>(k) * g.dim;
  float d2 = 0.0f;
  for (int i = 0; i < g.dim; ++i) {
    const float d = x[i] - a * mu[i];
    d2 += d * d;
  }
  return g.log_weights[k] - 0.5f * g.dim * logf(v) - 0.5f * d2 / v;
}

// Writes eps[0 .. dim) for the row x[0 .. dim); eps must not alias x.
DDPM_HD void gmm_eps_row(const float* x, float* eps, const GmmView& g, float a, float b) {
  float max_log_density = -INFINITY;
  for (int k = 0; k < g.components; ++k) {
    max_log_density = fmaxf(max_log_density, gmm_component_log_density(x, g, k, a, b));
  }
  for (int i = 0; i < g.dim; ++i) eps[i] = 0.0f;
  float total = 0.0f;
  for (int k = 0; k < g.components; ++k) {
    const float r = expf(gmm_component_log_density(x, g, k, a, b) - max_log_density);
    total += r;
    const float v = a * a * g.variances[k] + b * b;
    const float weight = r * b / v;
    const float* mu = g.means + static_cast<long long>(k) * g.dim;
    for (int i = 0; i < g.dim; ++i) eps[i] += weight * (x[i] - a * mu[i]);
  }
  for (int i = 0; i < g.dim; ++i) eps[i] /= total;
}

}  // namespace ddpm::kernels
