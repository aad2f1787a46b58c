// Bad input reaches the user as ddpm::Error with a message that names the
// problem, before any output is written.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "ddpm/scheduler_config.h"
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
  expect_error([&] { sampler.reverse_step({.x_t = x0, .model_output = short_noise, .shape = {4, 5}, .step = 1, .x_prev = out}); },
               "model output");
}

TEST_F(SamplerErrors, StepOutOfRange) {
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = 100, .x_t = out}); }, "step t = 100");
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .step = -1, .x_t = out}); }, "outside [0, 100)");
  const std::vector<std::int32_t> steps{1, 2, 3, 400};
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .steps = steps, .x_t = out}); }, "t = 400");
  const std::vector<std::int32_t> three{1, 2, 3};
  expect_error([&] { sampler.forward({.x0 = x0, .shape = {4, 5}, .steps = three, .x_t = out}); }, "per-sample steps");
  expect_error([&] { sampler.reverse_step({.x_t = x0, .model_output = x0, .shape = {4, 5}, .step = 100, .x_prev = out}); },
               "step");
  expect_error([&] { sampler.sample({.x = out, .shape = {4, 5}, .start_step = 100}, predictor); }, "step");
  expect_error([&] { sampler.sample({.x = out, .shape = {4, 5}, .start_step = 10, .end_step = 11}, predictor); },
               "end step 11");
  expect_error([&] { sampler.sample({.x = out, .shape = {4, 5}, .end_step = -2}, predictor); }, "end step -2");
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
    expect_error([&] { sampler.reverse_step({.x_t = x0, .model_output = x0, .shape = {4, 5}, .step = 1, .noise = noise, .x_prev = out}); },
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

// The step rule's options: every invalid value is refused when the Sampler
// is built, with a message naming the option.
SamplerOptions rule_options(SamplerKind sampler = SamplerKind::ddpm) {
  SamplerOptions o;
  o.backend = Backend::cpu;
  o.sampler = sampler;
  return o;
}

TEST(StepRuleErrors, NamesAreParsedOrRefusedWithTheValidOnes) {
  EXPECT_EQ(parse_sampler_kind("ddim"), SamplerKind::ddim);
  EXPECT_EQ(parse_prediction_type("v_prediction"), PredictionType::v_prediction);
  EXPECT_EQ(parse_timestep_spacing("trailing"), TimestepSpacing::trailing);
  expect_error([] { parse_sampler_kind("plms"); }, "unknown sampler 'plms' (expected ddpm, ddim, dpmpp_2m, dpmpp_2m_sde, euler, euler_ancestral, heun, dpmpp_3m or unipc)");
  expect_error([] { parse_timestep_spacing("uniform"); }, "expected leading, trailing or linspace");
  expect_error([] { parse_prediction_type("eps"); }, "expected epsilon, sample or v_prediction");
}

TEST(StepRuleErrors, InferenceStepsOutsideOneToT) {
  SamplerOptions o = rule_options(SamplerKind::ddim);
  o.num_inference_steps = 101;
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "inference steps 101 is outside [1, T = 100]");
  o.num_inference_steps = -3;
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "inference steps -3");
  o.num_inference_steps = 100;
  o.steps_offset = 1;  // leading: the first timestep would be T
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "timestep 100 outside [0, 100)");
}

TEST(StepRuleErrors, TimestepListMustDecreaseInsideTheSchedule) {
  SamplerOptions o = rule_options();
  o.timesteps = {90, 50, 50, 10};
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "strictly decreasing, but 50 is followed by 50");
  o.timesteps = {10, 50};
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "strictly decreasing");
  o.timesteps = {100, 50};
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "timestep 100 outside [0, 100)");
  o.timesteps = {50, -1};
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "timestep -1 outside");
  o.timesteps = {50, 10};
  o.num_inference_steps = 2;
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "not both");
}

