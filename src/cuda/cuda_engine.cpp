// The CUDA backend: a Sampler::Engine that runs every request on one device.
//
// Schedule. At construction the engine builds the float per-step table
// (step_table.h), packs the compact records the kernels read
// (kernels/step_records.cuh), uploads both to global memory and, when the
// constant arena has room, the records to a region of it
// (src/cuda/constant_arena.h). Kernels get a ScheduleView naming either.
//
// Streams. A Memory::device request runs on request.stream (the legacy
// default stream when null) and returns without synchronising. A Memory::host
// request runs on request.stream or on the engine's own stream, is copied in
// and out, and returns when the result is on the host. Requests to one engine
// are ordered: each waits for the engine's previous request (an event), so
// its buffers can be reused across streams; different engines never wait for
// each other.
//
// Sampling loop. x_T is drawn (unless given), then for t = start ... end either
// one fused kernel (GaussianPredictor: eps and the reverse step in one pass)
// or predictor.predict followed by the reverse kernel, with no host-device
// synchronisation. When the predictor is capturable the whole loop is
// captured on a private stream into a CUDA Graph and the graph is launched on
// the request's stream. The loop is captured on every call (recording costs
// about what launching costs) and the instantiated graph is updated in place
// when the topology is unchanged (cudaGraphExecUpdate: same shape, steps
// and predictor work), so pointers, seeds and predictor tables that changed
// since the last call are always those of this call; instantiation happens
// only when the topology changes. A predictor that only supports host memory
// still works: x is copied to the host for it every step (synchronising).
//
// Progress. Without a progress callback nothing waits. With one, the loop
// enqueues a host function every few steps (cudaLaunchHostFunc, also
// captured) that counts ticks, and the calling thread waits for the ticks and
// calls the callback itself, so it runs on the calling thread as documented.
//
// Validation. Requests arrive validated (validate.h) except for the contents
// of device arrays: those are not scanned for NaN/Inf (that would cost a pass
// and a synchronisation), and non-finite inputs give non-finite outputs.
// Device pointers are checked to be device memory (cudaPointerGetAttributes)
// and outputs must not partly overlap inputs (exact aliasing, i.e. in place,
// is fine). Per-sample forward steps in device memory are copied to the host
// and range-checked, which synchronises that forward call.
//
// Memory. Buffers are allocated once and grow when a larger request comes;
// before growing, the bytes needed are compared with cudaMemGetInfo and a
// request that cannot fit is rejected with "out of device memory: need N MiB
// for ..., M MiB free" before anything is allocated.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "../../kernels/launch.h"
#include "../../kernels/step_records.cuh"
#include "check.h"
#include "constant_arena.h"
#include "ddpm/error.h"
#include "device_buffer.h"
#include "engine.h"
#include "graph.h"
#include "step_table.h"
#include "stream.h"
#include "tuning.h"
#include "validate.h"

namespace ddpm::detail {
namespace {

using cuda::DeviceBuffer;

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

std::string describe(const Shape& shape) {
  return "a " + std::to_string(shape.batch) + "x" + std::to_string(shape.dim) + " batch";
}

// A Memory::device request must bring device memory (or memory the device can
// address); anything else would fault inside a kernel.
void check_device_pointer(const void* p, int device, const char* what) {
  if (p == nullptr) return;
  cudaPointerAttributes attributes{};
  DDPM_CUDA_CHECK(cudaPointerGetAttributes(&attributes, p));
  switch (attributes.type) {
    case cudaMemoryTypeDevice:
      if (attributes.device != device) {
        throw Error(std::string(what) + " is on CUDA device " + std::to_string(attributes.device) +
                    " but the sampler runs on device " + std::to_string(device));
      }
      return;
    case cudaMemoryTypeManaged:
      return;
    case cudaMemoryTypeHost:
      if (attributes.devicePointer == p) return;  // pinned and mapped at the same address
      break;
    default:
      break;
  }
  throw Error(std::string(what) +
              " is not CUDA device memory (a Memory::device request needs device pointers)");
}

// Outputs may be the very same array as an input (in place) but must not
// overlap it partly: a kernel thread reads and writes only its own elements.
void check_overlap(const void* out, const void* in, std::size_t count, const char* out_name,
                   const char* in_name) {
  if (out == nullptr || in == nullptr || out == in) return;
  const auto a = reinterpret_cast<std::uintptr_t>(out);
  const auto b = reinterpret_cast<std::uintptr_t>(in);
  const std::uintptr_t bytes = count * sizeof(float);
  if (a < b + bytes && b < a + bytes) {
    throw Error(std::string(out_name) + " partly overlaps " + in_name +
                " (they must be the same array or disjoint)");
  }
}

template <typename T>
void copy_to_device(T* dst, std::span<const T> src, cudaStream_t stream) {
  DDPM_CUDA_CHECK(cudaMemcpyAsync(dst, src.data(), src.size_bytes(), cudaMemcpyHostToDevice, stream));
}

template <typename T>
void copy_to_host(std::span<T> dst, const T* src, cudaStream_t stream) {
  DDPM_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src, dst.size_bytes(), cudaMemcpyDeviceToHost, stream));
}

