// The CUDA engine's sampling loop (see cuda_engine.h): staging, the fused or
// predictor-driven steps of reverse_loop.h enqueued on a stream or captured
// into a graph, progress ticks, and the fallback for host-only predictors.
#include <algorithm>
#include <chrono>
#include <span>
#include <string>

#include "check.h"
#include "cuda_engine.h"
#include "core/guidance.h"
#include "core/loop_setup.h"
#include "core/step_plan.h"
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

kernels::StepView CudaEngine::loop_records(int position, bool history_valid) const {
  if (detail::runs_at_first_order(plan()[static_cast<std::size_t>(position)], history_valid)) {
    return tables_.first_order_view();
  }
  return tables_.loop_view();
}

// The step of the loop, in place on the device; predictors differ.
class CudaEngine::LoopSteps : public LoopBackend {
 public:
  LoopSteps(CudaEngine& engine, const Loop& loop, cudaStream_t stream)
      : engine_(engine), loop_(loop), stream_(stream), history_valid_(loop.history_given) {}
  void step(int position) override {
    StepArrays arrays;
    arrays.x_t = loop_.x;
    arrays.x_prev = loop_.x;
    arrays.model = loop_.model;
    arrays.row_scale = loop_.row_scale;
    arrays.history_in = loop_.history;
    arrays.history_out = loop_.history;
    arrays.deep_history = loop_.history;
    engine_.enqueue_step(arrays, loop_.shape, loop_.noise, position,
                         engine_.loop_records(position, history_valid_), loop_.config, stream_);
    history_valid_ = loop_.history != nullptr;
  }

 protected:
  // After the model output is in place: guidance_rescale's per-row factors.
  void guidance_factors() {
    if (loop_.model.row_factor == nullptr) return;
    kernels::GuidanceFactorArgs a;
    a.output = loop_.model.output;
    a.batch = loop_.shape.batch;
    a.dim = loop_.shape.dim;
    a.guidance_scale = loop_.model.guidance_scale;
    a.rescale = loop_.guidance_rescale;
    a.row_factor = const_cast<float*>(loop_.model.row_factor);
    kernels::launch_guidance_factors(a, stream_);
  }

  CudaEngine& engine_;
  const Loop& loop_;
  cudaStream_t stream_;
  bool history_valid_;
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
    Shape shape = loop_.shape;
    if (loop_.model.guided) {
      // The conditional and the unconditional rows see the same x_t.
      const std::size_t bytes = static_cast<std::size_t>(shape.size()) * sizeof(float);
      DDPM_CUDA_CHECK(cudaMemcpyAsync(loop_.guided_input, loop_.x, bytes, cudaMemcpyDeviceToDevice, stream_));
      DDPM_CUDA_CHECK(cudaMemcpyAsync(loop_.guided_input + shape.size(), loop_.x, bytes,
                                      cudaMemcpyDeviceToDevice, stream_));
      arrays.x = loop_.guided_input;
      shape.batch *= 2;
    }
    loop_.predictor->predict(
        make_predictor_call(engine_, arrays, shape, loop_.shape.batch, loop_.noise.first_sample,
                            position));
    guidance_factors();
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
                     const std::vector<std::int32_t>& labels, cudaStream_t stream)
      : LoopSteps(engine, loop, stream), r_(r), labels_(labels) {
    const auto rows = static_cast<std::size_t>(loop.shape.size()) * (loop.model.guided ? 2 : 1);
    engine.host_x_.resize(rows);
    engine.host_output_.resize(rows);
  }
  void predict(int position) override {
    const auto n = static_cast<std::size_t>(loop_.shape.size());
    DDPM_CUDA_CHECK(cudaMemcpyAsync(engine_.host_x_.data(), loop_.x, n * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream_));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    Shape shape = loop_.shape;
    if (loop_.model.guided) {
      std::copy(engine_.host_x_.begin(), engine_.host_x_.begin() + static_cast<std::ptrdiff_t>(n),
                engine_.host_x_.begin() + static_cast<std::ptrdiff_t>(n));
      shape.batch *= 2;
    }
    LoopArrays arrays;
    arrays.x = engine_.host_x_.data();
    arrays.model_output = engine_.host_output_.data();
    arrays.class_labels = labels_.empty() ? nullptr : labels_.data();
    loop_.predictor->predict(make_predictor_call(engine_, arrays, shape, loop_.shape.batch,
                                                 loop_.noise.first_sample, position));
    DDPM_CUDA_CHECK(cudaMemcpyAsync(const_cast<float*>(loop_.model.output), engine_.host_output_.data(),
                                    engine_.host_output_.size() * sizeof(float), cudaMemcpyHostToDevice,
                                    stream_));
    guidance_factors();
  }
  void steps_done(int done, int total) override {
    if (r_.progress) r_.progress(done, total);
  }

 private:
  const SampleRequest& r_;
  const std::vector<std::int32_t>& labels_;
};