TEST(StepRuleErrors, EtaMustBeFiniteAndNonNegativeAndOnlyForDdim) {
  SamplerOptions o = rule_options(SamplerKind::ddim);
  o.eta = -0.1;
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "eta -0.1 is invalid");
  o.eta = std::nan("");
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "eta");
  o = rule_options(SamplerKind::ddpm);
  o.eta = 0.5;
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "eta applies only to the ddim sampler");
}

TEST(StepRuleErrors, ThresholdingNeedsARatioInZeroToOneAndExcludesClipping) {
  SamplerOptions o = rule_options();
  o.thresholding = true;
  for (double ratio : {0.0, -0.5, 1.5, std::nan("")}) {
    o.dynamic_thresholding_ratio = ratio;
    expect_error([&] { Sampler(Schedule::linear(100), o); }, "is outside (0, 1]");
  }
  o.dynamic_thresholding_ratio = 1.0;
  o.sample_max_value = 0.0;
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "sample max value");
  o.sample_max_value = 1.0;
  o.clip_x0 = ClipRange{-1.0f, 1.0f};
  expect_error([&] { Sampler(Schedule::linear(100), o); }, "exclusive");
}

// epsilon at a zero-SNR step would divide by sqrt(alpha_bar) = 0: refused
// when a request uses that step, before anything is written.
TEST(StepRuleErrors, EpsilonAtAZeroSnrStepIsRefused) {
  SamplerOptions o = rule_options();
  o.rescale_betas_zero_snr = true;
  Sampler sampler(Schedule::linear(100), o);
  GaussianPredictor predictor({0.0f, 1.0f, {}, {}});
  std::vector<float> x(8, 7.0f), m(8, 0.5f), out(8, 7.0f);
  expect_error([&] { sampler.sample({.x = x, .shape = {2, 4}}, predictor); },
               "prediction type epsilon cannot be used at timestep 99");
  for (float v : x) EXPECT_EQ(v, 7.0f);
  expect_error([&] { sampler.reverse_step({.x_t = m, .model_output = m, .shape = {2, 4}, .step = 99, .x_prev = out}); },
               "zero terminal SNR");
  for (float v : out) EXPECT_EQ(v, 7.0f);
  // The other steps run, and so does forward noising.
  sampler.reverse_step({.x_t = m, .model_output = m, .shape = {2, 4}, .step = 98, .x_prev = out});
  sampler.forward({.x0 = m, .shape = {2, 4}, .step = 99, .x_t = out});
  EXPECT_THROW(Schedule::linear(1).rescaled_zero_terminal_snr(), Error);
}

TEST(StepRuleErrors, StepsMustBeTimestepsOfThePlan) {
  SamplerOptions o = rule_options(SamplerKind::ddim);
  o.num_inference_steps = 10;  // leading: 90, 80, ..., 0
  Sampler sampler(Schedule::linear(100), o);
  GaussianPredictor predictor({0.0f, 1.0f, {}, {}});
  std::vector<float> x(8), out(8);
  expect_error([&] { sampler.reverse_step({.x_t = x, .model_output = x, .shape = {2, 4}, .step = 85, .x_prev = out}); },
               "reverse step t = 85 is not one of the sampler's 10 timesteps (90, 80, 70, 60, 50, 40, ..., 0)");
  expect_error([&] { sampler.sample({.x = x, .shape = {2, 4}, .start_step = 99}, predictor); }, "start step t = 99");
  expect_error([&] { sampler.sample({.x = x, .shape = {2, 4}, .end_step = 5}, predictor); }, "end step t = 5");
  expect_error([&] { sampler.sample({.x = x, .shape = {2, 4}, .start_step = 40, .end_step = 60}, predictor); },
               "end step 60 comes before start step 40");
}