// Counts the progress ticks that the stream reaches (cudaLaunchHostFunc).
struct ProgressTicks {
  std::mutex mutex;
  std::condition_variable changed;
  int ticks = 0;
};

void CUDART_CB on_progress_tick(void* data) {
  auto* progress = static_cast<ProgressTicks*>(data);
  {
    std::lock_guard lock(progress->mutex);
    ++progress->ticks;
  }
  progress->changed.notify_all();
}

class CudaEngine final : public Sampler::Engine {
 public:
  CudaEngine(const Schedule& schedule, const SamplerOptions& options)
      : Engine(schedule, options), device_(current_device()) {
    clip_ = make_clip_settings(options.clip_x0);
    const std::vector<kernels::StepCoefficients> table = make_step_table(schedule, options.variance);
    const int width = kernels::record_width(clip_.enabled);
    std::vector<float> records(table.size() * width);
    for (std::size_t t = 0; t < table.size(); ++t) {
      kernels::pack_step_record(table[t], clip_.enabled, records.data() + t * width);
    }
    const cudaStream_t stream = work_stream_.get();
    records_.allocate(records.size(), "the schedule's step records");
    table_.allocate(table.size(), "the schedule's step table");
    copy_to_device(records_.data(), std::span<const float>(records), stream);
    copy_to_device(table_.data(), std::span<const kernels::StepCoefficients>(table), stream);
    if (cuda::tuning().use_constant_schedule) {
      region_ = cuda::ConstantRegion::acquire(device_, static_cast<int>(records.size()));
      if (region_.valid()) {
        kernels::upload_constant_records(region_.offset(), records.data(),
                                         static_cast<int>(records.size()), stream);
      }
    }
    // Uploaded before any request: later launches on any stream see it.
    work_stream_.synchronize();
    view_.constant_offset = region_.valid() ? region_.offset() : -1;
    view_.records = records_.data();
    view_.table = table_.data();
    view_.width = width;
    view_.steps = schedule.steps();
  }

  ~CudaEngine() override {
    // Queued work may still read this engine's buffers and constant region.
    try {
      cuda::DeviceGuard guard(device_);
      last_use_.synchronize();
    } catch (...) {
    }
  }

  Backend backend() const override { return Backend::cuda; }

