// The device side of the built-in predictors against their host side, called
// directly through NoisePredictor: the Gaussian prior (scalar and
// per-element) and the Gaussian mixture (rows of 1 to 3072 elements, so every
// lane-group width of the kernel runs), for one step or per-sample steps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <ostream>
#include <random>
#include <vector>

#include "ddpm/ddpm.h"
#include "gpu_test_support.h"

namespace ddpm {
namespace {

using gpu_test::DeviceArray;

enum class Kind { gaussian, gaussian_per_element, gmm };

struct PredictorCase {
  Kind kind;
  std::int64_t batch;
  std::int64_t dim;
  bool per_sample_steps;
};

std::ostream& operator<<(std::ostream& os, const PredictorCase& c) {
  const char* names[] = {"gaussian", "gaussian per-element", "gmm"};
  return os << names[static_cast<int>(c.kind)] << " " << c.batch << "x" << c.dim
            << (c.per_sample_steps ? ", per-sample steps" : "");
}

std::unique_ptr<NoisePredictor> make(const PredictorCase& c, GmmSpec* spec_out) {
  if (c.kind == Kind::gmm) {
    GmmSpec spec = gpu_test::two_component_gmm(static_cast<int>(c.dim));
    // A third component with weight 0 must be ignored.
    spec.weights = {0.3, 0.7, 0.0};
    spec.stds.push_back(1.0);
    spec.means.push_back(std::vector<double>(static_cast<std::size_t>(c.dim), 5.0));
    *spec_out = spec;
    return std::make_unique<GmmPredictor>(spec);
  }
  GaussianPrior prior = gpu_test::gaussian_prior(-0.25f, 0.6f);
  if (c.kind == Kind::gaussian_per_element) {
    for (std::int64_t i = 0; i < c.dim; ++i) {
      prior.means.push_back(0.01f * static_cast<float>(i % 97));
      prior.stds.push_back(i % 5 == 0 ? 0.0f : 0.2f + 0.01f * static_cast<float>(i % 13));
    }
  }
  return std::make_unique<GaussianPredictor>(prior);
}

// x_t = a x0 + b eps with x0 near the mixture (or prior): realistic inputs.
std::vector<float> realistic_x_t(const PredictorCase& c, const GmmSpec& spec, const Schedule& s,
                                 const std::vector<std::int32_t>& steps) {
  std::mt19937 gen(123);
  std::normal_distribution<double> normal;
  std::vector<float> x(static_cast<std::size_t>(c.batch * c.dim));
  for (std::int64_t row = 0; row < c.batch; ++row) {
    const int t = steps[static_cast<std::size_t>(row)];
    const double a = s.sqrt_alpha_bar()[t], b = s.sqrt_one_minus_alpha_bar()[t];
    const std::size_t k = static_cast<std::size_t>(row % 2);
    for (std::int64_t d = 0; d < c.dim; ++d) {
      double x0 = 0.5 * normal(gen);
      if (c.kind == Kind::gmm) x0 = spec.means[k][static_cast<std::size_t>(d)] + spec.stds[k] * normal(gen);
      x[static_cast<std::size_t>(row * c.dim + d)] = static_cast<float>(a * x0 + b * normal(gen));
    }
  }
  return x;
}

class GpuPredictor : public ::testing::TestWithParam<PredictorCase> {};

TEST_P(GpuPredictor, DeviceMatchesHost) {
  DDPM_SKIP_WITHOUT_GPU();
  const PredictorCase c = GetParam();
  const Schedule schedule = Schedule::linear(1000);
  GmmSpec spec;
  auto predictor = make(c, &spec);
  const Shape shape{c.batch, c.dim};
  const auto n = static_cast<std::size_t>(shape.size());
  for (int step : {0, 10, 500, 999}) {
    std::vector<std::int32_t> steps(static_cast<std::size_t>(c.batch), step);
    if (c.per_sample_steps) {
      for (std::size_t i = 0; i < steps.size(); ++i) steps[i] = static_cast<std::int32_t>((i * 131 + step) % 1000);
    }
    const std::vector<float> x = realistic_x_t(c, spec, schedule, steps);

    PredictorCall call;
    call.shape = shape;
    call.step = step;
    call.schedule = &schedule;
    std::vector<float> expected = test::poisoned(n);
    call.x_t = x.data();
    call.eps = expected.data();
    if (c.per_sample_steps) call.steps = steps.data();
    predictor->prepare(schedule, Memory::host, shape, nullptr);
    predictor->predict(call);

    DeviceArray<float> d_x(x), d_eps(n);
    DeviceArray<std::int32_t> d_steps(steps);
    d_eps.poison();
    call.x_t = d_x.data();
    call.eps = d_eps.data();
    if (c.per_sample_steps) call.steps = d_steps.data();
    call.memory = Memory::device;
    predictor->prepare(schedule, Memory::device, shape, nullptr);
    predictor->predict(call);
    gpu_test::cuda_ok(cudaDeviceSynchronize(), "predict");
    const std::vector<float> actual = d_eps.download();
    const double tolerance = c.kind == Kind::gmm ? 2e-5 : 2e-6;
    EXPECT_TRUE(test::close_relative_to_max(actual, test::to_double(expected), tolerance))
        << "t = " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GpuPredictor,
    ::testing::Values(PredictorCase{Kind::gaussian, 9, 13, false},
                      PredictorCase{Kind::gaussian, 4, 256, true},
                      PredictorCase{Kind::gaussian_per_element, 6, 131, false},
                      PredictorCase{Kind::gaussian_per_element, 6, 128, true},
                      PredictorCase{Kind::gmm, 300, 1, false},
                      PredictorCase{Kind::gmm, 300, 2, true},
                      PredictorCase{Kind::gmm, 100, 7, false},
                      PredictorCase{Kind::gmm, 50, 33, true},
                      PredictorCase{Kind::gmm, 20, 100, false},
                      PredictorCase{Kind::gmm, 5, 3072, false}));

TEST(GpuPredictorErrors, DimensionMismatchIsAClearError) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::linear(10);
  GmmPredictor gmm(gpu_test::two_component_gmm(3));
  EXPECT_THROW(gmm.prepare(schedule, Memory::device, {4, 5}, nullptr), Error);
  GaussianPrior prior;
  prior.means = {1.0f, 2.0f};
  GaussianPredictor gaussian(prior);
  EXPECT_THROW(gaussian.prepare(schedule, Memory::device, {4, 3}, nullptr), Error);
}

}  // namespace
}  // namespace ddpm