TEST(SchedulerConfigErrors, MalformedConfigsNameTheKey) {
  expect_error([] { SchedulerConfig::from_json("{not json"); }, "not valid JSON");
  expect_error([] { SchedulerConfig::from_json("[1, 2]"); }, "must be a JSON object");
  expect_error([] { SchedulerConfig::from_json(R"({"num_train_timesteps": "many"})"); }, "\"num_train_timesteps\"");
  expect_error([] { SchedulerConfig::from_json(R"({"num_train_timesteps": 10.5})"); }, "num_train_timesteps");
  expect_error([] { SchedulerConfig::from_json(R"({"beta_schedule": "laplace"})"); }, "beta_schedule \"laplace\"");
  expect_error([] { SchedulerConfig::from_json(R"({"variance_type": "learned"})"); }, "variance_type \"learned\"");
  expect_error([] { SchedulerConfig::from_json(R"({"prediction_type": "flow"})"); }, "prediction_type");
  expect_error([] { SchedulerConfig::from_json(R"({"thresholding": 1})"); }, "\"thresholding\"");
  expect_error([] { SchedulerConfig::from_json(R"({"trained_betas": "x"})"); }, "trained_betas");
  expect_error([] { SchedulerConfig::from_json(R"({"clip_sample": true, "clip_sample_range": -1})"); },
               "clip_sample_range");
  expect_error([] { SchedulerConfig::load("/nonexistent/scheduler_config.json"); }, "/nonexistent/scheduler_config.json");
}

TEST(SchedulerConfig, DiffusersDefaultsFillMissingKeys) {
  const SchedulerConfig ddpm = SchedulerConfig::from_json(R"({"_class_name": "DDPMScheduler"})");
  EXPECT_EQ(ddpm.sampler, SamplerKind::ddpm);
  EXPECT_EQ(ddpm.options.variance, VarianceKind::posterior);  // fixed_small
  ASSERT_TRUE(ddpm.options.clip_x0.has_value());               // clip_sample = True
  EXPECT_EQ(ddpm.options.clip_x0->hi, 1.0f);
  const SchedulerConfig ddim = SchedulerConfig::from_json(
      R"({"_class_name": "DDIMScheduler", "num_train_timesteps": 500, "beta_schedule": "scaled_linear",
          "beta_start": 0.00085, "beta_end": 0.012, "clip_sample": false, "set_alpha_to_one": false,
          "steps_offset": 1, "prediction_type": "v_prediction", "timestep_spacing": "trailing",
          "rescale_betas_zero_snr": true, "skip_prk_steps": true})");
  EXPECT_EQ(ddim.sampler, SamplerKind::ddim);
  EXPECT_EQ(ddim.schedule.steps, 500);
  EXPECT_EQ(ddim.schedule.kind, ScheduleKind::scaled_linear);
  EXPECT_FALSE(ddim.options.clip_x0.has_value());
  EXPECT_FALSE(ddim.options.set_alpha_to_one);
  EXPECT_EQ(ddim.options.steps_offset, 1);
  EXPECT_EQ(ddim.options.prediction_type, PredictionType::v_prediction);
  EXPECT_EQ(ddim.options.timestep_spacing, TimestepSpacing::trailing);
  EXPECT_TRUE(ddim.options.rescale_betas_zero_snr);
  const SchedulerConfig thresholded = SchedulerConfig::from_json(
      R"({"_class_name": "DDPMScheduler", "thresholding": true, "dynamic_thresholding_ratio": 0.95,
          "sample_max_value": 1.5, "clip_sample": true})");
  EXPECT_TRUE(thresholded.options.thresholding);
  EXPECT_FALSE(thresholded.options.clip_x0.has_value()) << "thresholding takes clipping's place";
  EXPECT_FALSE(SchedulerConfig::from_json(R"({"_class_name": "PNDMScheduler"})").sampler.has_value());
}