  void forward(const ForwardRequest& r) override {
    cuda::DeviceGuard guard(device_);
    std::lock_guard lock(mutex_);
    const cudaStream_t stream = stream_for(r.stream, r.memory);
    const auto n = static_cast<std::size_t>(r.shape.size());
    const auto config = cuda::launch_config(device_);
    kernels::ForwardArgs a;
    a.step = r.step;
    a.batch = r.shape.batch;
    a.dim = r.shape.dim;
    a.noise = {r.noise.seed, r.noise.first_sample};
    a.schedule = view_;
    if (r.memory == Memory::host) {
      reserve({{&ws_x_, n},
               {&ws_eps_, r.eps.empty() ? 0 : n},
               {&ws_a_, n},
               {&ws_b_, r.eps_out.empty() ? 0 : n},
               {&ws_c_, r.velocity_out.empty() ? 0 : n}},
              r.steps.size(), "forward noising of " + describe(r.shape));
      Use use(last_use_, stream);
      copy_to_device(ws_x_.data(), r.x0, stream);
      a.x0 = ws_x_.data();
      if (!r.eps.empty()) {
        copy_to_device(ws_eps_.data(), r.eps, stream);
        a.eps = ws_eps_.data();
      }
      if (!r.steps.empty()) {
        copy_to_device(ws_steps_.data(), r.steps, stream);
        a.steps = ws_steps_.data();
      }
      a.x_t = ws_a_.data();
      if (!r.eps_out.empty()) a.eps_out = ws_b_.data();
      if (!r.velocity_out.empty()) a.velocity_out = ws_c_.data();
      kernels::launch_forward(a, config, stream);
      copy_to_host(r.x_t, a.x_t, stream);
      if (a.eps_out) copy_to_host(r.eps_out, a.eps_out, stream);
      if (a.velocity_out) copy_to_host(r.velocity_out, a.velocity_out, stream);
      use.finish();
      DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
      return;
    }
    a.x0 = r.x0.data();
    a.eps = r.eps.empty() ? nullptr : r.eps.data();
    a.steps = r.steps.empty() ? nullptr : r.steps.data();
    a.x_t = r.x_t.data();
    a.eps_out = r.eps_out.empty() ? nullptr : r.eps_out.data();
    a.velocity_out = r.velocity_out.empty() ? nullptr : r.velocity_out.data();
    check_device_pointer(a.x0, device_, "x0");
    check_device_pointer(a.eps, device_, "noise");
    check_device_pointer(a.steps, device_, "per-sample steps");
    check_device_pointer(a.x_t, device_, "x_t output");
    check_device_pointer(a.eps_out, device_, "noise output");
    check_device_pointer(a.velocity_out, device_, "velocity output");
    for (const auto& [out, out_name] : {std::pair<const float*, const char*>{a.x_t, "x_t output"},
                                        {a.eps_out, "noise output"},
                                        {a.velocity_out, "velocity output"}}) {
      check_overlap(out, a.x0, n, out_name, "x0");
      check_overlap(out, a.eps, n, out_name, "noise");
    }
    check_disjoint({a.x_t, a.eps_out, a.velocity_out}, n);
    if (a.steps != nullptr) {
      // Range-check the device steps on the host (one synchronisation).
      host_steps_.resize(r.steps.size());
      copy_to_host(std::span<std::int32_t>(host_steps_), a.steps, stream);
      DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
      for (std::int32_t t : host_steps_) schedule().check_step(t);
    }
    Use use(last_use_, stream);
    kernels::launch_forward(a, config, stream);
    use.finish();
  }

  void forward_one_step(const ForwardOneStepRequest& r) override {
    cuda::DeviceGuard guard(device_);
    std::lock_guard lock(mutex_);
    const cudaStream_t stream = stream_for(r.stream, r.memory);
    const auto n = static_cast<std::size_t>(r.shape.size());
    kernels::ForwardOneStepArgs a;
    a.step = r.step;
    a.batch = r.shape.batch;
    a.dim = r.shape.dim;
    a.noise = {r.noise.seed, r.noise.first_sample};
    a.schedule = view_;
    if (r.memory == Memory::host) {
      reserve({{&ws_x_, n}, {&ws_eps_, r.eps.empty() ? 0 : n}, {&ws_a_, n}}, 0,
              "one forward step of " + describe(r.shape));
      Use use(last_use_, stream);
      copy_to_device(ws_x_.data(), r.x_prev, stream);
      a.x_prev = ws_x_.data();
      if (!r.eps.empty()) {
        copy_to_device(ws_eps_.data(), r.eps, stream);
        a.eps = ws_eps_.data();
      }
      a.x_t = ws_a_.data();
      kernels::launch_forward_one_step(a, cuda::launch_config(device_), stream);
      copy_to_host(r.x_t, a.x_t, stream);
      use.finish();
      DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
      return;
    }
    a.x_prev = r.x_prev.data();
    a.eps = r.eps.empty() ? nullptr : r.eps.data();
    a.x_t = r.x_t.data();
    check_device_pointer(a.x_prev, device_, "x_{t-1}");
    check_device_pointer(a.eps, device_, "noise");
    check_device_pointer(a.x_t, device_, "x_t output");
    check_overlap(a.x_t, a.x_prev, n, "x_t output", "x_{t-1}");
    check_overlap(a.x_t, a.eps, n, "x_t output", "noise");
    Use use(last_use_, stream);
    kernels::launch_forward_one_step(a, cuda::launch_config(device_), stream);
    use.finish();
  }

