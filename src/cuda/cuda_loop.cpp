// The CUDA engine's sampling loop (see cuda_engine.h): staging, the fused or
// predictor-driven steps of reverse_loop.h enqueued on a stream or captured
// into a graph, progress ticks, and the fallback for host-only predictors.
#include <algorithm>
#include <chrono>
#include <span>
#include <string>

#include "check.h"
#include "cuda_engine.h"
#include "ddpm/error.h"
#include "tuning.h"

namespace ddpm::detail::cuda {
namespace {

void CUDART_CB on_progress_tick(void* data) {
  auto* progress = static_cast<ProgressTicks*>(data);
  {
    std::lock_guard lock(progress->mutex);
    ++progress->ticks;
  }
  progress->changed.notify_all();
}

void check_prior(const GaussianPrior& prior, std::int64_t dim) {
  const auto d = static_cast<std::size_t>(dim);
  if ((!prior.means.empty() && prior.means.size() != d) ||
      (!prior.stds.empty() && prior.stds.size() != d)) {
    throw Error("gaussian prior has " + std::to_string(prior.means.size()) + " means and " +
                std::to_string(prior.stds.size()) + " stds but samples have dim " +
                std::to_string(dim));
  }
}

}  // namespace

// The step of the loop, in place on the device; predictors differ.
class CudaEngine::LoopSteps : public LoopBackend {
 public:
  LoopSteps(CudaEngine& engine, const Loop& loop, cudaStream_t stream)
      : engine_(engine), loop_(loop), stream_(stream) {}
  void step(int position) override {
    StepArrays arrays;
    arrays.x_t = loop_.x;
    arrays.x_prev = loop_.x;
    arrays.model = loop_.model;
    arrays.row_scale = loop_.row_scale;
    engine_.enqueue_step(arrays, loop_.shape, loop_.noise, position, engine_.tables_.loop_view(),
                         loop_.config, stream_);
  }

 protected:
  CudaEngine& engine_;
  const Loop& loop_;
  cudaStream_t stream_;
};

// The loop's steps as stream work: what enqueue_loop records.
class CudaEngine::DeviceSteps final : public LoopSteps {
 public:
  using LoopSteps::LoopSteps;
  void predict(int position) override {
    if (loop_.model.output == nullptr) return;  // the prior is evaluated inside the step
    LoopArrays arrays;
    arrays.x = loop_.x;
    arrays.model_output = const_cast<float*>(loop_.model.output);
    arrays.class_labels = loop_.class_labels;
    arrays.memory = Memory::device;
    arrays.stream = stream_;
    loop_.predictor->predict(
        make_predictor_call(engine_, arrays, loop_.shape, loop_.noise.first_sample, position));
  }
  void steps_done(int done, int total) override {
    if (loop_.tick_every > 0 && (done % loop_.tick_every == 0 || done == total)) {
      DDPM_CUDA_CHECK(cudaLaunchHostFunc(stream_, on_progress_tick, &engine_.progress_));
    }
  }
};

// A predictor that only takes host memory: x goes to the host and the model
// output comes back every step (synchronising; correct, not fast).
class CudaEngine::HostPredictorSteps final : public LoopSteps {
 public:
  HostPredictorSteps(CudaEngine& engine, const Loop& loop, const SampleRequest& r,
                     cudaStream_t stream)
      : LoopSteps(engine, loop, stream), r_(r) {
    const auto n = static_cast<std::size_t>(loop.shape.size());
    engine.host_x_.resize(n);
    engine.host_output_.resize(n);
    if (r.class_labels.empty()) {
      labels_ = nullptr;
    } else if (r.memory == Memory::host) {
      labels_ = r.class_labels.data();
    } else {
      engine.host_labels_.resize(r.class_labels.size());
      DDPM_CUDA_CHECK(cudaMemcpyAsync(engine.host_labels_.data(), r.class_labels.data(),
                                      r.class_labels.size_bytes(), cudaMemcpyDeviceToHost, stream));
      labels_ = engine.host_labels_.data();
    }
  }
  void predict(int position) override {
    DDPM_CUDA_CHECK(cudaMemcpyAsync(engine_.host_x_.data(), loop_.x,
                                    engine_.host_x_.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                    stream_));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    LoopArrays arrays;
    arrays.x = engine_.host_x_.data();
    arrays.model_output = engine_.host_output_.data();
    arrays.class_labels = labels_;
    loop_.predictor->predict(
        make_predictor_call(engine_, arrays, loop_.shape, loop_.noise.first_sample, position));
    DDPM_CUDA_CHECK(cudaMemcpyAsync(const_cast<float*>(loop_.model.output),
                                    engine_.host_output_.data(),
                                    engine_.host_output_.size() * sizeof(float),
                                    cudaMemcpyHostToDevice, stream_));
  }
  void steps_done(int done, int total) override {
    if (r_.progress) r_.progress(done, total);
  }