// The solver classes select their rule; keys a class lacks are ignored (as
// diffusers ignores them), values ddpm does not implement are refused by name.
TEST(SchedulerConfig, SolverClassesSelectTheirRules) {
  const auto parse = [](const std::string& text) { return SchedulerConfig::from_json(text); };
  const SchedulerConfig dpm = parse(
      R"({"_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": true, "solver_order": 2,
          "thresholding": true, "lambda_min_clipped": "-inf", "variance_type": null,
          "lower_order_final": true, "final_sigmas_type": "zero"})");
  EXPECT_EQ(dpm.sampler, SamplerKind::dpmpp_2m);
  EXPECT_TRUE(dpm.options.use_karras_sigmas);
  EXPECT_TRUE(dpm.options.thresholding);
  EXPECT_FALSE(dpm.options.clip_x0.has_value());
  EXPECT_EQ(parse(R"({"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++"})").sampler,
            SamplerKind::dpmpp_2m_sde);
  const SchedulerConfig euler = parse(
      R"({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true, "clip_sample": true,
          "thresholding": true, "interpolation_type": "linear", "timestep_spacing": "leading", "steps_offset": 1})");
  EXPECT_EQ(euler.sampler, SamplerKind::euler);
  EXPECT_TRUE(euler.options.use_karras_sigmas);
  EXPECT_FALSE(euler.options.clip_x0.has_value()) << "Euler has no clip_sample";
  EXPECT_FALSE(euler.options.thresholding) << "Euler has no thresholding";
  const SchedulerConfig ancestral =
      parse(R"({"_class_name": "EulerAncestralDiscreteScheduler", "use_karras_sigmas": true})");
  EXPECT_EQ(ancestral.sampler, SamplerKind::euler_ancestral);
  EXPECT_FALSE(ancestral.options.use_karras_sigmas) << "EulerAncestral has no use_karras_sigmas";
  // The solvers default to linspace timesteps when the config names none.
  Sampler from_config(Schedule::from_spec(ancestral.schedule), ancestral.options);
  EXPECT_EQ(from_config.options().timestep_spacing, TimestepSpacing::linspace);

  // DPM-Solver++'s own keys are read (solver_order 3 of dpmsolver++ is dpmpp_3m).
  const SchedulerConfig dpm_keys = parse(
      R"({"_class_name": "DPMSolverMultistepScheduler", "solver_order": 3, "lower_order_final": false,
          "final_sigmas_type": "sigma_min", "lambda_min_clipped": -5.1, "euler_at_final": true,
          "use_lu_lambdas": true})");
  EXPECT_EQ(dpm_keys.sampler, SamplerKind::dpmpp_3m);
  EXPECT_EQ(dpm_keys.options.solver_order, 3);
  EXPECT_FALSE(dpm_keys.options.lower_order_final);
  EXPECT_EQ(dpm_keys.options.final_sigmas_type, FinalSigmasType::sigma_min);
  EXPECT_EQ(dpm_keys.options.lambda_min_clipped, -5.1);
  EXPECT_TRUE(dpm_keys.options.euler_at_final);
  EXPECT_TRUE(dpm_keys.options.use_lu_lambdas);
  EXPECT_EQ(parse(R"({"_class_name": "DPMSolverMultistepScheduler", "solver_order": 1})").options.solver_order, 1);
  const SchedulerConfig heun = parse(
      R"({"_class_name": "HeunDiscreteScheduler", "use_karras_sigmas": true, "clip_sample": true,
          "clip_sample_range": 2.0, "thresholding": true})");
  EXPECT_EQ(heun.sampler, SamplerKind::heun);
  EXPECT_TRUE(heun.options.use_karras_sigmas);
  ASSERT_TRUE(heun.options.clip_x0.has_value()) << "Heun has clip_sample";
  EXPECT_EQ(heun.options.clip_x0->hi, 2.0f);
  EXPECT_FALSE(heun.options.thresholding) << "Heun has no thresholding";
  const SchedulerConfig unipc = parse(
      R"({"_class_name": "UniPCMultistepScheduler", "solver_order": 3, "solver_type": "bh1",
          "disable_corrector": [0, 2], "lower_order_final": false, "thresholding": true,
          "use_karras_sigmas": true, "predict_x0": true, "solver_p": null})");
  EXPECT_EQ(unipc.sampler, SamplerKind::unipc);
  EXPECT_EQ(unipc.options.solver_order, 3);
  EXPECT_EQ(unipc.options.solver_type, UniPcSolverType::bh1);
  EXPECT_EQ(unipc.options.disable_corrector, (std::vector<int>{0, 2}));
  EXPECT_FALSE(unipc.options.lower_order_final);
  EXPECT_TRUE(unipc.options.thresholding);
  EXPECT_TRUE(unipc.options.use_karras_sigmas);
  const std::string unipc_class = R"("_class_name": "UniPCMultistepScheduler")";
  expect_error([&] { parse("{" + unipc_class + R"(, "predict_x0": false})"); }, "predict_x0");
  expect_error([&] { parse("{" + unipc_class + R"(, "solver_type": "bh3"})"); }, "solver_type");
  expect_error([&] { parse("{" + unipc_class + R"(, "disable_corrector": [-1]})"); }, "disable_corrector");
  expect_error([&] { parse("{" + unipc_class + R"(, "disable_corrector": "all"})"); }, "disable_corrector");
  expect_error([&] { parse("{" + unipc_class + R"(, "solver_p": {}})"); }, "solver_p");

  const std::string dpm_class = R"("_class_name": "DPMSolverMultistepScheduler")";
  expect_error([&] { parse("{" + dpm_class + R"(, "solver_order": 4})"); }, "solver_order 4");
  expect_error([&] { parse("{" + dpm_class + R"(, "algorithm_type": "dpmsolver"})"); }, "algorithm_type \"dpmsolver\"");
  expect_error([&] { parse("{" + dpm_class + R"(, "solver_type": "heun"})"); }, "solver_type");
  expect_error([&] { parse("{" + dpm_class + R"(, "use_exponential_sigmas": true})"); }, "use_exponential_sigmas");
  expect_error([&] { parse("{" + dpm_class + R"(, "final_sigmas_type": "sigma_max"})"); }, "final_sigmas_type");
  expect_error([&] { parse("{" + dpm_class + R"(, "lambda_min_clipped": "low"})"); }, "lambda_min_clipped");
  expect_error([&] { parse("{" + dpm_class + R"(, "variance_type": "learned_range"})"); }, "variance_type");
  expect_error([&] { parse("{" + dpm_class + R"(, "variance_type": "learned"})"); }, "variance_type");
  // A DDPM config's variance_type, which DPMSolverMultistepScheduler.from_config
  // carries over and diffusers' DPM-Solver ignores, is no refusal.
  EXPECT_NO_THROW(parse("{" + dpm_class + R"(, "variance_type": "fixed_small"})"));
  expect_error([&] { parse(R"({"_class_name": "EulerDiscreteScheduler", "interpolation_type": "log_linear"})"); },
               "interpolation_type");
  expect_error([&] { parse(R"({"_class_name": "EulerDiscreteScheduler", "sigma_min": 0.1})"); }, "sigma_min");
  expect_error([&] { parse(R"({"_class_name": "EulerDiscreteScheduler", "timestep_type": "continuous"})"); },
               "timestep_type");
  expect_error([&] { parse(R"({"num_train_timesteps": 1e30})"); }, "num_train_timesteps");
}

}  // namespace
}  // namespace ddpm

