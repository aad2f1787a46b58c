// The built-in predictors against the reference's independent formulas, and
// their specifications' validation.
#include <gtest/gtest.h>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "reference/reference.h"
#include "test_support.h"

namespace ddpm {
namespace {

std::vector<float> predict_host(NoisePredictor& p, const Schedule& s, const std::vector<float>& x,
                                Shape shape, int step, const std::int32_t* steps = nullptr) {
  std::vector<float> eps = test::poisoned(x.size());
  p.prepare(s, Memory::host, shape, nullptr);
  p.predict({.x_t = x.data(), .eps = eps.data(), .shape = shape, .step = step, .steps = steps,
             .schedule = &s});
  return eps;
}

TEST(GaussianPredictor, MatchesReferenceFormulaAtEveryStep) {
  const Schedule s = Schedule::linear();
  const Shape shape{4, 33};
  const auto x = test::random_values(shape.size(), 1, -3.0f, 3.0f);
  GaussianPrior scalar{0.5f, 0.3f, {}, {}};
  GaussianPrior per_element{0, 1, test::random_values(33, 2), test::random_values(33, 3, 0.0f, 1.0f)};
  for (const GaussianPrior& prior : {scalar, per_element}) {
    GaussianPredictor predictor(prior);
    for (int t : {0, 1, 500, 999}) {
      const auto eps = predict_host(predictor, s, x, shape, t);
      const auto ref = reference::gaussian_model(s, shape, prior)(test::to_double(x), t, s.alpha_bar()[t]);
      EXPECT_TRUE(test::close_relative_to_max(eps, ref, 1e-6)) << "t = " << t;
    }
  }
}

TEST(GaussianPredictor, UsesEachSamplesStep) {
  const Schedule s = Schedule::linear();
  const Shape shape{3, 10};
  const auto x = test::random_values(shape.size(), 4);
  GaussianPredictor predictor({0.1f, 0.2f, {}, {}});
  const std::int32_t steps[3] = {5, 900, 300};
  const auto eps = predict_host(predictor, s, x, shape, 0, steps);
  for (int row = 0; row < 3; ++row) {
    const std::vector<float> row_x(x.begin() + row * 10, x.begin() + row * 10 + 10);
    const auto ref = reference::gaussian_model(s, {1, 10}, predictor.prior())(test::to_double(row_x), steps[row],
                                                                      s.alpha_bar()[steps[row]]);
    for (int i = 0; i < 10; ++i) EXPECT_NEAR(eps[row * 10 + i], ref[i], 1e-6);
  }
}

// The oracle (std 0, mean = x0) takes the reverse process back to x0.
TEST(GaussianPredictor, OracleReturnsTheKnownX0) {
  const Schedule s = Schedule::linear();
  const Shape shape{2, 300};
  GaussianPrior prior;
  prior.means = test::random_values(300, 5, -1.0f, 1.0f);
  prior.stds.assign(300, 0.0f);
  GaussianPredictor predictor(prior);
  std::vector<float> x(600);
  Sampler(s, {.backend = Backend::cpu}).sample({.x = x, .shape = shape, .noise = {1, 0}}, predictor);
  for (int row = 0; row < 2; ++row) {
    for (int i = 0; i < 300; ++i) EXPECT_NEAR(x[row * 300 + i], prior.means[i], 1e-4);
  }
}

TEST(GaussianPredictor, RejectsBadPriors) {
  EXPECT_THROW(GaussianPredictor({0.0f, -0.1f, {}, {}}), Error);
  EXPECT_THROW(GaussianPredictor({std::nanf(""), 1.0f, {}, {}}), Error);
  EXPECT_THROW(GaussianPredictor({0.0f, 1.0f, {0.0f, 1.0f}, {1.0f}}), Error);
  EXPECT_THROW(GaussianPredictor({0.0f, 1.0f, {}, {1.0f, -2.0f}}), Error);
  GaussianPredictor predictor({0.0f, 1.0f, {0.0f, 1.0f}, {}});
  EXPECT_THROW(predictor.prepare(Schedule::linear(10), Memory::host, {1, 3}, nullptr), Error);
}

TEST(GmmPredictor, MatchesReferenceFormula) {
  const Schedule s = Schedule::cosine(200);
  const GmmSpec spec{{0.2, 0.5, 0.3}, {{-2.0, 1.0}, {0.0, 0.0}, {3.0, -1.0}}, {0.1, 0.5, 0.0}};
  const Shape shape{50, 2};
  const auto x = test::random_values(shape.size(), 6, -4.0f, 4.0f);
  GmmPredictor predictor(spec);
  for (int t : {0, 3, 100, 199}) {
    const auto eps = predict_host(predictor, s, x, shape, t);
    const auto ref = reference::gmm_model(s, shape, spec)(test::to_double(x), t, s.alpha_bar()[t]);
    EXPECT_TRUE(test::close_relative_to_max(eps, ref, 1e-5)) << "t = " << t;
  }
}

TEST(GmmPredictor, StaysFiniteFarFromEveryComponent) {
  const Schedule s = Schedule::linear();
  GmmPredictor predictor(GmmSpec{{0.5, 0.5}, {{0.0}, {1.0}}, {0.01, 0.01}});
  const std::vector<float> x{1e4f, -1e4f};
  const auto eps = predict_host(predictor, s, x, {2, 1}, 0);
  EXPECT_TRUE(std::isfinite(eps[0]) && std::isfinite(eps[1]));
}

TEST(GmmSpec, ParsesJson) {
  const GmmSpec spec = GmmSpec::from_json(
      R"({"weights": [0.25, 0.75], "means": [[0, 1, 2], [3, 4, 5]], "stds": [0.5, 1]})");
  EXPECT_EQ(spec.components(), 2);
  EXPECT_EQ(spec.dim(), 3);
  EXPECT_DOUBLE_EQ(spec.means[1][2], 5.0);
}

TEST(GmmSpec, RejectsBadSpecifications) {
  const char* bad[] = {
      R"({"weights": [0.5, 0.6], "means": [[0], [1]], "stds": [1, 1]})",      // sum 1.1
      R"({"weights": [0.5, 0.5], "means": [[0], [1]], "stds": [1, -1]})",     // negative std
      R"({"weights": [0.5, 0.5], "means": [[0, 1], [1]], "stds": [1, 1]})",   // ragged means
      R"({"weights": [0.5, 0.5], "means": [[0]], "stds": [1, 1]})",           // count mismatch
      R"({"weights": [1.0], "means": [[0]]})",                                // missing stds
      R"({"weights": [1.0], "means": [["a"]], "stds": [1]})",                 // not numbers
      R"({"weights": [1.0], "means": [[0]], "stds": [1])",                    // broken JSON
      R"({"weights": [], "means": [], "stds": []})",                          // empty
  };
  for (const char* text : bad) EXPECT_THROW(GmmSpec::from_json(text), Error) << text;
  EXPECT_THROW(GmmSpec::load("/nonexistent/spec.json"), Error);
}

TEST(GmmPredictor, RejectsDimensionMismatch) {
  GmmPredictor predictor(GmmSpec{{1.0}, {{0.0, 0.0}}, {1.0}});
  std::vector<float> x(30);
  EXPECT_THROW(Sampler(Schedule::linear(10), {.backend = Backend::cpu})
                   .sample({.x = x, .shape = {10, 3}, .noise = {}}, predictor),
               Error);
}

}  // namespace
}  // namespace ddpm