 private:
  const SampleRequest& r_;
  const std::int32_t* labels_ = nullptr;
};

void CudaEngine::sample(const SampleRequest& r, NoisePredictor& predictor, int first, int last) {
  DeviceGuard guard(device_);
  std::lock_guard lock(mutex_);
  const cudaStream_t stream = stream_for(r.stream, r.memory);
  const auto n = static_cast<std::size_t>(r.shape.size());
  const auto* gaussian = dynamic_cast<const GaussianPredictor*>(&predictor);
  const bool fused = gaussian != nullptr;
  const bool device_predictor = fused || predictor.supports(Memory::device);
  if (fused) check_prior(gaussian->prior(), r.shape.dim);
  const bool threshold = x0_.mode == kernels::X0Mode::threshold;

  Staging staged(workspace_, r.memory, device_, stream,
                 {StagedArray::in_out(r.x, r.initial_noise_given, "sample buffer"),
                  StagedArray::scratch(fused ? 0 : n, "the model output"),
                  StagedArray::scratch(threshold ? static_cast<std::size_t>(r.shape.batch) : 0,
                                       "thresholding scales")},
                 {{device_predictor ? r.class_labels : std::span<const std::int32_t>(),
                   "class labels"}},
                 "sampling a " + std::to_string(r.shape.batch) + "x" +
                     std::to_string(r.shape.dim) + " batch (float32)");

  Loop loop;
  loop.x = staged[0];
  loop.model.output = staged[1];
  loop.row_scale = staged[2];
  loop.class_labels = staged.ints(0);
  loop.shape = r.shape;
  loop.noise = {r.noise.seed, r.noise.first_sample};
  loop.draw_initial = !r.initial_noise_given;
  loop.range = {first, last};
  loop.predictor = &predictor;
  loop.config = launch_config(device_);
  const int total = loop.range.count();

  if (fused) {
    loop.model.prior = upload_prior(gaussian->prior(), r.shape.dim, stream);
  } else if (device_predictor) {
    predictor.prepare(schedule(), Memory::device, r.shape, stream);
  } else {
    predictor.prepare(schedule(), Memory::host, r.shape, nullptr);
  }

  if (!device_predictor) {
    if (r.progress) r.progress(0, total);
    run_with_host_predictor(loop, r, stream);
  } else {
    const Tuning settings = tuning();
    loop.tick_every = 0;
    tick_done_.clear();
    if (r.progress || r.cancelled) {
      loop.tick_every = std::max(1, total / std::max(1, settings.progress_updates));
      for (int done = 1; done <= total; ++done) {
        if (done % loop.tick_every == 0 || done == total) tick_done_.push_back(done);
      }
      std::lock_guard tick_lock(progress_.mutex);
      progress_.ticks = 0;
    }
    if (settings.use_graphs && (fused || predictor.capturable())) {
      graph_.capture(capture_stream_.get(), [&](cudaStream_t s) { enqueue_loop(loop, s); });
      graph_.launch(stream);
    } else {
      enqueue_loop(loop, stream);
    }
    // Progress before the copy back: a copy to pageable host memory blocks
    // until it is done, which would hold every report back to the end.
    if (r.progress || r.cancelled) {
      if (r.progress) r.progress(0, total);
      wait_for_ticks(r.progress, r.cancelled, total, stream);
    }
  }
  staged.finish();
}

// Everything the loop does on the device, in order, on stream `s`; also what
// a graph capture records. No synchronisation, no allocation.
void CudaEngine::enqueue_loop(const Loop& loop, cudaStream_t s) {
  if (loop.draw_initial) {
    kernels::launch_initial_noise(loop.x, loop.shape.batch, loop.shape.dim, loop.noise,
                                  loop.config, s);
  }
  DeviceSteps steps(*this, loop, s);
  run_reverse_loop(loop.range, steps);
}

void CudaEngine::run_with_host_predictor(const Loop& loop, const SampleRequest& r,
                                         cudaStream_t stream) {
  if (loop.draw_initial) {
    kernels::launch_initial_noise(loop.x, loop.shape.batch, loop.shape.dim, loop.noise,
                                  loop.config, stream);
  }
  HostPredictorSteps steps(*this, loop, r, stream);
  run_reverse_loop(loop.range, steps, r.cancelled);
}

// The fused kernel's view of the prior; per-element tables are uploaded
// when they differ from the last ones (ordered on `stream` after the request's staging).
kernels::PriorView CudaEngine::upload_prior(const GaussianPrior& prior, std::int64_t dim,
                                            cudaStream_t stream) {
  kernels::PriorView view{prior.mean, prior.std * prior.std, nullptr, nullptr};
  if (prior.means.empty() && prior.stds.empty()) return view;
  const auto d = static_cast<std::size_t>(dim);
  std::vector<float> means(d, view.mean);
  std::vector<float> vars(d, view.var);
  for (std::size_t i = 0; i < d; ++i) {
    if (!prior.means.empty()) means[i] = prior.means[i];
    if (!prior.stds.empty()) vars[i] = prior.stds[i] * prior.stds[i];
  }
  if (means != prior_means_ || vars != prior_vars_ || prior_means_dev_.count() < d) {
    if (prior_means_dev_.count() < d) {
      last_use_.synchronize();
      prior_means_dev_.allocate(d, "the gaussian prior's means");
      prior_vars_dev_.allocate(d, "the gaussian prior's variances");
    }
    DDPM_CUDA_CHECK(cudaMemcpyAsync(prior_means_dev_.data(), means.data(), d * sizeof(float),
                                    cudaMemcpyHostToDevice, stream));
    DDPM_CUDA_CHECK(cudaMemcpyAsync(prior_vars_dev_.data(), vars.data(), d * sizeof(float),
                                    cudaMemcpyHostToDevice, stream));
    prior_means_ = std::move(means);
    prior_vars_ = std::move(vars);
  }
  view.means = prior_means_dev_.data();
  view.vars = prior_vars_dev_.data();
  return view;
}

// Calls progress(done, total) on this thread as the stream reaches the ticks.
// A cancellation cannot stop the queued loop: it is reported once the
// stream has finished it.
void CudaEngine::wait_for_ticks(const std::function<void(int, int)>& progress,
                                const std::function<bool()>& cancelled, int total,
                                cudaStream_t stream) {
  try {
    std::size_t reported = 0;
    while (reported < tick_done_.size()) {
      int ticks = 0;
      {
        std::unique_lock lock(progress_.mutex);
        progress_.changed.wait_for(lock, std::chrono::milliseconds(20), [&] {
          return static_cast<std::size_t>(progress_.ticks) > reported;
        });
        ticks = progress_.ticks;
      }
      for (; reported < static_cast<std::size_t>(ticks) && reported < tick_done_.size();
           ++reported) {
        if (progress) progress(tick_done_[reported], total);
      }
      stop_if_cancelled(cancelled);
      if (reported < tick_done_.size()) {
        // A failed kernel would never reach the next tick: surface its error.
        const cudaError_t status = cudaStreamQuery(stream);
        if (status != cudaErrorNotReady) DDPM_CUDA_CHECK(status);
      }
    }
  } catch (...) {
    cudaStreamSynchronize(stream);  // let the remaining ticks land before the next request
    throw;
  }
}

}  // namespace ddpm::detail::cuda