  void reverse_step(const ReverseStepRequest& r) override {
    cuda::DeviceGuard guard(device_);
    std::lock_guard lock(mutex_);
    const cudaStream_t stream = stream_for(r.stream, r.memory);
    const auto n = static_cast<std::size_t>(r.shape.size());
    kernels::ReverseArgs a;
    a.step = r.step;
    a.batch = r.shape.batch;
    a.dim = r.shape.dim;
    a.noise = {r.noise.seed, r.noise.first_sample};
    a.schedule = view_;
    a.clip = clip_;
    if (r.memory == Memory::host) {
      reserve({{&ws_x_, n}, {&ws_eps_, n}}, 0, "a reverse step of " + describe(r.shape));
      Use use(last_use_, stream);
      copy_to_device(ws_x_.data(), r.x_t, stream);
      copy_to_device(ws_eps_.data(), r.eps, stream);
      a.x_t = ws_x_.data();
      a.eps = ws_eps_.data();
      a.x_prev = ws_x_.data();  // in place
      kernels::launch_reverse(a, cuda::launch_config(device_), stream);
      copy_to_host(r.x_prev, a.x_prev, stream);
      use.finish();
      DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
      return;
    }
    a.x_t = r.x_t.data();
    a.eps = r.eps.data();
    a.x_prev = r.x_prev.data();
    check_device_pointer(a.x_t, device_, "x_t");
    check_device_pointer(a.eps, device_, "predicted noise");
    check_device_pointer(a.x_prev, device_, "x_{t-1} output");
    check_overlap(a.x_prev, a.x_t, n, "x_{t-1} output", "x_t");
    check_overlap(a.x_prev, a.eps, n, "x_{t-1} output", "predicted noise");
    Use use(last_use_, stream);
    kernels::launch_reverse(a, cuda::launch_config(device_), stream);
    use.finish();
  }

