// The CUDA reverse step: against the shared per-element math evaluated on the
// host with the same z (drawn by the test's own cuRAND kernel under the
// specified mapping), against the CPU backend, in place, and with host arrays.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <ostream>
#include <vector>

#include "ddpm/ddpm.h"
#include "gpu/gpu_test_support.h"
#include "gpu/noise_probe.h"
#include "kernels/step_math.cuh"
#include "step_table.h"

namespace ddpm {
namespace {

using gpu_test::close_to_cpu;
using gpu_test::DeviceArray;
using test::bit_identical;
using test::random_values;

struct ReverseCase {
  VarianceKind variance;
  bool clip;
  int step;
  std::int64_t batch;
  std::int64_t dim;
};

std::ostream& operator<<(std::ostream& os, const ReverseCase& c) {
  return os << (c.variance == VarianceKind::beta ? "beta" : "posterior")
            << (c.clip ? ", clipped" : ", unclipped") << ", t = " << c.step << ", " << c.batch
            << "x" << c.dim;
}

std::optional<ClipRange> clip_of(const ReverseCase& c) {
  return c.clip ? std::optional<ClipRange>(ClipRange{-1.0f, 1.0f}) : std::nullopt;
}

constexpr NoiseKey kNoise{2024, 17};

struct Inputs {
  Shape shape;
  std::vector<float> x_t, eps;
};

Inputs make_inputs(const ReverseCase& c) {
  Inputs in{{c.batch, c.dim}, {}, {}};
  const auto n = static_cast<std::size_t>(in.shape.size());
  in.x_t = random_values(n, 31, -2.0f, 2.0f);
  in.eps = random_values(n, 32, -2.0f, 2.0f);
  return in;
}

std::vector<float> reverse_on_device(Sampler& sampler, const Inputs& in, int step,
                                     bool in_place = false) {
  const auto n = static_cast<std::size_t>(in.shape.size());
  DeviceArray<float> x(in.x_t), eps(in.eps), out(n);
  out.poison();
  ReverseStepRequest r;
  r.x_t = x.cspan();
  r.eps = eps.cspan();
  r.shape = in.shape;
  r.step = step;
  r.noise = kNoise;
  r.x_prev = in_place ? x.span() : out.span();
  r.memory = Memory::device;
  sampler.reverse_step(r);
  sampler.synchronize(nullptr);
  return in_place ? x.download() : out.download();
}

std::vector<float> reverse_on_host(Sampler& sampler, const Inputs& in, int step) {
  std::vector<float> out = test::poisoned(static_cast<std::size_t>(in.shape.size()));
  ReverseStepRequest r;
  r.x_t = in.x_t;
  r.eps = in.eps;
  r.shape = in.shape;
  r.step = step;
  r.noise = kNoise;
  r.x_prev = out;
  sampler.reverse_step(r);
  return out;
}

class GpuReverse : public ::testing::TestWithParam<ReverseCase> {};

TEST_P(GpuReverse, MatchesSharedMathOnHostWithTheSameNoise) {
  DDPM_SKIP_WITHOUT_GPU();
  const ReverseCase c = GetParam();
  const Schedule schedule = Schedule::linear(1000);
  Sampler cuda(schedule, gpu_test::options(Backend::cuda, c.variance, clip_of(c)));
  const Inputs in = make_inputs(c);
  const std::vector<float> actual = reverse_on_device(cuda, in, c.step);

  const auto table = detail::make_step_table(schedule, c.variance);
  const kernels::ClipSettings clip = detail::make_clip_settings(clip_of(c));
  const std::vector<float> z = gpu_test::draw_normals_on_device(
      kNoise.seed, kNoise.first_sample, kernels::NoiseStream::reverse,
      static_cast<std::uint32_t>(c.step), c.batch, c.dim);
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const float zi = c.step == 0 ? 0.0f : z[i];  // no noise on the last step
    const float expected = kernels::reverse_step(in.x_t[i], in.eps[i], zi, table[c.step], clip);
    // Same inputs, same z: only FMA contraction can differ (a few ulp).
    ASSERT_NEAR(actual[i], expected, 4e-6 * std::max(1.0f, std::abs(expected))) << "index " << i;
  }
}

TEST_P(GpuReverse, MatchesCpuBackend) {
  DDPM_SKIP_WITHOUT_GPU();
  const ReverseCase c = GetParam();
  const Schedule schedule = Schedule::linear(1000);
  Sampler cpu(schedule, gpu_test::options(Backend::cpu, c.variance, clip_of(c)));
  Sampler cuda(schedule, gpu_test::options(Backend::cuda, c.variance, clip_of(c)));
  const Inputs in = make_inputs(c);
  EXPECT_TRUE(close_to_cpu(reverse_on_device(cuda, in, c.step), reverse_on_host(cpu, in, c.step),
                           1e-5));
}

TEST_P(GpuReverse, InPlaceAndHostArraysGiveTheSameBits) {
  DDPM_SKIP_WITHOUT_GPU();
  const ReverseCase c = GetParam();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda, c.variance, clip_of(c)));
  const Inputs in = make_inputs(c);
  const std::vector<float> out_of_place = reverse_on_device(cuda, in, c.step);
  EXPECT_TRUE(bit_identical(reverse_on_device(cuda, in, c.step, true), out_of_place));
  EXPECT_TRUE(bit_identical(reverse_on_host(cuda, in, c.step), out_of_place));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GpuReverse,
    ::testing::Values(ReverseCase{VarianceKind::beta, false, 999, 5, 7},
                      ReverseCase{VarianceKind::beta, false, 500, 17, 64},
                      ReverseCase{VarianceKind::beta, false, 0, 5, 9},
                      ReverseCase{VarianceKind::posterior, false, 1, 4, 3},
                      ReverseCase{VarianceKind::posterior, false, 700, 8, 1000},
                      ReverseCase{VarianceKind::beta, true, 999, 6, 33},
                      ReverseCase{VarianceKind::posterior, true, 250, 9, 12},
                      ReverseCase{VarianceKind::posterior, true, 0, 3, 5}));

}  // namespace
}  // namespace ddpm
