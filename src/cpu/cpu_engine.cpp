// The CPU backend: float32, threads over (sample, segment) work items, the
// per-element math shared with the CUDA kernels (kernels/step_math.cuh).
#include <string>
#include <vector>

#include "ddpm/error.h"
#include "engine.h"
#include "step_table.h"
#include "validate.h"
#include "cpu_kernels.h"
#include "parallel_for.h"

namespace ddpm::detail {
namespace {

using cpu::kSegment;

// Work items are (row, segment) pairs, so that long rows still spread over
// threads and a segment stays in cache.
struct WorkItems {
  Shape shape;
  std::int64_t segments_per_row;
  std::int64_t count() const { return shape.batch * segments_per_row; }
  std::int64_t row(std::int64_t item) const { return item / segments_per_row; }
  cpu::Segment segment(std::int64_t item) const {
    const std::int64_t begin = (item % segments_per_row) * kSegment;
    return {begin, std::min(begin + kSegment, shape.dim)};
  }
};

WorkItems work_items(Shape shape) { return {shape, (shape.dim + kSegment - 1) / kSegment}; }

void require_host(Memory memory) {
  if (memory != Memory::host) {
    throw Error("the CPU backend takes host memory; device pointers need --backend cuda");
  }
}

class CpuEngine final : public Sampler::Engine {
 public:
  CpuEngine(const Schedule& schedule, const SamplerOptions& options)
      : Engine(schedule, options),
        table_(make_step_table(schedule, options.variance)),
        clip_(make_clip_settings(options.clip_x0)),
        threads_(cpu::resolve_threads(options.threads)),
        kernels_(cpu::cpu_kernels()) {}

  Backend backend() const override { return Backend::cpu; }

  void forward(const ForwardRequest& r) override {
    require_host(r.memory);
    const WorkItems items = work_items(r.shape);
    const std::int64_t dim = r.shape.dim;
    cpu::parallel_for(items.count(), threads_, [&](std::int64_t item) {
      const std::int64_t row = items.row(item);
      const int t = r.steps.empty() ? r.step : r.steps[static_cast<std::size_t>(row)];
      cpu::ForwardSegment args;
      args.x0 = r.x0.data() + row * dim;
      args.eps = r.eps.empty() ? nullptr : r.eps.data() + row * dim;
      args.x_t = r.x_t.data() + row * dim;
      args.eps_out = r.eps_out.empty() ? nullptr : r.eps_out.data() + row * dim;
      args.velocity_out = r.velocity_out.empty() ? nullptr : r.velocity_out.data() + row * dim;
      args.coefficients = table_[static_cast<std::size_t>(t)];
      args.stream = kernels::NoiseStream::forward;
      args.step = static_cast<std::uint32_t>(t);
      kernels_.forward(noise_row(r.noise, row), items.segment(item), args);
    });
  }

  void forward_one_step(const ForwardOneStepRequest& r) override {
    require_host(r.memory);
    const WorkItems items = work_items(r.shape);
    const std::int64_t dim = r.shape.dim;
    cpu::parallel_for(items.count(), threads_, [&](std::int64_t item) {
      const std::int64_t row = items.row(item);
      cpu::ForwardSegment args;
      args.x0 = r.x_prev.data() + row * dim;
      args.eps = r.eps.empty() ? nullptr : r.eps.data() + row * dim;
      args.x_t = r.x_t.data() + row * dim;
      args.coefficients = table_[static_cast<std::size_t>(r.step)];
      args.stream = kernels::NoiseStream::forward_one_step;
      args.step = static_cast<std::uint32_t>(r.step);
      args.one_step = true;
      kernels_.forward(noise_row(r.noise, row), items.segment(item), args);
    });
  }

  void reverse_step(const ReverseStepRequest& r) override {
    require_host(r.memory);
    reverse_all(r.x_t.data(), r.eps.data(), r.x_prev.data(), r.shape, r.step, r.noise);
  }

