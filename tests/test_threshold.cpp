// Dynamic thresholding's per-sample scale on the CPU (src/core/threshold.h): the
// radix selection gives exactly the order statistics a full sort gives, for
// ties, zeros, negative values, one value, and every quantile position.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/threshold.h"

namespace ddpm::detail {
namespace {

// The scale from a sorted copy: the definition, plainly.
float scale_by_sorting(std::vector<float> x0, const ThresholdSettings& settings) {
  for (float& v : x0) v = std::abs(v);
  std::sort(x0.begin(), x0.end());
  const auto n = static_cast<std::int64_t>(x0.size());
  const QuantilePosition p = quantile_position(n, settings.ratio);
  const double lower = x0[static_cast<std::size_t>(p.lower)];
  const double upper = p.lower + 1 < n ? x0[static_cast<std::size_t>(p.lower + 1)] : lower;
  return threshold_scale_from(lower, upper, p.weight, settings);
}

TEST(ThresholdScale, EqualsTheScaleOfASortedCopy) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int> small(-4, 4);
  int checked = 0;
  for (const std::size_t n : {1, 2, 3, 7, 64, 257, 3072, 12288}) {
    for (const int kind : {0, 1, 2, 3}) {
      std::vector<float> x(n);
      for (float& v : x) {
        switch (kind) {
          case 0: v = normal(rng); break;                       // spread values
          case 1: v = static_cast<float>(small(rng)) * 0.5f; break;  // many ties, zeros, signs
          case 2: v = 1.0f + 1e-7f * static_cast<float>(small(rng)); break;  // one exponent
          default: v = std::ldexp(normal(rng), small(rng) * 8); break;  // many exponents
        }
      }
      for (const double ratio : {0.0, 0.5, 0.9, 0.995, 1.0}) {
        // max_value large, so that the clamp hides nothing.
        const ThresholdSettings settings{ratio, 1e30};
        std::vector<float> work = x;
        EXPECT_EQ(threshold_scale(work, settings), scale_by_sorting(x, settings))
            << "n " << n << ", kind " << kind << ", ratio " << ratio;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8 * 4 * 5);
}

TEST(ThresholdScale, ClampsToOneAndTheMaximum) {
  std::vector<float> small(100, 0.25f);
  EXPECT_EQ(threshold_scale(small, {0.995, 2.0}), 1.0f);
  std::vector<float> large(100, -8.0f);
  EXPECT_EQ(threshold_scale(large, {0.995, 2.0}), 2.0f);
}

}  // namespace
}  // namespace ddpm::detail
