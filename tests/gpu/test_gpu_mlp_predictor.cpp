// MlpPredictor on a CUDA device: cuBLAS + the element-wise kernels against
// the CPU forward pass, graph capture, no allocation in predict(), batch
// sizes up to the prepared maximum, and the sampler's loop with the model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
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

const std::string kModel = test::source_file("models/digits.safetensors");
const std::string kFixture = test::source_file("tests/data/digits_mlp_fixture.safetensors");
constexpr std::int64_t kDim = 64;

const Schedule& schedule() {
  static const Schedule s = Schedule::linear(1000);
  return s;
}

// Rows for the tests: the fixture's rows repeated `copies` times.
struct Rows {
  std::vector<float> x;
  std::vector<std::int32_t> steps, labels;
  std::int64_t count = 0;
  explicit Rows(int copies) {
    const auto file = detail::SafetensorsFile::open(kFixture);
    const auto x1 = file.at("x_t").to_floats();
    const auto t1 = file.at("timestep").to_floats();
    const auto l1 = file.at("label").to_floats();
    for (int c = 0; c < copies; ++c) {
      x.insert(x.end(), x1.begin(), x1.end());
      for (float t : t1) steps.push_back(static_cast<std::int32_t>(t));
      for (float l : l1) labels.push_back(static_cast<std::int32_t>(l));
    }
    count = static_cast<std::int64_t>(steps.size());
  }
};

std::vector<float> predict_cpu(const Rows& rows) {
  MlpPredictor cpu(kModel);
  cpu.set_class_labels(rows.labels);
  std::vector<float> out = test::poisoned(rows.x.size());
  PredictorCall call;
  call.x_t = rows.x.data();
  call.eps = out.data();
  call.prediction_type = PredictionType::v_prediction;
  call.shape = {rows.count, kDim};
  call.steps = rows.steps.data();
  call.schedule = &schedule();
  cpu.predict(call);
  return out;
}

// One predict() of `batch` rows on `stream` with per-row steps from `steps`.
void predict_device(MlpPredictor& p, const float* x, float* out, const std::int32_t* steps,
                    std::int64_t batch, cudaStream_t stream) {
  PredictorCall call;
  call.x_t = x;
  call.eps = out;
  call.prediction_type = PredictionType::v_prediction;
  call.shape = {batch, kDim};
  call.steps = steps;
  call.schedule = &schedule();
  call.memory = Memory::device;
  call.stream = stream;
  p.predict(call);
}

class MlpOnGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    DDPM_SKIP_WITHOUT_GPU();
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  }
  void TearDown() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  // The model prepared on the device for all of `rows` with their labels,
  // and the rows' x_t and steps uploaded.
  struct Prepared {
    MlpPredictor model;
    DeviceArray<float> x, out;
    DeviceArray<std::int32_t> steps;
    Prepared(const Rows& rows, MlpPredictorOptions options, cudaStream_t stream)
        : model(kModel, options), x(rows.x), out(rows.x.size()), steps(rows.steps) {
      model.set_class_labels(rows.labels);
      model.prepare(schedule(), Memory::device, {rows.count, kDim}, stream);
      out.poison();
    }
  };
  // All rows with their own steps, waited for; the output downloaded.
  std::vector<float> run(Prepared& p, std::int64_t batch) {
    predict_device(p.model, p.x.data(), p.out.data(), p.steps.data(), batch, stream_);
    cuda_ok(cudaStreamSynchronize(stream_), "sync");
    return p.out.download();
  }

  cudaStream_t stream_ = nullptr;
};

TEST_F(MlpOnGpu, MatchesTheCpuForwardPass) {
  const Rows rows(8);
  Prepared gpu(rows, {}, stream_);
  EXPECT_TRUE(test::close_relative_to_max(run(gpu, rows.count), test::to_double(predict_cpu(rows)), 1e-5));
}

