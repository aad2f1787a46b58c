// The CUDA engine's construction and its single requests: forward noising,
// one forward step and one reverse step (the loop is in cuda_loop.cpp).
#include "cuda_engine.h"

#include <string>

#include "check.h"
#include "ddpm/error.h"
#include "core/loop_setup.h"
#include "core/step_plan.h"
#include "core/threshold.h"
#include "tuning.h"
#include "core/validate.h"

namespace ddpm::detail {
namespace cuda {
namespace {

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

int current_device() {
  int device = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

std::string describe(const Shape& shape) {
  return "a " + std::to_string(shape.batch) + "x" + std::to_string(shape.dim) + " batch";
}

kernels::NoiseParams noise_of(const NoiseKey& key) { return {key.seed, key.first_sample}; }

}  // namespace

CudaEngine::CudaEngine(EngineSetup setup)
    : Engine(std::move(setup)),
      device_(current_device()),
      // The loop reads full records when it forms x0_hat: to process it, or
      // (multistep solvers) to keep it as history.
      tables_(device_, schedule(), plan(),
              x0_mode(options()) != kernels::X0Mode::none || history_layout().deep() ||
                  multistep(plan(), 0, static_cast<int>(plan().size()) - 1),
              work_stream_.get()) {
  if (history_layout().deep()) {
    host_records_ = make_step_records(plan());
    for (const PlannedStep& s : plan()) deep_records_.push_back(make_deep_record(s));
  }
  x0_.mode = x0_mode(options());
  if (options().clip_x0) {
    x0_.lo = options().clip_x0->lo;
    x0_.hi = options().clip_x0->hi;
  }
}

CudaEngine::~CudaEngine() {
  // Queued work may still read this engine's buffers and constant region.
  try {
    DeviceGuard guard(device_);
    last_use_.synchronize();
  } catch (...) {
  }
}

cudaStream_t CudaEngine::stream_for(void* requested, Memory memory) const {
  if (requested != nullptr) return as_stream(requested);
  return memory == Memory::host ? work_stream_.get() : nullptr;  // null: legacy default stream
}

void CudaEngine::forward(const ForwardRequest& r) {
  DeviceGuard guard(device_);
  std::lock_guard lock(mutex_);
  const cudaStream_t stream = stream_for(r.stream, r.memory);
  if (r.memory == Memory::device && !r.steps.empty()) {
    // Range-check the device steps on the host (one synchronisation).
    host_steps_.resize(r.steps.size());
    DDPM_CUDA_CHECK(cudaMemcpyAsync(host_steps_.data(), r.steps.data(), r.steps.size_bytes(),
                                    cudaMemcpyDeviceToHost, stream));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (std::int32_t t : host_steps_) schedule().check_step(t);
  }
  Staging staged(workspace_, r.memory, device_, stream,
                 {StagedArray::input(r.x0, "x0"), StagedArray::input(r.eps, "noise"),
                  StagedArray::output(r.x_t, "x_t output"),
                  StagedArray::output(r.eps_out, "noise output"),
                  StagedArray::output(r.velocity_out, "velocity output")},
                 {{r.steps, "per-sample steps"}}, "forward noising of " + describe(r.shape));
  kernels::ForwardArgs a;
  a.x0 = staged[0];
  a.eps = staged[1];
  a.x_t = staged[2];
  a.eps_out = staged[3];
  a.velocity_out = staged[4];
  a.steps = staged.ints(0);
  a.step = r.step;
  a.batch = r.shape.batch;
  a.dim = r.shape.dim;
  a.noise = noise_of(r.noise);
  a.table = tables_.forward_table();
  kernels::launch_forward(a, launch_config(device_), stream);
  staged.finish();
}

void CudaEngine::forward_one_step(const ForwardOneStepRequest& r) {
  DeviceGuard guard(device_);
  std::lock_guard lock(mutex_);
  const cudaStream_t stream = stream_for(r.stream, r.memory);
  Staging staged(workspace_, r.memory, device_, stream,
                 {StagedArray::input(r.x_prev, "x_{t-1}"), StagedArray::input(r.eps, "noise"),
                  StagedArray::output(r.x_t, "x_t output"),
                  StagedArray::output(r.eps_out, "noise output")},
                 {}, "one forward step of " + describe(r.shape));
  kernels::ForwardOneStepArgs a;
  a.x_prev = staged[0];
  a.eps = staged[1];
  a.x_t = staged[2];
  a.eps_out = staged[3];
  a.step = r.step;
  a.batch = r.shape.batch;
  a.dim = r.shape.dim;
  a.noise = noise_of(r.noise);
  a.table = tables_.forward_table();
  kernels::launch_forward_one_step(a, launch_config(device_), stream);
  staged.finish();
}

void CudaEngine::reverse_step(const ReverseStepRequest& r, int position) {
  DeviceGuard guard(device_);
  std::lock_guard lock(mutex_);
  const cudaStream_t stream = stream_for(r.stream, r.memory);
  const bool threshold = x0_.mode == kernels::X0Mode::threshold;
  const bool deep = history_layout().deep();
  const std::size_t history_floats =
      deep ? static_cast<std::size_t>(history_layout().slots() * r.shape.size()) : 0;
  Staging staged(
      workspace_, r.memory, device_, stream,
      {StagedArray::input(r.x_t, "x_t"), StagedArray::input(r.model_output, "model output"),
       StagedArray::input(r.variance_noise, "variance noise"),
       StagedArray::output(r.x_prev, "x_prev output"),
       StagedArray::output(r.pred_original_sample, "pred_original_sample output"),
       StagedArray::scratch(threshold ? static_cast<std::size_t>(r.shape.batch) : 0,
                            "thresholding scales"),
       StagedArray::input(r.previous_x0, "previous x0"),
       // A deep rule's history, read and shifted (scratch where the step reads none).
       r.history.empty() ? StagedArray::scratch(history_floats, "the step's history")
                         : StagedArray::in_out(r.history, true, "history")},
      {}, "a reverse step of " + describe(r.shape));
  StepArrays arrays;
  arrays.x_t = staged[0];
  arrays.model.output = staged[1];
  arrays.variance_noise = staged[2];
  arrays.x_prev = staged[3];
  arrays.x0_out = staged[4];
  arrays.row_scale = staged[5];
  arrays.history_in = staged[6];
  arrays.deep_history = staged[7];
  const bool full = x0_.mode != kernels::X0Mode::none || arrays.x0_out != nullptr;
  const bool first_order =
      detail::runs_at_first_order(plan()[static_cast<std::size_t>(position)], arrays.history_in != nullptr);
  enqueue_step(arrays, r.shape, noise_of(r.noise), position,
               first_order ? tables_.first_order_view() : tables_.view(full || first_order),
               launch_config(device_), stream);
  staged.finish();
}

void CudaEngine::enqueue_step(const StepArrays& arrays, Shape shape, kernels::NoiseParams noise,
                              int position, kernels::StepView steps,
                              const kernels::LaunchConfig& config, cudaStream_t stream) const {
  const PlannedStep& step = plan()[static_cast<std::size_t>(position)];
  kernels::X0View x0 = x0_;
  // A deep rule's thresholding reads the full records whatever the caller chose.
  if (history_layout().deep()) steps = tables_.view(true);
  if (x0_.mode == kernels::X0Mode::threshold) {
    const QuantilePosition q = quantile_position(shape.dim, options().dynamic_thresholding_ratio);
    kernels::ThresholdArgs t;
    t.x_t = arrays.x_t;
    t.model = arrays.model;
    t.position = position;
    t.batch = shape.batch;
    t.dim = shape.dim;
    t.steps = steps;
    t.lower = q.lower;
    t.weight = static_cast<float>(q.weight);
    t.max_value = static_cast<float>(options().sample_max_value);
    t.row_scale = arrays.row_scale;
    kernels::launch_threshold_scales(t, stream);
    x0.row_scale = arrays.row_scale;
  }
  if (history_layout().deep()) {
    kernels::DeepStepArgs d;
    d.x_t = arrays.x_t;
    d.x_prev = arrays.x_prev;
    d.model = arrays.model;
    d.variance_noise = arrays.variance_noise;
    d.timestep = step.noise_step;
    d.noise = noise;
    d.x0_out = arrays.x0_out;
    d.history = arrays.deep_history;
    d.x0_slots = history_layout().x0_slots;
    d.last_sample = history_layout().last_sample;
    d.batch = shape.batch;
    d.dim = shape.dim;
    d.record = host_records_[static_cast<std::size_t>(position)];
    d.deep = deep_records_[static_cast<std::size_t>(position)];
    d.x0 = x0;
    kernels::launch_deep_step(d, config, stream);
    return;
  }
  kernels::ReverseArgs a;
  a.x_t = arrays.x_t;
  a.x_prev = arrays.x_prev;
  a.model = arrays.model;
  a.variance_noise = arrays.variance_noise;
  a.x0_out = arrays.x0_out;
  a.history_in = arrays.history_in;
  a.history_out = arrays.history_out;
  a.position = position;
  a.timestep = step.noise_step;
  a.batch = shape.batch;
  a.dim = shape.dim;
  a.noise = noise;
  a.steps = steps;
  a.x0 = x0;
  kernels::launch_reverse(a, config, stream);
}

void CudaEngine::synchronize(void* stream) {
  DeviceGuard guard(device_);
  if (stream != nullptr) {
    DDPM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
    return;
  }
  std::lock_guard lock(mutex_);
  DDPM_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  last_use_.synchronize();
}

}  // namespace cuda

std::unique_ptr<Engine> make_cuda_engine(EngineSetup setup) {
  std::string reason;
  if (!cuda_device_usable(&reason)) {
    throw Error("the CUDA backend was requested but is unavailable: " + reason);
  }
  return std::make_unique<cuda::CudaEngine>(std::move(setup));
}

}  // namespace ddpm::detail