namespace ddpm {
namespace {

// A config run by another sampler drops its class's own keys (as diffusers'
// from_config of another class does), and a solver order given with a 3M
// config makes it DPM-Solver++ at that order.
TEST(SchedulerConfig, AnotherSamplerDropsTheConfigClassesOwnKeys) {
  const SchedulerConfig unipc = SchedulerConfig::from_json(
      R"({"_class_name": "UniPCMultistepScheduler", "solver_order": 3, "solver_type": "bh1",
          "disable_corrector": [1], "lower_order_final": false, "final_sigmas_type": "sigma_min"})");
  SamplerOptions o = unipc.options;
  switch_sampler(o, SamplerKind::heun);
  EXPECT_EQ(o.sampler, SamplerKind::heun);
  EXPECT_EQ(o.solver_order, 2);
  EXPECT_TRUE(o.lower_order_final);
  EXPECT_EQ(o.final_sigmas_type, FinalSigmasType::zero);
  EXPECT_EQ(o.solver_type, UniPcSolverType::bh2);
  EXPECT_TRUE(o.disable_corrector.empty());
  o.backend = Backend::cpu;
  o.num_inference_steps = 5;
  EXPECT_EQ(Sampler(Schedule::from_spec(unipc.schedule), o).plan().size(), 9u);
  // To DPM-Solver++ the multistep keys stay (diffusers reads them), UniPC's own go.
  SamplerOptions dpm = unipc.options;
  switch_sampler(dpm, SamplerKind::dpmpp_2m);
  EXPECT_EQ(dpm.solver_order, 3);
  EXPECT_TRUE(dpm.disable_corrector.empty());
}

// The config's class's defaults go too: DDPM's clip_sample (on unless the
// config says otherwise) does not stop a solver that has none, nor a
// solver's Karras sigmas or thresholding a rule without them.
TEST(SchedulerConfig, AnotherSamplerDropsTheClassesDefaultsItLacks) {
  SamplerOptions o = SchedulerConfig::from_json(R"({"_class_name": "DDPMScheduler"})").options;
  ASSERT_TRUE(o.clip_x0.has_value());
  for (const SamplerKind kind : {SamplerKind::dpmpp_2m, SamplerKind::euler, SamplerKind::unipc}) {
    SamplerOptions switched = o;
    switch_sampler(switched, kind);
    EXPECT_FALSE(switched.clip_x0.has_value()) << to_string(kind);
    EXPECT_NO_THROW(check_options(switched)) << to_string(kind);
  }
  SamplerOptions heun = o;
  switch_sampler(heun, SamplerKind::heun);  // Heun has clip_sample: kept
  EXPECT_TRUE(heun.clip_x0.has_value());
  SamplerOptions dpm = SchedulerConfig::from_json(
      R"({"_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": true, "thresholding": true})")
                           .options;
  SamplerOptions to_ddpm = dpm;
  switch_sampler(to_ddpm, SamplerKind::ddpm);
  EXPECT_FALSE(to_ddpm.use_karras_sigmas);
  EXPECT_TRUE(to_ddpm.thresholding);  // DDPM has thresholding
  EXPECT_NO_THROW(check_options(to_ddpm));
  SamplerOptions to_euler = dpm;
  switch_sampler(to_euler, SamplerKind::euler);
  EXPECT_TRUE(to_euler.use_karras_sigmas);
  EXPECT_FALSE(to_euler.thresholding);
  EXPECT_NO_THROW(check_options(to_euler));
}

// diffusers' constructors set up every training step before set_timesteps:
// a leading config with steps_offset 1 (Stable Diffusion's) runs all T steps
// without its offset pushing the first past T - 1.
TEST(SchedulerConfig, ALeadingConfigWithAnOffsetRunsEveryStepWithoutInferenceSteps) {
  for (const char* name : {"EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler"}) {
    const SchedulerConfig c = SchedulerConfig::from_json(std::string(R"({"_class_name": ")") + name +
                                                         R"(", "timestep_spacing": "leading", "steps_offset": 1})");
    SamplerOptions o = c.options;
    o.backend = Backend::cpu;
    const Sampler sampler(Schedule::from_spec(c.schedule), o);
    EXPECT_EQ(sampler.plan().front().timestep, 999) << name;
  }
}

TEST(SchedulerConfig, SigmaRangesAndNonFiniteLambdasAreRefusedByName) {
  for (const char* name : {"UniPCMultistepScheduler", "DPMSolverMultistepScheduler", "HeunDiscreteScheduler"}) {
    expect_error([&] {
      SchedulerConfig::from_json(std::string(R"({"_class_name": ")") + name + R"(", "sigma_max": 10.0})");
    }, "sigma_max 10");
  }
  expect_error([] { SchedulerConfig::from_json(R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": NaN})"); },
               "not NaN");
  expect_error([] { SchedulerConfig::from_json(R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": Infinity})"); },
               "not Infinity");
}

}  // namespace
}  // namespace ddpm
