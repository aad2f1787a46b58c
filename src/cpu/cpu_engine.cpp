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

// The tiles a batch is cut into (see cpu::Tile): long rows in segments of
// kSegment elements, short rows packed whole, about kSegment elements a tile.
struct Tiling {
  Shape shape;
  bool packed;                    // short rows, several per tile
  std::int64_t per_row;           // segments per row (unpacked)
  std::int64_t rows_per_tile;     // rows per tile (packed)

  explicit Tiling(Shape s)
      : shape(s),
        packed(cpu::packs_rows(s.dim)),
        per_row((s.dim + kSegment - 1) / kSegment),
        rows_per_tile(std::max<std::int64_t>(1, kSegment / s.dim)) {}

  std::int64_t count() const {
    return packed ? (shape.batch + rows_per_tile - 1) / rows_per_tile : shape.batch * per_row;
  }
  cpu::Tile tile(std::int64_t i) const {
    if (packed) {
      const std::int64_t first = i * rows_per_tile;
      return {first, std::min(first + rows_per_tile, shape.batch), 0, shape.dim};
    }
    const std::int64_t row = i / per_row;
    const std::int64_t begin = (i % per_row) * kSegment;
    return {row, row + 1, begin, std::min(begin + kSegment, shape.dim)};
  }
};

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
    cpu::ForwardArgs args;
    args.dim = r.shape.dim;
    args.x0 = r.x0.data();
    args.eps = r.eps.empty() ? nullptr : r.eps.data();
    args.x_t = r.x_t.data();
    args.eps_out = r.eps_out.empty() ? nullptr : r.eps_out.data();
    args.velocity_out = r.velocity_out.empty() ? nullptr : r.velocity_out.data();
    args.table = table_.data();
    args.steps = r.steps.empty() ? nullptr : r.steps.data();
    args.step = r.step;
    for_each_tile(r.shape, [&](cpu::Tile tile) { kernels_.forward(source(r.noise), tile, args); });
  }

  void forward_one_step(const ForwardOneStepRequest& r) override {
    require_host(r.memory);
    cpu::ForwardArgs args;
    args.dim = r.shape.dim;
    args.x0 = r.x_prev.data();
    args.eps = r.eps.empty() ? nullptr : r.eps.data();
    args.x_t = r.x_t.data();
    args.table = table_.data();
    args.step = r.step;
    args.one_step = true;
    for_each_tile(r.shape, [&](cpu::Tile tile) { kernels_.forward(source(r.noise), tile, args); });
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
    const int total_steps = sample_step_count(r, schedule());
    float* x = r.x.data();
    if (!r.initial_noise_given) draw_initial_noise(x, r.shape, r.noise);
    predictor.prepare(schedule(), Memory::host, r.shape, nullptr);
    if (const GaussianPrior* prior = predictor.fusable_gaussian_prior()) {
      sample_fused(x, r, *prior, start, r.end_step);
    } else {
      std::vector<float> eps(static_cast<std::size_t>(r.shape.size()));
      for (int t = start; t >= r.end_step; --t) {
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
  static cpu::NoiseSource source(const NoiseKey& key) { return {key.seed, key.first_sample}; }

  template <class Body>
  void for_each_tile(Shape shape, Body&& body,
                     const std::function<void(std::int64_t, std::int64_t)>& progress = {}) {
    const Tiling tiling(shape);
    std::function<void(std::int64_t)> on_wait;
    if (progress) on_wait = [&](std::int64_t done) { progress(done, tiling.count()); };
    cpu::parallel_for(
        tiling.count(), threads_, [&](std::int64_t i) { body(tiling.tile(i)); }, on_wait);
  }

  void draw_initial_noise(float* x, Shape shape, const NoiseKey& key) {
    for_each_tile(shape, [&](cpu::Tile tile) {
      kernels_.normals(source(key), tile, shape.dim, kernels::NoiseStream::initial, 0, x);
    });
  }

  void reverse_all(const float* x_t, const float* eps, float* x_prev, Shape shape, int t,
                   const NoiseKey& key) {
    cpu::ReverseArgs args;
    args.dim = shape.dim;
    args.x_t = x_t;
    args.eps = eps;
    args.x_prev = x_prev;
    args.coefficients = table_[static_cast<std::size_t>(t)];
    args.clip = clip_;
    args.step = t;
    for_each_tile(shape, [&](cpu::Tile tile) { kernels_.reverse(source(key), tile, args); });
  }

  // Each tile runs the whole loop while it sits in cache.
  void sample_fused(float* x, const SampleRequest& r, const GaussianPrior& prior, int start,
                    int end) {
    const int total_steps = start - end + 1;
    // The kernel's per-element path reads both tables: fill in the scalar one.
    std::vector<float> means = prior.means, stds = prior.stds;
    if (!means.empty() || !stds.empty()) {
      const auto dim = static_cast<std::size_t>(r.shape.dim);
      if (means.empty()) means.assign(dim, prior.mean);
      if (stds.empty()) stds.assign(dim, prior.std);
    }
    cpu::FusedGaussianArgs args;
    args.dim = r.shape.dim;
    args.x = x;
    args.means = means.empty() ? nullptr : means.data();
    args.stds = stds.empty() ? nullptr : stds.data();
    args.mean = prior.mean;
    args.std = prior.std;
    args.table = table_.data();
    args.start_step = start;
    args.end_step = end;
    args.clip = clip_;
    std::function<void(std::int64_t, std::int64_t)> progress;
    if (r.progress) {
      progress = [&](std::int64_t done, std::int64_t tiles) {
        r.progress(static_cast<int>(done * total_steps / tiles), total_steps);
      };
    }
    for_each_tile(
        r.shape, [&](cpu::Tile tile) { kernels_.fused_gaussian(source(r.noise), tile, args); },
        progress);
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
