// The CUDA reverse step of every rule: against the shared per-element math
// evaluated on the host with the same z (drawn by the test's own cuRAND
// kernel under the specified mapping), against the CPU backend (x_prev and
// pred_original_sample, drawn or given noise), in place, and with host arrays.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <vector>

#include "ddpm/ddpm.h"
#include "gpu_test_support.h"
#include "noise_probe.h"
#include "kernels/step_rule.cuh"
#include "core/step_plan.h"

namespace ddpm {
namespace {

using gpu_test::close_to_cpu;
using gpu_test::DeviceArray;
using test::bit_identical;
using test::random_values;

enum class X0 { none, clip, threshold };

struct ReverseCase {
  SamplerKind sampler;
  PredictionType type;
  X0 x0;
  VarianceKind variance;
  int inference_steps;  // 0: all
  int position;         // of the plan
  std::int64_t batch;
  std::int64_t dim;
};

std::ostream& operator<<(std::ostream& os, const ReverseCase& c) {
  return os << to_string(c.sampler) << ", " << to_string(c.type) << ", x0 "
            << (c.x0 == X0::none ? "as is" : c.x0 == X0::clip ? "clipped" : "thresholded") << ", "
            << to_string(c.variance) << ", " << c.inference_steps << " steps, position "
            << c.position << ", " << c.batch << "x" << c.dim;
}

SamplerOptions options_of(const ReverseCase& c, Backend backend) {
  SamplerOptions o = gpu_test::options(backend, c.variance);
  o.sampler = c.sampler;
  o.prediction_type = c.type;
  o.num_inference_steps = c.inference_steps;
  o.timestep_spacing = TimestepSpacing::trailing;
  o.eta = c.sampler == SamplerKind::ddim ? 0.6 : 0.0;
  if (c.x0 == X0::clip) o.clip_x0 = ClipRange{-1.0f, 1.0f};
  if (c.x0 == X0::threshold) {
    o.thresholding = true;
    o.dynamic_thresholding_ratio = 0.9;
    o.sample_max_value = 1.5;
  }
  return o;
}

constexpr NoiseKey kNoise{2024, 17};

struct Inputs {
  Shape shape;
  std::vector<float> x_t, model_output, noise;
};

Inputs make_inputs(const ReverseCase& c) {
  Inputs in{{c.batch, c.dim}, {}, {}, {}};
  const auto n = static_cast<std::size_t>(in.shape.size());
  in.x_t = random_values(n, 31, -2.0f, 2.0f);
  in.model_output = random_values(n, 32, -2.0f, 2.0f);
  in.noise = random_values(n, 33, -2.0f, 2.0f);
  return in;
}

struct StepResult {
  std::vector<float> x_prev, x0;
};

StepResult reverse_on_device(Sampler& sampler, const Inputs& in, int step, bool in_place = false,
                             bool given_noise = false) {
  const auto n = static_cast<std::size_t>(in.shape.size());
  DeviceArray<float> x(in.x_t), m(in.model_output), z(in.noise), out(n), x0(n);
  out.poison();
  x0.poison();
  ReverseStepRequest r;
  r.x_t = x.cspan();
  r.model_output = m.cspan();
  r.shape = in.shape;
  r.step = step;
  r.noise = kNoise;
  r.x_prev = in_place ? x.span() : out.span();
  r.memory = Memory::device;
  if (given_noise) r.variance_noise = z.cspan();
  if (!in_place) r.pred_original_sample = x0.span();
  sampler.reverse_step(r);
  sampler.synchronize(nullptr);
  return {in_place ? x.download() : out.download(), in_place ? std::vector<float>() : x0.download()};
}

StepResult reverse_on_host(Sampler& sampler, const Inputs& in, int step, bool given_noise = false) {
  const auto n = static_cast<std::size_t>(in.shape.size());
  StepResult result{test::poisoned(n), test::poisoned(n)};
  ReverseStepRequest r;
  r.x_t = in.x_t;
  r.model_output = in.model_output;
  r.shape = in.shape;
  r.step = step;
  r.noise = kNoise;
  r.x_prev = result.x_prev;
  r.pred_original_sample = result.x0;
  if (given_noise) r.variance_noise = in.noise;
  sampler.reverse_step(r);
  return result;
}

class GpuReverse : public ::testing::TestWithParam<ReverseCase> {
 protected:
  int step_of(const Sampler& s) const {
    return s.plan()[static_cast<std::size_t>(GetParam().position)].timestep;
  }
};

TEST_P(GpuReverse, MatchesSharedMathOnHostWithTheSameNoise) {
  DDPM_SKIP_WITHOUT_GPU();
  const ReverseCase c = GetParam();
  if (c.x0 == X0::threshold) GTEST_SKIP() << "thresholding's scale is checked against the CPU";
  Sampler cuda(Schedule::linear(1000), options_of(c, Backend::cuda));
  const int t = step_of(cuda);
  const Inputs in = make_inputs(c);
  const std::vector<float> actual = reverse_on_device(cuda, in, t).x_prev;
  const kernels::StepRecord r =
      detail::make_step_record(cuda.plan()[static_cast<std::size_t>(c.position)]);
  const std::vector<float> z = gpu_test::draw_normals_on_device(
      kNoise.seed, kNoise.first_sample, kernels::NoiseStream::reverse,
      static_cast<std::uint32_t>(t), c.batch, c.dim);
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const float zi = r.sigma == 0.0f ? 0.0f : z[i];
    const float x = in.x_t[i], m = in.model_output[i];
    const float expected =
        c.x0 == X0::none
            ? kernels::step_folded(x, m, 0.0f, zi, r)
            : kernels::step_from_x0(
                  x, m,
                  kernels::process_x0<kernels::X0Mode::clip>(kernels::predicted_x0(x, m, r), -1.0f,
                                                             1.0f, 1.0f),
                  0.0f, zi, r);
    // Same inputs, same z: only FMA contraction can differ (a few ulp).
    ASSERT_NEAR(actual[i], expected, 4e-6 * std::max(1.0f, std::abs(expected))) << "index " << i;
  }
}

TEST_P(GpuReverse, MatchesCpuBackend) {
  DDPM_SKIP_WITHOUT_GPU();
  const ReverseCase c = GetParam();
  Sampler cpu(Schedule::linear(1000), options_of(c, Backend::cpu));
  Sampler cuda(Schedule::linear(1000), options_of(c, Backend::cuda));
  const int t = step_of(cpu);
  const Inputs in = make_inputs(c);
  for (bool given : {false, true}) {
    const StepResult device = reverse_on_device(cuda, in, t, false, given);
    const StepResult host = reverse_on_host(cpu, in, t, given);
    EXPECT_TRUE(close_to_cpu(device.x_prev, host.x_prev, 1e-5)) << "given noise " << given;
    // x0 = x / sqrt(ab) - ...: up to ~160 at t = 999, so its float error is larger.
    EXPECT_TRUE(close_to_cpu(device.x0, host.x0, 2e-4)) << "given noise " << given;
  }
}

TEST_P(GpuReverse, InPlaceAndHostArraysGiveTheSameBits) {
  DDPM_SKIP_WITHOUT_GPU();
  const ReverseCase c = GetParam();
  Sampler cuda(Schedule::linear(1000), options_of(c, Backend::cuda));
  const int t = step_of(cuda);
  const Inputs in = make_inputs(c);
  const StepResult out_of_place = reverse_on_device(cuda, in, t);
  EXPECT_TRUE(bit_identical(reverse_on_host(cuda, in, t).x_prev, out_of_place.x_prev));
  // In place there is no x0 output, so without x0 processing the folded
  // update runs instead of the x0 form: the same numbers, not the same bits.
  const std::vector<float> in_place = reverse_on_device(cuda, in, t, true).x_prev;
  if (c.x0 != X0::none) {
    EXPECT_TRUE(bit_identical(in_place, out_of_place.x_prev));
  } else {
    EXPECT_TRUE(close_to_cpu(in_place, out_of_place.x_prev, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GpuReverse,
    ::testing::Values(
        ReverseCase{SamplerKind::ddpm, PredictionType::epsilon, X0::none, VarianceKind::beta, 0, 0, 5, 7},
        ReverseCase{SamplerKind::ddpm, PredictionType::epsilon, X0::none, VarianceKind::beta, 0, 499, 17, 64},
        ReverseCase{SamplerKind::ddpm, PredictionType::epsilon, X0::none, VarianceKind::beta, 0, 999, 5, 9},
        ReverseCase{SamplerKind::ddpm, PredictionType::sample, X0::none, VarianceKind::posterior, 50, 49, 4, 3},
        ReverseCase{SamplerKind::ddpm, PredictionType::v_prediction, X0::clip, VarianceKind::posterior, 50, 10, 8, 1000},
        ReverseCase{SamplerKind::ddpm, PredictionType::epsilon, X0::threshold, VarianceKind::beta, 20, 3, 6, 333},
        ReverseCase{SamplerKind::ddim, PredictionType::epsilon, X0::none, VarianceKind::beta, 50, 0, 6, 33},
        ReverseCase{SamplerKind::ddim, PredictionType::sample, X0::clip, VarianceKind::beta, 50, 25, 9, 12},
        ReverseCase{SamplerKind::ddim, PredictionType::v_prediction, X0::threshold, VarianceKind::beta, 25, 24, 3, 4099},
        ReverseCase{SamplerKind::ddim, PredictionType::v_prediction, X0::none, VarianceKind::beta, 10, 9, 3, 5}));

}  // namespace
}  // namespace ddpm
