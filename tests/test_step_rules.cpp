// The step rules (DDPM, DDIM and the solvers: DPM-Solver++(2M) and its SDE
// variant, Euler, Euler ancestral; every prediction type, spacing, sigma
// spacing and x0 mode diffusers allows) on
// the CPU backend: against the double reference over whole loops, against
// exact answers (the probability-flow ODE of a Gaussian prior, the exact law
// of the discrete sampler), and the reproducibility properties every rule
// keeps (loop in pieces, sharding).
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>

#include "ddpm/ddpm.h"
#include "reference/reference.h"
#include "test_support.h"

namespace ddpm {
namespace {

using test::bit_identical;
using test::close_relative_to_max;

enum class X0 { none, clip, threshold };

struct RuleCase {
  SamplerKind sampler;
  PredictionType type;
  X0 x0;
  int steps;  // inference steps, 0: all
  TimestepSpacing spacing;
  double eta;
  bool karras = false;
};

std::string name_of(const RuleCase& c) {
  return to_string(c.sampler) + "_" + to_string(c.type) + "_" +
         (c.x0 == X0::none ? "as_is" : c.x0 == X0::clip ? "clipped" : "thresholded") + "_" +
         std::to_string(c.steps) + "_" + to_string(c.spacing) + "_eta" +
         std::to_string(static_cast<int>(c.eta * 10)) + (c.karras ? "_karras" : "");
}
void PrintTo(const RuleCase& c, std::ostream* os) { *os << name_of(c); }

SamplerOptions options_of(const RuleCase& c, int threads = 2) {
  SamplerOptions o;
  o.backend = Backend::cpu;
  o.threads = threads;
  o.sampler = c.sampler;
  o.prediction_type = c.type;
  o.num_inference_steps = c.steps;
  o.timestep_spacing = c.spacing;
  o.eta = c.eta;
  o.use_karras_sigmas = c.karras;
  if (c.x0 == X0::clip) o.clip_x0 = ClipRange{-1.0f, 1.0f};
  if (c.x0 == X0::threshold) {
    o.thresholding = true;
    o.dynamic_thresholding_ratio = 0.9;
    o.sample_max_value = 1.5;
  }
  return o;
}


class RuleTrajectory : public ::testing::TestWithParam<RuleCase> {};

// The fused path: the Gaussian prior inside the step, answering in the
// rule's prediction type. Per-element means beyond +-1 make clipping and
// thresholding bite; rows of 1001 elements span several CPU tiles.
TEST_P(RuleTrajectory, GaussianPriorMatchesReference) {
  const Schedule s = Schedule::cosine(1000);
  const SamplerOptions o = options_of(GetParam());
  for (const Shape shape : {Shape{7, 5}, Shape{3, 1001}}) {
    GaussianPrior prior;
    prior.means = test::random_values(static_cast<std::size_t>(shape.dim), 8, -1.6f, 1.6f);
    prior.std = 0.3f;
    GaussianPredictor predictor(prior);
    std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
    Sampler(s, o).sample({.x = x, .shape = shape, .noise = {7, 20}}, predictor);
    const auto ref = reference::sample(s, shape, {7, 20},
                                       reference::gaussian_model(s, shape, prior, o.prediction_type),
                                       reference::settings_for(o));
    EXPECT_TRUE(close_relative_to_max(x, ref, 1e-5)) << shape.batch << "x" << shape.dim;
  }
}

// The general path: the predictor writes the model output, then the step.
TEST_P(RuleTrajectory, GmmPredictorMatchesReference) {
  const Schedule s = Schedule::linear(1000);
  const SamplerOptions o = options_of(GetParam());
  GmmSpec spec{{0.3, 0.7}, {{-1.6, 0.5, 2.0}, {1.0, -0.5, 0.0}}, {0.2, 0.4}};
  const Shape shape{20, 3};
  GmmPredictor predictor(spec);
  std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
  Sampler(s, o).sample({.x = x, .shape = shape, .noise = {5, 100}}, predictor);
  const auto ref = reference::sample(s, shape, {5, 100},
                                     reference::gmm_model(s, shape, spec, o.prediction_type),
                                     reference::settings_for(o));
  EXPECT_TRUE(close_relative_to_max(x, ref, 1e-5));
}

// Split at every third step, each piece's output (and, for the multistep
// solvers, its history of x0) the next one's input: the same bits as one
// run, whatever the rule. The pieces are named by plan index, since Karras
// timesteps can repeat near t = 0.
TEST_P(RuleTrajectory, LoopInPiecesEqualsTheWholeLoop) {
  const Schedule s = Schedule::linear(1000);
  Sampler sampler(s, options_of(GetParam()));
  GaussianPrior prior{0.4f, 0.5f, {}, {}};
  GaussianPredictor gaussian(prior);
  GmmPredictor gmm(GmmSpec{{0.5, 0.5}, {{-1.0, 0.0, 1.0}, {1.0, 0.0, -1.0}}, {0.3, 0.2}});
  const int steps = static_cast<int>(sampler.plan().size());
  if (steps < 4) GTEST_SKIP() << "too few steps to split";
  for (NoisePredictor* predictor : {static_cast<NoisePredictor*>(&gaussian), static_cast<NoisePredictor*>(&gmm)}) {
    const Shape shape{6, 3};
    std::vector<float> whole(18), pieces(18), history = test::poisoned(18);
    sampler.sample({.x = whole, .shape = shape, .noise = {4, 0}}, *predictor);
    const int a = steps / 3, b = 2 * steps / 3;
    sampler.sample({.x = pieces, .shape = shape, .noise = {4, 0}, .end_index = a - 1, .history = history},
                   *predictor);
    sampler.sample({.x = pieces, .shape = shape, .noise = {4, 0}, .initial_noise_given = true,
                    .start_index = a, .end_index = b - 1, .history = history, .history_given = true},
                   *predictor);
    std::vector<float> restarted = pieces;  // the third piece without the history
    sampler.sample({.x = pieces, .shape = shape, .noise = {4, 0}, .initial_noise_given = true,
                    .start_index = b, .history = history, .history_given = true},
                   *predictor);
    EXPECT_TRUE(bit_identical(whole, pieces));
    // Without it, a multistep solver takes the piece's first step at first
    // order, as a fresh diffusers scheduler started there would: a different
    // (still finite) end. Rules without history are unaffected.
    sampler.sample({.x = restarted, .shape = shape, .noise = {4, 0}, .initial_noise_given = true,
                    .start_index = b},
                   *predictor);
    const bool multistep = sampler.plan()[static_cast<std::size_t>(b)].order > 1;
    EXPECT_EQ(bit_identical(whole, restarted), !multistep);
    for (float v : restarted) EXPECT_TRUE(std::isfinite(v));
  }
}

// N samples in one run equal the concatenation of runs over [0, k) and
// [k, N), whatever the thread count.
TEST_P(RuleTrajectory, SplitBatchIsBitIdentical) {
  const Schedule s = Schedule::linear(1000);
  GaussianPredictor predictor({0.5f, 0.8f, {}, {}});
  const auto run = [&](Shape shape, std::int64_t first, int threads) {
    std::vector<float> x = test::poisoned(static_cast<std::size_t>(shape.size()));
    Sampler(s, options_of(GetParam(), threads)).sample({.x = x, .shape = shape, .noise = {42, first}}, predictor);
    return x;
  };
  for (const std::int64_t dim : {5, 1001}) {
    const auto whole = run({9, dim}, 0, 2);
    auto joined = run({4, dim}, 0, 1);
    const auto tail = run({5, dim}, 4, 3);
    joined.insert(joined.end(), tail.begin(), tail.end());
    EXPECT_TRUE(bit_identical(whole, joined)) << "dim " << dim;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rules, RuleTrajectory,
    ::testing::Values(
        RuleCase{SamplerKind::ddpm, PredictionType::epsilon, X0::none, 0, TimestepSpacing::leading, 0.0},
        RuleCase{SamplerKind::ddpm, PredictionType::sample, X0::clip, 50, TimestepSpacing::trailing, 0.0},
        RuleCase{SamplerKind::ddpm, PredictionType::v_prediction, X0::threshold, 50, TimestepSpacing::linspace, 0.0},
        RuleCase{SamplerKind::ddpm, PredictionType::epsilon, X0::threshold, 20, TimestepSpacing::leading, 0.0},
        RuleCase{SamplerKind::ddim, PredictionType::epsilon, X0::none, 50, TimestepSpacing::trailing, 0.0},
        RuleCase{SamplerKind::ddim, PredictionType::v_prediction, X0::clip, 50, TimestepSpacing::leading, 0.5},
        RuleCase{SamplerKind::ddim, PredictionType::sample, X0::threshold, 25, TimestepSpacing::trailing, 1.0},
        RuleCase{SamplerKind::ddim, PredictionType::sample, X0::none, 7, TimestepSpacing::linspace, 0.0},
        RuleCase{SamplerKind::ddim, PredictionType::epsilon, X0::clip, 0, TimestepSpacing::leading, 1.0},
        RuleCase{SamplerKind::dpmpp_2m, PredictionType::epsilon, X0::none, 20, TimestepSpacing::linspace, 0.0},
        RuleCase{SamplerKind::dpmpp_2m, PredictionType::v_prediction, X0::threshold, 15, TimestepSpacing::trailing, 0.0, true},
        RuleCase{SamplerKind::dpmpp_2m, PredictionType::sample, X0::none, 50, TimestepSpacing::leading, 0.0, true},
        RuleCase{SamplerKind::dpmpp_2m_sde, PredictionType::sample, X0::none, 25, TimestepSpacing::leading, 0.0, true},
        RuleCase{SamplerKind::dpmpp_2m_sde, PredictionType::epsilon, X0::threshold, 10, TimestepSpacing::linspace, 0.0},
        RuleCase{SamplerKind::euler, PredictionType::epsilon, X0::none, 30, TimestepSpacing::linspace, 0.0},
        RuleCase{SamplerKind::euler, PredictionType::v_prediction, X0::none, 20, TimestepSpacing::trailing, 0.0, true},
        RuleCase{SamplerKind::euler, PredictionType::sample, X0::none, 100, TimestepSpacing::leading, 0.0, true},
        RuleCase{SamplerKind::euler_ancestral, PredictionType::epsilon, X0::none, 25, TimestepSpacing::linspace, 0.0},
        RuleCase{SamplerKind::euler_ancestral, PredictionType::v_prediction, X0::none, 15, TimestepSpacing::trailing, 0.0}),
    [](const auto& info) { return name_of(info.param); });

// DDIM with eta = 0 is Euler's method for the probability-flow ODE in
// (sigma = sqrt((1 - ab) / ab), x / sqrt(ab)). For x0 ~ N(mu, s^2) the ODE
// dx/dsigma = (x - mu) sigma / (s^2 + sigma^2) has the solution
// x(sigma) - mu = (x_T - mu) sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_T^2), so
// the exact x0 for each x_T is known; DDIM's error must halve as the steps double.
TEST(DdimConvergence, ApproachesTheExactOdeSolutionAtFirstOrder) {
  const Schedule s = Schedule::linear(1000);
  const double mu = 0.3, sd = 0.5;
  const Shape shape{4, 16};
  GaussianPrior prior{static_cast<float>(mu), static_cast<float>(sd), {}, {}};
  const double sigma_T = std::sqrt((1 - s.alpha_bar()[999]) / s.alpha_bar()[999]);
  // x_T as the engine draws it.
  std::vector<double> x_T;
  for (std::int64_t row = 0; row < shape.batch; ++row) {
    const auto z = reference::normals(3, static_cast<std::uint64_t>(row), kernels::NoiseStream::initial, 0, shape.dim);
    x_T.insert(x_T.end(), z.begin(), z.end());
  }
  std::vector<double> exact(x_T.size());
  for (std::size_t i = 0; i < x_T.size(); ++i) {
    const double x_bar = x_T[i] / std::sqrt(s.alpha_bar()[999]);
    exact[i] = mu + (x_bar - mu) * sd / std::sqrt(sd * sd + sigma_T * sigma_T);
  }
  std::vector<double> errors;
  for (int n : {25, 50, 100, 200}) {
    SamplerOptions o;
    o.backend = Backend::cpu;
    o.sampler = SamplerKind::ddim;
    o.num_inference_steps = n;
    o.timestep_spacing = TimestepSpacing::trailing;  // starts at t = 999; T divisible by n
    reference::SampleSettings settings = reference::settings_for(o);
    const auto ref = reference::sample(s, shape, {3, 0}, reference::gaussian_model(s, shape, prior), settings);
    double error = 0.0;
    for (std::size_t i = 0; i < ref.size(); ++i) error = std::max(error, std::abs(ref[i] - exact[i]));
    errors.push_back(error);
    // The engine follows the reference at every step count.
    std::vector<float> x(x_T.size());
    GaussianPredictor predictor(prior);
    Sampler(s, o).sample({.x = x, .shape = shape, .noise = {3, 0}}, predictor);
    EXPECT_TRUE(close_relative_to_max(x, ref, 1e-5)) << n << " steps";
  }
  for (std::size_t k = 1; k < errors.size(); ++k) {
    const double ratio = errors[k - 1] / errors[k];
    EXPECT_GT(ratio, 1.7) << "error " << errors[k - 1] << " -> " << errors[k];
    EXPECT_LT(ratio, 2.3) << "error " << errors[k - 1] << " -> " << errors[k];
  }
  EXPECT_LT(errors.back(), errors.front() / 6);
}

// With every step, DDIM at eta = 1 is DDPM with the posterior variance: the
// same update coefficients and the same noise.
TEST(DdimEtaOne, IsDdpmWithThePosteriorVarianceOverAllSteps) {
  const Schedule s = Schedule::cosine(300);
  SamplerOptions ddpm;
  ddpm.backend = Backend::cpu;
  ddpm.variance = VarianceKind::posterior;
  SamplerOptions ddim = ddpm;
  ddim.sampler = SamplerKind::ddim;
  ddim.eta = 1.0;
  Sampler a(s, ddpm), b(s, ddim);
  ASSERT_EQ(a.plan().size(), b.plan().size());
  for (std::size_t i = 0; i < a.plan().size(); ++i) {
    const PlannedStep& p = a.plan()[i];
    const PlannedStep& q = b.plan()[i];
    // The same linear map (x_t, x0_hat) -> x_prev, with eps_hat = (x_t - a x0_hat) / b.
    const double from_x0 = q.prev_from_x0 - q.prev_from_eps * std::sqrt(q.alpha_bar) / std::sqrt(1 - q.alpha_bar);
    const double from_x = q.prev_from_eps / std::sqrt(1 - q.alpha_bar);
    EXPECT_NEAR(p.prev_from_x0, from_x0, 1e-9) << "t = " << p.timestep;
    EXPECT_NEAR(p.prev_from_sample, from_x, 1e-9) << "t = " << p.timestep;
    EXPECT_NEAR(p.sigma, q.sigma, 1e-9) << "t = " << p.timestep;
  }
  GaussianPredictor predictor({0.2f, 0.6f, {}, {}});
  std::vector<float> x(400), y(400);
  a.sample({.x = x, .shape = {4, 100}, .noise = {9, 0}}, predictor);
  b.sample({.x = y, .shape = {4, 100}, .noise = {9, 0}}, predictor);
  EXPECT_TRUE(close_relative_to_max(x, test::to_double(y), 1e-5));
}

// With the Gaussian predictor and no x0 processing every step is affine,
// x_prev = A x + B + C z, so the law of the discrete sampler's output is
// exactly N(m, v), with m and v from the recursion over the plan. The samples
// must follow it (4 standard errors). And the law must approach the prior as
// the steps grow: with every training step it is within 2% of it, and no
// further from it than with the few steps tested.
struct Law {
  double mean = 0.0;
  double var = 1.0;  // x_T ~ N(0, 1)
  double sd() const { return std::sqrt(var); }
};

Law law_of(const std::vector<PlannedStep>& plan, PredictionType type, double mu, double sd) {
  Law law;
  for (const PlannedStep& s : plan) {
    // The Gaussian predictor's output is affine in x: m = g x + h.
    const double a = std::sqrt(s.alpha_bar), b = std::sqrt(1 - s.alpha_bar);
    const double k = 1.0 / (a * a * sd * sd + b * b);
    const double eps_x = b * k, eps_0 = -b * k * a * mu;
    const double x0_x = a * sd * sd * k, x0_0 = mu - a * sd * sd * k * a * mu;
    double g = eps_x, h = eps_0;
    if (type == PredictionType::sample) g = x0_x, h = x0_0;
    if (type == PredictionType::v_prediction) g = a * eps_x - b * x0_x, h = a * eps_0 - b * x0_0;
    const double from_x = s.prev_from_x0 * s.x0_from_sample + s.prev_from_eps * s.eps_from_sample + s.prev_from_sample;
    const double from_m = s.prev_from_x0 * s.x0_from_model_output + s.prev_from_eps * s.eps_from_model_output;
    const double A = from_x + from_m * g, B = from_m * h;
    law.mean = A * law.mean + B;
    law.var = A * A * law.var + s.sigma * s.sigma;
  }
  return law;
}

struct LawCase {
  SamplerKind sampler;
  PredictionType type;
  int steps;
  double eta;
  VarianceKind variance;
};

void PrintTo(const LawCase& c, std::ostream* os) {
  *os << to_string(c.sampler) << " " << to_string(c.type) << " " << c.steps << " steps eta " << c.eta;
}

class RuleLaw : public ::testing::TestWithParam<LawCase> {};

TEST_P(RuleLaw, GaussianSamplesFollowTheExactLawOfTheSampler) {
  const LawCase c = GetParam();
  const double mu = 0.5, sd = 0.3;
  SamplerOptions o;
  o.backend = Backend::cpu;
  o.sampler = c.sampler;
  o.prediction_type = c.type;
  o.num_inference_steps = c.steps;
  o.timestep_spacing = TimestepSpacing::trailing;
  o.eta = c.eta;
  o.variance = c.variance;
  Sampler sampler(Schedule::linear(), o);
  const Law law = law_of(sampler.plan(), c.type, mu, sd);

  const Shape shape{64, 4096};
  std::vector<float> x(static_cast<std::size_t>(shape.size()));
  GaussianPredictor predictor({static_cast<float>(mu), static_cast<float>(sd), {}, {}});
  sampler.sample({.x = x, .shape = shape, .noise = {11, 0}}, predictor);
  test::expect_law(x, law.mean, law.var);

  o.num_inference_steps = 0;
  const Law all_steps = law_of(Sampler(Schedule::linear(), o).plan(), c.type, mu, sd);
  EXPECT_NEAR(all_steps.mean, mu, 0.005);
  EXPECT_NEAR(all_steps.sd(), sd, 0.02 * sd);  // the posterior variance is 1.25% low at T = 1000
  EXPECT_LE(std::abs(all_steps.sd() - sd), std::abs(law.sd() - sd) + 1e-4)
      << c.steps << " steps: sd " << law.sd() << "; every step: " << all_steps.sd();
}

INSTANTIATE_TEST_SUITE_P(
    Samplers, RuleLaw,
    ::testing::Values(LawCase{SamplerKind::ddpm, PredictionType::epsilon, 100, 0.0, VarianceKind::posterior},
                      LawCase{SamplerKind::ddpm, PredictionType::v_prediction, 100, 0.0, VarianceKind::beta},
                      LawCase{SamplerKind::ddim, PredictionType::sample, 100, 1.0, VarianceKind::beta},
                      LawCase{SamplerKind::ddim, PredictionType::epsilon, 50, 0.0, VarianceKind::beta}));

// The mixture's modes hold their weights under respaced DDPM and DDIM
// (eta = 1): 20,000 samples, binomial sampling error 0.003.
TEST(RuleLaw, GmmModeFractionsHoldTheirWeights) {
  const GmmSpec spec{{0.3, 0.7}, {{-2.0, -2.0}, {2.0, 2.0}}, {0.3, 0.3}};
  for (const SamplerKind kind : {SamplerKind::ddpm, SamplerKind::ddim}) {
    SamplerOptions o;
    o.backend = Backend::cpu;
    o.sampler = kind;
    o.eta = kind == SamplerKind::ddim ? 1.0 : 0.0;
    o.num_inference_steps = 100;
    o.timestep_spacing = TimestepSpacing::trailing;
    o.prediction_type = PredictionType::v_prediction;
    const Shape shape{20000, 2};
    std::vector<float> x(static_cast<std::size_t>(shape.size()));
    GmmPredictor predictor(spec);
    Sampler(Schedule::linear(), o).sample({.x = x, .shape = shape, .noise = {2, 0}}, predictor);
    std::int64_t first_mode = 0;
    for (std::int64_t i = 0; i < shape.batch; ++i) first_mode += (x[2 * i] + x[2 * i + 1]) < 0;
    EXPECT_NEAR(static_cast<double>(first_mode) / shape.batch, 0.3, 0.015) << to_string(kind);
  }
}

// Zero terminal SNR: v_prediction and sample start from pure noise at
// alpha_bar = 0 and give finite samples; epsilon cannot, and says so.
TEST(ZeroSnr, VAndSampleRunEpsilonIsRefused) {
  SamplerOptions o;
  o.backend = Backend::cpu;
  o.rescale_betas_zero_snr = true;
  o.sampler = SamplerKind::ddim;
  o.num_inference_steps = 20;
  o.timestep_spacing = TimestepSpacing::trailing;
  GaussianPredictor predictor({0.5f, 0.3f, {}, {}});
  for (const PredictionType type : {PredictionType::v_prediction, PredictionType::sample}) {
    o.prediction_type = type;
    Sampler sampler(Schedule::linear(), o);
    EXPECT_EQ(sampler.schedule().alpha_bar().back(), 0.0);
    std::vector<float> x(2000);
    sampler.sample({.x = x, .shape = {4, 500}, .noise = {1, 0}}, predictor);
    double sum = 0;
    for (float v : x) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
    }
    EXPECT_NEAR(sum / x.size(), 0.5, 0.05) << to_string(type);
  }
  o.prediction_type = PredictionType::epsilon;
  Sampler sampler(Schedule::linear(), o);  // constructing is fine: forward noising works
  std::vector<float> x(8);
  try {
    sampler.sample({.x = x, .shape = {2, 4}}, predictor);
    ADD_FAILURE() << "epsilon at a zero-SNR step ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("epsilon"), std::string::npos) << e.what();
  }
  for (float v : x) EXPECT_EQ(v, 0.0f) << "the buffer is untouched";
}

}  // namespace
}  // namespace ddpm

