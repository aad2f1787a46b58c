// The per-element math both backends run (kernels/step_math.cuh and
// kernels/step_rule.cuh) with the float records of real plans, against the
// double-precision formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "ddpm/sampler.h"
#include "kernels/step_math.cuh"
#include "core/step_plan.h"
#include "test_support.h"

namespace ddpm {
namespace {

struct MathCase {
  ScheduleKind schedule;
  SamplerKind sampler;
  PredictionType type;
};

void PrintTo(const MathCase& c, std::ostream* os) {
  *os << to_string(c.schedule) << "_" << to_string(c.sampler) << "_" << to_string(c.type);
}

class StepMath : public ::testing::TestWithParam<MathCase> {
 protected:
  Schedule schedule = Schedule::from_spec({GetParam().schedule, 1000, 1e-4, 0.02, {}});
  SamplerOptions options() const {
    SamplerOptions o;
    o.sampler = GetParam().sampler;
    o.prediction_type = GetParam().type;
    o.num_inference_steps = 50;
    o.eta = GetParam().sampler == SamplerKind::ddim ? 0.5 : 0.0;
    return o;
  }
  std::vector<PlannedStep> plan = detail::make_plan(schedule, options()).steps;
};

// Without x0 processing the folded update and the full one (x0_hat, eps_hat,
// then the update) are the same linear map; both agree with the double plan.
TEST_P(StepMath, FoldedAndFullUpdatesAgreeWithTheDoublePlan) {
  const auto x = test::random_values(64, 1);
  const auto m = test::random_values(64, 2);
  for (const PlannedStep& s : plan) {
    const kernels::StepRecord r = detail::make_step_record(s);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double x0 = s.x0_from_sample * x[i] + s.x0_from_model_output * m[i];
      const double eps = s.eps_from_sample * x[i] + s.eps_from_model_output * m[i];
      const double x0_prev = 0.25;  // the multistep term (weight 0 for these rules)
      const double expected = s.prev_from_x0 * x0 + s.prev_from_eps * eps +
                              s.prev_from_sample * x[i] + s.prev_from_x0_prev * x0_prev + s.sigma * 0.3;
      const float folded = kernels::step_folded(x[i], m[i], 0.25f, 0.3f, r);
      const float full =
          kernels::step_from_x0(x[i], m[i], kernels::predicted_x0(x[i], m[i], r), 0.25f, 0.3f, r);
      // x0 is formed with 1/sqrt(ab) (~157 at the end of the linear schedule),
      // so the full form loses a few bits there.
      const double scale = 1.0 + std::abs(expected) + std::abs(s.x0_from_sample) * 1e-2;
      EXPECT_NEAR(folded, expected, 2e-6 * scale) << "t = " << s.timestep;
      EXPECT_NEAR(full, expected, 2e-5 * scale) << "t = " << s.timestep;
    }
  }
}

// The prediction types are views of one (x0, eps) pair: converting the
// forward process's own x0/eps/v back gives x0 and eps again.
TEST_P(StepMath, PredictionConversionRecoversX0AndEps) {
  const auto x0 = test::random_values(32, 3);
  const auto eps = test::random_values(32, 4);
  for (const PlannedStep& s : plan) {
    const double a = std::sqrt(s.alpha_bar), b = std::sqrt(1 - s.alpha_bar);
    for (std::size_t i = 0; i < x0.size(); ++i) {
      const double x_t = a * x0[i] + b * eps[i];
      const double m = GetParam().type == PredictionType::epsilon ? eps[i]
                       : GetParam().type == PredictionType::sample ? x0[i]
                                                                   : a * eps[i] - b * x0[i];
      EXPECT_NEAR(s.x0_from_sample * x_t + s.x0_from_model_output * m, x0[i], 1e-9 / a);
      EXPECT_NEAR(s.eps_from_sample * x_t + s.eps_from_model_output * m, eps[i], 1e-9 / b);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rules, StepMath,
    ::testing::Values(MathCase{ScheduleKind::linear, SamplerKind::ddpm, PredictionType::epsilon},
                      MathCase{ScheduleKind::cosine, SamplerKind::ddpm, PredictionType::sample},
                      MathCase{ScheduleKind::scaled_linear, SamplerKind::ddim, PredictionType::v_prediction},
                      MathCase{ScheduleKind::sigmoid, SamplerKind::ddim, PredictionType::epsilon},
                      MathCase{ScheduleKind::linear, SamplerKind::ddim, PredictionType::sample},
                      MathCase{ScheduleKind::cosine, SamplerKind::ddpm, PredictionType::v_prediction}),
    [](const auto& info) {
      return to_string(info.param.schedule) + "_" + to_string(info.param.sampler) + "_" +
             to_string(info.param.type);
    });

TEST(StepMath, ClippingAndThresholdingBoundX0) {
  using kernels::X0Mode;
  EXPECT_EQ(kernels::process_x0<X0Mode::clip>(3.0f, -1.0f, 1.0f, 0.0f), 1.0f);
  EXPECT_EQ(kernels::process_x0<X0Mode::clip>(-0.25f, -0.5f, 1.0f, 0.0f), -0.25f);
  EXPECT_EQ(kernels::process_x0<X0Mode::threshold>(3.0f, 0.0f, 0.0f, 2.0f), 1.0f);
  EXPECT_EQ(kernels::process_x0<X0Mode::threshold>(-1.0f, 0.0f, 0.0f, 2.0f), -0.5f);
  EXPECT_EQ(kernels::process_x0<X0Mode::none>(7.0f, -1.0f, 1.0f, 2.0f), 7.0f);
}

TEST(StepMath, ForwardAndVelocityMatchDoubleFormulas) {
  const Schedule schedule = Schedule::linear();
  const auto table = detail::make_forward_table(schedule);
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

// With std 0 the Gaussian predictor is the oracle: it recovers the eps (or
// x0, or v) that made x_t from the known x0.
TEST(StepMath, GaussianPriorWithZeroStdIsTheOracleInEveryType) {
  const Schedule schedule = Schedule::linear();
  const auto x0 = test::random_values(32, 5);
  const auto eps = test::random_values(32, 6);
  for (int t : {0, 10, 500, 999}) {
    const float a = static_cast<float>(schedule.sqrt_alpha_bar()[t]);
    const float b = static_cast<float>(schedule.sqrt_one_minus_alpha_bar()[t]);
    for (std::size_t i = 0; i < x0.size(); ++i) {
      const float x_t = a * x0[i] + b * eps[i];
      // Recovering eps divides by b = sqrt(1 - ab), small at t = 0.
      const double tolerance = 1e-6 / schedule.sqrt_one_minus_alpha_bar()[t];
      EXPECT_NEAR(kernels::gaussian_model_output(x_t, x0[i], 0.0f, a, b, kernels::output_weights(0, a, b)),
                  eps[i], tolerance);
      EXPECT_NEAR(kernels::gaussian_model_output(x_t, x0[i], 0.0f, a, b, kernels::output_weights(1, a, b)),
                  x0[i], 1e-6);
      EXPECT_NEAR(kernels::gaussian_model_output(x_t, x0[i], 0.0f, a, b, kernels::output_weights(2, a, b)),
                  a * eps[i] - b * x0[i], tolerance);
    }
  }
}

// At zero terminal SNR (a = 0) x_t carries no information about x0: the
// posterior mean of x0 is the prior mean, and eps = x_t.
TEST(StepMath, GaussianPriorIsFiniteAtZeroSnr) {
  const kernels::OutputWeights sample = kernels::output_weights(1, 0.0f, 1.0f);
  const kernels::OutputWeights eps = kernels::output_weights(0, 0.0f, 1.0f);
  EXPECT_EQ(kernels::gaussian_model_output(1.7f, 0.4f, 0.25f, 0.0f, 1.0f, sample), 0.4f);
  EXPECT_EQ(kernels::gaussian_model_output(1.7f, 0.4f, 0.25f, 0.0f, 1.0f, eps), 1.7f);
}

}  // namespace
}  // namespace ddpm
