// The per-element math both backends run (kernels/step_math.cuh), against
// the double-precision formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "ddpm/schedule.h"
#include "kernels/step_math.cuh"
#include "step_table.h"
#include "test_support.h"

namespace ddpm {
namespace {

using kernels::ClipSettings;

class StepMath : public ::testing::TestWithParam<ScheduleKind> {
 protected:
  Schedule schedule = Schedule::from_spec({GetParam(), 1000, 1e-4, 0.02, {}});
  std::vector<kernels::StepCoefficients> table =
      detail::make_step_table(schedule, VarianceKind::beta);
};

// Without clipping the posterior form around x0(x_t, eps) and the eps form
// are the same mean; a clip range that clips nothing must not change it.
TEST_P(StepMath, PosteriorAndEpsFormsOfTheMeanAgreeWhenNothingIsClipped) {
  const ClipSettings wide{true, -1e30f, 1e30f};
  const ClipSettings off{};
  const auto x = test::random_values(64, 1);
  const auto eps = test::random_values(64, 2);
  for (int t = 0; t < schedule.steps(); t += 7) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float eps_form = kernels::reverse_mean(x[i], eps[i], table[t], off);
      const float posterior_form = kernels::reverse_mean(x[i], eps[i], table[t], wide);
      // Both are float; sqrt_recip_alpha_bar grows to ~1e2 at t = T-1 for linear,
      // so the posterior form loses a few bits there.
      EXPECT_NEAR(posterior_form, eps_form, 2e-5 * (1 + std::abs(eps_form)))
          << "t = " << t << " i = " << i;
    }
  }
}

TEST_P(StepMath, ClippingBoundsThePredictedX0) {
  const ClipSettings clip{true, -1.0f, 1.0f};
  const int t = 500;
  const kernels::StepCoefficients& c = table[t];
  // x_t built from x0 = 3 (outside the range) and eps = 0.2.
  const float x_t = kernels::forward_noise(3.0f, 0.2f, c);
  const float mean = kernels::reverse_mean(x_t, 0.2f, c, clip);
  const double expected = schedule.posterior_mean_coef_x0()[t] * 1.0 +
                          schedule.posterior_mean_coef_xt()[t] * x_t;
  EXPECT_NEAR(mean, expected, 1e-5);
}

TEST_P(StepMath, ForwardAndVelocityMatchDoubleFormulas) {
  const auto x0 = test::random_values(32, 3);
  const auto eps = test::random_values(32, 4);
  for (int t : {0, 1, 250, 999}) {
    const double a = std::sqrt(schedule.alpha_bar()[t]);
    const double b = std::sqrt(1 - schedule.alpha_bar()[t]);
    for (std::size_t i = 0; i < x0.size(); ++i) {
      EXPECT_NEAR(kernels::forward_noise(x0[i], eps[i], table[t]), a * x0[i] + b * eps[i], 1e-6);
      EXPECT_NEAR(kernels::velocity_target(x0[i], eps[i], table[t]), a * eps[i] - b * x0[i], 1e-6);
      EXPECT_NEAR(kernels::forward_one_step(x0[i], eps[i], table[t]),
                  std::sqrt(1 - schedule.beta()[t]) * x0[i] + std::sqrt(schedule.beta()[t]) * eps[i],
                  1e-6);
    }
  }
}

// With std 0 the Gaussian predictor is the oracle: it recovers the eps that
// made x_t from the known x0.
TEST_P(StepMath, GaussianPriorWithZeroStdIsTheOracle) {
  const auto x0 = test::random_values(32, 5);
  const auto eps = test::random_values(32, 6);
  for (int t : {0, 10, 500, 999}) {
    for (std::size_t i = 0; i < x0.size(); ++i) {
      const float x_t = kernels::forward_noise(x0[i], eps[i], table[t]);
      // Recovering eps divides by b = sqrt(1 - ab), small at t = 0.
      const double tolerance = 1e-6 / schedule.sqrt_one_minus_alpha_bar()[t];
      EXPECT_NEAR(kernels::gaussian_prior_eps(x_t, x0[i], 0.0f, table[t]), eps[i], tolerance);
    }
  }
}

TEST_P(StepMath, StepTableHasNoNoiseAtTheLastStep) {
  EXPECT_EQ(table[0].sigma, 0.0f);
  const auto posterior = detail::make_step_table(schedule, VarianceKind::posterior);
  EXPECT_EQ(posterior[0].sigma, 0.0f);
  for (int t = 1; t < schedule.steps(); t += 111) {
    EXPECT_FLOAT_EQ(table[t].sigma, static_cast<float>(std::sqrt(schedule.beta()[t])));
    EXPECT_FLOAT_EQ(posterior[t].sigma,
                    static_cast<float>(std::sqrt(schedule.posterior_variance()[t])));
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, StepMath,
                         ::testing::Values(ScheduleKind::linear, ScheduleKind::cosine,
                                           ScheduleKind::scaled_linear, ScheduleKind::sigmoid),
                         [](const auto& info) { return to_string(info.param); });

}  // namespace
}  // namespace ddpm
