#pragma once
// The element-wise passes of the MLP denoiser (src/predictors/networks/mlp/mlp_network.h), shared by
// the CPU forward pass and the CUDA kernels in kernels/mlp_kernels.cu.
//
// Row functions take `lane` and `lanes` like gmm_row_eps: lane l handles
// elements l, l + lanes, ..., and `reduce` sums a per-lane partial over the
// lanes (on the host lanes = 1 and reduce is the identity).
#include <cmath>
#include <cstdint>

#include "kernels/host_device.cuh"

namespace ddpm::kernels {

// silu(x) = x sigmoid(x), as torch.nn.functional.silu.
DDPM_HD float silu(float x) { return x / (1.0f + expf(-x)); }

// sin and cos of x in double, exact to double rounding for |x| < 2^30 (every
// embedding angle a real card gives). Larger finite angles are first reduced
// modulo the double nearest 2 pi (off from torch's float sin by up to a few
// float ulps there, the same on both backends). Why: CUDA's double sin and
// cos take a Payne-Hanek slow path at |x| >= 2^30 whose words live on a
// 40-byte stack frame; with the bound stated the kernel has no stack frame.
DDPM_HD void sin_cos_below_2_30(double x, double* s, double* c) {
  constexpr double kBound = 1073741824.0;  // 2^30
  const bool finite = fabs(x) < INFINITY;  // false for NaN too
  double r = x;
  if (!(fabs(r) < kBound)) r = finite ? fmod(r, 6.283185307179586) : 0.0;
#if defined(__CUDA_ARCH__)
  __builtin_assume(fabs(r) < kBound);
#endif
  *s = finite ? sin(r) : NAN;
  *c = finite ? cos(r) : NAN;
}

// Element k and half + k of diffusers' get_timestep_embedding(t, 2 half,
// flip_sin_to_cos, downscale_freq_shift, scale, max_period), with
// minus_log_period = (float)(-log(max_period)) and divisor =
// (float)(half - downscale_freq_shift):
//   exponent = minus_log_period * k / divisor;  angle = scale * (t * exp(exponent))
// each operation rounded to float32 as torch's float32 ops round, and exp,
// sin and cos correctly rounded (computed in double). t may be fractional
// (Euler's and Karras sigmas' timesteps). Writes [cos, sin] when flipped,
// [sin, cos] otherwise.
DDPM_HD void timestep_embedding_pair(float t, int k, int half, float minus_log_period,
                                     float divisor, float scale, bool flip_sin_to_cos,
                                     float* out) {
  const float exponent = minus_log_period * static_cast<float>(k) / divisor;
  const auto frequency = static_cast<float>(exp(static_cast<double>(exponent)));
  const float angle = scale * (t * frequency);
  double s = 0.0;
  double c = 0.0;
  sin_cos_below_2_30(static_cast<double>(angle), &s, &c);
  out[k] = static_cast<float>(flip_sin_to_cos ? c : s);
  out[half + k] = static_cast<float>(flip_sin_to_cos ? s : c);
}

// The block's activation: silu(u + time condition + class condition).
DDPM_HD float conditioned_silu(float u, float time_condition, float class_condition) {
  return silu(u + (time_condition + class_condition));
}

// h += bias, then a = LayerNorm(h) gamma + beta (biased variance, eps inside
// the square root, as torch.nn.LayerNorm), then silu(a) when Silu. `h` and
// `a` are one row of `dim` floats each; every lane of the row must call it.
template <bool Silu, typename Reduce>
DDPM_HD void bias_layer_norm_row(float* h, const float* bias, float* a, const float* gamma,
                                 const float* beta, std::int64_t dim, float eps, int lane,
                                 int lanes, Reduce&& reduce) {
  float sum = 0.0f;
  for (std::int64_t d = lane; d < dim; d += lanes) {
    const float v = h[d] + bias[d];
    h[d] = v;
    sum += v;
  }
  const float mean = reduce(sum) / static_cast<float>(dim);
  float squares = 0.0f;
  for (std::int64_t d = lane; d < dim; d += lanes) {
    const float c = h[d] - mean;
    squares += c * c;
  }
  const float inv_std = 1.0f / sqrtf(reduce(squares) / static_cast<float>(dim) + eps);
  for (std::int64_t d = lane; d < dim; d += lanes) {
    const float y = (h[d] - mean) * inv_std * gamma[d] + beta[d];
    a[d] = Silu ? silu(y) : y;
  }
}

// The host form: one thread per row.
template <bool Silu>
DDPM_HD void bias_layer_norm_row(float* h, const float* bias, float* a, const float* gamma,
                                 const float* beta, std::int64_t dim, float eps) {
  bias_layer_norm_row<Silu>(h, bias, a, gamma, beta, dim, eps, 0, 1, [](float s) { return s; });
}

}  // namespace ddpm::kernels
