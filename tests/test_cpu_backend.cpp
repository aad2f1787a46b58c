// The CPU backend against the double-precision reference, and the noise
// properties that make its results reproducible: bit-identical reruns,
// batch splits and thread counts.
#include <gtest/gtest.h>

#include <numeric>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "reference/reference.h"
#include "test_support.h"

namespace ddpm {
namespace {

using test::close_relative_to_max;

Sampler cpu_sampler(const Schedule& schedule, VarianceKind variance = VarianceKind::beta,
                    std::optional<ClipRange> clip = std::nullopt, int threads = 2) {
  return Sampler(schedule, {variance, clip, Backend::cpu, threads});
}

// A float32 loop against a float64 one over 1,000 steps gives about 1e-6 by
// this measure; the specification allows 1e-5.
constexpr double kTolerance = 1e-5;

// Shapes with packed short rows, odd tails and rows longer than a segment.
const Shape kShapes[] = {{7, 3}, {5, 67}, {3, 1001}, {2, 4099}};

TEST(CpuForward, DrawnNoiseMatchesReference) {
  const Schedule s = Schedule::linear();
  for (const Shape shape : kShapes) {
    const auto x0 = test::random_values(shape.size(), 1);
    std::vector<float> x_t = test::poisoned(x0.size()), eps = test::poisoned(x0.size()),
                       v = test::poisoned(x0.size());
    cpu_sampler(s).forward({.x0 = x0, .shape = shape, .step = 600, .noise = {11, 3}, .x_t = x_t,
                            .eps_out = eps, .velocity_out = v});
    const auto ref = reference::forward(s, test::to_double(x0), shape,
                                        std::vector<int>(shape.batch, 600), nullptr, {11, 3});
    EXPECT_TRUE(close_relative_to_max(x_t, ref.x_t, kTolerance)) << shape.batch << "x" << shape.dim;
    EXPECT_TRUE(close_relative_to_max(eps, ref.eps, kTolerance));
    EXPECT_TRUE(close_relative_to_max(v, ref.velocity, kTolerance));
  }
}

TEST(CpuForward, GivenNoiseAndPerSampleStepsMatchReference) {
  const Schedule s = Schedule::cosine(500);
  const Shape shape{6, 130};
  const auto x0 = test::random_values(shape.size(), 2);
  const auto noise = test::random_values(shape.size(), 3);
  const std::vector<std::int32_t> steps{0, 499, 250, 250, 1, 77};
  std::vector<float> x_t = test::poisoned(x0.size()), v = test::poisoned(x0.size());
  cpu_sampler(s).forward({.x0 = x0, .shape = shape, .steps = steps, .eps = noise, .x_t = x_t,
                          .velocity_out = v});
  const std::vector<double> noise_double = test::to_double(noise);
  const auto ref = reference::forward(s, test::to_double(x0), shape,
                                      std::vector<int>(steps.begin(), steps.end()), &noise_double, {});
  EXPECT_TRUE(close_relative_to_max(x_t, ref.x_t, kTolerance));
  EXPECT_TRUE(close_relative_to_max(v, ref.velocity, kTolerance));
}

TEST(CpuForward, PerSampleDrawsUseEachSamplesStep) {
  // Sample i with step t_i draws the same noise as a batch run at t_i.
  const Schedule s = Schedule::linear(100);
  const Shape shape{4, 40};
  const auto x0 = test::random_values(shape.size(), 4);
  const std::vector<std::int32_t> steps{3, 90, 3, 50};
  std::vector<float> eps(x0.size());
  std::vector<float> x_t(x0.size());
  cpu_sampler(s).forward({.x0 = x0, .shape = shape, .steps = steps, .noise = {9, 0}, .x_t = x_t,
                          .eps_out = eps});
  for (int row = 0; row < 4; ++row) {
    const auto expected = reference::normals(9, row, kernels::NoiseStream::forward, steps[row], 40);
    for (int i = 0; i < 40; ++i) EXPECT_NEAR(eps[row * 40 + i], expected[i], 4e-6);
  }
}

TEST(CpuForward, OneStepMatchesItsDefinition) {
  const Schedule s = Schedule::linear(50);
  const Shape shape{3, 33};
  const auto x_prev = test::random_values(shape.size(), 5);
  const auto noise = test::random_values(shape.size(), 6);
  std::vector<float> x_t = test::poisoned(x_prev.size());
  cpu_sampler(s).forward_one_step({.x_prev = x_prev, .shape = shape, .step = 20, .eps = noise, .x_t = x_t});
  std::vector<double> expected(x_prev.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    expected[i] = std::sqrt(1 - s.beta()[20]) * x_prev[i] + std::sqrt(s.beta()[20]) * noise[i];
  }
  EXPECT_TRUE(close_relative_to_max(x_t, expected, kTolerance));
}

struct TrajectoryCase {
  VarianceKind variance;
  bool clip;
  const char* name;
};

void PrintTo(const TrajectoryCase& c, std::ostream* os) { *os << c.name; }

class CpuTrajectory : public ::testing::TestWithParam<TrajectoryCase> {
 protected:
  std::optional<ClipRange> clip() const {
    return GetParam().clip ? std::optional<ClipRange>(ClipRange{-1.0f, 1.0f}) : std::nullopt;
  }
  reference::SampleSettings settings() const {
    reference::SampleSettings s;
    s.variance = GetParam().variance;
    s.clip_x0 = clip();
    return s;
  }
};

// The fused path: the analytic Gaussian predictor inside the step.
TEST_P(CpuTrajectory, GaussianPredictorMatchesReferenceOverAllSteps) {
  const Schedule s = Schedule::linear(1000);
  for (const Shape shape : {Shape{9, 5}, Shape{3, 301}}) {
    GaussianPrior prior{0.5f, 0.3f, {}, {}};
    GaussianPredictor predictor(prior);
    std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
    cpu_sampler(s, GetParam().variance, clip()).sample({.x = x, .shape = shape, .noise = {7, 20}}, predictor);
    const auto ref = reference::sample(s, shape, {7, 20}, reference::gaussian_model(s, shape, prior), settings());
    EXPECT_TRUE(close_relative_to_max(x, ref, kTolerance)) << shape.batch << "x" << shape.dim;
  }
}

// Per-element prior: clipping bites where the prior mean lies outside [-1, 1].
TEST_P(CpuTrajectory, PerElementGaussianPriorMatchesReference) {
  const Schedule s = Schedule::cosine(400);
  const Shape shape{4, 70};
  GaussianPrior prior;
  prior.means = test::random_values(70, 8, -1.4f, 1.4f);
  prior.stds = test::random_values(70, 9, 0.0f, 0.5f);
  GaussianPredictor predictor(prior);
  std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
  cpu_sampler(s, GetParam().variance, clip()).sample({.x = x, .shape = shape, .noise = {1, 0}}, predictor);
  const auto ref = reference::sample(s, shape, {1, 0}, reference::gaussian_model(s, shape, prior), settings());
  EXPECT_TRUE(close_relative_to_max(x, ref, kTolerance));
}

// The general path: predictor called on the whole batch, then the step.
TEST_P(CpuTrajectory, GmmPredictorMatchesReferenceOverAllSteps) {
  const Schedule s = Schedule::linear(300);
  GmmSpec spec{{0.3, 0.7}, {{-1.0, 0.5, 2.0}, {1.0, -0.5, 0.0}}, {0.2, 0.4}};
  const Shape shape{20, 3};
  GmmPredictor predictor(spec);
  std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
  cpu_sampler(s, GetParam().variance, clip()).sample({.x = x, .shape = shape, .noise = {5, 100}}, predictor);
  const auto ref = reference::sample(s, shape, {5, 100}, reference::gmm_model(s, shape, spec), settings());
  EXPECT_TRUE(close_relative_to_max(x, ref, kTolerance));
}

INSTANTIATE_TEST_SUITE_P(Variants, CpuTrajectory,
                         ::testing::Values(TrajectoryCase{VarianceKind::beta, false, "beta"},
                                           TrajectoryCase{VarianceKind::posterior, false, "posterior"},
                                           TrajectoryCase{VarianceKind::beta, true, "beta_clipped"},
                                           TrajectoryCase{VarianceKind::posterior, true, "posterior_clipped"}),
                         [](const auto& info) { return std::string(info.param.name); });

// A user's own model, plugged in through the interface.
class ScaledIdentityPredictor : public NoisePredictor {
 public:
  int calls = 0;
  void predict(const PredictorCall& call) override {
    ++calls;
    for (std::int64_t i = 0; i < call.shape.size(); ++i) call.eps[i] = 0.1f * call.x_t[i] + 0.01f * call.step / 100;
  }
  bool supports(Memory memory) const override { return memory == Memory::host; }
};

TEST(CpuSample, UserPredictorMatchesReference) {
  const Schedule s = Schedule::linear(100);
  const Shape shape{4, 50};
  ScaledIdentityPredictor predictor;
  std::vector<float> x = test::poisoned(200);
  cpu_sampler(s).sample({.x = x, .shape = shape, .noise = {3, 0}}, predictor);
  EXPECT_EQ(predictor.calls, 100);
  const auto model = [](const std::vector<double>& xt, double t, double) {
    std::vector<double> eps(xt.size());
    for (std::size_t i = 0; i < xt.size(); ++i) eps[i] = 0.1 * xt[i] + 0.01 * t / 100;
    return eps;
  };
  EXPECT_TRUE(close_relative_to_max(x, reference::sample(s, shape, {3, 0}, model), kTolerance));
}

TEST(CpuSample, ReverseStepMatchesReference) {
  const Schedule s = Schedule::linear();
  const Shape shape{5, 300};
  const auto x = test::random_values(shape.size(), 10);
  const auto eps = test::random_values(shape.size(), 11);
  for (int t : {0, 1, 500, 999}) {
    std::vector<float> out = test::poisoned(x.size());
    cpu_sampler(s).reverse_step({.x_t = x, .model_output = eps, .shape = shape, .step = t, .noise = {8, 2}, .x_prev = out});
    const auto ref = reference::reverse_step(s, test::to_double(x), test::to_double(eps), shape, t, {8, 2}, {});
    EXPECT_TRUE(close_relative_to_max(out, ref, kTolerance)) << "t = " << t;
  }
}

TEST(CpuSample, ReverseStepWorksInPlace) {
  const Schedule s = Schedule::linear();
  const Shape shape{2, 500};
  auto x = test::random_values(shape.size(), 12);
  const auto eps = test::random_values(shape.size(), 13);
  std::vector<float> separate(x.size());
  Sampler sampler = cpu_sampler(s);
  sampler.reverse_step({.x_t = x, .model_output = eps, .shape = shape, .step = 300, .noise = {1, 0}, .x_prev = separate});
  sampler.reverse_step({.x_t = x, .model_output = eps, .shape = shape, .step = 300, .noise = {1, 0}, .x_prev = x});
  EXPECT_TRUE(test::bit_identical(x, separate));
}

TEST(CpuSample, GivenInitialNoiseAndStartStepMatchReference) {
  const Schedule s = Schedule::linear(200);
  const Shape shape{3, 40};
  const auto x_T = test::random_values(shape.size(), 14);
  GaussianPrior prior{-0.2f, 0.5f, {}, {}};
  GaussianPredictor predictor(prior);
  std::vector<float> x = x_T;
  cpu_sampler(s).sample({.x = x, .shape = shape, .noise = {2, 0}, .initial_noise_given = true, .start_step = 120},
                        predictor);
  reference::SampleSettings settings;
  const auto x_T_double = test::to_double(x_T);
  settings.x_T = &x_T_double;
  settings.start_step = 120;
  EXPECT_TRUE(close_relative_to_max(
      x, reference::sample(s, shape, {2, 0}, reference::gaussian_model(s, shape, prior), settings), kTolerance));
}

// The loop run in pieces, each piece's output the next one's input, equals
// the whole loop bit for bit: the noise of step t does not depend on where a
// run starts or stops.
TEST(CpuSample, LoopInPiecesEqualsTheWholeLoop) {
  const Schedule s = Schedule::linear(100);
  GaussianPredictor gaussian({0.5f, 0.3f, {}, {}});
  GmmPredictor gmm(GmmSpec{{0.5, 0.5}, {{-1.0, 0.0, 1.0}, {1.0, 0.0, -1.0}}, {0.3, 0.2}});
  for (NoisePredictor* predictor : {static_cast<NoisePredictor*>(&gaussian), static_cast<NoisePredictor*>(&gmm)}) {
    const Shape shape{6, 3};
    std::vector<float> whole(18), pieces(18);
    Sampler sampler = cpu_sampler(s);
    sampler.sample({.x = whole, .shape = shape, .noise = {4, 0}}, *predictor);
    sampler.sample({.x = pieces, .shape = shape, .noise = {4, 0}, .end_step = 60}, *predictor);
    sampler.sample({.x = pieces, .shape = shape, .noise = {4, 0}, .initial_noise_given = true,
                    .start_step = 59, .end_step = 20},
                   *predictor);
    sampler.sample({.x = pieces, .shape = shape, .noise = {4, 0}, .initial_noise_given = true,
                    .start_step = 19},
                   *predictor);
    EXPECT_TRUE(test::bit_identical(whole, pieces));
  }
}

TEST(CpuSample, StoppingEarlyMatchesReference) {
  const Schedule s = Schedule::cosine(200);
  const Shape shape{3, 50};
  GaussianPrior prior{0.2f, 0.4f, {}, {}};
  GaussianPredictor predictor(prior);
  std::vector<float> x = test::poisoned(150);
  int last_total = 0;
  cpu_sampler(s).sample({.x = x, .shape = shape, .noise = {6, 0}, .end_step = 120,
                         .progress = [&](int, int total) { last_total = total; }},
                        predictor);
  EXPECT_EQ(last_total, 80);
  reference::SampleSettings settings;
  settings.end_step = 120;
  EXPECT_TRUE(close_relative_to_max(
      x, reference::sample(s, shape, {6, 0}, reference::gaussian_model(s, shape, prior), settings), kTolerance));
}

// A cancellation hook stops the loop between steps (between tiles on the
// fused path) with ddpm::Cancelled; the sampler is unharmed: the next run
// gives the same bits as one never interrupted.
TEST(CpuSample, CancellationStopsTheRunAndLeavesTheSamplerUsable) {
  const Schedule s = Schedule::linear(200);
  Sampler sampler = cpu_sampler(s);
  GaussianPredictor gaussian({0.5f, 0.3f, {}, {}});
  GmmPredictor gmm(GmmSpec{{1.0}, {{0.0, 0.0}}, {1.0}});
  for (NoisePredictor* predictor : {static_cast<NoisePredictor*>(&gaussian), static_cast<NoisePredictor*>(&gmm)}) {
    const Shape shape{64, 2};
    std::vector<float> clean(128), x(128);
    sampler.sample({.x = clean, .shape = shape, .noise = {3, 0}}, *predictor);
    int polls = 0;
    EXPECT_THROW(sampler.sample({.x = x, .shape = shape, .noise = {3, 0},
                                 .cancelled = [&] { return ++polls >= 1; }},
                                *predictor),
                 Cancelled);
    EXPECT_GE(polls, 1);
    sampler.sample({.x = x, .shape = shape, .noise = {3, 0}, .cancelled = [] { return false; }}, *predictor);
    EXPECT_TRUE(test::bit_identical(x, clean));
  }
}

TEST(CpuSample, ProgressReachesTheTotal) {
  const Schedule s = Schedule::linear(50);
  GmmPredictor predictor(GmmSpec{{1.0}, {{0.0, 0.0}}, {1.0}});
  std::vector<float> x(20);
  std::vector<std::pair<int, int>> seen;
  cpu_sampler(s).sample({.x = x, .shape = {10, 2}, .noise = {1, 0},
                         .progress = [&](int done, int total) { seen.emplace_back(done, total); }},
                        predictor);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), std::make_pair(50, 50));
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].first, seen[i - 1].first);
}