TEST_F(MlpOnGpu, EveryBatchSizeUpToThePreparedMaximum) {
  const Rows rows(8);  // 128 rows
  const std::vector<float> cpu = predict_cpu(rows);
  Prepared gpu(rows, {}, stream_);
  for (std::int64_t batch : {1, 2, 15, 16, 17, 127, 128}) {
    gpu.out.poison();
    std::vector<float> got = run(gpu, batch);
    if (batch < rows.count) {
      EXPECT_TRUE(std::isnan(got[static_cast<std::size_t>(batch * kDim)])) << "batch " << batch << " wrote past its rows";
    }
    got.resize(static_cast<std::size_t>(batch * kDim));
    const std::vector<float> want(cpu.begin(), cpu.begin() + batch * kDim);
    EXPECT_TRUE(test::close_relative_to_max(got, test::to_double(want), 1e-5)) << "batch " << batch;
  }
  std::string message;
  try {
    predict_device(gpu.model, gpu.x.data(), gpu.out.data(), gpu.steps.data(), rows.count + 1, stream_);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message, "MlpPredictor: 129 rows but prepare() was given at most 128");
}

TEST_F(MlpOnGpu, CapturedEqualsUncapturedBitForBit) {
  const Rows rows(4);
  Prepared gpu(rows, {}, stream_);
  const std::vector<float> direct = run(gpu, rows.count);
  DeviceArray<float> captured(rows.x.size());
  captured.poison();
  // Global mode: any call that is unsafe during capture (cudaMalloc, a
  // synchronisation) anywhere in the process fails the capture.
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cuda_ok(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "begin capture");
  predict_device(gpu.model, gpu.x.data(), captured.data(), gpu.steps.data(), rows.count, stream_);
  cuda_ok(cudaStreamEndCapture(stream_, &graph), "end capture");
  cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  cuda_ok(cudaGraphLaunch(exec, stream_), "launch");
  cuda_ok(cudaGraphLaunch(exec, stream_), "launch again");
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  EXPECT_TRUE(bit_identical(captured.download(), direct));
}

TEST_F(MlpOnGpu, PredictAllocatesNothing) {
  const Rows rows(4);
  MlpPredictor gpu(kModel);
  gpu.set_class_label(5);
  gpu.prepare(schedule(), Memory::device, {rows.count, kDim}, stream_);
  DeviceArray<float> x(rows.x), out(rows.x.size());
  // prepare() ran one forward pass already: from here on nothing is loaded or allocated.
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  std::size_t free_before = 0, free_after = 0, total = 0;
  cuda_ok(cudaMemGetInfo(&free_before, &total), "mem info");
  for (std::int64_t batch : {rows.count, std::int64_t{1}, std::int64_t{7}}) {
    PredictorCall call;
    call.x_t = x.data();
    call.eps = out.data();
    call.prediction_type = PredictionType::v_prediction;
  call.prediction_type = PredictionType::v_prediction;
    call.shape = {batch, kDim};
    call.step = 999;
    call.schedule = &schedule();
    call.memory = Memory::device;
    call.stream = stream_;
    gpu.predict(call);
  }
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  cuda_ok(cudaMemGetInfo(&free_after, &total), "mem info");
  EXPECT_EQ(free_before, free_after);
  // Preparing again for no more rows keeps the weights and buffers.
  gpu.prepare(schedule(), Memory::device, {rows.count / 2, kDim}, stream_);
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  cuda_ok(cudaMemGetInfo(&free_after, &total), "mem info");
  EXPECT_EQ(free_before, free_after);
}

TEST_F(MlpOnGpu, InvalidDeviceStepsGiveNanRowsNotAFault) {
  const Rows rows(1);
  Prepared gpu(rows, {}, stream_);
  std::vector<std::int32_t> bad = rows.steps;
  bad[3] = 1000;
  bad[5] = -7;
  gpu.steps.upload(bad);
  const std::vector<float> got = run(gpu, rows.count);
  for (std::int64_t r = 0; r < rows.count; ++r) {
    const bool bad_row = r == 3 || r == 5;
    EXPECT_EQ(std::isnan(got[static_cast<std::size_t>(r * kDim)]), bad_row) << "row " << r;
  }
}

