// Without a usable CUDA device (or in a build without CUDA): asking for the
// CUDA backend is a clear ddpm::Error, and Backend::automatic uses the CPU.
// Where a device is usable these tests skip; the other test_gpu_* run instead.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "ddpm/ddpm.h"

namespace ddpm {
namespace {

SamplerOptions with_backend(Backend backend) {
  SamplerOptions options;
  options.backend = backend;
  return options;
}

TEST(CudaUnavailable, ReasonIsOneCachedLine) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is usable here";
  const std::string reason = cuda_unavailable_reason();
  EXPECT_FALSE(reason.empty());
  EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;
  EXPECT_EQ(reason, cuda_unavailable_reason());
  EXPECT_FALSE(cuda_available());
}

TEST(CudaUnavailable, CudaBackendThrowsAnErrorNamingTheReason) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is usable here";
  try {
    Sampler sampler(Schedule::linear(10), with_backend(Backend::cuda));
    FAIL() << "constructing a CUDA sampler without a device did not throw";
  } catch (const CudaError& e) {
    FAIL() << "expected ddpm::Error about the missing device, got CudaError: " << e.what();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("CUDA"), std::string::npos) << message;
    EXPECT_NE(message.find(cuda_unavailable_reason()), std::string::npos) << message;
  }
}

TEST(CudaUnavailable, AutomaticBackendFallsBackToCpu) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is usable here";
  Sampler sampler(Schedule::linear(20), with_backend(Backend::automatic));
  EXPECT_EQ(sampler.backend(), Backend::cpu);
  GaussianPrior prior;
  prior.mean = 0.5f;
  prior.std = 0.3f;
  GaussianPredictor predictor(prior);
  std::vector<float> x(4 * 5);
  SampleRequest r;
  r.x = x;
  r.shape = {4, 5};
  r.noise = {7, 0};
  sampler.sample(r, predictor);
  for (float v : x) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace ddpm
