// A NoisePredictor written by a user, with its own CUDA kernel: the engine
// hands it device pointers and a stream, it allocates in prepare() and only
// launches in predict(), and sampling with it (captured into a graph or not)
// matches the built-in fused Gaussian predictor and the CPU backend.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "backends/cuda/tuning.h"
#include "ddpm/ddpm.h"
#include "gpu_test_support.h"
#include "user_predictor_kernel.h"

namespace ddpm {
namespace {

using gpu_test::close_to_cpu;
using test::bit_identical;

class UserGaussianPredictor : public NoisePredictor {
 public:
  UserGaussianPredictor(float mean, float std, bool capturable)
      : mean_(mean), var_(std * std), capturable_(capturable) {}
  ~UserGaussianPredictor() override { cudaFree(table_device_); }

  void prepare(const Schedule& schedule, Memory memory, Shape, void* stream) override {
    ++prepared_;
    table_.clear();
    for (int t = 0; t < schedule.steps(); ++t) {
      table_.push_back(static_cast<float>(schedule.sqrt_alpha_bar()[t]));
      table_.push_back(static_cast<float>(schedule.sqrt_one_minus_alpha_bar()[t]));
    }
    if (memory != Memory::device) return;
    if (table_.size() > capacity_) {
      cudaFree(table_device_);
      gpu_test::cuda_ok(cudaMalloc(reinterpret_cast<void**>(&table_device_), table_.size() * sizeof(float)), "cudaMalloc");
      capacity_ = table_.size();
    }
    gpu_test::cuda_ok(cudaMemcpyAsync(table_device_, table_.data(), table_.size() * sizeof(float),
                                      cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)),
                      "upload");
    // The host table must outlive the asynchronous copy from pageable memory
    // only until cudaMemcpyAsync returns; it is kept anyway.
  }

  void predict(const PredictorCall& call) override {
    ++predicted_;
    const std::int64_t n = call.shape.size();
    if (call.memory == Memory::device) {
      const int error = gpu_test::launch_user_gaussian_eps(call.x_t, call.eps, n, table_device_,
                                                           call.step, mean_, var_, call.stream);
      if (error != 0) throw Error("user kernel launch failed: " + std::to_string(error));
      return;
    }
    const float a = table_[2 * call.step], b = table_[2 * call.step + 1];
    for (std::int64_t i = 0; i < n; ++i) {
      call.eps[i] = b * (call.x_t[i] - a * mean_) / (a * a * var_ + b * b);
    }
  }

  bool supports(Memory) const override { return true; }
  bool capturable() const override { return capturable_; }

  int prepared_ = 0;
  int predicted_ = 0;

 private:
  float mean_, var_;
  bool capturable_;
  std::vector<float> table_;
  float* table_device_ = nullptr;
  std::size_t capacity_ = 0;
};

TEST(GpuUserPredictor, DeviceKernelPredictorMatchesBuiltInAndCpu) {
  DDPM_SKIP_WITHOUT_GPU();
  const Schedule schedule = Schedule::linear(1000);
  Sampler cuda(schedule, gpu_test::options(Backend::cuda));
  Sampler cpu(schedule, gpu_test::options(Backend::cpu));
  const Shape shape{16, 261};
  const NoiseKey noise{31, 0};
  UserGaussianPredictor user(0.5f, 0.3f, true);
  GaussianPredictor builtin(gpu_test::gaussian_prior(0.5f, 0.3f));

  const std::vector<float> with_user = gpu_test::sample_on_device(cuda, user, shape, noise);
  EXPECT_EQ(user.prepared_, 1);
  EXPECT_EQ(user.predicted_, 1000);
  EXPECT_TRUE(close_to_cpu(with_user, gpu_test::sample_on_device(cuda, builtin, shape, noise), 1e-4,
                           1e-5));
  EXPECT_TRUE(close_to_cpu(with_user, gpu_test::sample_on_host(cpu, user, shape, noise), 1e-4, 1e-5));
}

TEST(GpuUserPredictor, CapturedAndUncapturedRunsGiveTheSameBits) {
  DDPM_SKIP_WITHOUT_GPU();
  Sampler cuda(Schedule::linear(500), gpu_test::options(Backend::cuda));
  const Shape shape{8, 100};
  UserGaussianPredictor captured(0.1f, 0.8f, true);
  UserGaussianPredictor uncaptured(0.1f, 0.8f, false);
  const std::vector<float> a = gpu_test::sample_on_device(cuda, captured, shape, {2, 0});
  const std::vector<float> b = gpu_test::sample_on_device(cuda, uncaptured, shape, {2, 0});
  EXPECT_TRUE(bit_identical(a, b));
  // Replaying the updated graph with a new seed and a stream of the caller's.
  cudaStream_t stream = nullptr;
  gpu_test::cuda_ok(cudaStreamCreate(&stream), "stream");
  const std::vector<float> c = gpu_test::sample_on_device(cuda, captured, shape, {3, 0}, stream);
  const std::vector<float> d = gpu_test::sample_on_device(cuda, uncaptured, shape, {3, 0}, stream);
  cudaStreamDestroy(stream);
  EXPECT_TRUE(bit_identical(c, d));
  EXPECT_FALSE(bit_identical(a, c));
}

}  // namespace
}  // namespace ddpm
