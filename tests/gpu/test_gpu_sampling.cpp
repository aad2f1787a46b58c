// Whole reverse trajectories on the CUDA backend: against the CPU backend from
// the same seed (the fused Gaussian path and the unfused GMM path, with and
// without clipping, both variance kinds), bit-identical under batch splits,
// launch configurations and graph replay, host arrays, progress reports, the
// up-front memory check and the statistics of the samples.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <span>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/tuning.h"
#include "ddpm/ddpm.h"
#include "gpu_test_support.h"

namespace ddpm {
namespace {

using gpu_test::close_to_cpu;
using gpu_test::DeviceArray;
using test::bit_identical;
using test::random_values;

constexpr double kTrajectoryMaxAbs = 1e-4;
constexpr double kTrajectoryRelL2 = 1e-5;

enum class PredictorKind { gaussian, gaussian_per_element, gmm };

struct TrajectoryCase {
  PredictorKind predictor;
  std::int64_t batch;
  std::int64_t dim;
  bool clip;
  VarianceKind variance;
};

std::ostream& operator<<(std::ostream& os, const TrajectoryCase& c) {
  const char* names[] = {"gaussian (fused)", "gaussian per-element (fused)", "gmm (unfused)"};
  return os << names[static_cast<int>(c.predictor)] << ", " << c.batch << "x" << c.dim
            << (c.clip ? ", clipped" : "")
            << (c.variance == VarianceKind::beta ? ", beta" : ", posterior");
}

std::ostream& operator<<(std::ostream& os, PredictorKind kind) {
  const char* names[] = {"gaussian", "gaussian per-element", "gmm"};
  return os << names[static_cast<int>(kind)];
}

std::unique_ptr<NoisePredictor> make_predictor(PredictorKind kind, std::int64_t dim) {
  switch (kind) {
    case PredictorKind::gaussian:
      return std::make_unique<GaussianPredictor>(gpu_test::gaussian_prior(0.5f, 0.3f));
    case PredictorKind::gaussian_per_element: {
      GaussianPrior prior;
      for (std::int64_t i = 0; i < dim; ++i) {
        prior.means.push_back(0.3f * std::sin(0.1f * static_cast<float>(i)));
        prior.stds.push_back(0.1f + 0.002f * static_cast<float>(i % 50));
      }
      return std::make_unique<GaussianPredictor>(prior);
    }
    case PredictorKind::gmm:
      return std::make_unique<GmmPredictor>(gpu_test::two_component_gmm(static_cast<int>(dim)));
  }
  return nullptr;
}

SamplerOptions options_for(const TrajectoryCase& c, Backend backend) {
  return gpu_test::options(backend, c.variance,
                           c.clip ? std::optional<ClipRange>(ClipRange{-0.2f, 0.9f}) : std::nullopt);
}

class GpuTrajectory : public ::testing::TestWithParam<TrajectoryCase> {};

TEST_P(GpuTrajectory, MatchesCpuBackendFromTheSameSeed) {
  DDPM_SKIP_WITHOUT_GPU();
  const TrajectoryCase c = GetParam();
  const Schedule schedule = Schedule::linear(1000);
  Sampler cpu(schedule, options_for(c, Backend::cpu));
  Sampler cuda(schedule, options_for(c, Backend::cuda));
  auto predictor = make_predictor(c.predictor, c.dim);
  const Shape shape{c.batch, c.dim};
  const NoiseKey noise{42, 0};
  const std::vector<float> expected = gpu_test::sample_on_host(cpu, *predictor, shape, noise);
  const std::vector<float> actual = gpu_test::sample_on_device(cuda, *predictor, shape, noise);
  EXPECT_TRUE(close_to_cpu(actual, expected, kTrajectoryMaxAbs, kTrajectoryRelL2));
}

TEST_P(GpuTrajectory, HostArraysGiveTheSameBitsAsDeviceArrays) {
  DDPM_SKIP_WITHOUT_GPU();
  const TrajectoryCase c = GetParam();
  Sampler cuda(Schedule::linear(1000), options_for(c, Backend::cuda));
  auto predictor = make_predictor(c.predictor, c.dim);
  const Shape shape{c.batch, c.dim};
  EXPECT_TRUE(bit_identical(gpu_test::sample_on_host(cuda, *predictor, shape, {5, 0}),
                            gpu_test::sample_on_device(cuda, *predictor, shape, {5, 0})));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GpuTrajectory,
    ::testing::Values(
        TrajectoryCase{PredictorKind::gaussian, 16, 259, false, VarianceKind::beta},
        TrajectoryCase{PredictorKind::gaussian, 16, 256, false, VarianceKind::posterior},
        TrajectoryCase{PredictorKind::gaussian, 16, 259, true, VarianceKind::beta},
        TrajectoryCase{PredictorKind::gaussian, 16, 256, true, VarianceKind::posterior},
        TrajectoryCase{PredictorKind::gaussian_per_element, 8, 130, false, VarianceKind::beta},
        TrajectoryCase{PredictorKind::gaussian_per_element, 8, 128, true, VarianceKind::posterior},
        TrajectoryCase{PredictorKind::gmm, 256, 2, false, VarianceKind::beta},
        TrajectoryCase{PredictorKind::gmm, 256, 2, false, VarianceKind::posterior},
        TrajectoryCase{PredictorKind::gmm, 256, 2, true, VarianceKind::beta},
        TrajectoryCase{PredictorKind::gmm, 32, 16, true, VarianceKind::posterior},
        TrajectoryCase{PredictorKind::gmm, 8, 100, false, VarianceKind::beta}));

// Batch splits, launch shapes and graphs must not change a single bit.
class GpuReproducibility : public ::testing::TestWithParam<PredictorKind> {
 protected:
  static constexpr std::int64_t kBatch = 24;
  std::int64_t dim() const { return GetParam() == PredictorKind::gmm ? 3 : 259; }
};

TEST_P(GpuReproducibility, SplitBatchIsBitIdentical) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  auto predictor = make_predictor(GetParam(), dim());
  const std::vector<float> whole =
      gpu_test::sample_on_device(cuda, *predictor, {kBatch, dim()}, {77, 0});
  const std::int64_t k = 10;
  std::vector<float> joined = gpu_test::sample_on_device(cuda, *predictor, {k, dim()}, {77, 0});
  const std::vector<float> tail =
      gpu_test::sample_on_device(cuda, *predictor, {kBatch - k, dim()}, {77, k});
  joined.insert(joined.end(), tail.begin(), tail.end());
  EXPECT_TRUE(bit_identical(joined, whole));
}

TEST_P(GpuReproducibility, LaunchConfigurationsAreBitIdentical) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  auto predictor = make_predictor(GetParam(), dim());
  const Shape shape{kBatch, dim()};
  const std::vector<float> reference = gpu_test::sample_on_device(cuda, *predictor, shape, {3, 0});
  for (const auto& [block, blocks, vectorize] :
       {std::tuple{32, 1, true}, std::tuple{64, 5, false}, std::tuple{512, 0, false},
        std::tuple{96, 2, true}}) {
    detail::cuda::Tuning tuning;
    tuning.block_size = block;
    tuning.max_blocks = blocks;
    tuning.vectorize = vectorize;
    detail::cuda::ScopedTuning scoped(tuning);
    EXPECT_TRUE(bit_identical(gpu_test::sample_on_device(cuda, *predictor, shape, {3, 0}), reference))
        << "block " << block << ", grid cap " << blocks << ", vectorize " << vectorize;
  }
}