  void sample(const SampleRequest& r, NoisePredictor& predictor) override {
    cuda::DeviceGuard guard(device_);
    std::lock_guard lock(mutex_);
    const cudaStream_t stream = stream_for(r.stream, r.memory);
    const auto n = static_cast<std::size_t>(r.shape.size());
    const bool host_io = r.memory == Memory::host;
    const GaussianPrior* prior = predictor.fusable_gaussian_prior();
    const bool fused = prior != nullptr;
    const bool device_predictor = fused || predictor.supports(Memory::device);
    if (fused) check_prior(*prior, r.shape.dim);
    if (!host_io) check_device_pointer(r.x.data(), device_, "sample buffer");

    std::string needs = host_io ? "x_t" : "";
    if (!fused) needs += needs.empty() ? "predicted noise" : " and predicted noise";
    reserve({{&ws_x_, host_io ? n : 0}, {&ws_eps_, fused ? 0 : n}}, 0,
            "sampling " + describe(r.shape) + " (" + needs + ", float32)");

    Loop loop;
    loop.x = host_io ? ws_x_.data() : r.x.data();
    loop.eps = fused ? nullptr : ws_eps_.data();
    loop.shape = r.shape;
    loop.noise = {r.noise.seed, r.noise.first_sample};
    loop.draw_initial = !r.initial_noise_given;
    loop.start = resolve_start_step(r, schedule());
    loop.end = r.end_step;
    loop.predictor = &predictor;
    loop.config = cuda::launch_config(device_);
    const int total = loop.start - loop.end + 1;

    Use use(last_use_, stream);
    if (host_io && r.initial_noise_given) {
      copy_to_device(loop.x, std::span<const float>(r.x.data(), r.x.size()), stream);
    }
    if (fused) {
      loop.prior = upload_prior(*prior, r.shape.dim, stream);
    } else if (device_predictor) {
      predictor.prepare(schedule(), Memory::device, r.shape, stream);
    } else {
      predictor.prepare(schedule(), Memory::host, r.shape, nullptr);
    }

    if (!device_predictor) {
      run_with_host_predictor(loop, stream, r.progress);
    } else {
      const cuda::Tuning settings = cuda::tuning();
      loop.tick_every = 0;
      tick_done_.clear();
      if (r.progress) {
        loop.tick_every = std::max(1, total / std::max(1, settings.progress_updates));
        for (int done = 1; done <= total; ++done) {
          if (done % loop.tick_every == 0 || done == total) tick_done_.push_back(done);
        }
        std::lock_guard tick_lock(progress_.mutex);
        progress_.ticks = 0;
      }
      if (settings.use_graphs && (fused || predictor.capturable())) {
        graph_.capture(capture_stream_.get(), [&](cudaStream_t s) { enqueue(loop, s); });
        graph_.launch(stream);
      } else {
        enqueue(loop, stream);
      }
    }
    // Progress before the copy back: a copy to pageable host memory blocks
    // until it is done, which would hold every report back to the end.
    if (device_predictor && r.progress) {
      r.progress(0, total);
      wait_for_ticks(r.progress, total, stream);
    }
    if (host_io) copy_to_host(std::span<float>(r.x.data(), r.x.size()), loop.x, stream);
    use.finish();
    if (host_io) DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  void synchronize(void* stream) override {
    cuda::DeviceGuard guard(device_);
    if (stream != nullptr) {
      DDPM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
      return;
    }
    std::lock_guard lock(mutex_);
    DDPM_CUDA_CHECK(cudaStreamSynchronize(nullptr));
    last_use_.synchronize();
  }

 private:
  // One sampling loop, as enqueue() records it.
  struct Loop {
    float* x = nullptr;
    float* eps = nullptr;  // null: fused
    Shape shape;
    kernels::NoiseParams noise;
    bool draw_initial = true;
    int start = 0;
    int end = 0;  // the last step run
    NoisePredictor* predictor = nullptr;
    kernels::PriorView prior;
    kernels::LaunchConfig config;
    int tick_every = 0;  // 0: no progress ticks
  };

  struct Need {
    DeviceBuffer<float>* buffer;
    std::size_t count;
  };

  static int current_device() {
    int device = 0;
    DDPM_CUDA_CHECK(cudaGetDevice(&device));
    return device;
  }

  cudaStream_t stream_for(void* requested, Memory memory) const {
    if (requested != nullptr) return as_stream(requested);
    return memory == Memory::host ? work_stream_.get() : nullptr;  // null: legacy default stream
  }

  // Orders a request after the engine's previous one (buffers are reused)
  // and marks where it ends, also when it ends by an exception with work
  // already queued.
  class Use {
   public:
    Use(cuda::Event& last_use, cudaStream_t stream) : last_use_(last_use), stream_(stream) {
      last_use_.wait_on(stream_);
    }
    ~Use() {
      if (!finished_) cudaEventRecord(last_use_.get(), stream_);  // unwinding: best effort
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    void finish() {
      last_use_.record(stream_);
      finished_ = true;
    }

   private:
    cuda::Event& last_use_;
    cudaStream_t stream_;
    bool finished_ = false;
  };

  // Grows workspace buffers to the counts given; rejects the request before
  // allocating when the device lacks the memory.
  void reserve(std::initializer_list<Need> needs, std::size_t step_count, const std::string& what) {
    std::size_t bytes = 0;
    for (const Need& need : needs) {
      if (need.count > need.buffer->count()) bytes += need.count * sizeof(float);
    }
    if (step_count > ws_steps_.count()) bytes += step_count * sizeof(std::int32_t);
    if (bytes == 0) return;
    last_use_.synchronize();  // the buffers about to be replaced may still be in use
    for (const Need& need : needs) {
      if (need.count > need.buffer->count()) need.buffer->release();
    }
    if (step_count > ws_steps_.count()) ws_steps_.release();
    cuda::require_free_memory(bytes, what);
    for (const Need& need : needs) need.buffer->reserve(need.count, what);
    ws_steps_.reserve(step_count, what);
  }

  static void check_disjoint(std::initializer_list<const float*> outputs, std::size_t n) {
    std::vector<const float*> set;
    for (const float* p : outputs) {
      if (p != nullptr) set.push_back(p);
    }
    for (std::size_t i = 0; i < set.size(); ++i) {
      for (std::size_t j = i + 1; j < set.size(); ++j) {
        const auto a = reinterpret_cast<std::uintptr_t>(set[i]);
        const auto b = reinterpret_cast<std::uintptr_t>(set[j]);
        if (a < b + n * sizeof(float) && b < a + n * sizeof(float)) {
          throw Error("the outputs of a forward request must not overlap each other");
        }
      }
    }
  }

  static void check_prior(const GaussianPrior& prior, std::int64_t dim) {
    const auto d = static_cast<std::size_t>(dim);
    if ((!prior.means.empty() && prior.means.size() != d) ||
        (!prior.stds.empty() && prior.stds.size() != d)) {
      throw Error("gaussian prior has " + std::to_string(prior.means.size()) + " means and " +
                  std::to_string(prior.stds.size()) + " stds but samples have dim " +
                  std::to_string(dim));
    }
  }

  // The fused kernel's view of the prior; per-element tables are uploaded
  // when they differ from the last ones (ordered on `stream` after the request's Use).
  kernels::PriorView upload_prior(const GaussianPrior& prior, std::int64_t dim,
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
      copy_to_device(prior_means_dev_.data(), std::span<const float>(means), stream);
      copy_to_device(prior_vars_dev_.data(), std::span<const float>(vars), stream);
      prior_means_ = std::move(means);
      prior_vars_ = std::move(vars);
    }
    view.means = prior_means_dev_.data();
    view.vars = prior_vars_dev_.data();
    return view;
  }

  // Everything the loop does on the device, in order, on stream `s`; also
  // what a graph capture records. No synchronisation, no allocation.
  void enqueue(const Loop& loop, cudaStream_t s) {
    if (loop.draw_initial) {
      kernels::launch_initial_noise(loop.x, loop.shape.batch, loop.shape.dim, loop.noise,
                                    loop.config, s);
    }
    for (int t = loop.start; t >= loop.end; --t) {
      if (loop.eps == nullptr) {
        kernels::FusedGaussianArgs a;
        a.x = loop.x;
        a.step = t;
        a.batch = loop.shape.batch;
        a.dim = loop.shape.dim;
        a.noise = loop.noise;
        a.schedule = view_;
        a.clip = clip_;
        a.prior = loop.prior;
        kernels::launch_fused_gaussian_reverse(a, loop.config, s);
      } else {
        loop.predictor->predict(predictor_call(loop, t, s));
        launch_reverse_in_place(loop, t, s);
      }
      const int done = loop.start - t + 1;
      if (loop.tick_every > 0 && (done % loop.tick_every == 0 || t == loop.end)) {
        DDPM_CUDA_CHECK(cudaLaunchHostFunc(s, on_progress_tick, &progress_));
      }
    }
  }

  PredictorCall predictor_call(const Loop& loop, int t, cudaStream_t s) const {
    PredictorCall call;
    call.x_t = loop.x;
    call.eps = loop.eps;
    call.shape = loop.shape;
    call.step = t;
    call.first_sample = loop.noise.first_sample;
    call.schedule = &schedule();
    call.memory = Memory::device;
    call.stream = s;
    return call;
  }

  void launch_reverse_in_place(const Loop& loop, int t, cudaStream_t s) const {
    kernels::ReverseArgs a;
    a.x_t = loop.x;
    a.eps = loop.eps;
    a.x_prev = loop.x;
    a.step = t;
    a.batch = loop.shape.batch;
    a.dim = loop.shape.dim;
    a.noise = loop.noise;
    a.schedule = view_;
    a.clip = clip_;
    kernels::launch_reverse(a, loop.config, s);
  }

  // A predictor that only takes host memory: x goes to the host and eps comes
  // back every step (synchronising; correct, not fast).
  void run_with_host_predictor(const Loop& loop, cudaStream_t stream,
                               const std::function<void(int, int)>& progress) {
    const auto n = static_cast<std::size_t>(loop.shape.size());
    host_x_.resize(n);
    host_eps_.resize(n);
    const int total = loop.start - loop.end + 1;
    if (progress) progress(0, total);
    if (loop.draw_initial) {
      kernels::launch_initial_noise(loop.x, loop.shape.batch, loop.shape.dim, loop.noise,
                                    loop.config, stream);
    }
    for (int t = loop.start; t >= loop.end; --t) {
      copy_to_host(std::span<float>(host_x_), loop.x, stream);
      DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
      PredictorCall call;
      call.x_t = host_x_.data();
      call.eps = host_eps_.data();
      call.shape = loop.shape;
      call.step = t;
      call.first_sample = loop.noise.first_sample;
      call.schedule = &schedule();
      call.memory = Memory::host;
      loop.predictor->predict(call);
      copy_to_device(loop.eps, std::span<const float>(host_eps_), stream);
      launch_reverse_in_place(loop, t, stream);
      if (progress) progress(loop.start - t + 1, total);
    }
  }

  // Calls progress(done, total) on this thread as the stream reaches the ticks.
  void wait_for_ticks(const std::function<void(int, int)>& progress, int total,
                      cudaStream_t stream) {
    try {
      std::size_t reported = 0;
      while (reported < tick_done_.size()) {
        int ticks = 0;
        {
          std::unique_lock lock(progress_.mutex);
          progress_.changed.wait_for(lock, std::chrono::milliseconds(20),
                                     [&] { return static_cast<std::size_t>(progress_.ticks) > reported; });
          ticks = progress_.ticks;
        }
        for (; reported < static_cast<std::size_t>(ticks) && reported < tick_done_.size();
             ++reported) {
          progress(tick_done_[reported], total);
        }
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

  const int device_;
  kernels::ClipSettings clip_;
  cuda::Stream work_stream_;     // Memory::host requests without a stream
  cuda::Stream capture_stream_;  // graph capture only (never runs work)
  cuda::Event last_use_;         // end of this engine's last request
  DeviceBuffer<float> records_;
  DeviceBuffer<kernels::StepCoefficients> table_;
  cuda::ConstantRegion region_;
  kernels::ScheduleView view_;

  std::mutex mutex_;  // one request at a time per engine
  DeviceBuffer<float> ws_x_, ws_eps_, ws_a_, ws_b_, ws_c_;
  DeviceBuffer<std::int32_t> ws_steps_;
  std::vector<std::int32_t> host_steps_;
  std::vector<float> host_x_, host_eps_;
  std::vector<float> prior_means_, prior_vars_;
  DeviceBuffer<float> prior_means_dev_, prior_vars_dev_;
  cuda::CapturedGraph graph_;
  ProgressTicks progress_;
  std::vector<int> tick_done_;
};

}  // namespace

std::unique_ptr<Sampler::Engine> make_cuda_engine(const Schedule& schedule,
                                                  const SamplerOptions& options) {
  std::string reason;
  if (!cuda_device_usable(&reason)) {
    throw Error("the CUDA backend was requested but is unavailable: " + reason);
  }
  return std::make_unique<CudaEngine>(schedule, options);
}

}  // namespace ddpm::detail
