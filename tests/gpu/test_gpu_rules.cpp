// Every step rule on the CUDA backend: whole trajectories against the CPU
// backend from the same seed for each sampler (the solvers with and without
// Karras sigmas), prediction type, spacing and x0 mode (clipping, dynamic
// thresholding with short and long rows), with and without classifier-free
// guidance (and its rescale), with the fused Gaussian prior and the unfused
// GMM predictor; graph replay, launch shapes, host arrays and loops in pieces
// (the multistep history handed on) bit-identical; thresholding's per-row
// quantile against the CPU's on ties and long rows.
#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <tuple>
#include <vector>

#include "backends/cuda/tuning.h"
#include "ddpm/ddpm.h"
#include "gpu_test_support.h"

namespace ddpm {
namespace {

using gpu_test::close_to_cpu;
using gpu_test::DeviceArray;
using test::bit_identical;

enum class X0 { none, clip, threshold };
enum class Model { gaussian, gaussian_per_element, gmm };

struct RuleCase {
  SamplerKind sampler;
  PredictionType type;
  X0 x0;
  int steps;
  TimestepSpacing spacing;
  Model model;
  std::int64_t batch;
  std::int64_t dim;
  bool karras = false;
  double guidance = 1.0;  // with an unconditional prior or mixture when != 1
  double rescale = 0.0;
  // DPM-Solver++'s diffusers options (dpmpp_2m, dpmpp_2m_sde): the final
  // sigma, Lu's lambdas, first order at the end or throughout.
  bool dpm_variant = false;
  int solver_order = 2;  // dpmpp_2m, unipc
};

std::ostream& operator<<(std::ostream& os, const RuleCase& c) {
  const char* models[] = {"gaussian", "gaussian per-element", "gmm"};
  return os << to_string(c.sampler) << " " << to_string(c.type) << " x0 "
            << (c.x0 == X0::none ? "as is" : c.x0 == X0::clip ? "clipped" : "thresholded") << " "
            << c.steps << " " << to_string(c.spacing) << " steps" << (c.karras ? " karras" : "") << ", "
            << models[static_cast<int>(c.model)] << ", " << c.batch << "x" << c.dim << ", guidance "
            << c.guidance << " rescale " << c.rescale
            << (c.dpm_variant ? ", sigma_min final, lu lambdas, euler at final, lambda clipped" : "");
}

SamplerOptions options_of(const RuleCase& c, Backend backend) {
  SamplerOptions o = gpu_test::options(backend);
  o.sampler = c.sampler;
  o.prediction_type = c.type;
  o.num_inference_steps = c.steps;
  o.timestep_spacing = c.spacing;
  o.eta = c.sampler == SamplerKind::ddim ? 0.7 : 0.0;
  o.use_karras_sigmas = c.karras;
  if (c.sampler != SamplerKind::dpmpp_3m) o.solver_order = c.solver_order;
  if (c.sampler == SamplerKind::unipc && c.solver_order == 3) o.disable_corrector = {2};
  if (c.x0 == X0::clip) o.clip_x0 = ClipRange{-1.0f, 1.0f};
  if (c.dpm_variant) {
    o.final_sigmas_type = FinalSigmasType::sigma_min;
    o.use_lu_lambdas = true;
    o.euler_at_final = true;
    o.lambda_min_clipped = -5.1;
  }
  if (c.x0 == X0::threshold) {
    o.thresholding = true;
    o.dynamic_thresholding_ratio = 0.95;
    o.sample_max_value = 1.3;
  }
  return o;
}

std::unique_ptr<NoisePredictor> make_model(const RuleCase& c) {
  const bool guided = c.guidance != 1.0;
  switch (c.model) {
    case Model::gaussian:
      if (guided) {
        return std::make_unique<GaussianPredictor>(gpu_test::gaussian_prior(1.2f, 0.5f),
                                                   gpu_test::gaussian_prior(-0.3f, 0.7f));
      }
      return std::make_unique<GaussianPredictor>(gpu_test::gaussian_prior(1.2f, 0.5f));
    case Model::gaussian_per_element: {
      GaussianPrior prior;
      for (std::int64_t i = 0; i < c.dim; ++i) {
        prior.means.push_back(1.6f * std::sin(0.1f * static_cast<float>(i)));
        prior.stds.push_back(0.1f + 0.004f * static_cast<float>(i % 50));
      }
      if (guided) return std::make_unique<GaussianPredictor>(prior, gpu_test::gaussian_prior(0.0f, 1.0f));
      return std::make_unique<GaussianPredictor>(prior);
    }
    case Model::gmm: {
      const GmmSpec spec = gpu_test::two_component_gmm(static_cast<int>(c.dim));
      if (!guided) return std::make_unique<GmmPredictor>(spec);
      GmmSpec unconditional = spec;  // the mixture with its weights swapped
      std::swap(unconditional.weights[0], unconditional.weights[1]);
      return std::make_unique<GmmPredictor>(spec, unconditional);
    }
  }
  return nullptr;
}

class GpuRule : public ::testing::TestWithParam<RuleCase> {};

TEST_P(GpuRule, MatchesCpuBackendFromTheSameSeed) {
  DDPM_SKIP_WITHOUT_GPU();
  const RuleCase c = GetParam();
  const Schedule schedule = Schedule::cosine(1000);
  Sampler cpu(schedule, options_of(c, Backend::cpu));
  Sampler cuda(schedule, options_of(c, Backend::cuda));
  auto model = make_model(c);
  const Shape shape{c.batch, c.dim};
  const std::vector<float> expected =
      gpu_test::sample_on_host(cpu, *model, shape, {42, 3}, -1, c.guidance, c.rescale);
  const std::vector<float> actual =
      gpu_test::sample_on_device(cuda, *model, shape, {42, 3}, nullptr, -1, c.guidance, c.rescale);
  EXPECT_TRUE(close_to_cpu(actual, expected, 1e-4, 1e-5));
}

TEST_P(GpuRule, GraphReplayLaunchShapesAndHostArraysGiveTheSameBits) {
  DDPM_SKIP_WITHOUT_GPU();
  const RuleCase c = GetParam();
  Sampler cuda(Schedule::cosine(1000), options_of(c, Backend::cuda));
  auto model = make_model(c);
  const Shape shape{c.batch, c.dim};
  const auto on_device = [&] {
    return gpu_test::sample_on_device(cuda, *model, shape, {5, 0}, nullptr, -1, c.guidance, c.rescale);
  };
  const std::vector<float> graphed = on_device();
  EXPECT_TRUE(bit_identical(gpu_test::sample_on_host(cuda, *model, shape, {5, 0}, -1, c.guidance, c.rescale),
                            graphed));
  for (const auto& [block, blocks, vectorize, graphs] :
       {std::tuple{32, 1, true, false}, std::tuple{96, 3, false, true}, std::tuple{512, 0, true, false}}) {
    detail::cuda::Tuning tuning;
    tuning.block_size = block;
    tuning.max_blocks = blocks;
    tuning.vectorize = vectorize;
    tuning.use_graphs = graphs;
    detail::cuda::ScopedTuning scoped(tuning);
    EXPECT_TRUE(bit_identical(on_device(), graphed))
        << "block " << block << ", grid cap " << blocks << ", vectorize " << vectorize << ", graphs " << graphs;
  }
}

// Split in the middle (by plan index: Karras timesteps can repeat), the
// multistep history handed from the first piece to the second on the device.
TEST_P(GpuRule, LoopInPiecesEqualsTheWholeLoop) {
  DDPM_SKIP_WITHOUT_GPU();
  const RuleCase c = GetParam();
  Sampler cuda(Schedule::cosine(1000), options_of(c, Backend::cuda));
  const int steps = static_cast<int>(cuda.plan().size());
  if (steps < 3) GTEST_SKIP() << "too few steps to split";
  auto model = make_model(c);
  const Shape shape{c.batch, c.dim};
  const std::vector<float> whole =
      gpu_test::sample_on_device(cuda, *model, shape, {6, 0}, nullptr, -1, c.guidance, c.rescale);
  const int split = steps / 2;
  DeviceArray<float> x(static_cast<std::size_t>(shape.size()));
  DeviceArray<float> history(static_cast<std::size_t>(cuda.history_size(shape)));
  history.poison();
  SampleRequest first;
  first.x = x.span();
  first.shape = shape;
  first.noise = {6, 0};
  first.end_index = split - 1;
  first.memory = Memory::device;
  first.history = history.span();
  first.guidance_scale = c.guidance;
  first.guidance_rescale = c.rescale;
  cuda.sample(first, *model);
  SampleRequest second = first;
  second.initial_noise_given = true;
  second.history_given = true;
  second.start_index = split;
  second.end_index = -1;
  cuda.sample(second, *model);
  cuda.synchronize(nullptr);
  EXPECT_TRUE(bit_identical(x.download(), whole));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GpuRule,
    ::testing::Values(
        RuleCase{SamplerKind::ddpm, PredictionType::epsilon, X0::none, 50, TimestepSpacing::trailing, Model::gaussian, 16, 259},
        RuleCase{SamplerKind::ddpm, PredictionType::sample, X0::clip, 50, TimestepSpacing::leading, Model::gaussian_per_element, 8, 128},
        RuleCase{SamplerKind::ddpm, PredictionType::v_prediction, X0::threshold, 25, TimestepSpacing::linspace, Model::gaussian, 12, 5000},
        RuleCase{SamplerKind::ddpm, PredictionType::epsilon, X0::threshold, 20, TimestepSpacing::trailing, Model::gmm, 256, 3},
        RuleCase{SamplerKind::ddim, PredictionType::epsilon, X0::none, 50, TimestepSpacing::trailing, Model::gmm, 128, 2},
        RuleCase{SamplerKind::ddim, PredictionType::v_prediction, X0::clip, 20, TimestepSpacing::leading, Model::gaussian, 9, 300},
        RuleCase{SamplerKind::ddim, PredictionType::sample, X0::threshold, 30, TimestepSpacing::trailing, Model::gaussian_per_element, 5, 1001},
        RuleCase{SamplerKind::ddim, PredictionType::v_prediction, X0::none, 0, TimestepSpacing::leading, Model::gaussian, 4, 64},
        // The solvers, Karras sigmas, guidance (fused and through the mixture's 2N call).
        RuleCase{SamplerKind::dpmpp_2m, PredictionType::epsilon, X0::none, 20, TimestepSpacing::linspace, Model::gaussian, 16, 259},
        RuleCase{SamplerKind::dpmpp_2m, PredictionType::v_prediction, X0::threshold, 25, TimestepSpacing::trailing, Model::gaussian_per_element, 8, 1001, true},
        RuleCase{SamplerKind::dpmpp_2m, PredictionType::sample, X0::none, 15, TimestepSpacing::leading, Model::gmm, 64, 3, true, 4.0},
        RuleCase{SamplerKind::dpmpp_2m_sde, PredictionType::epsilon, X0::none, 20, TimestepSpacing::linspace, Model::gmm, 128, 2, true},
        RuleCase{SamplerKind::dpmpp_2m_sde, PredictionType::v_prediction, X0::none, 30, TimestepSpacing::trailing, Model::gaussian, 12, 5000, false, 3.0, 0.7},
        RuleCase{SamplerKind::euler, PredictionType::epsilon, X0::none, 30, TimestepSpacing::linspace, Model::gaussian, 9, 300, true},
        RuleCase{SamplerKind::euler, PredictionType::v_prediction, X0::none, 20, TimestepSpacing::leading, Model::gmm, 256, 3, false, 7.5},
        RuleCase{SamplerKind::euler_ancestral, PredictionType::epsilon, X0::none, 25, TimestepSpacing::linspace, Model::gaussian_per_element, 5, 1001, false, 2.0},
        RuleCase{SamplerKind::euler_ancestral, PredictionType::v_prediction, X0::none, 15, TimestepSpacing::trailing, Model::gmm, 64, 33},
        RuleCase{SamplerKind::ddpm, PredictionType::epsilon, X0::clip, 50, TimestepSpacing::trailing, Model::gaussian, 16, 128, false, 5.0, 0.5},
        // DPM-Solver++'s diffusers options (issue 23).
        RuleCase{SamplerKind::dpmpp_2m, PredictionType::epsilon, X0::none, 20, TimestepSpacing::linspace, Model::gmm, 64, 3, false, 1.0, 0.0, true},
        RuleCase{SamplerKind::dpmpp_2m_sde, PredictionType::v_prediction, X0::none, 25, TimestepSpacing::linspace, Model::gaussian, 12, 300, false, 1.0, 0.0, true},
        // The rules with a deeper history (issue 20): Heun's two calls a step,
        // DPM-Solver++(3M), UniPC with its corrector (order 3 with a gap).
        RuleCase{SamplerKind::heun, PredictionType::epsilon, X0::clip, 12, TimestepSpacing::linspace, Model::gaussian, 16, 259, true},
        RuleCase{SamplerKind::heun, PredictionType::v_prediction, X0::none, 10, TimestepSpacing::trailing, Model::gmm, 64, 3, false, 4.0},
        RuleCase{SamplerKind::dpmpp_3m, PredictionType::v_prediction, X0::threshold, 20, TimestepSpacing::linspace, Model::gaussian_per_element, 8, 1001, true},
        RuleCase{SamplerKind::dpmpp_3m, PredictionType::epsilon, X0::none, 16, TimestepSpacing::trailing, Model::gmm, 128, 2},
        RuleCase{SamplerKind::unipc, PredictionType::sample, X0::none, 15, TimestepSpacing::linspace, Model::gaussian, 12, 5000, false, 3.0, 0.7},
        RuleCase{SamplerKind::unipc, PredictionType::epsilon, X0::threshold, 20, TimestepSpacing::leading, Model::gmm, 64, 33, true, 1.0, 0.0, false, 3},
        // DPM-Solver++(3M) SDE: the deep step's own draws of the engine's noise.
        RuleCase{SamplerKind::dpmpp_2m_sde, PredictionType::epsilon, X0::none, 20, TimestepSpacing::linspace, Model::gaussian, 16, 259, true, 1.0, 0.0, false, 3}));

// Thresholding's scale with many tied |x0| values (the quantile falls inside
// a run of equal values) and rows longer than a block, against the CPU.
TEST(GpuThresholding, QuantileMatchesTheCpuOnTiesAndLongRows) {
  DDPM_SKIP_WITHOUT_GPU();
  for (const std::int64_t dim : {1, 2, 19, 256, 257, 70000}) {
    const Shape shape{3, dim};
    const auto n = static_cast<std::size_t>(shape.size());
    std::vector<float> x = test::random_values(n, 5, -3.0f, 3.0f);
    std::vector<float> m = test::random_values(n, 6, -3.0f, 3.0f);
    for (std::size_t i = 0; i < n; i += 3) m[i] = x[i];  // sample prediction: ties at |x0| = |x|
    for (const double ratio : {0.5, 0.9, 0.995, 1.0}) {
      SamplerOptions o = gpu_test::options(Backend::cuda);
      o.prediction_type = PredictionType::sample;
      o.thresholding = true;
      o.dynamic_thresholding_ratio = ratio;
      o.sample_max_value = 2.5;
      o.num_inference_steps = 10;
      Sampler cuda(Schedule::linear(1000), o);
      o.backend = Backend::cpu;
      Sampler cpu(Schedule::linear(1000), o);
      std::vector<float> from_cuda = test::poisoned(n), from_cpu = test::poisoned(n);
      std::vector<float> x0_cuda = test::poisoned(n), x0_cpu = test::poisoned(n);
      const int t = cpu.timesteps()[3];
      cuda.reverse_step({.x_t = x, .model_output = m, .shape = shape, .step = t, .noise = {1, 0},
                         .x_prev = from_cuda, .variance_noise = {}, .pred_original_sample = x0_cuda, .previous_x0 = {}});
      cpu.reverse_step({.x_t = x, .model_output = m, .shape = shape, .step = t, .noise = {1, 0},
                        .x_prev = from_cpu, .variance_noise = {}, .pred_original_sample = x0_cpu, .previous_x0 = {}});
      EXPECT_TRUE(close_to_cpu(x0_cuda, x0_cpu, 1e-6)) << "dim " << dim << ", ratio " << ratio;
      EXPECT_TRUE(close_to_cpu(from_cuda, from_cpu, 1e-5)) << "dim " << dim << ", ratio " << ratio;
    }
  }
}

}  // namespace
}  // namespace ddpm

