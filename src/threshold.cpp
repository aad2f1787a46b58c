#include "threshold.h"

#include <algorithm>
#include <cmath>

namespace ddpm::detail {

QuantilePosition quantile_position(std::int64_t n, double ratio) {
  const double rank = ratio * static_cast<double>(n - 1);
  QuantilePosition p;
  p.lower = static_cast<std::int64_t>(std::floor(rank));
  if (p.lower > n - 1) p.lower = n - 1;
  p.weight = rank - static_cast<double>(p.lower);
  return p;
}

float threshold_scale_from(double lower, double upper, double weight,
                           const ThresholdSettings& settings) {
  const double s = lower + weight * (upper - lower);
  return static_cast<float>(std::min(std::max(s, 1.0), settings.max_value));
}

float threshold_scale(std::vector<float>& x0, const ThresholdSettings& settings) {
  for (float& v : x0) v = std::abs(v);
  const auto n = static_cast<std::int64_t>(x0.size());
  const QuantilePosition p = quantile_position(n, settings.ratio);
  const auto lower_at = x0.begin() + p.lower;
  std::nth_element(x0.begin(), lower_at, x0.end());
  const double lower = *lower_at;
  // The next order statistic is the smallest value after the lower one.
  const double upper =
      p.lower + 1 < n ? *std::min_element(lower_at + 1, x0.end()) : lower;
  return threshold_scale_from(lower, upper, p.weight, settings);
}

}  // namespace ddpm::detail
