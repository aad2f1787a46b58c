// The CUDA forward kernels against the CPU backend: q(x_t | x0) with drawn and
// given noise, one step for the batch or one per sample, the noise and
// v-target outputs, and q(x_t | x_{t-1}). Both backends draw the same Philox
// integers; they differ only by float rounding in log/sin/cos, hence the
// 1e-5 tolerance. Outputs are poisoned with NaN before every call.
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <span>
#include <tuple>
#include <string>
#include <vector>

#include "backends/cuda/tuning.h"
#include "ddpm/ddpm.h"
#include "gpu_test_support.h"

namespace ddpm {
namespace {

using gpu_test::close_to_cpu;
using gpu_test::DeviceArray;
using test::bit_identical;
using test::random_values;

constexpr double kForwardTolerance = 1e-5;

struct ForwardCase {
  std::int64_t batch;
  std::int64_t dim;
  bool given_noise;
  bool per_sample_steps;
};

std::ostream& operator<<(std::ostream& os, const ForwardCase& c) {
  return os << c.batch << "x" << c.dim << (c.given_noise ? " given noise" : " drawn noise")
            << (c.per_sample_steps ? ", per-sample steps" : ", one step");
}

struct ForwardOutputs {
  std::vector<float> x_t, eps, velocity;
};

struct ForwardInputs {
  Shape shape;
  std::vector<float> x0;
  std::vector<float> eps;  // empty: drawn
  int step = 0;
  std::vector<std::int32_t> steps;  // empty: `step` for all
  NoiseKey noise{1234, 0};
};

ForwardInputs make_inputs(const ForwardCase& c, int steps_in_schedule) {
  ForwardInputs in;
  in.shape = {c.batch, c.dim};
  const auto n = static_cast<std::size_t>(in.shape.size());
  in.x0 = random_values(n, 11);
  if (c.given_noise) in.eps = random_values(n, 12, -3.0f, 3.0f);
  in.step = steps_in_schedule / 3;
  if (c.per_sample_steps) {
    for (std::int64_t i = 0; i < c.batch; ++i) {
      in.steps.push_back(static_cast<std::int32_t>((i * 389 + 7) % steps_in_schedule));
    }
  }
  return in;
}

ForwardOutputs forward_host(Sampler& sampler, const ForwardInputs& in) {
  const auto n = static_cast<std::size_t>(in.shape.size());
  ForwardOutputs out{test::poisoned(n), test::poisoned(n), test::poisoned(n)};
  ForwardRequest r;
  r.x0 = in.x0;
  r.shape = in.shape;
  r.step = in.steps.empty() ? in.step : -1;
  r.steps = in.steps;
  r.eps = in.eps;
  r.noise = in.noise;
  r.x_t = out.x_t;
  r.eps_out = out.eps;
  r.velocity_out = out.velocity;
  sampler.forward(r);
  return out;
}

ForwardOutputs forward_device(Sampler& sampler, const ForwardInputs& in) {
  const auto n = static_cast<std::size_t>(in.shape.size());
  DeviceArray<float> x0(in.x0), x_t(n), eps_out(n), velocity(n);
  DeviceArray<float> eps(in.eps.empty() ? 1 : n);
  if (!in.eps.empty()) eps.upload(in.eps);
  DeviceArray<std::int32_t> steps(in.steps.empty() ? 1 : in.steps.size());
  if (!in.steps.empty()) steps.upload(in.steps);
  x_t.poison();
  eps_out.poison();
  velocity.poison();
  ForwardRequest r;
  r.x0 = x0.cspan();
  r.shape = in.shape;
  r.step = in.steps.empty() ? in.step : -1;
  if (!in.steps.empty()) r.steps = steps.cspan();
  if (!in.eps.empty()) r.eps = eps.cspan();
  r.noise = in.noise;
  r.x_t = x_t.span();
  r.eps_out = eps_out.span();
  r.velocity_out = velocity.span();
  r.memory = Memory::device;
  sampler.forward(r);
  sampler.synchronize(nullptr);
  return {x_t.download(), eps_out.download(), velocity.download()};
}

class GpuForward : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(GpuForward, MatchesCpuBackend) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::linear(1000);
  Sampler cpu(schedule, gpu_test::options(Backend::cpu));
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  const ForwardInputs in = make_inputs(GetParam(), schedule.steps());
  const ForwardOutputs expected = forward_host(cpu, in);
  const ForwardOutputs actual = forward_device(cuda, in);
  EXPECT_TRUE(close_to_cpu(actual.x_t, expected.x_t, kForwardTolerance)) << "x_t";
  EXPECT_TRUE(close_to_cpu(actual.eps, expected.eps, kForwardTolerance)) << "eps_out";
  EXPECT_TRUE(close_to_cpu(actual.velocity, expected.velocity, kForwardTolerance)) << "velocity";
}

TEST_P(GpuForward, HostMemoryEqualsDeviceMemory) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  const ForwardInputs in = make_inputs(GetParam(), 1000);
  const ForwardOutputs host = forward_host(cuda, in);
  const ForwardOutputs device = forward_device(cuda, in);
  EXPECT_TRUE(bit_identical(host.x_t, device.x_t));
  EXPECT_TRUE(bit_identical(host.eps, device.eps));
  EXPECT_TRUE(bit_identical(host.velocity, device.velocity));
}