namespace ddpm {
namespace {

// The deep rules' single steps (reverse_step with the history carried by the
// caller, host arrays): the CUDA engine follows the CPU engine step by step,
// its history included.
TEST(GpuDeepRules, SingleStepsWithTheirHistoryMatchTheCpu) {
  DDPM_SKIP_WITHOUT_GPU();
  const Shape shape{6, 133};
  for (SamplerKind kind : {SamplerKind::heun, SamplerKind::dpmpp_3m, SamplerKind::unipc}) {
    SamplerOptions cpu_options = gpu_test::options(Backend::cpu), cuda_options = gpu_test::options(Backend::cuda);
    for (SamplerOptions* o : {&cpu_options, &cuda_options}) {
      o->sampler = kind;
      o->num_inference_steps = 8;
      o->solver_order = kind == SamplerKind::unipc ? 3 : 2;
    }
    Sampler cpu(Schedule::linear(1000), cpu_options), cuda(Schedule::linear(1000), cuda_options);
    const auto n = static_cast<std::size_t>(shape.size());
    std::vector<float> x(n), cpu_history(static_cast<std::size_t>(cpu.history_size(shape)), 0.0f);
    std::vector<float> cuda_history = cpu_history;
    for (std::size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
    for (int k = 0; k < static_cast<int>(cpu.plan().size()); ++k) {
      std::vector<float> m(n), cpu_prev(n), cuda_prev(n), cpu_x0(n), cuda_x0(n);
      for (std::size_t i = 0; i < n; ++i) m[i] = 0.7f * std::tanh(x[i]) + 0.1f * std::cos(0.01f * static_cast<float>(k + i));
      cpu.reverse_step({.x_t = x, .model_output = m, .shape = shape, .step_index = k, .x_prev = cpu_prev,
                        .pred_original_sample = cpu_x0, .history = cpu_history});
      cuda.reverse_step({.x_t = x, .model_output = m, .shape = shape, .step_index = k, .x_prev = cuda_prev,
                         .pred_original_sample = cuda_x0, .history = cuda_history});
      EXPECT_TRUE(close_to_cpu(cuda_prev, cpu_prev, 1e-4, 1e-5)) << to_string(kind) << " step " << k;
      EXPECT_TRUE(close_to_cpu(cuda_x0, cpu_x0, 1e-4, 1e-5)) << to_string(kind) << " step " << k;
      EXPECT_TRUE(close_to_cpu(cuda_history, cpu_history, 1e-4, 1e-5)) << to_string(kind) << " step " << k;
      x = cpu_prev;
    }
  }
}

}  // namespace
}  // namespace ddpm