TEST_P(GpuReproducibility, GraphReplayEqualsThePlainLoop) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  auto predictor = make_predictor(GetParam(), dim());
  const Shape shape{kBatch, dim()};
  // Seeds change kernel arguments only (graph updated in place); a start step
  // changes the topology (graph instantiated again).
  const std::vector<std::pair<std::uint64_t, int>> runs = {{1, -1}, {2, -1}, {2, 400}, {1, -1}};
  std::vector<std::vector<float>> plain;
  {
    detail::cuda::Tuning tuning;
    tuning.use_graphs = false;
    detail::cuda::ScopedTuning scoped(tuning);
    for (const auto& [seed, start] : runs) {
      plain.push_back(gpu_test::sample_on_device(cuda, *predictor, shape, {seed, 0}, nullptr, start));
    }
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& [seed, start] = runs[i];
    EXPECT_TRUE(bit_identical(
        gpu_test::sample_on_device(cuda, *predictor, shape, {seed, 0}, nullptr, start), plain[i]))
        << "run " << i << ": seed " << seed << ", start step " << start;
  }
}

INSTANTIATE_TEST_SUITE_P(Predictors, GpuReproducibility,
                         ::testing::Values(PredictorKind::gaussian, PredictorKind::gmm));

// Wraps a predictor, changing what it declares.
class Declaring : public NoisePredictor {
 public:
  Declaring(NoisePredictor& inner, bool device, bool capturable)
      : inner_(inner), device_(device), capturable_(capturable) {}
  void prepare(const Schedule& s, Memory m, Shape shape, void* stream) override {
    inner_.prepare(s, m, shape, stream);
  }
  void predict(const PredictorCall& call) override { inner_.predict(call); }
  bool supports(Memory m) const override { return m == Memory::host || device_; }
  bool capturable() const override { return capturable_; }

