// Where the CUDA engines keep their schedules: regions of the constant-memory
// arena, taken at construction and given back on destruction, with a global
// memory fallback (arena full, or T too large) that gives the same bits; and
// engines with different schedules running at once on two streams.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>

#include "backends/cuda/constant_arena.h"
#include "backends/cuda/tuning.h"
#include "ddpm/ddpm.h"
#include "gpu_test_support.h"

namespace ddpm {
namespace {

using detail::cuda::constant_arena_stats;
using gpu_test::close_to_cpu;
using test::bit_identical;

int current_device() {
  int device = 0;
  gpu_test::cuda_ok(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

int arena_used() { return constant_arena_stats(current_device()).used_floats; }

// What a sampler produces on both paths (fused and unfused) and in forward.
std::vector<float> fingerprint(Sampler& sampler, cudaStream_t stream = nullptr) {
  GaussianPredictor gaussian(gpu_test::gaussian_prior(0.2f, 0.5f));
  GmmPredictor gmm(gpu_test::two_component_gmm(3));
  std::vector<float> out = gpu_test::sample_on_device(sampler, gaussian, {8, 37}, {10, 0}, stream);
  const std::vector<float> b = gpu_test::sample_on_device(sampler, gmm, {50, 3}, {11, 0}, stream);
  out.insert(out.end(), b.begin(), b.end());
  const std::vector<float> x0 = test::random_values(64, 3);
  gpu_test::DeviceArray<float> d_x0(x0), x_t(64);
  x_t.poison();
  ForwardRequest r;
  r.x0 = d_x0.cspan();
  r.shape = {4, 16};
  r.step = sampler.schedule().steps() / 2;
  r.noise = {12, 0};
  r.x_t = x_t.span();
  r.memory = Memory::device;
  r.stream = stream;
  sampler.forward(r);
  sampler.synchronize(stream);
  const std::vector<float> f = x_t.download();
  out.insert(out.end(), f.begin(), f.end());
  return out;
}

TEST(GpuConstantSchedule, EnginesTakeARegionAndGiveItBack) {
  DDPM_SKIP_WITHOUT_GPU();
  const int before = arena_used();
  {
    Sampler a(Schedule::linear(1000), gpu_test::options(Backend::cuda));
    const int with_a = arena_used();
    EXPECT_GE(with_a, before + 5 * 1000) << "an unclipped T = 1000 engine takes 5 floats per step";
    Sampler b(Schedule::linear(100), gpu_test::options(Backend::cuda, VarianceKind::beta,
                                                       ClipRange{-1.0f, 1.0f}));
    EXPECT_GE(arena_used(), with_a + 7 * 100) << "a clipped engine takes 7 floats per step";
  }
  EXPECT_EQ(arena_used(), before);
}

TEST(GpuConstantSchedule, FallbackWhenTheArenaIsFullGivesTheSameBits) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::linear(1000);
  std::vector<std::unique_ptr<Sampler>> samplers;
  int used = arena_used();
  samplers.push_back(std::make_unique<Sampler>(schedule, gpu_test::options(Backend::cuda)));
  ASSERT_GT(arena_used(), used) << "the first engine found the arena full";
  Sampler* fallback = nullptr;
  for (int i = 0; i < 64 && fallback == nullptr; ++i) {
    used = arena_used();
    samplers.push_back(std::make_unique<Sampler>(schedule, gpu_test::options(Backend::cuda)));
    if (arena_used() == used) fallback = samplers.back().get();
  }
  ASSERT_NE(fallback, nullptr) << "64 engines of T = 1000 all found room in the arena";
  EXPECT_TRUE(bit_identical(fingerprint(*fallback), fingerprint(*samplers.front())));
}

TEST(GpuConstantSchedule, ArenaSwitchedOffGivesTheSameBits) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::cosine(800);
  const auto options = gpu_test::options(Backend::cuda, VarianceKind::posterior, ClipRange{-1.0f, 1.0f});
  Sampler constant(schedule, options);
  detail::cuda::Tuning tuning;
  tuning.use_constant_schedule = false;
  detail::cuda::ScopedTuning scoped(tuning);
  const int used = arena_used();
  Sampler global(schedule, options);
  EXPECT_EQ(arena_used(), used);
  EXPECT_TRUE(bit_identical(fingerprint(global), fingerprint(constant)));
}

TEST(GpuConstantSchedule, ScheduleTooLargeForTheArenaMatchesCpu) {
  DDPM_SKIP_WITHOUT_GPU();
  // 4000 steps x 5 floats = 80 KB > the 60 KiB arena.
  const Schedule schedule = Schedule::linear(4000, 2.5e-5, 0.005);
  const int used = arena_used();
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  EXPECT_EQ(arena_used(), used);
  Sampler cpu(schedule, gpu_test::options(Backend::cpu));
  GmmPredictor gmm(gpu_test::two_component_gmm(3));
  EXPECT_TRUE(close_to_cpu(gpu_test::sample_on_device(cuda, gmm, {64, 3}, {13, 0}),
                           gpu_test::sample_on_host(cpu, gmm, {64, 3}, {13, 0}), 1e-4, 1e-5));
}

TEST(GpuConstantSchedule, SamplersWithDifferentSchedulesRunConcurrentlyOnTwoStreams) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler a(Schedule::linear(1000), gpu_test::options(Backend::cuda));
  Sampler b(Schedule::cosine(700),
            gpu_test::options(Backend::cuda, VarianceKind::posterior, ClipRange{-1.0f, 1.0f}));
  cudaStream_t stream_a = nullptr, stream_b = nullptr;
  gpu_test::cuda_ok(cudaStreamCreateWithFlags(&stream_a, cudaStreamNonBlocking), "stream");
  gpu_test::cuda_ok(cudaStreamCreateWithFlags(&stream_b, cudaStreamNonBlocking), "stream");
  const std::vector<float> alone_a = fingerprint(a, stream_a);
  const std::vector<float> alone_b = fingerprint(b, stream_b);
  EXPECT_FALSE(bit_identical(alone_a, alone_b));

  std::atomic<int> mismatches{0};
  std::atomic<int> errors{0};
  std::atomic<bool> running{true};
  auto run = [&](Sampler& sampler, cudaStream_t stream, const std::vector<float>& expected) {
    try {
      for (int i = 0; i < 4; ++i) {
        if (!bit_identical(fingerprint(sampler, stream), expected)) ++mismatches;
      }
    } catch (...) {
      ++errors;
    }
  };
  // Meanwhile engines come and go, taking and releasing arena regions.
  auto churn = [&] {
    try {
      while (running) {
        Sampler c(Schedule::linear(300), gpu_test::options(Backend::cuda));
      }
    } catch (...) {
      ++errors;
    }
  };
  std::thread churner(churn);
  std::thread thread_a(run, std::ref(a), stream_a, std::cref(alone_a));
  std::thread thread_b(run, std::ref(b), stream_b, std::cref(alone_b));
  thread_a.join();
  thread_b.join();
  running = false;
  churner.join();
  cudaStreamDestroy(stream_a);
  cudaStreamDestroy(stream_b);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace ddpm
