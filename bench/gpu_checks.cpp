// Correctness before speed: before anything is timed, every GPU path the
// bench times is run on a small odd-sized batch (the vector loads' tails
// included) and compared with another that must agree with it.
#include <cmath>
#include <cstdio>
#include <vector>

#include "gpu_internal.h"
#include "gpu_loop_predictor.h"
#include "unfused_reverse.h"

namespace ddpm::bench {
namespace {

constexpr std::int64_t kCheckElements = 12288 + 3;  // odd: exercises the scalar tails
constexpr float kPriorMean = 0.5f;
constexpr float kPriorStd = 0.3f;

std::vector<float> download(const float* device, std::int64_t n, cudaStream_t stream) {
  std::vector<float> host(static_cast<std::size_t>(n));
  BENCH_CUDA_CHECK(cudaMemcpyAsync(host.data(), device, host.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream));
  BENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

// |got - want| <= atol + rtol |want| everywhere, else throw naming the first miss.
void expect_close(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                  double atol, double rtol) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(diff <= atol + rtol * std::fabs(static_cast<double>(want[i])))) {
      char text[256];
      std::snprintf(text, sizeof text, "GPU check failed: %s: element %zu is %.9g, expected %.9g",
                    what, i, static_cast<double>(got[i]), static_cast<double>(want[i]));
      throw Error(text);
    }
  }
}

struct Arrays {
  DeviceBuffer pool;
  std::size_t stride;
  Arrays(int count, std::int64_t n)
      : pool(aligned_bytes(static_cast<std::size_t>(n + 1) * sizeof(float)) *
             static_cast<std::size_t>(count)),
        stride(aligned_bytes(static_cast<std::size_t>(n + 1) * sizeof(float))) {}
  float* operator[](int i) const {
    return reinterpret_cast<float*>(static_cast<char*>(pool.data()) +
                                    static_cast<std::size_t>(i) * stride);
  }
};

}  // namespace