 private:
  NoisePredictor& inner_;
  bool device_;
  bool capturable_;
};

TEST(GpuSampling, NonCapturablePredictorRunsThePlainLoopWithTheSameBits) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(300), gpu_test::options(Backend::cuda));
  GmmPredictor gmm(gpu_test::two_component_gmm(5));
  Declaring not_capturable(gmm, true, false);
  const Shape shape{40, 5};
  EXPECT_TRUE(bit_identical(gpu_test::sample_on_device(cuda, not_capturable, shape, {8, 0}),
                            gpu_test::sample_on_device(cuda, gmm, shape, {8, 0})));
}

TEST(GpuSampling, HostOnlyPredictorWorksWithHostArrays) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::linear(100);
  Sampler cpu(schedule, gpu_test::options(Backend::cpu));
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  GmmPredictor gmm(gpu_test::two_component_gmm(2));
  Declaring host_only(gmm, false, false);
  const Shape shape{64, 2};
  EXPECT_TRUE(close_to_cpu(gpu_test::sample_on_host(cuda, host_only, shape, {9, 0}),
                           gpu_test::sample_on_host(cpu, gmm, shape, {9, 0}), kTrajectoryMaxAbs,
                           kTrajectoryRelL2));
}

TEST(GpuSampling, GivenInitialNoiseAndStartStepMatchCpu) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::cosine(500);
  Sampler cpu(schedule, gpu_test::options(Backend::cpu));
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  GmmPredictor gmm(gpu_test::two_component_gmm(6));
  const Shape shape{20, 6};
  const std::vector<float> x_T = random_values(static_cast<std::size_t>(shape.size()), 5, -2.0f, 2.0f);
  for (int start : {-1, 200}) {
    std::vector<float> expected = x_T;
    SampleRequest r;
    r.x = expected;
    r.shape = shape;
    r.noise = {4, 0};
    r.initial_noise_given = true;
    r.start_step = start;
    cpu.sample(r, gmm);
    std::vector<float> host = x_T;
    r.x = host;
    cuda.sample(r, gmm);
    EXPECT_TRUE(close_to_cpu(host, expected, kTrajectoryMaxAbs, kTrajectoryRelL2)) << start;
    DeviceArray<float> device(x_T);
    r.x = device.span();
    r.memory = Memory::device;
    cuda.sample(r, gmm);
    cuda.synchronize(nullptr);
    EXPECT_TRUE(bit_identical(device.download(), host)) << start;
  }
}

// The loop run in pieces (end_step, then start_step with the piece's output
// as input) equals the whole loop bit for bit, fused and unfused, with graphs.
TEST(GpuSampling, LoopInPiecesEqualsTheWholeLoop) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::linear(300);
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  GaussianPredictor gaussian(gpu_test::gaussian_prior(0.5f, 0.3f));
  GmmPredictor gmm(gpu_test::two_component_gmm(8));
  for (NoisePredictor* predictor :
       {static_cast<NoisePredictor*>(&gaussian), static_cast<NoisePredictor*>(&gmm)}) {
    const Shape shape{33, 8};
    const auto n = static_cast<std::size_t>(shape.size());
    std::vector<float> whole(n), pieces(n);
    SampleRequest r;
    r.shape = shape;
    r.noise = {12, 5};
    r.x = whole;
    cuda.sample(r, *predictor);
    r.x = pieces;
    r.end_step = 150;
    cuda.sample(r, *predictor);
    r.initial_noise_given = true;
    r.start_step = 149;
    r.end_step = 0;
    cuda.sample(r, *predictor);
    EXPECT_TRUE(bit_identical(pieces, whole));
  }
}

