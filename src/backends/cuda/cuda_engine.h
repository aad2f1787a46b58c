#pragma once
// The CUDA backend: a detail::Engine that runs every request on one device.
//
// Tables. At construction the engine uploads its schedule's forward table and
// its plan's step records (step_tables.h), the loop's layout also to a region
// of the constant arena when one is free.
//
// Streams. A Memory::device request runs on request.stream (the legacy
// default stream when null) and returns without synchronising. A Memory::host
// request runs on request.stream or on the engine's own stream, is staged in
// and out (staging.h), and returns when the result is on the host. Requests to
// one engine are ordered: each waits for the engine's previous request (an
// event), so its workspace can be reused across streams; different engines
// never wait for each other.
//
// Sampling loop (cuda_loop.cpp). x_T is drawn (unless given), then the loop
// of reverse_loop.h: for each planned step either one kernel (the analytic
// Gaussian prior fused into the step) or predictor.predict followed by the
// step kernel (and, with dynamic thresholding, the per-row scale kernel
// first), with no host-device synchronisation. When the predictor is
// capturable the whole loop is captured on a private stream into a CUDA
// Graph and the graph is launched on the request's stream; it is captured on
// every call (recording costs about what launching costs) and the
// instantiated graph is updated in place when the topology is unchanged, so
// pointers, seeds and predictor tables are always this call's. A predictor
// that only supports host memory still works: x is copied to the host for it
// every step (synchronising).
//
// Progress. Without a progress callback nothing waits. With one, the loop
// enqueues a host function every few steps (cudaLaunchHostFunc, also
// captured) that counts ticks, and the calling thread waits for the ticks and
// calls the callback itself, so it runs on the calling thread as documented.
//
// Validation. Requests arrive validated (validate.h) except for the contents
// of device arrays: those are not scanned for NaN/Inf (that would cost a pass
// and a synchronisation), and non-finite inputs give non-finite outputs.
// Per-sample forward steps in device memory are copied to the host and
// range-checked, which synchronises that forward call.
//
// Memory. Workspace grows when a larger request comes; before growing, the
// bytes needed are compared with cudaMemGetInfo and a request that cannot fit
// is rejected with "out of device memory: need N MiB for ..., M MiB free"
// before anything is allocated.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/launch.h"
#include "device_buffer.h"
#include "core/engine.h"
#include "graph.h"
#include "core/reverse_loop.h"
#include "staging.h"
#include "step_tables.h"
#include "stream.h"

namespace ddpm::detail::cuda {

// Counts the progress ticks that the stream reaches (cudaLaunchHostFunc).
struct ProgressTicks {
  std::mutex mutex;
  std::condition_variable changed;
  int ticks = 0;
};

class CudaEngine final : public detail::Engine {
 public:
  explicit CudaEngine(EngineSetup setup);
  ~CudaEngine() override;

  Backend backend() const override { return Backend::cuda; }
  void forward(const ForwardRequest& r) override;
  void forward_one_step(const ForwardOneStepRequest& r) override;
  void reverse_step(const ReverseStepRequest& r, int position) override;
  void sample(const SampleRequest& r, NoisePredictor& predictor, int first, int last) override;
  void synchronize(void* stream) override;

 private:
  // One sampling loop, as enqueue_loop() records it.
  struct Loop {
    float* x = nullptr;
    kernels::ModelView model;  // output == null: the Gaussian prior, fused
    float* row_scale = nullptr;
    const std::int32_t* class_labels = nullptr;  // of the predictor's rows
    // Classifier-free guidance: the predictor's input of 2 x batch rows, and
    // the guidance_rescale factors (null without rescale).
    float* guided_input = nullptr;
    float guidance_rescale = 0.0f;
    // Multistep solvers: the previous step's x0_hat (the deep rules: their
    // whole history), and whether it is there at the first step (handed in
    // by an earlier piece).
    float* history = nullptr;
    bool history_given = false;
    Shape shape;
    kernels::NoiseParams noise;
    bool draw_initial = true;
    LoopRange range;
    NoisePredictor* predictor = nullptr;
    kernels::LaunchConfig config;
    int tick_every = 0;  // 0: no progress ticks
  };
  class LoopSteps;    // the loop's steps (cuda_loop.cpp)...
  class DeviceSteps;  // ...enqueued with a device predictor
  class HostPredictorSteps;  // ...with a predictor that takes host memory

  // One step's arrays (x_prev may be x_t).
  struct StepArrays {
    const float* x_t = nullptr;
    float* x_prev = nullptr;
    kernels::ModelView model;
    const float* variance_noise = nullptr;
    float* x0_out = nullptr;
    float* row_scale = nullptr;  // thresholding scratch, batch floats
    const float* history_in = nullptr;
    float* history_out = nullptr;
    float* deep_history = nullptr;  // the deep rules' history (HistoryLayout), read and shifted
  };
  // The thresholding scales (when thresholding) and the step kernel.
  void enqueue_step(const StepArrays& arrays, Shape shape, kernels::NoiseParams noise,
                    int position, kernels::StepView steps, const kernels::LaunchConfig& config,
                    cudaStream_t stream) const;

  cudaStream_t stream_for(void* requested, Memory memory) const;
  void enqueue_loop(const Loop& loop, cudaStream_t stream);
  // The fused kernel's view of a prior (slot 0: conditional, 1: unconditional).
  kernels::PriorView upload_prior(const GaussianPrior& prior, bool per_element, std::int64_t dim,
                                  int slot, cudaStream_t stream);
  // The records of plan position `position` for the loop: first-order ones
  // where a multistep step's history is missing.
  kernels::StepView loop_records(int position, bool history_valid) const;
  void wait_for_ticks(const std::function<void(int, int)>& progress,
                      const std::function<bool()>& cancelled, int total, cudaStream_t stream);

  const int device_;
  // The deep rules' records on the host: their kernel takes them by value.
  std::vector<kernels::StepRecord> host_records_;
  std::vector<kernels::DeepRecord> deep_records_;
  kernels::X0View x0_;  // mode and clip range (row scales are per request)
  Stream work_stream_;     // Memory::host requests without a stream
  Stream capture_stream_;  // graph capture only (never runs work)
  Event last_use_;         // end of this engine's last request
  DeviceStepTables tables_;

  std::mutex mutex_;  // one request at a time per engine
  Workspace workspace_{last_use_};
  std::vector<std::int32_t> host_steps_;
  std::vector<float> host_x_, host_output_;
  std::vector<std::int32_t> host_labels_;
  struct PriorCopy {  // what was last uploaded, to skip repeats
    std::vector<float> means, vars;
    DeviceBuffer<float> means_dev, vars_dev;
  };
  PriorCopy priors_[2];
  DeviceBuffer<std::int32_t> guided_labels_;
  std::vector<std::int32_t> host_guided_labels_;
  bool loop_full_ = false;
  CapturedGraph graph_;
  ProgressTicks progress_;
  std::vector<int> tick_done_;
};

}  // namespace ddpm::detail::cuda
