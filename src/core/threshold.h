#pragma once
// Dynamic thresholding's per-sample scale (Saharia et al. 2022; diffusers'
// _threshold_sample): s = the `ratio` quantile of |x0_hat| over one sample,
// with torch.quantile's linear interpolation between order statistics,
// clamped to [1, max_value] (to max_value when max_value < 1, as torch.clamp
// does). The CUDA kernel computes the same s by radix selection.
#include <cstdint>
#include <vector>

namespace ddpm::detail {

struct ThresholdSettings {
  double ratio = 0.995;
  double max_value = 1.0;
};

// The quantile position ratio * (n - 1) as (index of the lower order
// statistic, weight of the upper one).
struct QuantilePosition {
  std::int64_t lower = 0;
  double weight = 0.0;
};
QuantilePosition quantile_position(std::int64_t n, double ratio);

// s from the lower and upper order statistics.
float threshold_scale_from(double lower, double upper, double weight,
                           const ThresholdSettings& settings);

// s for one sample's x0_hat (its values are left as they are).
float threshold_scale(std::vector<float>& x0, const ThresholdSettings& settings);

}  // namespace ddpm::detail