TEST_F(MlpOnGpu, Tf32IsAnOptionAndStaysClose) {
  const Rows rows(8);
  Prepared gpu(rows, {.allow_tf32 = true}, stream_);
  EXPECT_TRUE(test::close_relative_to_max(run(gpu, rows.count), test::to_double(predict_cpu(rows)), 2e-2));
}

// The sampler's loop with the model as its predictor, captured into a graph
// on the device, against the CPU backend (the v output used as if it were
// eps: this checks the plumbing, not the samples).
TEST_F(MlpOnGpu, SamplerLoopMatchesTheCpuBackend) {
  const Shape shape{20, kDim};
  std::vector<std::int32_t> labels;
  for (int i = 0; i < shape.batch; ++i) labels.push_back(i % 11);
  MlpPredictor on_cpu(kModel), on_gpu(kModel);
  on_cpu.set_class_labels(labels);
  on_gpu.set_class_labels(labels);
  Sampler cpu(schedule(), gpu_test::options(Backend::cpu, VarianceKind::posterior, ClipRange{}));
  Sampler gpu(schedule(), gpu_test::options(Backend::cuda, VarianceKind::posterior, ClipRange{}));
  const NoiseKey noise{11, 0};
  const auto want = gpu_test::sample_on_host(cpu, on_cpu, shape, noise, 20);
  const auto got = gpu_test::sample_on_device(gpu, on_gpu, shape, noise, stream_, 20);
  EXPECT_TRUE(gpu_test::close_to_cpu(got, want, 1e-3));
}

// The rows of the sampler fixture at fractional times (Euler's and Karras
// sigmas' steps): 4 rows at each of 4 times, with PyTorch's output on the
// correctly rounded embedding.
struct FractionalRows {
  static constexpr std::int64_t kRowsPerTime = 4;
  std::vector<float> x, times, expected;
  std::vector<std::int32_t> labels;
  FractionalRows() {
    const auto file = detail::SafetensorsFile::open(
        test::source_file("tests/data/digits_sampler_fixture.safetensors"));
    x = file.at("frac_x_t").to_floats();
    times = file.at("frac_timestep").to_floats();
    expected = file.at("frac_output_exact_embedding").to_floats();
    for (float l : file.at("frac_label").to_floats()) labels.push_back(static_cast<std::int32_t>(l));
  }
  std::int64_t groups() const { return static_cast<std::int64_t>(times.size()) / kRowsPerTime; }
  float time(std::int64_t g) const { return times[static_cast<std::size_t>(g * kRowsPerTime)]; }
  std::size_t offset(std::int64_t g) const { return static_cast<std::size_t>(g * kRowsPerTime * kDim); }
};

// One predict() of the group's rows at its fractional time, as the engine calls it.
void predict_device_at(MlpPredictor& p, const float* x, float* out, float time, cudaStream_t stream) {
  PredictorCall call;
  call.x_t = x;
  call.eps = out;
  call.prediction_type = PredictionType::v_prediction;
  call.shape = {FractionalRows::kRowsPerTime, kDim};
  call.step = static_cast<int>(std::lround(time));
  call.timestep = time;
  call.schedule = &schedule();
  call.memory = Memory::device;
  call.stream = stream;
  p.predict(call);
}