TEST_P(GpuForward, LaunchConfigurationsAreBitIdentical) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  const ForwardInputs in = make_inputs(GetParam(), 1000);
  const ForwardOutputs reference = forward_device(cuda, in);
  for (const auto& [block, blocks, vectorize] :
       {std::tuple{32, 1, true}, std::tuple{64, 3, false}, std::tuple{512, 0, true},
        std::tuple{128, 7, false}}) {
    detail::cuda::Tuning tuning;
    tuning.block_size = block;
    tuning.max_blocks = blocks;
    tuning.vectorize = vectorize;
    detail::cuda::ScopedTuning scoped(tuning);
    const ForwardOutputs out = forward_device(cuda, in);
    EXPECT_TRUE(bit_identical(out.x_t, reference.x_t)) << "block " << block << " grid " << blocks;
    EXPECT_TRUE(bit_identical(out.eps, reference.eps));
    EXPECT_TRUE(bit_identical(out.velocity, reference.velocity));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuForward,
                         ::testing::Values(ForwardCase{7, 1, false, false},
                                           ForwardCase{9, 3, false, true},
                                           ForwardCase{5, 13, true, false},
                                           ForwardCase{33, 64, false, false},
                                           ForwardCase{33, 64, true, true},
                                           ForwardCase{4, 3072, false, true},
                                           ForwardCase{3, 1001, false, false}));

TEST(GpuForward, SplitBatchIsBitIdentical) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  ForwardInputs whole = make_inputs(ForwardCase{12, 37, false, true}, 1000);
  const ForwardOutputs all = forward_device(cuda, whole);
  const std::int64_t k = 5;
  ForwardInputs head = whole, tail = whole;
  head.shape.batch = k;
  head.x0.resize(static_cast<std::size_t>(k * 37));
  head.steps.resize(k);
  tail.shape.batch = 12 - k;
  tail.x0.erase(tail.x0.begin(), tail.x0.begin() + k * 37);
  tail.steps.erase(tail.steps.begin(), tail.steps.begin() + k);
  tail.noise.first_sample = k;
  ForwardOutputs joined = forward_device(cuda, head);
  const ForwardOutputs rest = forward_device(cuda, tail);
  joined.x_t.insert(joined.x_t.end(), rest.x_t.begin(), rest.x_t.end());
  joined.eps.insert(joined.eps.end(), rest.eps.begin(), rest.eps.end());
  EXPECT_TRUE(bit_identical(joined.x_t, all.x_t));
  EXPECT_TRUE(bit_identical(joined.eps, all.eps));
}

TEST(GpuForward, DeviceStepsOutOfRangeAreRejected) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(100), gpu_test::options(Backend::cuda));
  ForwardInputs in = make_inputs(ForwardCase{4, 8, false, true}, 100);
  in.steps[2] = 100;
  EXPECT_THROW(forward_device(cuda, in), Error);
  in.steps[2] = -1;
  EXPECT_THROW(forward_device(cuda, in), Error);
}

TEST(GpuForward, HostPointersInADeviceRequestAreRejected) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(100), gpu_test::options(Backend::cuda));
  std::vector<float> x0(32, 0.5f), x_t(32);
  ForwardRequest r;
  r.x0 = x0;
  r.shape = {4, 8};
  r.step = 3;
  r.x_t = x_t;
  r.memory = Memory::device;
  EXPECT_THROW(cuda.forward(r), Error);
}

TEST(GpuForward, PartlyOverlappingOutputIsRejected) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(100), gpu_test::options(Backend::cuda));
  DeviceArray<float> buffer(64);
  ForwardRequest r;
  r.x0 = std::span<const float>(buffer.data(), 32);
  r.shape = {4, 8};
  r.step = 3;
  r.x_t = std::span<float>(buffer.data() + 1, 32);
  r.memory = Memory::device;
  EXPECT_THROW(cuda.forward(r), Error);
  r.x_t = std::span<float>(buffer.data(), 32);  // in place is fine
  EXPECT_NO_THROW(cuda.forward(r));
  cuda.synchronize(nullptr);
}

