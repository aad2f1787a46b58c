// Sampling reproduces the distributions the analytic predictors describe.
#include <gtest/gtest.h>

#include <cmath>

#include "ddpm/sampler.h"

namespace ddpm {
namespace {

// x0 ~ N(0.5, 0.3^2): 256 x 3072 samples with linear T = 1000 have mean
// within 0.003 of 0.5 and std within 1% of 0.3 (the sampling error of the
// mean is 0.3 / sqrt(786432) = 3.4e-4, so the bounds test the process, not luck).
TEST(Statistics, GaussianPriorSamplesHaveThePriorsMeanAndStd) {
  const Shape shape{256, 3072};
  std::vector<float> x(static_cast<std::size_t>(shape.size()));
  GaussianPredictor predictor({0.5f, 0.3f, {}, {}});
  Sampler(Schedule::linear(), {.backend = Backend::cpu}).sample({.x = x, .shape = shape, .noise = {1, 0}}, predictor);
  double sum = 0, sum_sq = 0;
  for (float v : x) sum += v, sum_sq += double(v) * v;
  const double mean = sum / x.size();
  const double std = std::sqrt(sum_sq / x.size() - mean * mean);
  EXPECT_NEAR(mean, 0.5, 0.003);
  EXPECT_NEAR(std / 0.3, 1.0, 0.01);
}

// A 2-component 2-D mixture with weights 0.3 / 0.7 and well-separated modes:
// the fraction of 100,000 samples nearest each mode is within 0.01 of its
// weight (binomial sampling error 0.0014).
TEST(Statistics, GmmSamplesFallIntoModesByWeight) {
  const GmmSpec spec{{0.3, 0.7}, {{-2.0, -2.0}, {2.0, 2.0}}, {0.3, 0.3}};
  const Shape shape{100000, 2};
  std::vector<float> x(static_cast<std::size_t>(shape.size()));
  GmmPredictor predictor(spec);
  Sampler(Schedule::linear(), {.backend = Backend::cpu}).sample({.x = x, .shape = shape, .noise = {2, 0}}, predictor);
  std::int64_t first_mode = 0, near_a_mode = 0;
  for (std::int64_t i = 0; i < shape.batch; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    first_mode += (a + b) < 0;
    const float d0 = std::hypot(a + 2, b + 2), d1 = std::hypot(a - 2, b - 2);
    near_a_mode += std::min(d0, d1) < 5 * 0.3f;
  }
  EXPECT_NEAR(static_cast<double>(first_mode) / shape.batch, 0.3, 0.01);
  EXPECT_GT(static_cast<double>(near_a_mode) / shape.batch, 0.999);
}

}  // namespace
}  // namespace ddpm