TEST_F(MlpOnGpu, FractionalTimesMatchPyTorch) {
  const FractionalRows rows;
  DeviceArray<float> x(rows.x), out(rows.x.size());
  out.poison();
  for (std::int64_t g = 0; g < rows.groups(); ++g) {
    MlpPredictor gpu(kModel);
    gpu.set_class_labels({rows.labels.begin() + g * FractionalRows::kRowsPerTime,
                          rows.labels.begin() + (g + 1) * FractionalRows::kRowsPerTime});
    gpu.prepare(schedule(), Memory::device, {FractionalRows::kRowsPerTime, kDim}, stream_);
    predict_device_at(gpu, x.data() + rows.offset(g), out.data() + rows.offset(g), rows.time(g), stream_);
    cuda_ok(cudaStreamSynchronize(stream_), "sync");
  }
  EXPECT_TRUE(test::close_relative_to_max(out.download(), test::to_double(rows.expected), 1e-5));
}

// The fractional time's condition (embedding, time MLP, cond_proj) is
// computed on the stream from buffers of prepare(): capturable, no allocation.
TEST_F(MlpOnGpu, AFractionalTimeIsCapturedAndAllocatesNothing) {
  const FractionalRows rows;
  MlpPredictor gpu(kModel);
  gpu.set_class_label(7);
  gpu.prepare(schedule(), Memory::device, {FractionalRows::kRowsPerTime, kDim}, stream_);
  DeviceArray<float> x(rows.x), direct(rows.x.size()), captured(rows.x.size());
  direct.poison();
  captured.poison();
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  std::size_t free_before = 0, free_after = 0, total = 0;
  cuda_ok(cudaMemGetInfo(&free_before, &total), "mem info");
  predict_device_at(gpu, x.data(), direct.data(), 437.25f, stream_);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cuda_ok(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "begin capture");
  predict_device_at(gpu, x.data(), captured.data(), 437.25f, stream_);
  cuda_ok(cudaStreamEndCapture(stream_, &graph), "end capture");
  cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  cuda_ok(cudaGraphLaunch(exec, stream_), "launch");
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cuda_ok(cudaMemGetInfo(&free_after, &total), "mem info");
  EXPECT_EQ(free_before, free_after);
  const std::vector<float> got = direct.download();
  EXPECT_TRUE(bit_identical(captured.download(), got));
  // Not the table's row of step 437.
  MlpPredictor cpu(kModel);
  cpu.set_class_label(7);
  std::vector<float> at_step = test::poisoned(static_cast<std::size_t>(FractionalRows::kRowsPerTime * kDim));
  PredictorCall call;
  call.x_t = rows.x.data();
  call.eps = at_step.data();
  call.prediction_type = PredictionType::v_prediction;
  call.shape = {FractionalRows::kRowsPerTime, kDim};
  call.step = 437;
  call.schedule = &schedule();
  cpu.predict(call);
  EXPECT_FALSE(test::close_relative_to_max(got, test::to_double(at_step), 1e-4));
}

// Euler with Karras sigmas calls the model at fractional times: the whole
// guided loop on the device (captured) against the CPU backend.
TEST_F(MlpOnGpu, EulerKarrasGuidedLoopMatchesTheCpuBackend) {
  std::vector<std::int32_t> labels;
  for (int i = 0; i < 20; ++i) labels.push_back(i % 10);
  const Shape shape{static_cast<std::int64_t>(labels.size()), kDim};
  MlpPredictor on_cpu(kModel), on_gpu(kModel);
  SamplerOptions o = on_cpu.card().recommended_config().options;
  o.sampler = SamplerKind::euler;
  o.num_inference_steps = 20;
  o.use_karras_sigmas = true;
  std::vector<float> want(static_cast<std::size_t>(shape.size())), got(want.size());
  for (auto [backend, predictor, x] : {std::tuple{Backend::cpu, &on_cpu, &want},
                                       std::tuple{Backend::cuda, &on_gpu, &got}}) {
    o.backend = backend;
    Sampler sampler(schedule(), o);
    SampleRequest request;
    request.x = *x;
    request.shape = shape;
    request.noise = {5, 0};
    request.class_labels = labels;
    request.guidance_scale = 3.0;
    sampler.sample(request, *predictor);
  }
  EXPECT_TRUE(gpu_test::close_to_cpu(got, want, 1e-3));
}

}  // namespace
}  // namespace ddpm