class GpuForwardOneStep : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(GpuForwardOneStep, MatchesCpuBackend) {
  DDPM_SKIP_WITHOUT_GPU();
  const ForwardCase c = GetParam();
  const Schedule schedule = Schedule::cosine(200);
  Sampler cpu(schedule, gpu_test::options(Backend::cpu));
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  const Shape shape{c.batch, c.dim};
  const auto n = static_cast<std::size_t>(shape.size());
  const std::vector<float> x_prev = random_values(n, 21);
  const std::vector<float> eps = c.given_noise ? random_values(n, 22, -3.0f, 3.0f) : std::vector<float>{};
  for (int step : {0, 57, 199}) {
    std::vector<float> expected = test::poisoned(n);
    ForwardOneStepRequest r;
    r.x_prev = x_prev;
    r.shape = shape;
    r.step = step;
    r.eps = eps;
    r.noise = {99, 3};
    r.x_t = expected;
    cpu.forward_one_step(r);

    DeviceArray<float> d_prev(x_prev), d_out(n), d_eps(eps.empty() ? 1 : n);
    if (!eps.empty()) {
      d_eps.upload(eps);
      r.eps = d_eps.cspan();
    }
    d_out.poison();
    r.x_prev = d_prev.cspan();
    r.x_t = d_out.span();
    r.memory = Memory::device;
    cuda.forward_one_step(r);
    cuda.synchronize(nullptr);
    EXPECT_TRUE(close_to_cpu(d_out.download(), expected, kForwardTolerance)) << "step " << step;

    // The same request with host arrays on the CUDA backend: the same bits.
    std::vector<float> host_out = test::poisoned(n);
    r.x_prev = x_prev;
    r.eps = eps;
    r.x_t = host_out;
    r.memory = Memory::host;
    cuda.forward_one_step(r);
    EXPECT_TRUE(bit_identical(host_out, d_out.download())) << "step " << step;
  }
}

// --from-step's --noise-out: the noise the one-step kernel drew, from device
// outputs at every 4-byte offset of a 16-byte line (the vector path must
// not be taken for an unaligned noise output), equal to the CPU backend's,
// and x_t equal to x_t computed from that noise.
TEST(GpuForwardOneStep, NoiseOutputMatchesCpuAtEveryAlignment) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::linear(1000);
  Sampler cpu(schedule, gpu_test::options(Backend::cpu));
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  const Shape shape{6, 256};
  const auto n = static_cast<std::size_t>(shape.size());
  const std::vector<float> x_prev = random_values(n, 31);
  std::vector<float> expected_x = test::poisoned(n), expected_eps = test::poisoned(n);
  ForwardOneStepRequest r;
  r.x_prev = x_prev;
  r.shape = shape;
  r.step = 321;
  r.noise = {77, 5};
  r.x_t = expected_x;
  r.eps_out = expected_eps;
  cpu.forward_one_step(r);

  DeviceArray<float> d_prev(x_prev), d_x(n), d_eps(n + 3);
  for (std::size_t offset = 0; offset < 4; ++offset) {
    d_x.poison();
    d_eps.poison();
    r.x_prev = d_prev.cspan();
    r.x_t = d_x.span();
    r.eps_out = std::span<float>(d_eps.span().data() + offset, n);
    r.memory = Memory::device;
    cuda.forward_one_step(r);
    cuda.synchronize(nullptr);
    const std::vector<float> eps_all = d_eps.download();
    const std::vector<float> eps(eps_all.begin() + static_cast<std::ptrdiff_t>(offset),
                                 eps_all.begin() + static_cast<std::ptrdiff_t>(offset + n));
    EXPECT_TRUE(close_to_cpu(eps, expected_eps, kForwardTolerance)) << "noise at offset " << offset;
    EXPECT_TRUE(close_to_cpu(d_x.download(), expected_x, kForwardTolerance)) << "x_t at offset " << offset;

    // The drawn noise given back as the noise gives the same x_t, bit for bit.
    std::vector<float> again = test::poisoned(n);
    ForwardOneStepRequest given = r;
    given.x_prev = x_prev;
    given.eps = eps;
    given.eps_out = {};
    given.x_t = again;
    given.memory = Memory::host;
    cuda.forward_one_step(given);
    EXPECT_TRUE(bit_identical(again, d_x.download())) << "offset " << offset;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuForwardOneStep,
                         ::testing::Values(ForwardCase{6, 5, false, false},
                                           ForwardCase{6, 5, true, false},
                                           ForwardCase{16, 256, false, false}));

}  // namespace
}  // namespace ddpm
