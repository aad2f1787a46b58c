// Schedules: each kind matches its definition, the derived tables satisfy
// their identities, and impossible schedules are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "ddpm/error.h"
#include "ddpm/schedule.h"

namespace ddpm {
namespace {

TEST(Schedule, LinearIsEvenlySpacedLikeLinspace) {
  const Schedule s = Schedule::linear(1000, 1e-4, 0.02);
  ASSERT_EQ(s.steps(), 1000);
  EXPECT_DOUBLE_EQ(s.beta().front(), 1e-4);
  EXPECT_DOUBLE_EQ(s.beta().back(), 0.02);
  for (int t = 0; t < 1000; ++t) {
    EXPECT_NEAR(s.beta()[t], 1e-4 + (0.02 - 1e-4) * t / 999.0, 1e-15) << "t = " << t;
  }
}

TEST(Schedule, ScaledLinearIsEvenlySpacedInSqrtBeta) {
  const Schedule s = Schedule::from_spec({ScheduleKind::scaled_linear, 50, 0.00085, 0.012, {}});
  for (int t = 0; t < 50; ++t) {
    const double expected = std::sqrt(0.00085) + (std::sqrt(0.012) - std::sqrt(0.00085)) * t / 49.0;
    EXPECT_NEAR(std::sqrt(s.beta()[t]), expected, 1e-14);
  }
}

TEST(Schedule, CosineFollowsNicholDhariwalAlphaBar) {
  const int T = 1000;
  const Schedule s = Schedule::cosine(T);
  const auto f = [&](double t) {
    const double c = std::cos((t / T + 0.008) / 1.008 * std::numbers::pi / 2);
    return c * c;
  };
  for (int t = 0; t < T; ++t) {
    EXPECT_LE(s.beta()[t], 0.999);
    if (s.beta()[t] < 0.999) {
      EXPECT_NEAR(s.alpha_bar()[t], f(t + 1) / f(0), 1e-9) << "t = " << t;
    }
  }
  EXPECT_DOUBLE_EQ(s.beta().back(), 0.999);  // the cap is reached at t = T - 1
}

TEST(Schedule, SigmoidRisesMonotonicallyInsideTheRange) {
  const Schedule s = Schedule::from_spec({ScheduleKind::sigmoid, 200, 1e-4, 0.02, {}});
  for (int t = 1; t < 200; ++t) EXPECT_GT(s.beta()[t], s.beta()[t - 1]);
  EXPECT_GT(s.beta().front(), 1e-4);
  EXPECT_LT(s.beta().back(), 0.02);
  EXPECT_NEAR(s.beta()[100] + s.beta()[99], 1e-4 + 0.02, 1e-12);  // symmetric about the middle
}

TEST(Schedule, DerivedTablesSatisfyTheirDefinitions) {
  const Schedule s = Schedule::from_spec({ScheduleKind::linear, 300, 1e-4, 0.05, {}});
  double product = 1.0;
  for (int t = 0; t < s.steps(); ++t) {
    const double beta = s.beta()[t];
    const double ab_prev = product;
    product *= 1.0 - beta;
    EXPECT_NEAR(s.alpha()[t], 1.0 - beta, 1e-15);
    EXPECT_NEAR(s.alpha_bar()[t] / product, 1.0, 1e-12);
    EXPECT_NEAR(s.alpha_bar_prev()[t] / ab_prev, 1.0, 1e-12);
    EXPECT_NEAR(s.sqrt_alpha_bar()[t] * s.sqrt_alpha_bar()[t], product, 1e-12);
    EXPECT_NEAR(s.sqrt_one_minus_alpha_bar()[t] * s.sqrt_one_minus_alpha_bar()[t], 1 - product,
                1e-12);
    EXPECT_NEAR(s.posterior_variance()[t], beta * (1 - ab_prev) / (1 - product), 1e-15);
    // x0 recovered from x_t = a x0 + b eps with the eps -> x0 coefficients.
    const double x0 = 0.7, eps = -1.3;
    const double x_t = s.sqrt_alpha_bar()[t] * x0 + s.sqrt_one_minus_alpha_bar()[t] * eps;
    EXPECT_NEAR(s.sqrt_recip_alpha_bar()[t] * x_t - s.sqrt_recipm1_alpha_bar()[t] * eps, x0, 1e-9);
    // The posterior mean of eq. 7 equals the eps form of eq. 11.
    const double posterior_mean =
        s.posterior_mean_coef_x0()[t] * x0 + s.posterior_mean_coef_xt()[t] * x_t;
    const double eps_mean = s.sqrt_recip_alpha()[t] * (x_t - s.eps_coef()[t] * eps);
    EXPECT_NEAR(posterior_mean, eps_mean, 1e-9) << "t = " << t;
  }
  EXPECT_EQ(s.posterior_variance()[0], 0.0);
}

TEST(Schedule, CustomBetasAreUsedAsGiven) {
  const Schedule s = Schedule::from_betas({0.1, 0.2, 0.3});
  EXPECT_EQ(s.steps(), 3);
  EXPECT_NEAR(s.alpha_bar()[2], 0.9 * 0.8 * 0.7, 1e-15);
}

TEST(Schedule, RejectsNonPositiveStepCount) {
  EXPECT_THROW(Schedule::linear(0), Error);
  EXPECT_THROW(Schedule::linear(-5), Error);
  EXPECT_THROW(Schedule::from_betas({}), Error);
}

TEST(Schedule, RejectsBetasOutsideTheUnitInterval) {
  EXPECT_THROW(Schedule::from_betas({0.1, 1.0}), Error);
  EXPECT_THROW(Schedule::from_betas({0.0, 0.1}), Error);
  EXPECT_THROW(Schedule::from_betas({0.1, -0.2}), Error);
  EXPECT_THROW(Schedule::from_betas({0.1, std::nan("")}), Error);
  EXPECT_THROW(Schedule::linear(10, 1e-4, 1.5), Error);
  EXPECT_THROW(Schedule::linear(10, std::nan(""), 0.02), Error);
}

TEST(Schedule, ErrorMessageNamesTheBadBeta) {
  try {
    Schedule::from_betas({0.1, 0.2, 2.0});
    FAIL() << "expected ddpm::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("beta[2]"), std::string::npos) << e.what();
  }
}

TEST(Schedule, RejectsAlphaBarThatUnderflows) {
  EXPECT_THROW(Schedule::from_betas(std::vector<double>(2000, 0.9)), Error);
}

TEST(Schedule, ChecksStepRange) {
  const Schedule s = Schedule::linear(10);
  EXPECT_NO_THROW(s.check_step(0));
  EXPECT_NO_THROW(s.check_step(9));
  EXPECT_THROW(s.check_step(10), Error);
  EXPECT_THROW(s.check_step(-1), Error);
}

TEST(Schedule, ParsesKindNames) {
  EXPECT_EQ(parse_schedule_kind("cosine"), ScheduleKind::cosine);
  EXPECT_EQ(parse_schedule_kind("scaled_linear"), ScheduleKind::scaled_linear);
  EXPECT_THROW(parse_schedule_kind("quadratic"), Error);
}

}  // namespace
}  // namespace ddpm