  void sample(const SampleRequest& r, NoisePredictor& predictor) override {
    require_host(r.memory);
    if (!predictor.supports(Memory::host)) {
      throw Error("the noise predictor does not run on the host; use --backend cuda");
    }
    const int start = resolve_start_step(r, schedule());
    const int total_steps = start + 1;
    float* x = r.x.data();
    if (!r.initial_noise_given) draw_initial_noise(x, r.shape, r.noise);
    predictor.prepare(schedule(), Memory::host, r.shape, nullptr);
    if (const GaussianPrior* prior = predictor.fusable_gaussian_prior()) {
      sample_fused(x, r, *prior, start);
    } else {
      std::vector<float> eps(static_cast<std::size_t>(r.shape.size()));
      for (int t = start; t >= 0; --t) {
        PredictorCall call;
        call.x_t = x;
        call.eps = eps.data();
        call.shape = r.shape;
        call.step = t;
        call.first_sample = r.noise.first_sample;
        call.schedule = &schedule();
        call.memory = Memory::host;
        predictor.predict(call);
        reverse_all(x, eps.data(), x, r.shape, t, r.noise);
        if (r.progress) r.progress(start - t + 1, total_steps);
      }
    }
    if (r.progress) r.progress(total_steps, total_steps);
  }

 private:
  static cpu::NoiseRow noise_row(const NoiseKey& key, std::int64_t row) {
    return {key.seed, static_cast<std::uint64_t>(key.first_sample + row)};
  }

  void draw_initial_noise(float* x, Shape shape, const NoiseKey& key) {
    const WorkItems items = work_items(shape);
    cpu::parallel_for(items.count(), threads_, [&](std::int64_t item) {
      const std::int64_t row = items.row(item);
      kernels_.normals(noise_row(key, row), kernels::NoiseStream::initial, 0, items.segment(item),
                       x + row * shape.dim);
    });
  }

  void reverse_all(const float* x_t, const float* eps, float* x_prev, Shape shape, int t,
                   const NoiseKey& key) {
    const WorkItems items = work_items(shape);
    cpu::parallel_for(items.count(), threads_, [&](std::int64_t item) {
      const std::int64_t row = items.row(item);
      cpu::ReverseSegment args;
      args.x_t = x_t + row * shape.dim;
      args.eps = eps + row * shape.dim;
      args.x_prev = x_prev + row * shape.dim;
      args.coefficients = table_[static_cast<std::size_t>(t)];
      args.clip = clip_;
      args.step = static_cast<std::uint32_t>(t);
      kernels_.reverse(noise_row(key, row), items.segment(item), args);
    });
  }

  // Each (row, segment) runs the whole loop while it sits in cache.
  void sample_fused(float* x, const SampleRequest& r, const GaussianPrior& prior, int start) {
    const WorkItems items = work_items(r.shape);
    const int total_steps = start + 1;
    std::function<void(std::int64_t)> on_wait;
    if (r.progress) {
      on_wait = [&](std::int64_t done) {
        r.progress(static_cast<int>(done * total_steps / items.count()), total_steps);
      };
    }
    cpu::parallel_for(
        items.count(), threads_,
        [&](std::int64_t item) {
          const std::int64_t row = items.row(item);
          cpu::FusedGaussianSegment args;
          args.x = x + row * r.shape.dim;
          args.means = prior.means.empty() ? nullptr : prior.means.data();
          args.stds = prior.stds.empty() ? nullptr : prior.stds.data();
          args.mean = prior.mean;
          args.std = prior.std;
          args.table = table_.data();
          args.start_step = start;
          args.clip = clip_;
          kernels_.fused_gaussian(noise_row(r.noise, row), items.segment(item), args);
        },
        on_wait);
  }

  std::vector<kernels::StepCoefficients> table_;
  kernels::ClipSettings clip_;
  int threads_;
  const cpu::CpuKernels& kernels_;
};

}  // namespace

std::unique_ptr<Sampler::Engine> make_cpu_engine(const Schedule& schedule,
                                                 const SamplerOptions& options) {
  return std::make_unique<CpuEngine>(schedule, options);
}

}  // namespace ddpm::detail