// Sharding: N samples in one run equal the concatenation of runs over
// [0, k) and [k, N), whatever the thread count.
std::vector<float> run_samples(NoisePredictor& predictor, const Schedule& s, Shape shape,
                               std::int64_t first, int threads) {
  std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
  cpu_sampler(s, VarianceKind::beta, std::nullopt, threads)
      .sample({.x = x, .shape = shape, .noise = {42, first}}, predictor);
  return x;
}

TEST(Sharding, SplitBatchIsBitIdentical) {
  const Schedule s = Schedule::linear(100);
  GaussianPredictor gaussian({0.5f, 0.3f, {}, {}});
  GmmPredictor gmm(GmmSpec{{0.5, 0.5}, {std::vector<double>(5, -1.0), std::vector<double>(5, 1.0)}, {0.3, 0.3}});
  struct Case {
    NoisePredictor* predictor;
    std::int64_t dim;
  };
  for (const Case c : {Case{&gaussian, 5}, Case{&gaussian, 1001}, Case{&gaussian, 4099}, Case{&gmm, 5}}) {
    const std::int64_t n = 13;
    const auto whole = run_samples(*c.predictor, s, {n, c.dim}, 0, 2);
    EXPECT_TRUE(test::bit_identical(whole, run_samples(*c.predictor, s, {n, c.dim}, 0, 2))) << "rerun";
    for (std::int64_t k : {1, 6, 12}) {
      for (int threads : {1, 3}) {
        auto joined = run_samples(*c.predictor, s, {k, c.dim}, 0, threads);
        const auto tail = run_samples(*c.predictor, s, {n - k, c.dim}, k, threads);
        joined.insert(joined.end(), tail.begin(), tail.end());
        EXPECT_TRUE(test::bit_identical(whole, joined))
            << "dim " << c.dim << " split at " << k << " threads " << threads;
      }
    }
  }
}

