// Agreement with diffusers' own schedulers (tests/data/diffusers, written by
// scripts/make_diffusers_fixtures.py): timestep lists, beta schedules with
// and without zero-SNR rescaling, and single DDPM/DDIM reverse steps for every
// prediction type, spacing, x0 clipping and thresholding mode, on the CPU
// backend and the double-precision reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "diffusers_fixtures.h"
#include "reference/reference.h"
#include "test_support.h"

namespace ddpm {
namespace {

using nlohmann::json;

SamplerKind kind_of(const std::string& scheduler) {
  return scheduler == "DDIMScheduler" ? SamplerKind::ddim : SamplerKind::ddpm;
}

TEST(DiffusersTimesteps, SpacingsAgreeOrAreRefused) {
  const json fixture = test::load_fixture("timesteps.json");
  int compared = 0, refused = 0;
  for (const json& c : fixture.at("cases")) {
    const int T = c.at("num_train_timesteps").get<int>();
    SamplerOptions o;
    o.backend = Backend::cpu;
    o.sampler = kind_of(c.at("scheduler").get<std::string>());
    o.num_inference_steps = c.at("num_inference_steps").get<int>();
    o.timestep_spacing = parse_timestep_spacing(c.at("timestep_spacing").get<std::string>());
    o.steps_offset = c.at("steps_offset").get<int>();
    const std::string label = c.dump().substr(0, 160);
    // diffusers refuses n > T; it also returns lists with a timestep outside
    // [0, T) (leading with steps_offset, trailing with a float step), which
    // ddpm refuses instead of indexing past its tables.
    bool expect_error = c.contains("error");
    if (!expect_error) {
      for (int t : c.at("timesteps").get<std::vector<int>>()) expect_error |= t < 0 || t >= T;
    }
    if (expect_error) {
      EXPECT_THROW(Sampler(Schedule::linear(T), o), Error) << label;
      ++refused;
      continue;
    }
    const Sampler sampler(Schedule::linear(T), o);
    EXPECT_EQ(sampler.timesteps(), c.at("timesteps").get<std::vector<int>>()) << label;
    std::vector<int> prev;
    for (const PlannedStep& s : sampler.plan()) prev.push_back(s.prev_timestep);
    // diffusers' DDIM goes to t - T // n, which may be negative (ddpm: -1).
    std::vector<int> expected_prev = c.at("prev_timesteps").get<std::vector<int>>();
    for (int& p : expected_prev) p = std::max(p, -1);
    EXPECT_EQ(prev, expected_prev) << label;
    ++compared;
  }
  EXPECT_GT(compared, 500);
  EXPECT_GT(refused, 50);
}

TEST(DiffusersTimesteps, CustomListsAgreeOrAreRefused) {
  const json fixture = test::load_fixture("timesteps.json");
  for (const json& c : fixture.at("custom_timesteps_cases")) {
    if (c.at("scheduler") != "DDPMScheduler") continue;  // DDIM has no custom list in diffusers
    SamplerOptions o;
    o.backend = Backend::cpu;
    o.timesteps = c.at("custom_timesteps").get<std::vector<int>>();
    if (!c.at("num_inference_steps").is_null()) o.num_inference_steps = c.at("num_inference_steps");
    const Schedule schedule = Schedule::linear(c.at("num_train_timesteps").get<int>());
    const bool negative = std::any_of(o.timesteps.begin(), o.timesteps.end(), [](int t) { return t < 0; });
    if (c.contains("error") || negative) {
      EXPECT_THROW(Sampler(schedule, o), Error) << c.dump();
      continue;
    }
    const Sampler sampler(schedule, o);
    EXPECT_EQ(sampler.timesteps(), c.at("timesteps").get<std::vector<int>>());
    std::vector<int> prev;
    for (const PlannedStep& s : sampler.plan()) prev.push_back(s.prev_timestep);
    EXPECT_EQ(prev, c.at("prev_timesteps").get<std::vector<int>>());
  }
}

// diffusers computes its tables in float32; ddpm in double.
TEST(DiffusersSchedules, BetasAndAlphaBarsAgree) {
  const json fixture = test::load_fixture("schedules.json");
  int compared = 0;
  for (const json& c : fixture.at("cases")) {
    if (c.contains("error")) continue;
    json config = {{"_class_name", c.at("scheduler")},
                   {"num_train_timesteps", c.at("num_train_timesteps")},
                   {"beta_schedule", c.at("beta_schedule")},
                   {"beta_start", c.at("beta_start")},
                   {"beta_end", c.at("beta_end")},
                   {"rescale_betas_zero_snr", c.at("rescale_betas_zero_snr")}};
    const SchedulerConfig parsed = SchedulerConfig::from_json(config.dump());
    SamplerOptions o = parsed.options;
    o.backend = Backend::cpu;
    const Sampler sampler(Schedule::from_spec(parsed.schedule), o);
    const std::vector<double> betas = test::doubles(c.at("betas"));
    const std::vector<double> alpha_bar = test::doubles(c.at("alphas_cumprod"));
    ASSERT_EQ(sampler.schedule().steps(), static_cast<int>(betas.size()));
    const bool rescaled = c.at("rescale_betas_zero_snr").get<bool>();
    for (std::size_t t = 0; t < betas.size(); ++t) {
      const std::string at = config.dump() + " t=" + std::to_string(t);
      if (rescaled) {
        // diffusers rescales sqrt(alpha_bar) in float32 and then multiplies
        // T float32 factors back up (relative rounding up to T * 6e-8), so
        // sqrt(alpha_bar) is what agrees; its betas, 1 - a ratio of two
        // rounded numbers, carry a larger error than ddpm's double ones.
        const double want = std::sqrt(alpha_bar[t]);
        EXPECT_NEAR(std::sqrt(sampler.schedule().alpha_bar()[t]), want, 3e-5 * want + 5e-7) << at;
      } else {
        EXPECT_NEAR(sampler.schedule().beta()[t], betas[t], 2e-6 * betas[t] + 1e-9) << at;
        EXPECT_NEAR(sampler.schedule().alpha_bar()[t], alpha_bar[t], 2e-5 * alpha_bar[t] + 1e-9) << at;
      }
    }
    if (c.at("rescale_betas_zero_snr").get<bool>()) EXPECT_EQ(sampler.schedule().alpha_bar().back(), 0.0);
    ++compared;
  }
  EXPECT_EQ(compared, 20);
}

// One reverse step: x_prev and pred_original_sample against diffusers. ddpm
// computes its coefficients in double; diffusers evaluates the same formulas
// in float32, from float32 alphas_cumprod whose relative rounding grows with
// the number of factors multiplied (up to (t + 1) * 2^-24), and its float32
// cancellations (1 - alpha_bar near t = 0, 1 / sqrt(alpha_bar) near T) cost
// more. The tolerance is 1e-5 of the output's scale plus twice the larger of
// two measures of that rounding on this very case: how far the same formulas
// evaluated in float32 land from the double reference, and how far the
// reference moves when alpha_bar and alpha_bar_prev move by their rounding.
double rounding_of_alpha_bar(int t) { return 6e-8 * (t + 2); }

// Rounding errors land at random per element, so their size is measured by
// the largest over the case, not element by element.
::testing::AssertionResult close(const std::vector<float>& actual, const std::vector<double>& expected,
                                 const std::vector<double>& sensitivity) {
  double scale = 0.0, rounding = 0.0;
  for (double v : expected) scale = std::max(scale, std::abs(v));
  for (double v : sensitivity) rounding = std::max(rounding, v);
  const double allowed = 1e-5 * scale + 2.0 * rounding;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double d = std::abs(actual[i] - expected[i]);
    if (!(d <= allowed)) {
      return ::testing::AssertionFailure() << "index " << i << ": " << actual[i] << " vs " << expected[i]
                                           << " (allowed " << allowed << ")";
    }
  }
  return ::testing::AssertionSuccess();
}


TEST(DiffusersSteps, CpuBackendAndReferenceAgreeWithEveryCase) {
  const json fixture = test::load_fixture("steps.json");
  const Shape shape{2, 19};
  int compared = 0;
  for (const json& c : fixture.at("cases")) {
    const std::string label = "case " + std::to_string(c.at("case_id").get<int>()) + " " +
                              c.at("scheduler").get<std::string>() + " " +
                              c.at("x0_mode").get<std::string>() + " " + c.at("setup").get<std::string>() +
                              " t=" + std::to_string(c.at("t").get<int>()) + " " +
                              c.at("config").at("prediction_type").get<std::string>();
    const test::FixtureSampler setup = test::sampler_for(c);
    Sampler sampler(setup.schedule, setup.options);
    ASSERT_EQ(sampler.timesteps(), c.at("timesteps").get<std::vector<int>>()) << label;
    const int t = c.at("t").get<int>();
    const std::vector<float> x = test::floats(c.at("sample"));
    const std::vector<float> m = test::floats(c.at("model_output"));
    const bool noise_given = !c.at("variance_noise").is_null();
    const std::vector<float> noise = noise_given ? test::floats(c.at("variance_noise")) : std::vector<float>();
    std::vector<float> prev = test::poisoned(x.size()), x0 = test::poisoned(x.size());
    sampler.reverse_step({.x_t = x, .model_output = m, .shape = shape, .step = t, .noise = {1, 0},
                          .x_prev = prev, .variance_noise = noise, .pred_original_sample = x0});
    const std::vector<double> want_prev = test::doubles(c.at("prev_sample"));
    const std::vector<double> want_x0 = test::doubles(c.at("pred_original_sample"));
    // The reference, plainly in double, with the same noise; and its
    // sensitivity to float32 rounding of the alpha_bars (see above).
    const reference::SampleSettings settings = reference::settings_for(setup.options);
    const std::vector<double> noise_double(noise.begin(), noise.end());
    const std::vector<double>* z = noise_given ? &noise_double : nullptr;
    const reference::StepAlphaBars bars = reference::step_alpha_bars(sampler.schedule(), t, settings);
    std::vector<double> ref_x0;
    const std::vector<double> ref_prev = reference::reverse_step_with(
        bars, test::to_double(x), test::to_double(m), shape, t, {1, 0}, settings, z, &ref_x0);
    const int prev_t = sampler.plan()[static_cast<std::size_t>(
        std::find(c.at("timesteps").begin(), c.at("timesteps").end(), t) - c.at("timesteps").begin())].prev_timestep;
    std::vector<double> prev_sensitivity(x.size(), 0.0), x0_sensitivity(x.size(), 0.0);
    std::vector<double> float_x0;
    const std::vector<double> float_prev = reference::reverse_step_in_float(
        bars, test::to_double(x), test::to_double(m), shape, t, {1, 0}, settings, z, &float_x0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      prev_sensitivity[i] = std::abs(float_prev[i] - ref_prev[i]);
      x0_sensitivity[i] = std::abs(float_x0[i] - ref_x0[i]);
    }
    for (const double da : {-1.0, 1.0}) {
      for (const double dp : {-1.0, 1.0}) {
        reference::StepAlphaBars moved = bars;
        moved.alpha_bar *= 1.0 + da * rounding_of_alpha_bar(t);
        if (bars.alpha_bar_prev != 1.0) moved.alpha_bar_prev *= 1.0 + dp * rounding_of_alpha_bar(std::max(prev_t, 0));
        std::vector<double> moved_x0;
        const std::vector<double> moved_prev = reference::reverse_step_with(
            moved, test::to_double(x), test::to_double(m), shape, t, {1, 0}, settings, z, &moved_x0);
        for (std::size_t i = 0; i < x.size(); ++i) {
          prev_sensitivity[i] = std::max(prev_sensitivity[i], std::abs(moved_prev[i] - ref_prev[i]));
          x0_sensitivity[i] = std::max(x0_sensitivity[i], std::abs(moved_x0[i] - ref_x0[i]));
        }
      }
    }
    EXPECT_TRUE(close(prev, want_prev, prev_sensitivity)) << label << " prev_sample";
    EXPECT_TRUE(close(x0, want_x0, x0_sensitivity)) << label << " pred_original_sample";
    EXPECT_TRUE(close(std::vector<float>(ref_prev.begin(), ref_prev.end()), want_prev, prev_sensitivity))
        << label << " reference prev_sample";
    // ddpm's float32 result against the exact one: 1e-5, plus the float32
    // conditioning of this case where it is worse (epsilon at the last
    // timesteps of a cosine schedule: x0 amplifies rounding 2e4 times).
    EXPECT_TRUE(close(prev, ref_prev, prev_sensitivity)) << label << " cpu vs reference";
    ++compared;
  }
  EXPECT_EQ(compared, 417);
}

// diffusers returns NaN for these (a negative square root from float32
// rounding at eta = 1 and zero SNR); ddpm's direction is clamped at 0.
TEST(DiffusersSteps, DdimAtZeroSnrWithEtaOneIsFinite) {
  const json fixture = test::load_fixture("steps.json");
  int seen = 0;
  for (const json& c : fixture.at("skipped")) {
    const test::FixtureSampler setup = test::sampler_for(c);
    Sampler sampler(setup.schedule, setup.options);
    const std::vector<float> x = test::floats(c.at("sample"));
    const std::vector<float> m = test::floats(c.at("model_output"));
    const std::vector<float> noise = test::floats(c.at("variance_noise"));
    std::vector<float> prev = test::poisoned(x.size());
    sampler.reverse_step({.x_t = x, .model_output = m, .shape = {2, 19}, .step = c.at("t").get<int>(),
                          .x_prev = prev, .variance_noise = noise});
    for (float v : prev) EXPECT_TRUE(std::isfinite(v));
    ++seen;
  }
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace ddpm