void CudaEngine::sample(const SampleRequest& r, NoisePredictor& predictor, int first, int last) {
  DeviceGuard guard(device_);
  std::lock_guard lock(mutex_);
  const cudaStream_t stream = stream_for(r.stream, r.memory);
  const auto n = static_cast<std::size_t>(r.shape.size());
  const auto batch = static_cast<std::size_t>(r.shape.batch);
  // The fused path, guidance and the history, decided as on the CPU.
  const detail::LoopSetup setup = detail::loop_setup(*this, r, predictor, first, last);
  const bool guided = setup.guided;
  const GaussianPredictor* gaussian = setup.fused_prior;
  const bool fused = gaussian != nullptr;
  const bool device_predictor = fused || predictor.supports(Memory::device);
  if (const auto* prior = dynamic_cast<const GaussianPredictor*>(&predictor)) {
    check_prior(prior->prior(), r.shape.dim);
    if (prior->unconditional_prior()) check_prior(*prior->unconditional_prior(), r.shape.dim);
  }
  const bool threshold = x0_.mode == kernels::X0Mode::threshold;
  const bool multistep_loop = setup.multistep;
  const bool own_history = setup.own_history;
  const std::size_t history_floats = static_cast<std::size_t>(setup.history_floats);

  // The predictor's labels: the request's, or with guidance the
  // conditional rows' and then the unconditional label (built on the host).
  std::vector<std::int32_t> conditional;
  if (guided && !fused) {
    conditional.resize(r.class_labels.size());
    if (!r.class_labels.empty()) {
      DDPM_CUDA_CHECK(cudaMemcpy(conditional.data(), r.class_labels.data(), r.class_labels.size_bytes(),
                                 r.memory == Memory::host ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost));
    }
    host_guided_labels_ = guided_labels(conditional, r.shape.batch, predictor);
  }
  const bool staged_labels = device_predictor && !guided;

  Staging staged(workspace_, r.memory, device_, stream,
                 {StagedArray::in_out(r.x, r.initial_noise_given, "sample buffer"),
                  StagedArray::scratch(fused ? 0 : (guided ? 2 * n : n), "the model output"),
                  StagedArray::scratch(threshold ? batch : 0, "thresholding scales"),
                  StagedArray::scratch(guided && !fused && device_predictor ? 2 * n : 0,
                                       "the guided predictor's input"),
                  StagedArray::scratch(guided && r.guidance_rescale != 0.0 ? batch : 0,
                                       "guidance rescale factors"),
                  // A rule without history leaves the request's history as it was.
                  !multistep_loop ? StagedArray::scratch(0, "the multistep history")
                  : own_history   ? StagedArray::scratch(history_floats, "the multistep history")
                                  : StagedArray::in_out(r.history, r.history_given, "history")},
                 {{staged_labels ? r.class_labels : std::span<const std::int32_t>(), "class labels"}},
                 "sampling a " + std::to_string(r.shape.batch) + "x" +
                     std::to_string(r.shape.dim) + " batch (float32)");

  Loop loop;
  loop.x = staged[0];
  loop.model.output = staged[1];
  loop.row_scale = staged[2];
  loop.guided_input = staged[3];
  loop.model.row_factor = staged[4];
  loop.history = multistep_loop ? staged[5] : nullptr;
  loop.history_given = r.history_given && !r.history.empty();
  loop.class_labels = staged.ints(0);
  loop.shape = r.shape;
  loop.noise = {r.noise.seed, r.noise.first_sample};
  loop.draw_initial = !r.initial_noise_given;
  loop.range = {first, last};
  loop.predictor = &predictor;
  loop.config = launch_config(device_);
  loop.guidance_rescale = static_cast<float>(r.guidance_rescale);
  loop.model.guided = guided;
  loop.model.guidance_scale = static_cast<float>(r.guidance_scale);
  loop.model.unconditional_offset = r.shape.size();
  const int total = loop.range.count();

  if (guided && !fused && device_predictor) {
    if (guided_labels_.count() < host_guided_labels_.size()) {
      last_use_.synchronize();
      guided_labels_.allocate(host_guided_labels_.size(), "the guided predictor's labels");
    }
    DDPM_CUDA_CHECK(cudaMemcpyAsync(guided_labels_.data(), host_guided_labels_.data(),
                                    host_guided_labels_.size() * sizeof(std::int32_t),
                                    cudaMemcpyHostToDevice, stream));
    loop.class_labels = guided_labels_.data();
  }
  const Shape predictor_shape{guided ? 2 * r.shape.batch : r.shape.batch, r.shape.dim};
  if (fused) {
    const GaussianPrior& prior = gaussian->prior();
    const auto& unconditional = gaussian->unconditional_prior();
    const bool with_unconditional = guided && unconditional.has_value();
    const bool per_element = !prior.means.empty() || !prior.stds.empty() ||
                             (with_unconditional && (!unconditional->means.empty() || !unconditional->stds.empty()));
    loop.model.output = nullptr;
    loop.model.prior = upload_prior(prior, per_element, r.shape.dim, 0, stream);
    if (with_unconditional) {
      loop.model.unconditional_prior = upload_prior(*unconditional, per_element, r.shape.dim, 1, stream);
    }
  } else if (device_predictor) {
    predictor.prepare(schedule(), Memory::device, predictor_shape, stream);
  } else {
    predictor.prepare(schedule(), Memory::host, predictor_shape, nullptr);
  }

  if (!device_predictor) {
    if (r.progress) r.progress(0, total);
    std::vector<std::int32_t> labels = guided ? host_guided_labels_ : std::vector<std::int32_t>();
    if (!guided && !r.class_labels.empty()) {
      labels.resize(r.class_labels.size());
      DDPM_CUDA_CHECK(cudaMemcpy(labels.data(), r.class_labels.data(), r.class_labels.size_bytes(),
                                 r.memory == Memory::host ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost));
    }
    if (loop.draw_initial) {
      kernels::launch_initial_noise(loop.x, loop.shape.batch, loop.shape.dim, loop.noise,
                                    static_cast<float>(initial_noise_scale()), loop.config, stream);
    }
    HostPredictorSteps steps(*this, loop, r, labels, stream);
    run_reverse_loop(loop.range, steps, r.cancelled);
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
                                  static_cast<float>(initial_noise_scale()), loop.config, s);
  }
  DeviceSteps steps(*this, loop, s);
  run_reverse_loop(loop.range, steps);
}

