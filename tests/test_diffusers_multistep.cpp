// Agreement with diffusers' loops of the rules with a deeper history
// (tests/data/diffusers/multistep.json): HeunDiscreteScheduler (two model
// calls per step), DPMSolverMultistepScheduler at solver_order 3 and
// UniPCMultistepScheduler (orders 1 to 3, its corrector, bh1 and bh2), with
// and without Karras sigmas, every prediction type and spacing. Each case:
//   - the plan: diffusers' timesteps (2n - 1 for Heun), sigmas and the
//     initial noise scale;
//   - every step from diffusers' state: x_prev and x0_hat equal diffusers'
//     (its next state and converted model output) to 1e-5 relative, with
//     the loop's history carried from step to step by reverse_step;
//   - the whole loop with the fixture's fake model ends where diffusers' does,
//     and the same loop run one step per piece (history handed on) is equal
//     to it bit for bit.
// Loops that diffusers itself cannot finish (a singular or non-finite last
// step) are refused by ddpm's plan at that step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "diffusers_fixtures.h"
#include "reference/reference.h"
#include "test_support.h"

namespace ddpm {
namespace {

using nlohmann::json;

constexpr Shape kShape{2, 19};

std::string label_of(const json& c) {
  return c.at("scheduler").get<std::string>() + " " + c.at("requested").dump() +
         " n=" + std::to_string(c.at("num_inference_steps").get<int>());
}

bool sigma_space(const json& c) { return c.at("scheduler") == "HeunDiscreteScheduler"; }

// 0.7 tanh(x) + 0.1 cos(0.37 j + 0.01 t), in float32 as the script evaluates it.
class FakeModel final : public NoisePredictor {
 public:
  bool supports(Memory memory) const override { return memory == Memory::host; }
  void predict(const PredictorCall& call) override {
    const auto shift = static_cast<float>(0.01 * call.timestep);
    for (std::int64_t r = 0; r < call.shape.batch; ++r) {
      for (std::int64_t j = 0; j < call.shape.dim; ++j) {
        const std::int64_t i = r * call.shape.dim + j;
        call.model_output[i] = 0.7f * std::tanh(call.x_t[i]) + 0.1f * std::cos(0.37f * static_cast<float>(j) + shift);
      }
    }
  }
};

double relative_error(const std::vector<float>& actual, const std::vector<double>& expected) {
  double scale = 0.0, error = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    scale = std::max(scale, std::abs(expected[i]));
    error = std::max(error, std::abs(actual[i] - expected[i]));
  }
  return error / std::max(scale, 1e-30);
}

// What diffusers runs and ddpm refuses by name: solver_order 4, which
// diffusers runs as 3 silently.
bool ddpm_refuses(const json& c) { return c.at("requested").value("solver_order", 2) > 3; }

// The SDE variant draws noise: its steps compare given diffusers' noise, its
// loops only with themselves.
bool stochastic(const json& c) { return c.at("requested").value("algorithm_type", "") == "sde-dpmsolver++"; }

std::vector<json> cases(bool refused) {
  static const json fixture = test::load_fixture("multistep.json");
  std::vector<json> out;
  for (const json& c : fixture.at("cases")) {
    if (!ddpm_refuses(c) && c.contains("error") == refused) out.push_back(c);
  }
  return out;
}

// diffusers' state after step k, in the engine's variance-preserving terms.
std::vector<double> state_after(const json& c, std::size_t k) {
  const json& steps = c.at("steps");
  if (sigma_space(c) && k + 1 < steps.size()) return test::doubles(steps[k + 1].at("model_input"));
  return test::doubles(steps[k].at("prev_sample"));
}

TEST(DiffusersMultistep, PlansAgree) {
  int compared = 0;
  for (const json& c : cases(false)) {
    const std::string label = label_of(c);
    const test::FixtureSampler setup = test::sampler_for(c);
    const Sampler sampler(setup.schedule, setup.options);
    const std::vector<PlannedStep>& plan = sampler.plan();
    const std::vector<double> timesteps = test::doubles(c.at("timesteps"));
    ASSERT_EQ(plan.size(), timesteps.size()) << label;
    const std::vector<double> sigmas = test::doubles(c.at("sigmas"));
    ASSERT_EQ(sigmas.size(), plan.size() + 1) << label;
    for (std::size_t k = 0; k < plan.size(); ++k) {
      EXPECT_NEAR(plan[k].model_timestep, timesteps[k], 1e-5 * std::max(1.0, timesteps[k])) << label << " " << k;
      // Heun's second stage evaluates the model at the step's target sigma.
      const double sigma = std::sqrt(1.0 / plan[k].alpha_bar - 1.0);
      const double ab = plan[k].alpha_bar;
      const double cumprod_error = 0.5 * ab / (1.0 - ab) * plan[k].model_timestep * std::ldexp(1.0, -24);
      EXPECT_NEAR(sigma, sigmas[k], (2e-6 + cumprod_error) * sigmas[k]) << label << " sigma " << k;
    }
    const double init = c.at("init_noise_sigma").get<double>();
    const double expected = sigma_space(c) ? init / std::sqrt(1.0 + sigmas[0] * sigmas[0]) : init;
    EXPECT_NEAR(sampler.initial_noise_scale(), expected, 1e-6 * expected) << label;
    ++compared;
  }
  EXPECT_EQ(compared, 89);
}

// Every step from diffusers' state and model output, the history carried by
// reverse_step from the previous steps.
TEST(DiffusersMultistep, EveryStepAgrees) {
  int steps = 0;
  for (const json& c : cases(false)) {
    const std::string label = label_of(c);
    const std::string scheduler = c.at("scheduler");
    const test::FixtureSampler setup = test::sampler_for(c);
    Sampler sampler(setup.schedule, setup.options);
    // Poisoned with a finite value: the first step must not read it.
    std::vector<float> history(static_cast<std::size_t>(sampler.history_size(kShape)), 1e6f);
    ASSERT_GT(history.size(), 0u) << label;
    const json& trajectory = c.at("steps");
    for (std::size_t k = 0; k < trajectory.size(); ++k) {
      const json& s = trajectory[k];
      const std::string at = label + " step " + std::to_string(k);
      const std::vector<float> x = test::floats(s.at("model_input"));
      const std::vector<float> m = test::floats(s.at("model_output"));
      const std::vector<float> noise = s.at("noise").is_null() ? std::vector<float>() : test::floats(s.at("noise"));
      std::vector<float> prev = test::poisoned(x.size()), x0 = test::poisoned(x.size());
      sampler.reverse_step({.x_t = x, .model_output = m, .shape = kShape, .step = -1,
                            .step_index = static_cast<int>(k), .noise = {1, 0}, .x_prev = prev,
                            .variance_noise = noise, .pred_original_sample = x0, .history = history});
      EXPECT_LE(relative_error(prev, state_after(c, k)), 1e-5) << at << " prev_sample";
      const json& want_x0 = scheduler == "HeunDiscreteScheduler" ? s.at("pred_original_sample")
                                                                  : s.at("converted_model_output");
      const double x0_tolerance = 1e-5 * std::max(1.0, std::sqrt(1.0 / sampler.plan()[k].alpha_bar) / 10.0);
      EXPECT_LE(relative_error(x0, test::doubles(want_x0)), x0_tolerance) << at << " x0";
      if (scheduler == "UniPCMultistepScheduler") {
        EXPECT_EQ(sampler.plan()[k].order, s.at("predictor_order").get<int>()) << at;
        EXPECT_EQ(sampler.plan()[k].corrects, s.at("corrector_used").get<bool>()) << at;
        // The corrected sample is the history's last slot.
        const std::size_t n = x.size(), slot = history.size() / n - 1;
        const std::vector<float> corrected(history.begin() + static_cast<std::ptrdiff_t>(slot * n),
                                           history.begin() + static_cast<std::ptrdiff_t>((slot + 1) * n));
        EXPECT_LE(relative_error(corrected, test::doubles(s.at("corrected_sample"))), 1e-5) << at << " corrected";
      }
      if (scheduler == "DPMSolverMultistepScheduler") {
        EXPECT_EQ(sampler.plan()[k].order, s.at("solver_order_used").get<int>()) << at;
      }
      if (scheduler == "HeunDiscreteScheduler") {
        EXPECT_EQ(sampler.plan()[k].stage, s.at("first_order").get<bool>() ? 1 : 2) << at;
      }
      ++steps;
    }
  }
  EXPECT_GT(steps, 700);
}

// The loop whole, from diffusers' x_T with the same fake model; and one step
// per piece, the history handed on, bit for bit the same.
TEST(DiffusersMultistep, LoopsEndWhereDiffusersEndsAndPiecesEqualTheWhole) {
  int compared = 0;
  for (const json& c : cases(false)) {
    const std::string label = label_of(c);
    const test::FixtureSampler setup = test::sampler_for(c);
    Sampler sampler(setup.schedule, setup.options);
    const json& trajectory = c.at("steps");
    const std::vector<float> start = test::floats(trajectory[0].at("model_input"));
    FakeModel model;
    std::vector<float> whole = start;
    sampler.sample({.x = whole, .shape = kShape, .noise = {7, 0}, .initial_noise_given = true}, model);
    if (!stochastic(c)) {
      EXPECT_LE(relative_error(whole, test::doubles(trajectory.back().at("prev_sample"))), 2e-5) << label;
    }

    std::vector<float> pieces = start;
    std::vector<float> history = test::poisoned(static_cast<std::size_t>(sampler.history_size(kShape)));
    const int n = static_cast<int>(sampler.plan().size());
    for (int k = 0; k < n; ++k) {
      sampler.sample({.x = pieces, .shape = kShape, .noise = {7, 0}, .initial_noise_given = true,
                      .start_index = k, .end_index = k, .history = history, .history_given = k > 0},
                     model);
      if (k + 1 < n && !stochastic(c)) {
        EXPECT_LE(relative_error(pieces, state_after(c, static_cast<std::size_t>(k))), 2e-5) << label << " " << k;
      }
    }
    EXPECT_EQ(pieces, whole) << label;
    ++compared;
  }
  EXPECT_EQ(compared, 89);
}

// The CPU reference (diffusers' step() transcribed in double, with its own
// state) ends where diffusers ends, from the same x_T with the same model.
TEST(DiffusersMultistep, TheReferenceEndsWhereDiffusersEnds) {
  int compared = 0;
  for (const json& c : cases(false)) {
    if (stochastic(c)) continue;
    const std::string label = label_of(c);
    const test::FixtureSampler setup = test::sampler_for(c);
    const json& trajectory = c.at("steps");
    const std::vector<double> x_T = test::doubles(trajectory[0].at("model_input"));
    reference::SampleSettings settings = reference::settings_for(setup.options);
    settings.x_T = &x_T;
    const reference::Model model = [](const std::vector<double>& x, double t, double) {
      std::vector<double> out(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double j = static_cast<double>(i % static_cast<std::size_t>(kShape.dim));
        out[i] = 0.7 * std::tanh(x[i]) + 0.1 * std::cos(0.37 * j + 0.01 * t);
      }
      return out;
    };
    const std::vector<double> end = reference::sample(setup.schedule, kShape, {7, 0}, model, settings);
    const std::vector<double> want = test::doubles(trajectory.back().at("prev_sample"));
    EXPECT_LE(relative_error(std::vector<float>(end.begin(), end.end()), want), 2e-5) << label;
    ++compared;
  }
  EXPECT_EQ(compared, 88);
}

// The engine follows the reference with the Gaussian prior's exact model,
// for every rule, prediction type and a few options.
TEST(DiffusersMultistep, TheEngineFollowsTheReference) {
  const Schedule schedule = Schedule::linear();
  const Shape shape{3, 40};
  GaussianPrior prior{0.3f, 0.5f, {}, {}};
  GaussianPredictor predictor(prior);
  int compared = 0;
  for (SamplerKind kind : {SamplerKind::heun, SamplerKind::dpmpp_3m, SamplerKind::unipc, SamplerKind::dpmpp_2m_sde}) {
    for (PredictionType type : {PredictionType::epsilon, PredictionType::sample, PredictionType::v_prediction}) {
      for (int variant = 0; variant < 3; ++variant) {
        SamplerOptions o;
        o.sampler = kind;
        o.backend = Backend::cpu;
        o.prediction_type = type;
        o.num_inference_steps = 12;
        o.use_karras_sigmas = variant == 1;
        if (kind == SamplerKind::dpmpp_2m_sde) o.solver_order = 3;  // DPM-Solver++(3M) SDE
        if (variant == 2) {
          if (kind == SamplerKind::heun) o.clip_x0 = ClipRange{-0.8f, 0.8f};
          if (kind == SamplerKind::unipc) {
            o.solver_order = 3;
            o.disable_corrector = {1, 4};
            o.solver_type = UniPcSolverType::bh1;
          }
          if (kind != SamplerKind::heun) {
            o.thresholding = true;
            o.dynamic_thresholding_ratio = 0.9;
            o.sample_max_value = 0.7;
          }
        }
        Sampler sampler(schedule, o);
        std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
        sampler.sample({.x = x, .shape = shape, .noise = {5, 0}}, predictor);
        const std::vector<double> want = reference::sample(schedule, shape, {5, 0},
                                                           reference::gaussian_model(schedule, shape, prior, type),
                                                           reference::settings_for(o));
        EXPECT_LE(relative_error(x, want), 1e-5) << to_string(kind) << " " << to_string(type) << " variant " << variant;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 36);
}

// A piece that starts where a step combines earlier outputs needs the history.
TEST(DiffusersMultistep, APieceWithoutTheHistoryIsRefusedByName) {
  for (SamplerKind kind : {SamplerKind::unipc, SamplerKind::dpmpp_3m, SamplerKind::heun}) {
    SamplerOptions o;
    o.sampler = kind;
    o.backend = Backend::cpu;
    o.num_inference_steps = 6;
    Sampler sampler(Schedule::linear(), o);
    std::vector<float> x(static_cast<std::size_t>(kShape.size()), 0.5f);
    FakeModel model;
    try {
      sampler.sample({.x = x, .shape = kShape, .noise = {7, 0}, .initial_noise_given = true, .start_index = 1},
                     model);
      ADD_FAILURE() << to_string(kind) << ": a piece without its history ran";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("history"), std::string::npos) << e.what();
    }
  }
}

// diffusers' own failures: refused by the constructor (an unknown solver
// type, flow prediction, ...), or loops whose last step diffusers makes
// singular or non-finite, which ddpm's plan refuses at that step.
TEST(DiffusersMultistep, RefusalsAgree) {
  int compared = 0;
  for (const json& c : cases(true)) {
    const std::string label = label_of(c) + ": diffusers says " + c.at("error").get<std::string>();
    json with_config = c;
    if (!c.contains("config")) {
      with_config["config"] = c.at("requested");
      with_config["config"]["_class_name"] = c.at("scheduler");
    }
    // bh1's last step to sigma 0: diffusers multiplies B(h) = -h = -inf by
    // a zero sum (order 1 has no earlier terms) and gets NaN; ddpm takes
    // that term as the 0 it is and ends where the first-order step ends.
    const bool ddpm_finishes = c.at("requested").value("solver_type", "") == "bh1";
    bool refused = false;
    std::vector<float> x(static_cast<std::size_t>(kShape.size()), 0.5f);
    try {
      const test::FixtureSampler setup = test::sampler_for(with_config);
      Sampler sampler(setup.schedule, setup.options);
      // Built: the plan must hold the failure at the step diffusers failed.
      FakeModel model;
      if (c.contains("steps") && !c.at("steps").empty()) x = test::floats(c.at("steps")[0].at("model_input"));
      sampler.sample({.x = x, .shape = kShape, .noise = {7, 0}, .initial_noise_given = true}, model);
    } catch (const Error& e) {
      refused = true;
      EXPECT_FALSE(std::string(e.what()).empty());
    }
    if (ddpm_finishes) {
      EXPECT_FALSE(refused) << label;
      for (float v : x) ASSERT_TRUE(std::isfinite(v)) << label;
    } else {
      EXPECT_TRUE(refused) << label;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 7);
}

TEST(DiffusersMultistep, WhatDdpmDoesNotRunIsRefusedByName) {
  static const json fixture = test::load_fixture("multistep.json");
  int compared = 0;
  for (const json& c : fixture.at("cases")) {
    if (!ddpm_refuses(c)) continue;
    try {
      const test::FixtureSampler setup = test::sampler_for(c);
      Sampler sampler(setup.schedule, setup.options);
      ADD_FAILURE() << label_of(c) << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("solver_order"), std::string::npos) << e.what();
    }
    ++compared;
  }
  EXPECT_EQ(compared, 1);
}

}  // namespace
}  // namespace ddpm
