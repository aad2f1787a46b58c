#pragma once
// Classifier-free guidance (Ho & Salimans 2022) as the loops run it: the
// predictor sees 2 x batch rows, the conditional ones (the request's labels)
// and then the same x_t with the predictor's unconditional label, and the
// step combines u + w (c - u), optionally rescaled per sample towards the
// conditional output's std (diffusers' rescale_noise_cfg, Lin et al. 2024).
#include <cstdint>
#include <vector>

#include "ddpm/sampler.h"

namespace ddpm::detail {

// Throws ddpm::Error for a non-finite guidance scale, a negative or
// non-finite rescale, or guidance with a predictor that has no unconditional model or
// without the class labels it needs.
void check_guidance(const SampleRequest& request, const NoisePredictor& predictor);

bool guided(const SampleRequest& request);

// The 2 x batch labels of a guided call (host memory): the request's
// labels (host) or, for the built-in analytic predictors, which need none,
// 0; then the unconditional label.
std::vector<std::int32_t> guided_labels(const std::vector<std::int32_t>& conditional,
                                        std::int64_t batch, const NoisePredictor& predictor);

// The per-row factor of guidance_rescale over one row of `dim` outputs:
// rescale * std(c) / std(u + w (c - u)) + (1 - rescale), with std over the
// row (unbiased, as torch.std); 1 where the guided output is constant.
float guidance_rescale_factor(const float* conditional, const float* unconditional,
                              std::int64_t dim, double scale, double rescale);

}  // namespace ddpm::detail