// The fused kernel's view of a prior; per-element tables are uploaded when
// they differ from the last ones in `slot` (ordered on `stream` after the
// request's staging).
kernels::PriorView CudaEngine::upload_prior(const GaussianPrior& prior, bool per_element,
                                            std::int64_t dim, int slot, cudaStream_t stream) {
  kernels::PriorView view{prior.mean, prior.std * prior.std, nullptr, nullptr};
  if (!per_element) return view;
  PriorCopy& copy = priors_[slot];
  const auto d = static_cast<std::size_t>(dim);
  std::vector<float> means(d, view.mean);
  std::vector<float> vars(d, view.var);
  for (std::size_t i = 0; i < d; ++i) {
    if (!prior.means.empty()) means[i] = prior.means[i];
    if (!prior.stds.empty()) vars[i] = prior.stds[i] * prior.stds[i];
  }
  if (means != copy.means || vars != copy.vars || copy.means_dev.count() < d) {
    if (copy.means_dev.count() < d) {
      last_use_.synchronize();
      copy.means_dev.allocate(d, "the gaussian prior's means");
      copy.vars_dev.allocate(d, "the gaussian prior's variances");
    }
    DDPM_CUDA_CHECK(cudaMemcpyAsync(copy.means_dev.data(), means.data(), d * sizeof(float),
                                    cudaMemcpyHostToDevice, stream));
    DDPM_CUDA_CHECK(cudaMemcpyAsync(copy.vars_dev.data(), vars.data(), d * sizeof(float),
                                    cudaMemcpyHostToDevice, stream));
    copy.means = std::move(means);
    copy.vars = std::move(vars);
  }
  view.means = copy.means_dev.data();
  view.vars = copy.vars_dev.data();
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
