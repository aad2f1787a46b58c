#pragma once
// E[eps | x_t] for x0 drawn from an isotropic Gaussian mixture
// sum_k w_k N(mu_k, s_k^2 I) in D dimensions, shared by the CUDA kernel and
// (if the host predictor calls it) the CPU backend.
//
// With a = sqrt(alpha_bar_t), b = sqrt(1 - alpha_bar_t), x_t given component
// k is N(a mu_k, v_k I) with v_k = a^2 s_k^2 + b^2, and within component k
// E[eps | x_t] = b/v_k (x_t - a mu_k). Mixing with the responsibilities
//     r_k = w_k N(x_t; a mu_k, v_k I) / sum_j w_j N(x_t; a mu_j, v_j I)
// gives eps = sum_k r_k b/v_k (x_t - a mu_k). The responsibilities come from
// log-densities through a log-sum-exp, in float, so that far-away
// components underflow to 0 instead of producing 0/0.
//
// gmm_row_eps() works on one row with `lanes` cooperating threads: lane l
// handles elements l, l + lanes, ... and `reduce` sums a per-lane partial
// over the lanes (on the host: lanes = 1 and reduce is the identity). Two
// passes over the components, no per-component storage: pass 1 takes the
// log-sum-exp online, pass 2 recomputes each log-density and accumulates
// into eps. Work per row: 3 K D multiply-adds.
#include <cmath>
#include <cstdint>

#include "host_device.cuh"

namespace ddpm::kernels {

struct GmmParams {
  std::int64_t dim = 0;
  int components = 0;
  const float* log_weights = nullptr;  // K, log w_k (components with w_k = 0 left out)
  const float* means = nullptr;        // K x dim, C order
  const float* vars = nullptr;         // K, s_k^2
};

DDPM_HD float gmm_component_variance(float a, float b, float var_k) { return a * a * var_k + b * b; }

// log w_k + log N(x; a mu_k, v_k I) without the -D/2 log(2 pi) that every
// component shares.
DDPM_HD float gmm_log_density(float log_weight, float squared_distance, float v, float dim) {
  return log_weight - 0.5f * (dim * logf(v) + squared_distance / v);
}

// log(sum_k exp(l_k)), one term at a time.
struct OnlineLogSumExp {
  float max = -INFINITY;
  float sum = 0.0f;
  DDPM_HD void add(float l) {
    if (l == -INFINITY) return;
    if (l > max) {
      sum = sum * expf(max - l) + 1.0f;
      max = l;
    } else {
      sum += expf(l - max);
    }
  }
  DDPM_HD float value() const { return max + logf(sum); }
};

// |x - a mu|^2 over this lane's elements, summed over the lanes by `reduce`.
template <typename Reduce>
DDPM_HD float gmm_squared_distance(const float* x, const float* mu, std::int64_t dim, float a,
                                   int lane, int lanes, Reduce&& reduce) {
  float s = 0.0f;
  for (std::int64_t d = lane; d < dim; d += lanes) {
    const float r = x[d] - a * mu[d];
    s += r * r;
  }
  return reduce(s);
}

// eps for one row x (dim floats); every lane of the row must call it.
template <typename Reduce>
DDPM_HD void gmm_row_eps(const float* x, float* eps, const GmmParams& p, float a, float b, int lane,
                         int lanes, Reduce&& reduce) {
  const float dim = static_cast<float>(p.dim);
  OnlineLogSumExp lse;
  for (int k = 0; k < p.components; ++k) {
    const float v = gmm_component_variance(a, b, p.vars[k]);
    const float d2 = gmm_squared_distance(x, p.means + k * p.dim, p.dim, a, lane, lanes, reduce);
    lse.add(gmm_log_density(p.log_weights[k], d2, v, dim));
  }
  const float log_norm = lse.value();
  for (int k = 0; k < p.components; ++k) {
    const float* mu = p.means + k * p.dim;
    const float v = gmm_component_variance(a, b, p.vars[k]);
    const float d2 = gmm_squared_distance(x, mu, p.dim, a, lane, lanes, reduce);
    const float r = expf(gmm_log_density(p.log_weights[k], d2, v, dim) - log_norm);
    const float coef = r * b / v;
    for (std::int64_t d = lane; d < p.dim; d += lanes) {
      const float term = coef * (x[d] - a * mu[d]);
      eps[d] = k == 0 ? term : eps[d] + term;
    }
  }
}

// The host form: one thread per row.
DDPM_HD void gmm_row_eps(const float* x, float* eps, const GmmParams& p, float a, float b) {
  gmm_row_eps(x, eps, p, a, b, 0, 1, [](float s) { return s; });
}

}  // namespace ddpm::kernels