void check_gpu_paths(GpuContext& context) {
  cudaStream_t stream = context.stream.get();
  void* stream_handle = context.stream_handle();
  SamplerOptions sampler_options;
  sampler_options.backend = Backend::cuda;
  Sampler sampler(Schedule::linear(1000), sampler_options);
  const Schedule& schedule = sampler.schedule();
  GaussianPrior prior;
  prior.mean = kPriorMean;
  prior.std = kPriorStd;
  GaussianPredictor gaussian(prior);
  EagerReverse eager(5, stream);

  const std::int64_t n = kCheckElements;
  const auto count = static_cast<std::size_t>(n);
  const Shape shape{1, n};
  Arrays a(14, n);
  fill_normal(a[0], count, 1, 0.0f, 1.0f, stream);  // x
  fill_normal(a[1], count, 2, 0.0f, 1.0f, stream);  // eps
  auto in = [&](int i) { return std::span<const float>(a[i], count); };
  auto out = [&](int i) { return std::span<float>(a[i], count); };

  // 1. Forward: x_t = sqrt(ab) x0 + sqrt(1 - ab) eps_out, element by element.
  {
    ForwardRequest request;
    request.x0 = in(0);
    request.shape = shape;
    request.step = 500;
    request.noise = NoiseKey{3, 0};
    request.x_t = out(2);
    request.eps_out = out(3);
    request.memory = Memory::device;
    request.stream = stream_handle;
    sampler.forward(request);
    const auto x0 = download(a[0], n, stream), x_t = download(a[2], n, stream),
               eps = download(a[3], n, stream);
    std::vector<float> want(count);
    const double s = schedule.sqrt_alpha_bar()[500], r = schedule.sqrt_one_minus_alpha_bar()[500];
    for (std::size_t i = 0; i < count; ++i) want[i] = static_cast<float>(s * x0[i] + r * eps[i]);
    expect_close("forward x_t against sqrt(ab) x0 + sqrt(1-ab) eps_out", x_t, want, 1e-5, 1e-5);
  }

  // 2. The eager reverse step equals the engine's at t = 0 (sigma = 0: no noise).
  {
    ReverseStepRequest request;
    request.x_t = in(0);
    request.model_output = in(1);
    request.shape = shape;
    request.step = 0;
    request.noise = NoiseKey{4, 0};
    request.x_prev = out(2);
    request.memory = Memory::device;
    request.stream = stream_handle;
    sampler.reverse_step(request);
    EagerArrays arrays{a[0], a[1], a[3], a[4], a[5], a[6], a[7], a[8]};
    eager.reverse(arrays, count, eager_step_scalars(schedule, 0));
    expect_close("eager reverse step against Sampler::reverse_step at t=0",
                 download(a[3], n, stream), download(a[2], n, stream), 1e-5, 1e-5);
  }

  // 3. ... and at t = 500 they differ only by sigma (z_curand - z_engine):
  //    (out_eager - out_engine) / sigma has mean 0 and variance 2. Over n
  //    samples the mean has standard deviation sqrt(2/n) and the sample
  //    variance sqrt(8/n); both are allowed 6 of those.
  {
    ReverseStepRequest request;
    request.x_t = in(0);
    request.model_output = in(1);
    request.shape = shape;
    request.step = 500;
    request.noise = NoiseKey{55, 0};
    request.x_prev = out(2);
    request.memory = Memory::device;
    request.stream = stream_handle;
    sampler.reverse_step(request);
    const EagerStepScalars scalars = eager_step_scalars(schedule, 500);
    EagerArrays arrays{a[0], a[1], a[3], a[4], a[5], a[6], a[7], a[8]};
    eager.reverse(arrays, count, scalars);
    const auto engine = download(a[2], n, stream), eager_out = download(a[3], n, stream);
    double sum = 0.0, sum2 = 0.0;
    for (std::size_t i = 0; i < count; ++i) {
      const double d = (static_cast<double>(eager_out[i]) - engine[i]) / scalars.sigma;
      sum += d;
      sum2 += d * d;
    }
    const double mean = sum / static_cast<double>(n);
    const double var = sum2 / static_cast<double>(n) - mean * mean;
    const double nn = static_cast<double>(n);
    if (!(std::fabs(mean) <= 6.0 * std::sqrt(2.0 / nn)) ||
        !(std::fabs(var - 2.0) <= 6.0 * std::sqrt(8.0 / nn))) {
      char text[200];
      std::snprintf(text, sizeof text,
                    "GPU check failed: eager vs engine reverse step at t=500: (difference / sigma) "
                    "has mean %.4f and variance %.4f, expected 0 and 2",
                    mean, var);
      throw Error(text);
    }
  }

  // 4. Eager predictor + step equals the engine's fused sample() step at t = 0.
  {
    BENCH_CUDA_CHECK(
        cudaMemcpyAsync(a[2], a[0], count * sizeof(float), cudaMemcpyDeviceToDevice, stream));
    SampleRequest request;
    request.x = out(2);
    request.shape = shape;
    request.noise = NoiseKey{6, 0};
    request.initial_noise_given = true;
    request.start_step = 0;
    request.memory = Memory::device;
    request.stream = stream_handle;
    sampler.sample(request, gaussian);
    EagerArrays arrays{a[0], nullptr, a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]};
    eager.predict_and_reverse(arrays, count, eager_step_scalars(schedule, 0), kPriorMean,
                              kPriorStd * kPriorStd);
    expect_close("eager predictor + reverse step against fused Sampler::sample at t=0",
                 download(a[3], n, stream), download(a[2], n, stream), 1e-5, 1e-5);
  }

  // 5. The three loop variants timed later compute the same samples (same
  //    noise): fused + graph, unfused + graph, unfused without graph.
  {
    UnfusedPredictor unfused_graph(gaussian, true);
    UnfusedPredictor unfused_eager(gaussian, false);
    NoisePredictor* predictors[3] = {&gaussian, &unfused_graph, &unfused_eager};
    std::vector<float> results[3];
    for (int v = 0; v < 3; ++v) {
      BENCH_CUDA_CHECK(
          cudaMemcpyAsync(a[12], a[0], count * sizeof(float), cudaMemcpyDeviceToDevice, stream));
      SampleRequest request;
      request.x = out(12);
      request.shape = shape;
      request.noise = NoiseKey{7, 0};
      request.initial_noise_given = true;
      request.start_step = 19;
      request.memory = Memory::device;
      request.stream = stream_handle;
      sampler.sample(request, *predictors[v]);
      results[v] = download(a[12], n, stream);
    }
    expect_close("20-step loop, unfused predictor + graph against fused + graph", results[1],
                 results[0], 1e-4, 1e-4);
    expect_close("20-step loop, unfused predictor without graph against fused + graph", results[2],
                 results[0], 1e-4, 1e-4);
  }
  context.progress << "  all GPU checks passed\n" << std::flush;
}

}  // namespace ddpm::bench
