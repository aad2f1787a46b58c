// Bad input reaches the user as ddpm::Error with a message that names the
// problem, before any output is written.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "test_support.h"

namespace ddpm {
namespace {

// Runs f, expects ddpm::Error whose message contains `needle`.
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected ddpm::Error mentioning '" << needle << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(needle), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
  }
}

class SamplerErrors : public ::testing::Test {
 protected:
  Sampler sampler{Schedule::linear(100), {.backend = Backend::cpu}};
  std::vector<float> x0 = test::random_values(20, 1);
  std::vector<float> out = std::vector<float>(20, 7.0f);
  GaussianPredictor predictor{GaussianPrior{0.0f, 1.0f, {}, {}}};
};

TEST_F(SamplerErrors, EmptyShape) {
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {0, 20}, .step = 1, .x_t = out}); }, "empty");
  expect_error([&] { sampler.sample({.x = out, .shape = {4, 0}}, predictor); }, "empty");
}

TEST_F(SamplerErrors, MismatchedSizes) {
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {3, 5}, .step = 1, .x_t = out}); }, "x0 has 20 values");
  std::vector<float> short_noise(19);
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 1, .eps = short_noise, .x_t = out}); },
               "noise has 19");
  expect_error([&] { sampler.reverse_step({.x_t = x0, .eps = short_noise, .shape = {4, 5}, .step = 1, .x_prev = out}); },
               "predicted noise");
}

TEST_F(SamplerErrors, StepOutOfRange) {
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 100, .x_t = out}); }, "step t = 100");
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = -1, .x_t = out}); }, "outside [0, 100)");
  const std::vector<std::int32_t> steps{1, 2, 3, 400};
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .steps = steps, .x_t = out}); }, "t = 400");
  const std::vector<std::int32_t> three{1, 2, 3};
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .steps = three, .x_t = out}); }, "per-sample steps");
  expect_error([&] { sampler.reverse_step({.x_t = x0, .eps = x0, .shape = {4, 5}, .step = 100, .x_prev = out}); },
               "step");
  expect_error([&] { sampler.sample({.x = out, .shape = {4, 5}, .start_step = 100}, predictor); }, "step");
  expect_error([&] { sampler.sample({.x = out, .shape = {4, 5}, .start_step = 10, .end_step = 11}, predictor); },
               "end step 11");
  expect_error([&] { sampler.sample({.x = out, .shape = {4, 5}, .end_step = -1}, predictor); }, "end step -1");
}

TEST_F(SamplerErrors, NonFiniteInputs) {
  x0[7] = std::nanf("");
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 1, .x_t = out}); }, "x0 contains a non-finite");
  std::vector<float> noise = test::random_values(20, 2);
  noise[3] = INFINITY;
  const auto clean = test::random_values(20, 3);
  expect_error([&] { sampler.forward({.x0 = clean, .shape = {4, 5}, .step = 1, .eps = noise, .x_t = out}); },
               "index 3");
  std::vector<float> x_T = test::random_values(20, 4);
  x_T[0] = -INFINITY;
  expect_error([&] { sampler.sample({.x = x_T, .shape = {4, 5}, .initial_noise_given = true}, predictor); },
               "initial x_T");
}

TEST_F(SamplerErrors, TheBatchsSampleIndicesMustFitInInt64) {
  // Sample i draws from subsequence first_sample + i: past INT64_MAX that
  // addition overflowed (undefined behaviour, caught by UBSan).
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  for (const std::int64_t first : {max, max - 3, std::int64_t{-1}}) {
    const NoiseKey noise{1, first};
    const std::string needle = first < 0 ? "is negative" : "overflows the 64-bit sample index";
    expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 1, .noise = noise, .x_t = out}); },
                 needle);
    expect_error([&] { sampler.sample({.x = out, .shape = {4, 5}, .noise = noise}, predictor); }, needle);
    expect_error([&] { sampler.reverse_step({.x_t = x0, .eps = x0, .shape = {4, 5}, .step = 1, .noise = noise, .x_prev = out}); },
                 needle);
    expect_error([&] { sampler.forward_one_step({.x_prev = x0, .shape = {4, 5}, .step = 1, .noise = noise, .x_t = out}); },
                 needle);
  }
  // The last batch that fits runs.
  sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 1, .noise = {1, max - 4}, .x_t = out});
}

TEST_F(SamplerErrors, ForwardInputsThatCouldOverflowFloat32AreRefused) {
  // a x0 + b eps with a^2 + b^2 = 1 can exceed the float32 maximum only when
  // an input exceeds half of it.
  std::vector<float> big = test::random_values(20, 5);
  big[6] = 3e38f;
  expect_error([&] { sampler.forward({.x0 = big, .shape = {4, 5}, .step = 50, .x_t = out}); },
               "x0 has 3e+38 at index 6 beyond +-1.70141e+38 (half the float32 maximum)");
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 50, .eps = big, .x_t = out}); },
               "noise has 3e+38");
  expect_error([&] { sampler.forward_one_step({.x_prev = big, .shape = {4, 5}, .step = 50, .x_t = out}); },
               "x_{t-1} has 3e+38");
  // Just inside the limit, with the largest noise as well, the result is finite.
  std::vector<float> edge(20, std::numeric_limits<float>::max() / 2);
  for (const int step : {0, 50, 99}) {
    sampler.forward({.x0 = edge, .shape = {4, 5}, .step = step, .eps = edge, .x_t = out, .velocity_out = x0});
    for (float v : out) EXPECT_TRUE(std::isfinite(v)) << step;
    for (float v : x0) EXPECT_TRUE(std::isfinite(v)) << step;
  }
}

TEST_F(SamplerErrors, OutputUntouchedAfterAnError) {
  x0[0] = std::nanf("");
  EXPECT_THROW(sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 1, .x_t = out}), Error);
  for (float v : out) EXPECT_EQ(v, 7.0f);
}

TEST(SamplerOptionsErrors, InvalidClipRangeAndThreads) {
  expect_error([] { Sampler(Schedule::linear(10), {.clip_x0 = ClipRange{1.0f, -1.0f}, .backend = Backend::cpu}); },
               "clip range");
  expect_error([] { Sampler(Schedule::linear(10), {.backend = Backend::cpu, .threads = -2}); }, "threads");
}

TEST(SamplerOptionsErrors, DeviceMemoryOnTheCpuBackend) {
  Sampler sampler(Schedule::linear(10), {.backend = Backend::cpu});
  std::vector<float> x(4);
  GaussianPredictor predictor({0.0f, 1.0f, {}, {}});
  expect_error([&] { sampler.sample({.x = x, .shape = {1, 4}, .memory = Memory::device}, predictor); },
               "CPU backend takes host memory");
}

TEST(SamplerOptionsErrors, CudaBackendWithoutADeviceSaysWhy) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is usable here";
  expect_error([] { Sampler(Schedule::linear(10), {.backend = Backend::cuda}); }, "CUDA backend was requested");
  EXPECT_EQ(Sampler(Schedule::linear(10), {.backend = Backend::automatic}).backend(), Backend::cpu);
  EXPECT_FALSE(cuda_unavailable_reason().empty());
}

TEST(SamplerOptionsErrors, ParsesBackendNames) {
  EXPECT_EQ(parse_backend("auto"), Backend::automatic);
  EXPECT_EQ(parse_backend("cuda"), Backend::cuda);
  EXPECT_THROW(parse_backend("tpu"), Error);
}

}  // namespace
}  // namespace ddpm
