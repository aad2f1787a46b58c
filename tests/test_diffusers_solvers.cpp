// Agreement with diffusers' solver loops (tests/data/diffusers/trajectories.json):
// DPMSolverMultistepScheduler (dpmsolver++ and sde-dpmsolver++),
// EulerDiscreteScheduler and EulerAncestralDiscreteScheduler, with and
// without Karras sigmas, every spacing and prediction type, and the DDPM and
// DDIM loops for comparison. Each case is checked three ways:
//   - the plan: timesteps (fractional for Euler), sigmas, init_noise_sigma;
//   - every step alone: given diffusers' x_t, model output and noise (and for
//     DPM-Solver the previous x0), ddpm's x_prev and x0 match diffusers';
//   - the deterministic loops whole: ddpm's sample() with the same fake model
//     from the same x_T ends where diffusers' loop ends.
// diffusers' Euler keeps x_s = sqrt(1 + sigma^2) x; ddpm keeps the
// variance-preserving x, which is diffusers' model_input (scale_model_input).
// Refusals diffusers records are refused here too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "diffusers_fixtures.h"
#include "test_support.h"

namespace ddpm {
namespace {

using nlohmann::json;

constexpr Shape kShape{2, 19};

bool sigma_space(const std::string& scheduler) {
  return scheduler == "EulerDiscreteScheduler" || scheduler == "EulerAncestralDiscreteScheduler";
}

std::string label_of(const json& c) {
  return c.at("scheduler").get<std::string>() + " " + c.at("requested").dump() +
         " n=" + std::to_string(c.at("num_inference_steps").get<int>());
}

// The fixture's fake model, as the script evaluates it in float32 torch:
// 0.7 tanh(x) + 0.1 cos(0.37 j + 0.01 t), j the index within the row.
std::vector<float> fake_model(const std::vector<float>& x, double t, Shape shape) {
  std::vector<float> out(x.size());
  const auto shift = static_cast<float>(0.01 * t);
  for (std::int64_t r = 0; r < shape.batch; ++r) {
    for (std::int64_t j = 0; j < shape.dim; ++j) {
      const std::size_t i = static_cast<std::size_t>(r * shape.dim + j);
      const float phase = 0.37f * static_cast<float>(j) + shift;
      out[i] = 0.7f * std::tanh(x[i]) + 0.1f * std::cos(phase);
    }
  }
  return out;
}

class FakeModel final : public NoisePredictor {
 public:
  bool supports(Memory memory) const override { return memory == Memory::host; }
  void predict(const PredictorCall& call) override {
    const std::vector<float> x(call.x_t, call.x_t + call.shape.size());
    const std::vector<float> out = fake_model(x, call.timestep, call.shape);
    std::copy(out.begin(), out.end(), call.model_output);
  }
};

// Largest |a - b| over the largest |b|: the error relative to the output's scale.
double relative_error(const std::vector<float>& actual, const std::vector<double>& expected) {
  double scale = 0.0, error = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    scale = std::max(scale, std::abs(expected[i]));
    error = std::max(error, std::abs(actual[i] - expected[i]));
  }
  return error / std::max(scale, 1e-30);
}

// Cases diffusers refuses, and the cases it runs.
std::vector<json> cases(bool refused) {
  static const json fixture = test::load_fixture("trajectories.json");
  std::vector<json> out;
  for (const json& c : fixture.at("cases")) {
    if (c.contains("error") == refused) out.push_back(c);
  }
  return out;
}

TEST(DiffusersSolvers, PlansAgree) {
  int compared = 0;
  for (const json& c : cases(false)) {
    const std::string label = label_of(c);
    const test::FixtureSampler setup = test::sampler_for(c);
    const Sampler sampler(setup.schedule, setup.options);
    const std::vector<PlannedStep>& plan = sampler.plan();
    const std::vector<double> timesteps = test::doubles(c.at("timesteps"));
    ASSERT_EQ(plan.size(), timesteps.size()) << label;
    for (std::size_t k = 0; k < plan.size(); ++k) {
      // diffusers' timesteps are integers or float32. Karras timesteps are
      // sigma_to_t of sigmas scaled from sigma_max, which diffusers takes
      // from its float32 cumulative product (up to 2e-5 from ddpm's double
      // alpha_bar, see DiffusersSchedules): they move by about as much.
      EXPECT_NEAR(plan[k].model_timestep, timesteps[k], 1e-5 * std::max(1.0, timesteps[k]))
          << label << " step " << k;
    }
    if (!c.at("sigmas").is_null()) {
      const std::vector<double> sigmas = test::doubles(c.at("sigmas"));
      ASSERT_EQ(sigmas.size(), plan.size() + 1) << label;
      for (std::size_t k = 0; k < plan.size(); ++k) {
        const double sigma = std::sqrt(1.0 / plan[k].alpha_bar - 1.0);
        // diffusers' float32 cumprod carries up to t roundings of alpha_bar,
        // which 1 - alpha_bar magnifies by alpha_bar / (1 - alpha_bar) and the
        // root halves: it matters near t = 0 (2e-6 at t = 62 of a 16-step loop).
        const double ab = plan[k].alpha_bar;
        const double cumprod_error = 0.5 * ab / (1.0 - ab) * plan[k].model_timestep * std::ldexp(1.0, -24);
        EXPECT_NEAR(sigma, sigmas[k], (2e-6 + cumprod_error) * sigmas[k]) << label << " sigma " << k;
      }
      // The sigma after the last step: 0, or DPM-Solver's final_sigmas_type "sigma_min".
      if (c.at("config").value("final_sigmas_type", "zero") == "sigma_min") {
        const double last = std::sqrt(1.0 / plan.back().alpha_bar_prev - 1.0);
        EXPECT_GT(sigmas.back(), 0.0) << label;
        EXPECT_NEAR(last, sigmas.back(), 2e-6 * sigmas.back()) << label;
      } else {
        EXPECT_EQ(sigmas.back(), 0.0) << label;
        EXPECT_EQ(plan.back().alpha_bar_prev, 1.0) << label;
      }
      // init_noise_sigma is in diffusers' x_s for Euler; ddpm's x_T is
      // variance-preserving: divided by sqrt(1 + sigma_max^2).
      const double init = c.at("init_noise_sigma").get<double>();
      const double expected = sigma_space(c.at("scheduler")) ? init / std::sqrt(1.0 + sigmas[0] * sigmas[0]) : init;
      EXPECT_NEAR(sampler.initial_noise_scale(), expected, 1e-6 * expected) << label;
    } else {
      EXPECT_EQ(sampler.initial_noise_scale(), 1.0) << label;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 101);
}

// DPM-Solver's options, each case once per algorithm: diffusers' steps were
// taken with them (the solver order of each step is checked by EveryStepAgrees).
TEST(DiffusersSolvers, DpmSolverOptionsAreCovered) {
  int sigma_min = 0, lu = 0, first_order = 0, clipped = 0, euler_at_final = 0;
  for (const json& c : cases(false)) {
    const json& r = c.at("requested");
    sigma_min += r.value("final_sigmas_type", "zero") == "sigma_min";
    lu += r.value("use_lu_lambdas", false);
    first_order += r.value("solver_order", 2) == 1;
    clipped += r.contains("lambda_min_clipped");
    euler_at_final += r.value("euler_at_final", false);
  }
  EXPECT_EQ(sigma_min, 14);
  EXPECT_EQ(lu, 4);
  EXPECT_EQ(first_order, 4);
  EXPECT_EQ(clipped, 6);
  EXPECT_EQ(euler_at_final, 2);
}

// solver_order 3 is DPM-Solver++(3M), of both algorithms
// (tests/test_diffusers_multistep.cpp); DPM-Solver's options given to
// another sampler are refused.
TEST(DiffusersSolvers, SolverOrderThreeIsThe3MSolverOfBothAlgorithms) {
  for (SamplerKind kind : {SamplerKind::dpmpp_2m, SamplerKind::dpmpp_2m_sde}) {
    SamplerOptions o;
    o.sampler = kind;
    o.backend = Backend::cpu;
    o.num_inference_steps = 10;
    o.solver_order = 3;
    const Sampler sampler(Schedule::linear(), o);
    EXPECT_EQ(sampler.plan()[2].order, 3) << to_string(kind);
    EXPECT_NE(sampler.plan()[2].prev_from_x0_prev2, 0.0) << to_string(kind);
    EXPECT_EQ(sampler.plan()[2].sigma != 0.0, kind == SamplerKind::dpmpp_2m_sde);
    EXPECT_EQ(sampler.history_size(Shape{2, 5}), 20) << "two x0 slots";
  }
  SamplerOptions ddim;
  ddim.sampler = SamplerKind::ddim;
  ddim.backend = Backend::cpu;
  ddim.final_sigmas_type = FinalSigmasType::sigma_min;
  EXPECT_THROW(Sampler(Schedule::linear(), ddim), Error);
}

// Every step alone, from diffusers' state, on the CPU backend by position
// (step_index): Karras timesteps can repeat near t = 0.
TEST(DiffusersSolvers, EveryStepAgrees) {
  int steps = 0;
  for (const json& c : cases(false)) {
    const std::string label = label_of(c);
    const std::string scheduler = c.at("scheduler");
    const test::FixtureSampler setup = test::sampler_for(c);
    Sampler sampler(setup.schedule, setup.options);
    const json& trajectory = c.at("steps");
    const bool dpm = scheduler == "DPMSolverMultistepScheduler";
    for (std::size_t k = 0; k < trajectory.size(); ++k) {
      const json& s = trajectory[k];
      const std::string at = label + " step " + std::to_string(k);
      // The engine's state: diffusers' model input (x_s / sqrt(1 + sigma^2) for Euler).
      const std::vector<float> x = test::floats(s.at("model_input"));
      const std::vector<float> m = test::floats(s.at("model_output"));
      const std::vector<float> noise = s.at("noise").is_null() ? std::vector<float>() : test::floats(s.at("noise"));
      std::vector<float> previous_x0;
      if (dpm && k > 0) previous_x0 = test::floats(trajectory[k - 1].at("converted_model_output"));
      std::vector<float> prev = test::poisoned(x.size()), x0 = test::poisoned(x.size());
      sampler.reverse_step({.x_t = x, .model_output = m, .shape = kShape, .step = -1,
                            .step_index = static_cast<int>(k), .noise = {1, 0}, .x_prev = prev,
                            .variance_noise = noise, .pred_original_sample = x0,
                            .previous_x0 = previous_x0});
      // diffusers' next state, in the engine's terms.
      const bool last = k + 1 == trajectory.size();
      const std::vector<double> want_prev =
          sigma_space(scheduler) && !last ? test::doubles(trajectory[k + 1].at("model_input"))
                                          : test::doubles(s.at("prev_sample"));
      const json& want_x0_json = dpm ? s.at("converted_model_output") : s.at("pred_original_sample");
      const std::vector<double> want_x0 = test::doubles(want_x0_json);
      if (dpm) {
        EXPECT_EQ(sampler.plan()[k].order, s.at("solver_order_used").get<int>()) << at;
      }
      EXPECT_LE(relative_error(prev, want_prev), 1e-5) << at << " prev_sample";
      // x0 from epsilon divides by sqrt(alpha_bar): at sigma_max = 157 float32
      // rounding of x_t is amplified that much in both libraries.
      const double x0_tolerance = 1e-5 * std::max(1.0, std::sqrt(1.0 / sampler.plan()[k].alpha_bar) / 10.0);
      EXPECT_LE(relative_error(x0, want_x0), x0_tolerance) << at << " x0";
      ++steps;
    }
  }
  EXPECT_GT(steps, 400);
}

// The deterministic loops whole: the same fake model, the same x_T, the same
// end (the stochastic ones draw ddpm's own noise, so only their steps compare).
TEST(DiffusersSolvers, DeterministicLoopsEndWhereDiffusersEnds) {
  int compared = 0;
  for (const json& c : cases(false)) {
    const std::string label = label_of(c);
    const test::FixtureSampler setup = test::sampler_for(c);
    const SamplerKind kind = setup.options.sampler;
    const bool deterministic = kind == SamplerKind::euler || kind == SamplerKind::dpmpp_2m ||
                               (kind == SamplerKind::ddim && setup.options.eta == 0.0);
    if (!deterministic) continue;
    Sampler sampler(setup.schedule, setup.options);
    const json& trajectory = c.at("steps");
    std::vector<float> x = test::floats(trajectory[0].at("model_input"));
    FakeModel model;
    sampler.sample({.x = x, .shape = kShape, .noise = {7, 0}, .initial_noise_given = true}, model);
    const std::vector<double> want = test::doubles(trajectory.back().at("prev_sample"));
    EXPECT_LE(relative_error(x, want), 2e-5) << label;
    ++compared;
  }
  EXPECT_GT(compared, 40);
}

// What diffusers refuses, ddpm refuses with a message naming the problem.
TEST(DiffusersSolvers, RefusalsAgree) {
  int compared = 0;
  for (const json& c : cases(true)) {
    const std::string label = label_of(c) + ": diffusers says " + c.at("error").get<std::string>();
    json with_config = c;
    if (!c.contains("config")) {  // refused by the constructor: the arguments it was given
      with_config["config"] = c.at("requested");
      with_config["config"]["_class_name"] = c.at("scheduler");
    }
    bool refused = false;
    try {
      const test::FixtureSampler setup = test::sampler_for(with_config);
      Sampler sampler(setup.schedule, setup.options);
    } catch (const Error& e) {
      refused = true;
      EXPECT_FALSE(std::string(e.what()).empty());
    }
    EXPECT_TRUE(refused) << label;
    ++compared;
  }
  EXPECT_EQ(compared, 6);
}

}  // namespace
}  // namespace ddpm