TEST(GpuSampling, ProgressIsReportedOnTheCallingThread) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  for (PredictorKind kind : {PredictorKind::gaussian, PredictorKind::gmm}) {
    auto predictor = make_predictor(kind, 4);
    DeviceArray<float> x(64 * 4);
    std::vector<std::pair<int, int>> calls;
    const std::thread::id caller = std::this_thread::get_id();
    bool other_thread = false;
    SampleRequest r;
    r.x = x.span();
    r.shape = {64, 4};
    r.memory = Memory::device;
    r.progress = [&](int done, int total) {
      calls.emplace_back(done, total);
      other_thread |= std::this_thread::get_id() != caller;
    };
    cuda.sample(r, *predictor);
    cuda.synchronize(nullptr);
    ASSERT_GE(calls.size(), 2u);
    EXPECT_FALSE(other_thread);
    EXPECT_EQ(calls.back(), std::make_pair(1000, 1000));
    for (std::size_t i = 1; i < calls.size(); ++i) {
      EXPECT_LE(calls[i - 1].first, calls[i].first);
      EXPECT_EQ(calls[i].second, 1000);
    }
    EXPECT_TRUE(gpu_test::all_finite(x.download()));
  }
}

TEST(GpuSampling, TooLargeBatchIsRejectedUpFrontWithTheSizeNeeded) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(10), gpu_test::options(Backend::cuda));
  // 2^40 floats = 4 TiB: more than any device has. The spans are never read:
  // the request must be refused before anything is allocated or copied.
  const Shape shape{std::int64_t{1} << 20, std::int64_t{1} << 20};
  const auto n = static_cast<std::size_t>(shape.size());
  std::vector<float> small(16);
  GaussianPredictor gaussian(GaussianPrior{});
  SampleRequest r;
  r.x = std::span<float>(small.data(), n);
  r.shape = shape;
  try {
    cuda.sample(r, gaussian);  // host arrays: x_t on the device, 4 TiB
    FAIL() << "a 4 TiB batch was accepted";
  } catch (const CudaError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("out of device memory"), std::string::npos) << message;
    EXPECT_NE(message.find("need " + detail::cuda::format_mib(n * sizeof(float))), std::string::npos)
        << message;
  }
  GmmPredictor gmm(gpu_test::two_component_gmm(static_cast<int>(shape.dim)));
  DeviceArray<float> device(16);
  r.x = std::span<float>(device.data(), n);
  r.memory = Memory::device;
  try {
    cuda.sample(r, gmm);  // device arrays, unfused: the predicted noise, 4 TiB
    FAIL() << "a 4 TiB batch was accepted";
  } catch (const CudaError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("need " + detail::cuda::format_mib(n * sizeof(float))), std::string::npos)
        << message;
  }
  // The sampler still works afterwards.
  EXPECT_TRUE(gpu_test::all_finite(gpu_test::sample_on_device(cuda, gaussian, {4, 4}, {1, 0})));
}

// The statistics of the specification: x0 ~ N(0.5, 0.3^2) element-wise, the
// exact predictor, T = 1000 linear, 256 x 3072 samples. The standard error of
// the mean is 0.3/sqrt(786432) = 3.4e-4 (0.003 is ~9 of them); that of the
// std is about 0.3/sqrt(2 * 786432) = 2.4e-4 (1% = 0.003, ~12 of them).
TEST(GpuSampling, SampleStatisticsMatchThePrior) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  GaussianPredictor predictor(gpu_test::gaussian_prior(0.5f, 0.3f));
  const std::vector<float> x = gpu_test::sample_on_device(cuda, predictor, {256, 3072}, {2025, 0});
  double sum = 0.0, sum2 = 0.0;
  for (float v : x) {
    sum += v;
    sum2 += static_cast<double>(v) * v;
  }
  const double mean = sum / static_cast<double>(x.size());
  const double std = std::sqrt(sum2 / static_cast<double>(x.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.5, 0.003);
  EXPECT_NEAR(std, 0.3, 0.003);
}

}  // namespace
}  // namespace ddpm
