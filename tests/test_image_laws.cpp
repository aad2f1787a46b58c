// A photograph noised by the engine follows the laws the issue names: per
// pixel, over many samples, q(x_t | x0) = N(sqrt(ab_t) x0, 1 - ab_t) at each
// level t = i T / 5 and q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t);
// and the reverse loop run with the oracle (the Gaussian predictor with the
// photograph as its mean and std 0) returns the photograph.
#include <gtest/gtest.h>

#include <cmath>

#include "ddpm/image.h"
#include "ddpm/predictor.h"
#include "ddpm/sampler.h"
#include "test_support.h"

namespace ddpm {
namespace {

// Samples per pixel. With S = 2000 the standard error of a pixel's mean is
// sigma / 45 and of its variance var * sqrt(2 / 1999) = 3.2% of var.
constexpr int kSamples = 2000;
// Each pixel's z-score stays within 5.5 (two-sided tail 3.8e-8: over 3,600
// pixels and 10 laws the chance that any exceeds it is under 1.4e-3), and
// the mean over all pixels, whose standard error is 1/sqrt(P) of a pixel's,
// within 5 of its own standard errors.
constexpr double kPixelZ = 5.5;
constexpr double kAggregateZ = 5.0;

std::vector<float> photograph() {
  // 30 x 40 RGB: 3,600 values, each a pixel whose law is checked.
  return read_image(test::source_file("tests/data/images/small.jpg")).data;
}

std::vector<float> repeat(const std::vector<float>& x, int times) {
  std::vector<float> out;
  for (int i = 0; i < times; ++i) out.insert(out.end(), x.begin(), x.end());
  return out;
}

// `samples` is S rows of P values; pixel p's law is N(mean[p], var).
void expect_pixel_laws(const std::vector<float>& samples, const std::vector<double>& mean,
                       double var, const std::string& label) {
  const std::size_t pixels = mean.size();
  double z_sum = 0.0, ratio_sum = 0.0, worst_mean_z = 0.0, worst_var_z = 0.0;
  const double var_error = std::sqrt(2.0 / (kSamples - 1));
  for (std::size_t p = 0; p < pixels; ++p) {
    double sum = 0.0, sum_sq = 0.0;
    for (int s = 0; s < kSamples; ++s) {
      const double d = samples[s * pixels + p] - mean[p];
      sum += d;
      sum_sq += d * d;
    }
    const double m = sum / kSamples;
    const double v = (sum_sq - kSamples * m * m) / (kSamples - 1);
    const double z = m / std::sqrt(var / kSamples);
    z_sum += z;
    ratio_sum += v / var;
    worst_mean_z = std::max(worst_mean_z, std::abs(z));
    worst_var_z = std::max(worst_var_z, std::abs(v / var - 1.0) / var_error);
  }
  const double n = static_cast<double>(pixels);
  EXPECT_LT(worst_mean_z, kPixelZ) << label << ": a pixel's mean";
  EXPECT_LT(worst_var_z, kPixelZ) << label << ": a pixel's variance";
  EXPECT_LT(std::abs(z_sum / n), kAggregateZ / std::sqrt(n)) << label << ": the mean z-score";
  EXPECT_LT(std::abs(ratio_sum / n - 1.0), kAggregateZ * var_error / std::sqrt(n))
      << label << ": the mean variance ratio";
}

TEST(ImageLaws, NoisedPhotographFollowsForwardLawAtEachLevel) {
  const std::vector<float> x0 = photograph();
  const auto dim = static_cast<std::int64_t>(x0.size());
  Sampler sampler(Schedule::linear(), {.backend = Backend::cpu});
  const std::vector<float> batch = repeat(x0, kSamples);
  std::vector<float> x_t = test::poisoned(batch.size());
  for (const int t : {0, 200, 400, 600, 800}) {
    sampler.forward({.x0 = batch, .shape = {kSamples, dim}, .step = t, .noise = {11, 0}, .x_t = x_t});
    const double ab = sampler.schedule().alpha_bar()[t];
    std::vector<double> mean(x0.size());
    for (std::size_t p = 0; p < x0.size(); ++p) mean[p] = std::sqrt(ab) * x0[p];
    expect_pixel_laws(x_t, mean, 1.0 - ab, "q(x_t | x0), t = " + std::to_string(t));
  }
}

TEST(ImageLaws, OneStepFollowsLawOfTheStep) {
  const std::vector<float> x0 = photograph();
  const auto dim = static_cast<std::int64_t>(x0.size());
  Sampler sampler(Schedule::linear(), {.backend = Backend::cpu});
  const std::vector<double>& alpha_bar = sampler.schedule().alpha_bar();
  for (const int t : {1, 200, 400, 600, 800}) {
    // One sample of x_{t-1}, then kSamples steps from it.
    std::vector<float> x_prev = test::poisoned(x0.size());
    sampler.forward({.x0 = x0, .shape = {1, dim}, .step = t - 1, .noise = {12, 0}, .x_t = x_prev});
    std::vector<float> x_t = test::poisoned(x0.size() * kSamples);
    sampler.forward_one_step({.x_prev = repeat(x_prev, kSamples), .shape = {kSamples, dim},
                              .step = t, .noise = {13, 0}, .x_t = x_t});
    const double alpha = alpha_bar[t] / alpha_bar[t - 1];
    std::vector<double> mean(x0.size());
    for (std::size_t p = 0; p < x0.size(); ++p) mean[p] = std::sqrt(alpha) * x_prev[p];
    expect_pixel_laws(x_t, mean, 1.0 - alpha, "q(x_t | x_t-1), t = " + std::to_string(t));
  }
}

// The oracle's x0_hat is the photograph at every step, and the last step
// returns x0_hat (alpha_bar_prev = 1): the result is the photograph to within
// float rounding, whatever noise the earlier steps added.
TEST(ImageLaws, OracleReverseRunReturnsThePhotograph) {
  const std::vector<float> x0 = photograph();
  GaussianPrior oracle;
  oracle.means = x0;
  oracle.std = 0.0f;
  GaussianPredictor predictor(oracle);
  for (const SamplerKind kind : {SamplerKind::ddpm, SamplerKind::ddim}) {
    Sampler sampler(Schedule::linear(), {.backend = Backend::cpu, .sampler = kind});
    std::vector<float> x = test::poisoned(x0.size());
    sampler.sample({.x = x, .shape = {1, static_cast<std::int64_t>(x0.size())}, .noise = {14, 0}},
                   predictor);
    // A few float32 roundings at magnitude <= 1: 4 * 2^-24 relative to the largest value.
    EXPECT_TRUE(test::close_relative_to_max(x, test::to_double(x0), 4 * 0x1p-24)) << to_string(kind);
  }
}

}  // namespace
}  // namespace ddpm
