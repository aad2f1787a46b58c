#pragma once
// The float coefficients one step needs, packed so that a kernel reads one
// struct per step. Built on the host from the double-precision ddpm::Schedule.
#include <cstdint>

namespace ddpm::kernels {

struct StepCoefficients {
  float sqrt_alpha_bar;            // forward: weight of x0
  float sqrt_one_minus_alpha_bar;  // forward: weight of eps
  float sqrt_recip_alpha;          // reverse mean: 1/sqrt(alpha_t)
  float eps_coef;                  // reverse mean: beta_t/sqrt(1 - alpha_bar_t)
  float sigma;                     // sqrt of the chosen variance; 0 at t = 0 (no noise)
  float sqrt_recip_alpha_bar;      // x0 from (x_t, eps)
  float sqrt_recipm1_alpha_bar;
  float posterior_mean_coef_x0;    // posterior mean from (x0, x_t)
  float posterior_mean_coef_xt;
  float sqrt_alpha;                // one-step forward q(x_t | x_{t-1})
  float sqrt_beta;
  float pad_;                      // 48 bytes: keeps the struct 16-byte aligned in tables
};
static_assert(sizeof(StepCoefficients) == 48, "one step is 48 bytes");

// Optional x0 clipping; the reverse step uses the posterior form when enabled.
struct ClipSettings {
  bool enabled = false;
  float lo = -1.0f;
  float hi = 1.0f;
};

}  // namespace ddpm::kernels