namespace ddpm {
namespace {

// The rule registry as the front ends read it (ddpm::sampler_info).
TEST(SamplerInfo, EachRuleDeclaresWhatItTakes) {
  const SamplerInfo heun = sampler_info(SamplerKind::heun);
  EXPECT_EQ(heun.name, "heun");
  EXPECT_EQ(heun.diffusers_class, "HeunDiscreteScheduler");
  EXPECT_EQ(heun.model_calls_per_step, 2);
  EXPECT_TRUE(heun.fractional_timesteps);
  EXPECT_TRUE(heun.karras_sigmas);
  EXPECT_FALSE(heun.solver_order);
  EXPECT_TRUE(sampler_info(SamplerKind::unipc).solver_order);
  EXPECT_FALSE(sampler_info(SamplerKind::ddim).karras_sigmas);
  EXPECT_EQ(sampler_info(SamplerKind::ddpm).default_spacing, TimestepSpacing::leading);
  // Heun's plan has a position per model call: 2n - 1 for n steps.
  SamplerOptions o;
  o.sampler = SamplerKind::heun;
  o.backend = Backend::cpu;
  o.num_inference_steps = 7;
  EXPECT_EQ(Sampler(Schedule::linear(), o).plan().size(), 13u);
}

// What each rule takes is declared once and refused by name from there,
// naming the rules that take it.
TEST(SamplerInfo, OptionsARuleDoesNotTakeAreRefusedNamingTheRulesThatDo) {
  EXPECT_TRUE(sampler_info(SamplerKind::ddim).eta);
  EXPECT_FALSE(sampler_info(SamplerKind::heun).eta);
  EXPECT_TRUE(sampler_info(SamplerKind::heun).clip_x0);
  EXPECT_FALSE(sampler_info(SamplerKind::heun).thresholding);
  EXPECT_TRUE(sampler_info(SamplerKind::unipc).thresholding);
  EXPECT_EQ(sampler_info(SamplerKind::dpmpp_3m).fixed_solver_order, 3);
  EXPECT_EQ(sampler_info(SamplerKind::dpmpp_3m).lower_order_sampler, SamplerKind::dpmpp_2m);
  EXPECT_EQ(sampler_info(SamplerKind::unipc).history_depth, 3);
  EXPECT_EQ(sampler_info(SamplerKind::dpmpp_2m).history_depth, 2);  // solver_order 3 keeps two
  EXPECT_EQ(sampler_info(SamplerKind::euler_ancestral).prediction_types,
            (std::vector<PredictionType>{PredictionType::epsilon, PredictionType::v_prediction}));
  EXPECT_EQ(sampler_info(SamplerKind::ddpm).prediction_types.size(), 3u);
  std::vector<std::string> names;
  for (const SamplerKind kind : sampler_kinds()) names.push_back(to_string(kind));
  EXPECT_EQ(names, (std::vector<std::string>{"ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde", "euler",
                                             "euler_ancestral", "heun", "dpmpp_3m", "unipc"}));
  const auto refusal = [](SamplerOptions o) {
    try {
      check_options(o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  SamplerOptions o;
  o.sampler = SamplerKind::euler;
  o.use_lu_lambdas = true;
  EXPECT_EQ(refusal(o), "use_lu_lambdas applies to the dpmpp_2m, dpmpp_2m_sde, dpmpp_3m samplers, not euler");
  o = {};
  o.sampler = SamplerKind::unipc;
  o.euler_at_final = true;
  EXPECT_EQ(refusal(o), "euler_at_final applies to the dpmpp_2m, dpmpp_2m_sde, dpmpp_3m samplers, not unipc");
  o = {};
  o.sampler = SamplerKind::heun;
  o.solver_order = 3;
  EXPECT_EQ(refusal(o), "solver_order applies to the dpmpp_2m, dpmpp_2m_sde, dpmpp_3m, unipc samplers, not heun");
  o = {};
  o.sampler = SamplerKind::euler_ancestral;
  o.prediction_type = PredictionType::sample;
  EXPECT_NE(refusal(o).find("does not take prediction type sample"), std::string::npos);
  o = {};
  o.sampler = SamplerKind::heun;
  o.clip_x0 = ClipRange{-1.0f, 1.0f};
  EXPECT_EQ(refusal(o), "accepted");
}

}  // namespace
}  // namespace ddpm
