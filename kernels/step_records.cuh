#pragma once
// The compact per-step records the sampling kernels read from constant memory
// (kernels/constant_schedule.cuh). A kernel needs only a few of the twelve
// floats of StepCoefficients, so a record keeps just those:
//
//   plain (no x0 clipping), 5 floats:  sqrt_alpha_bar, sqrt_one_minus_alpha_bar,
//                                      sqrt_recip_alpha, eps_coef, sigma
//   clipped, 7 floats:                 sqrt_alpha_bar, sqrt_one_minus_alpha_bar, sigma,
//                                      sqrt_recip_alpha_bar, sqrt_recipm1_alpha_bar,
//                                      posterior_mean_coef_x0, posterior_mean_coef_xt
//
// The first two fields serve the forward kernel and the fused Gaussian
// predictor; the rest serve reverse_mean() in either form. Unpacking fills a
// StepCoefficients (unused fields 0) so that the kernels call the shared math
// in step_math.cuh unchanged.
#include "host_device.cuh"
#include "step_coefficients.cuh"

namespace ddpm::kernels {

inline constexpr int kRecordWidthPlain = 5;
inline constexpr int kRecordWidthClipped = 7;

DDPM_HD constexpr int record_width(bool clipped) {
  return clipped ? kRecordWidthClipped : kRecordWidthPlain;
}

// Writes record_width(clipped) floats to `out`.
DDPM_HD void pack_step_record(const StepCoefficients& c, bool clipped, float* out) {
  out[0] = c.sqrt_alpha_bar;
  out[1] = c.sqrt_one_minus_alpha_bar;
  if (clipped) {
    out[2] = c.sigma;
    out[3] = c.sqrt_recip_alpha_bar;
    out[4] = c.sqrt_recipm1_alpha_bar;
    out[5] = c.posterior_mean_coef_x0;
    out[6] = c.posterior_mean_coef_xt;
  } else {
    out[2] = c.sqrt_recip_alpha;
    out[3] = c.eps_coef;
    out[4] = c.sigma;
  }
}

// `r` holds record_width(Clipped) floats, already loaded.
template <bool Clipped>
DDPM_HD StepCoefficients unpack_step_record(const float* r) {
  StepCoefficients c{};
  c.sqrt_alpha_bar = r[0];
  c.sqrt_one_minus_alpha_bar = r[1];
  if constexpr (Clipped) {
    c.sigma = r[2];
    c.sqrt_recip_alpha_bar = r[3];
    c.sqrt_recipm1_alpha_bar = r[4];
    c.posterior_mean_coef_x0 = r[5];
    c.posterior_mean_coef_xt = r[6];
  } else {
    c.sqrt_recip_alpha = r[2];
    c.eps_coef = r[3];
    c.sigma = r[4];
  }
  return c;
}

}  // namespace ddpm::kernels
