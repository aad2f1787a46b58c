#pragma once
// The one vocabulary of a step's inputs, read by the CPU backend's tiles
// (src/backends/cpu) and the CUDA launchers (launch.h) alike: the noise key,
// the analytic prior, where the model output comes from, and how x0_hat is
// processed. The step's coefficients are its records (step_rule.cuh).
#include <cstdint>

#include "step_rule.cuh"

namespace ddpm::kernels {

struct NoiseParams {
  std::uint64_t seed = 0;
  std::int64_t first_sample = 0;
};

// Element-wise Gaussian prior of x0: per-element tables (dim floats each) or scalars.
struct PriorView {
  float mean = 0.0f;
  float var = 1.0f;
  const float* means = nullptr;  // both set, or both null
  const float* vars = nullptr;
};

// Where a step's model output comes from: the buffer a predictor wrote, or
// the analytic Gaussian prior evaluated in the kernel (the fused path, which
// takes the prior's x0_hat and eps_hat directly). With classifier-free
// guidance (`guided`) the buffer holds the conditional rows and, at
// `unconditional_offset` elements further, the unconditional ones, or the
// fused path evaluates both priors; the model output is then
// factor * (u + guidance_scale (c - u)), factor = row_factor[row] or 1.
struct ModelView {
  const float* output = nullptr;  // [batch, dim]; null: `prior`
  PriorView prior;
  bool guided = false;
  float guidance_scale = 1.0f;
  std::int64_t unconditional_offset = 0;
  const float* row_factor = nullptr;  // guidance rescale per row, or null
  PriorView unconditional_prior;      // guided fused path
};

// x0 processing: clipping to [lo, hi], or thresholding with the per-row
// scales of launch_threshold_scales.
struct X0View {
  X0Mode mode = X0Mode::none;
  float lo = -1.0f;
  float hi = 1.0f;
  const float* row_scale = nullptr;  // [batch], thresholding
};

}  // namespace ddpm::kernels
