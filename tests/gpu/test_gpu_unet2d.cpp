// UNet2DPredictor on a CUDA device: cuDNN + cuBLAS + unet2d_kernels.cu
// against the CPU forward pass at every precision, graph capture, no
// allocation in predict(), smaller batches than prepared, and the sampler's
// guided loop with the digits U-Net on the CUDA backend against the CPU's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "ddpm/ddpm.h"
#include "gpu_test_support.h"
#include "io/safetensors.h"

namespace ddpm {
namespace {

using gpu_test::cuda_ok;
using gpu_test::DeviceArray;
using test::bit_identical;

const std::string kUNets = test::source_file("tests/data/diffusers/unet/");

const Schedule& schedule() {
  static const Schedule s = Schedule::linear(1000);
  return s;
}

// A fixture model's case 5 inputs (integer steps per row), and its labels.
struct Inputs {
  std::vector<float> x;
  std::vector<std::int32_t> steps, labels;
  Shape shape;
  explicit Inputs(const std::string& model) {
    const auto file = detail::SafetensorsFile::open(kUNets + model + "/cases.safetensors");
    const auto& sample = file.at("case_5.sample");
    x = sample.to_floats();
    shape = {sample.shape[0], sample.shape[1] * sample.shape[2] * sample.shape[3]};
    for (float t : file.at("case_5.timestep").to_floats()) steps.push_back(static_cast<std::int32_t>(t));
    if (const auto* l = file.find("case_5.class_labels")) {
      for (float v : l->to_floats()) labels.push_back(static_cast<std::int32_t>(v));
    }
  }
};

PredictorCall call_for(const float* x, float* out, const std::int32_t* steps, const std::int32_t* labels, Shape shape,
                       Memory memory, cudaStream_t stream) {
  PredictorCall call;
  call.x_t = x;
  call.model_output = out;
  call.shape = shape;
  call.steps = steps;
  call.class_labels = labels;
  call.schedule = &schedule();
  call.memory = memory;
  call.stream = stream;
  return call;
}

std::vector<float> on_cpu(const std::string& model, const Inputs& in) {
  UNet2DPredictor cpu(kUNets + model);
  std::vector<float> out = test::poisoned(in.x.size() / cpu.config().in_channels * cpu.config().out_channels);
  cpu.predict(call_for(in.x.data(), out.data(), in.steps.data(), in.labels.empty() ? nullptr : in.labels.data(),
                       in.shape, Memory::host, nullptr));
  return out;
}

std::vector<float> on_gpu(const std::string& model, const Inputs& in, Precision precision, cudaStream_t stream) {
  UNet2DPredictor gpu(kUNets + model, {.precision = precision});
  gpu.prepare(schedule(), Memory::device, in.shape, stream);
  DeviceArray<float> x(in.x), out(in.x.size());
  DeviceArray<std::int32_t> steps(in.steps);
  std::optional<DeviceArray<std::int32_t>> labels;
  if (!in.labels.empty()) labels.emplace(in.labels);
  out.poison();
  gpu.predict(call_for(x.data(), out.data(), steps.data(), labels ? labels->data() : nullptr, in.shape,
                       Memory::device, stream));
  cuda_ok(cudaStreamSynchronize(stream), "predict");
  return out.download();
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    const double d = std::abs(static_cast<double>(a[i]) - b[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst / scale;
}

class UNetOnGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    DDPM_SKIP_WITHOUT_GPU();
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  }
  void TearDown() override {
    if (stream_) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

// Every fixture model that samples (out_channels = in_channels), every precision.
TEST_F(UNetOnGpu, MatchesTheCpuForwardPass) {
  for (const char* model : {"basic", "ddpm_cifar_like", "class_scale_shift", "class_attn_groups"}) {
    const Inputs in(model);
    const std::vector<float> cpu = on_cpu(model, in);
    for (auto [precision, tolerance] : {std::pair{Precision::fp32, 1e-4}, std::pair{Precision::tf32, 2e-2},
                                        std::pair{Precision::fp16, 2e-2}, std::pair{Precision::bf16, 2e-2}}) {
      const std::vector<float> gpu = on_gpu(model, in, precision, stream_);
      EXPECT_LE(relative_error(gpu, cpu), tolerance) << model << " " << to_string(precision);
    }
  }
}

// One graph launch equals the direct call bit for bit; predict() allocates
// nothing (global capture mode fails on any allocation or synchronisation).
TEST_F(UNetOnGpu, CapturedEqualsUncapturedAndAllocatesNothing) {
  const Inputs in("class_attn_groups");
  UNet2DPredictor gpu(kUNets + "class_attn_groups");
  gpu.prepare(schedule(), Memory::device, in.shape, stream_);
  DeviceArray<float> x(in.x), direct(in.x.size() / 2 * 3), captured(direct.size());
  DeviceArray<std::int32_t> steps(in.steps), labels(in.labels);
  const PredictorCall call =
      call_for(x.data(), direct.data(), steps.data(), labels.data(), in.shape, Memory::device, stream_);
  std::size_t free_before = 0, free_after = 0, total = 0;
  cuda_ok(cudaMemGetInfo(&free_before, &total), "mem info");
  gpu.predict(call);
  cuda_ok(cudaStreamSynchronize(stream_), "direct");
  cuda_ok(cudaMemGetInfo(&free_after, &total), "mem info");
  EXPECT_EQ(free_after, free_before);

  captured.poison();
  PredictorCall into_captured = call;
  into_captured.model_output = captured.data();
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cuda_ok(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "begin capture");
  gpu.predict(into_captured);
  cuda_ok(cudaStreamEndCapture(stream_, &graph), "end capture");
  cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  cuda_ok(cudaGraphLaunch(exec, stream_), "launch");
  cuda_ok(cudaStreamSynchronize(stream_), "graph");
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  EXPECT_TRUE(bit_identical(captured.download(), direct.download()));
}

// Fewer rows than prepared, and a fractional time for the batch (Euler).
TEST_F(UNetOnGpu, SmallerBatchesAndFractionalTimes) {
  const Inputs in("basic");
  UNet2DPredictor cpu(kUNets + "basic"), gpu(kUNets + "basic");
  gpu.prepare(schedule(), Memory::device, {8, in.shape.dim}, stream_);
  DeviceArray<float> x(in.x), out(in.x.size());
  out.poison();
  PredictorCall call = call_for(x.data(), out.data(), nullptr, nullptr, in.shape, Memory::device, stream_);
  call.step = 18;
  call.timestep = 17.5f;
  gpu.predict(call);
  cuda_ok(cudaStreamSynchronize(stream_), "predict");
  std::vector<float> expected(in.x.size());
  PredictorCall host = call_for(in.x.data(), expected.data(), nullptr, nullptr, in.shape, Memory::host, nullptr);
  host.step = 18;
  host.timestep = 17.5f;
  cpu.predict(host);
  EXPECT_LE(relative_error(out.download(), expected), 1e-4);
}

// The digits U-Net's guided DDIM loop on the CUDA backend ends where the CPU's does.
TEST_F(UNetOnGpu, GuidedLoopMatchesTheCpuBackend) {
  const std::string folder = test::source_file("models/digits-unet");
  std::vector<float> results[2];
  for (int backend = 0; backend < 2; ++backend) {
    UNet2DPredictor model(folder, {.threads = 2});
    SchedulerConfig config = model.model_card().recommended_config();
    switch_sampler(config.options, SamplerKind::ddim);
    config.options.num_inference_steps = 10;
    config.options.backend = backend == 0 ? Backend::cpu : Backend::cuda;
    Sampler sampler(Schedule::from_spec(config.schedule), config.options);
    const std::vector<std::int32_t> labels = {0, 3, 7, 9};
    std::vector<float> x(4 * 256);
    SampleRequest request;
    request.x = x;
    request.shape = {4, 256};
    request.noise = {5, 0};
    request.class_labels = labels;
    request.guidance_scale = 2.0;
    sampler.sample(request, model);
    results[backend] = x;
  }
  EXPECT_LE(relative_error(results[1], results[0]), 1e-3);
}

}  // namespace
}  // namespace ddpm