TEST(Sharding, ForwardDrawsDependOnlyOnTheGlobalSample) {
  const Schedule s = Schedule::linear();
  const Shape shape{10, 77};
  const auto x0 = test::random_values(shape.size(), 15);
  std::vector<float> whole(x0.size()), joined(x0.size());
  cpu_sampler(s).forward({.x0 = x0, .shape = shape, .step = 10, .noise = {4, 0}, .x_t = whole});
  const std::size_t k = 3 * 77;
  cpu_sampler(s, VarianceKind::beta, std::nullopt, 1)
      .forward({.x0 = std::span(x0).first(k), .shape = {3, 77}, .step = 10, .noise = {4, 0},
                .x_t = std::span(joined).first(k)});
  cpu_sampler(s, VarianceKind::beta, std::nullopt, 3)
      .forward({.x0 = std::span(x0).subspan(k), .shape = {7, 77}, .step = 10, .noise = {4, 3},
                .x_t = std::span(joined).subspan(k)});
  EXPECT_TRUE(test::bit_identical(whole, joined));
}

TEST(Sharding, DifferentSeedsGiveDifferentSamples) {
  const Schedule s = Schedule::linear(20);
  GaussianPredictor predictor({0.0f, 1.0f, {}, {}});
  std::vector<float> a(100), b(100);
  cpu_sampler(s).sample({.x = a, .shape = {2, 50}, .noise = {1, 0}}, predictor);
  cpu_sampler(s).sample({.x = b, .shape = {2, 50}, .noise = {2, 0}}, predictor);
  EXPECT_FALSE(test::bit_identical(a, b));
}

}  // namespace
}  // namespace ddpm
