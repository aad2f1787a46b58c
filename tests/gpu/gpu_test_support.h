#pragma once
// Helpers for the CUDA backend tests: the skip at the top of every GPU test,
// device arrays that can be poisoned with NaN, the CPU/CUDA sampler pair and
// the error measures of the specification.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "ddpm/ddpm.h"
#include "../test_support.h"

// First statement of every GPU test: skip with the reason when no device is usable.
#define DDPM_SKIP_WITHOUT_GPU()                                                          \
  do {                                                                                   \
    if (!::ddpm::cuda_available()) {                                                     \
      GTEST_SKIP() << "no usable CUDA device: " << ::ddpm::cuda_unavailable_reason();    \
    }                                                                                    \
  } while (0)

namespace ddpm::gpu_test {

inline void cuda_ok(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(error));
  }
}

// A device array for tests. poison() fills it with 0xFF bytes: every float
// becomes a NaN, so an element a kernel forgets to write fails the comparison.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t count) : count_(count) {
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T) + 16), "cudaMalloc");
  }
  explicit DeviceArray(const std::vector<T>& values) : DeviceArray(values.size()) {
    upload(values);
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  // Both wait until the data is in place: the engine may run on a
  // non-blocking stream that does not wait for the legacy default stream.
  void upload(const std::vector<T>& values) {
    cuda_ok(cudaMemcpy(data_, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice),
            "upload");
    cuda_ok(cudaStreamSynchronize(nullptr), "upload");
  }
  std::vector<T> download() const {
    std::vector<T> values(count_);
    cuda_ok(cudaMemcpy(values.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost),
            "download");
    return values;
  }
  void poison() {
    cuda_ok(cudaMemset(data_, 0xFF, count_ * sizeof(T)), "poison");
    cuda_ok(cudaStreamSynchronize(nullptr), "poison");
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return count_; }
  std::span<T> span() { return {data_, count_}; }
  std::span<const T> cspan() const { return {data_, count_}; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

inline double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= worst)) worst = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  }
  return worst;
}

// ||a - b||_2 / ||b||_2
inline double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (std::isnan(num)) return std::numeric_limits<double>::infinity();
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

// max |cuda - cpu| <= max_abs (and, if given, relative L2 <= rel_l2), with the
// first offending index named.
inline ::testing::AssertionResult close_to_cpu(const std::vector<float>& cuda,
                                               const std::vector<float>& cpu, double max_abs,
                                               std::optional<double> rel_l2 = std::nullopt) {
  if (cuda.size() != cpu.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << cuda.size() << " vs " << cpu.size();
  }
  const double worst = max_abs_difference(cuda, cpu);
  if (!(worst <= max_abs)) {
    std::size_t at = 0;
    for (; at < cuda.size(); ++at) {
      const double d = std::abs(static_cast<double>(cuda[at]) - cpu[at]);
      if (!(d <= max_abs)) break;
    }
    return ::testing::AssertionFailure() << "max |cuda - cpu| = " << worst << " > " << max_abs
                                         << "; first at index " << at << ": cuda " << cuda[at]
                                         << ", cpu " << cpu[at];
  }
  if (rel_l2) {
    const double rel = relative_l2(cuda, cpu);
    if (!(rel <= *rel_l2)) {
      return ::testing::AssertionFailure()
             << "||cuda - cpu|| / ||cpu|| = " << rel << " > " << *rel_l2;
    }
  }
  return ::testing::AssertionSuccess();
}

inline bool all_finite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

inline GaussianPrior gaussian_prior(float mean, float std) {
  GaussianPrior prior;
  prior.mean = mean;
  prior.std = std;
  return prior;
}

inline SamplerOptions options(Backend backend, VarianceKind variance = VarianceKind::beta,
                              std::optional<ClipRange> clip = std::nullopt) {
  SamplerOptions o;
  o.backend = backend;
  o.variance = variance;
  o.clip_x0 = clip;
  return o;
}

// The whole reverse loop with host arrays (x_T drawn).
inline std::vector<float> sample_on_host(Sampler& sampler, NoisePredictor& predictor, Shape shape,
                                         NoiseKey noise, int start_step = -1, double guidance_scale = 1.0,
                                         double guidance_rescale = 0.0) {
  std::vector<float> x = ddpm::test::poisoned(static_cast<std::size_t>(shape.size()));
  SampleRequest r;
  r.x = x;
  r.shape = shape;
  r.noise = noise;
  r.start_step = start_step;
  r.guidance_scale = guidance_scale;
  r.guidance_rescale = guidance_rescale;
  sampler.sample(r, predictor);
  return x;
}

// The whole reverse loop on device arrays (x_T drawn), on `stream`.
inline std::vector<float> sample_on_device(Sampler& sampler, NoisePredictor& predictor,
                                           Shape shape, NoiseKey noise, cudaStream_t stream = nullptr,
                                           int start_step = -1, double guidance_scale = 1.0,
                                           double guidance_rescale = 0.0) {
  DeviceArray<float> x(static_cast<std::size_t>(shape.size()));
  x.poison();
  SampleRequest r;
  r.x = x.span();
  r.shape = shape;
  r.noise = noise;
  r.start_step = start_step;
  r.guidance_scale = guidance_scale;
  r.guidance_rescale = guidance_rescale;
  r.memory = Memory::device;
  r.stream = stream;
  sampler.sample(r, predictor);
  sampler.synchronize(stream);
  return x.download();
}

// A two-component mixture in `dim` dimensions, well separated but overlapping.
inline GmmSpec two_component_gmm(int dim) {
  GmmSpec spec;
  spec.weights = {0.3, 0.7};
  spec.stds = {0.25, 0.4};
  std::vector<double> a(static_cast<std::size_t>(dim)), b(static_cast<std::size_t>(dim));
  for (int i = 0; i < dim; ++i) {
    a[i] = 0.8 * std::sin(0.7 * i + 0.3);
    b[i] = -0.6 + 0.05 * (i % 7);
  }
  spec.means = {a, b};
  return spec;
}

}  // namespace ddpm::gpu_test
