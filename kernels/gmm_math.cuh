#pragma once
// The exact posterior expectations for x0 drawn from an isotropic Gaussian
// mixture sum_k w_k N(mu_k, s_k^2 I) in D dimensions, shared by the CUDA
// kernel and the host predictor.
//
// With a = sqrt(alpha_bar_t), b = sqrt(1 - alpha_bar_t), x_t given component
// k is N(a mu_k, v_k I) with v_k = a^2 s_k^2 + b^2, and within component k
//   E[eps | x_t, k] = b / v_k (x_t - a mu_k),   E[x0 | x_t, k] = mu_k + a s_k^2 / v_k (x_t - a mu_k).
// Mixing with the responsibilities
//   r_k = w_k N(x_t; a mu_k, v_k I) / sum_j w_j N(x_t; a mu_j, v_j I)
// gives the posterior means; the model output in prediction type
// (w_eps, w_x0) (step_rule.cuh: output_weights) is
//   m = sum_k r_k (coef_k (x_t - a mu_k) + w_x0 mu_k),  coef_k = (w_eps b + w_x0 a s_k^2) / v_k.
//
// What depends only on the step and the component (log w_k - D/2 log v_k,
// 1 / (2 v_k), coef_k) is computed once per step (GmmComponentStep), not per
// row. Squared distances, log-densities and the log-sum-exp are in double,
// so that far-apart or large-valued mixtures neither overflow (|x - a mu|^2
// past float's range) nor give 0/0; the output is accumulated in float.
//
// gmm_row_output() works on one row with `lanes` cooperating threads: lane l
// handles elements l, l + lanes, ... and `reduce` sums a per-lane double
// partial over the lanes (on the host: lanes = 1 and reduce is the
// identity). Two passes over the components: pass 1 takes the log-sum-exp
// online, pass 2 recomputes each log-density and accumulates the output.
#include <cmath>
#include <cstdint>

#include "host_device.cuh"
#include "step_rule.cuh"

namespace ddpm::kernels {

struct GmmParams {
  std::int64_t dim = 0;
  int components = 0;
  const double* log_weights = nullptr;  // K, log w_k (components with w_k = 0 left out)
  const float* means = nullptr;         // K x dim, C order
  const double* vars = nullptr;         // K, s_k^2
};

// Per component, per step.
struct GmmComponentStep {
  double log_norm;    // log w_k - D/2 log v_k (the shared -D/2 log 2 pi left out)
  double half_inv_v;  // 1 / (2 v_k)
  float coef;         // (w_eps b + w_x0 a s_k^2) / v_k
  float pad_;
};

DDPM_HD GmmComponentStep gmm_component_step(const GmmParams& p, int k, double a, double b,
                                            OutputWeights w) {
  const double v = a * a * p.vars[k] + b * b;
  GmmComponentStep c;
  c.log_norm = p.log_weights[k] - 0.5 * static_cast<double>(p.dim) * log(v);
  c.half_inv_v = 0.5 / v;
  c.coef = static_cast<float>((w.from_eps * b + w.from_x0 * a * p.vars[k]) / v);
  c.pad_ = 0.0f;
  return c;
}

// log(sum_k exp(l_k)), one term at a time.
struct OnlineLogSumExp {
  double max = -INFINITY;
  double sum = 0.0;
  DDPM_HD void add(double l) {
    if (l == -INFINITY) return;
    if (l > max) {
      sum = sum * exp(max - l) + 1.0;
      max = l;
    } else {
      sum += exp(l - max);
    }
  }
  DDPM_HD double value() const { return max + log(sum); }
};

// |x - a mu|^2 over this lane's elements, summed over the lanes by `reduce`.
template <typename Reduce>
DDPM_HD double gmm_squared_distance(const float* x, const float* mu, std::int64_t dim, float a,
                                    int lane, int lanes, Reduce&& reduce) {
  double s = 0.0;
  for (std::int64_t d = lane; d < dim; d += lanes) {
    const double r = static_cast<double>(x[d]) - static_cast<double>(a) * mu[d];
    s += r * r;
  }
  return reduce(s);
}

// The model output of one row x (dim floats); every lane of the row must call
// it. `steps` holds the K per-step constants, or is null to compute them here
// (rows with steps of their own). `cache` (K doubles, or null) keeps the
// log-densities of pass 1 so that pass 2 does not recompute the distances.
template <typename Reduce>
DDPM_HD void gmm_row_output(const float* x, float* out, const GmmParams& p,
                            const GmmComponentStep* steps, float a, float b, OutputWeights w,
                            int lane, int lanes, Reduce&& reduce, double* cache) {
  const auto step = [&](int k) { return steps ? steps[k] : gmm_component_step(p, k, a, b, w); };
  const auto log_density = [&](int k) {
    const GmmComponentStep c = step(k);
    return c.log_norm -
           c.half_inv_v * gmm_squared_distance(x, p.means + k * p.dim, p.dim, a, lane, lanes, reduce);
  };
  OnlineLogSumExp lse;
  for (int k = 0; k < p.components; ++k) {
    const double l = log_density(k);
    if (cache) cache[k] = l;
    lse.add(l);
  }
  const double log_total = lse.value();
  for (int k = 0; k < p.components; ++k) {
    const float* mu = p.means + k * p.dim;
    const double l = cache ? cache[k] : log_density(k);
    const float r = static_cast<float>(exp(l - log_total));
    const float slope = r * step(k).coef;
    const float offset = r * w.from_x0;
    for (std::int64_t d = lane; d < p.dim; d += lanes) {
      const float term = slope * (x[d] - a * mu[d]) + offset * mu[d];
      out[d] = k == 0 ? term : out[d] + term;
    }
  }
}

// The host form: one thread per row, the log-densities cached in `cache`.
DDPM_HD void gmm_row_output(const float* x, float* out, const GmmParams& p,
                            const GmmComponentStep* steps, float a, float b, OutputWeights w,
                            double* cache) {
  gmm_row_output(x, out, p, steps, a, b, w, 0, 1, [](double s) { return s; }, cache);
}

}  // namespace ddpm::kernels
