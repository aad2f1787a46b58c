// The CPU backend: float32, threads over (sample, segment) tiles, the
// per-element math shared with the CUDA kernels (kernels/step_rule.cuh,
// kernels/step_math.cuh).
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "ddpm/error.h"
#include "engine.h"
#include "reverse_loop.h"
#include "step_plan.h"
#include "threshold.h"
#include "../kernels/step_math.cuh"
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

cpu::NoiseSource source(const NoiseKey& key) { return {key.seed, key.first_sample}; }

// The Gaussian prior as the kernels read it: per-element tables (both
// filled in) or scalars. Fused into the step, it gives x0_hat and eps_hat
// themselves, so the prediction type plays no part there.
struct PriorTables {
  std::vector<float> means, vars;

  cpu::ModelSource source(const GaussianPrior& prior, std::int64_t dim) {
    cpu::ModelSource m;
    m.mean = prior.mean;
    m.var = prior.std * prior.std;
    if (!prior.means.empty() || !prior.stds.empty()) {
      const auto d = static_cast<std::size_t>(dim);
      means.assign(d, m.mean);
      vars.assign(d, m.var);
      for (std::size_t i = 0; i < d; ++i) {
        if (!prior.means.empty()) means[i] = prior.means[i];
        if (!prior.stds.empty()) vars[i] = prior.stds[i] * prior.stds[i];
      }
      m.means = means.data();
      m.vars = vars.data();
    }
    return m;
  }
};

class CpuEngine final : public Sampler::Engine {
 public:
  explicit CpuEngine(EngineSetup setup)
      : Engine(std::move(setup)),
        forward_table_(make_forward_table(schedule())),
        records_(make_step_records(plan())),
        threads_(cpu::resolve_threads(options().threads)),
        kernels_(cpu::cpu_kernels()) {
    for (const PlannedStep& s : plan()) timesteps_.push_back(s.timestep);
    x0_.mode = x0_mode(options());
    if (options().clip_x0) {
      x0_.lo = options().clip_x0->lo;
      x0_.hi = options().clip_x0->hi;
    }
  }

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
    args.table = forward_table_.data();
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
    args.table = forward_table_.data();
    args.step = r.step;
    args.one_step = true;
    for_each_tile(r.shape, [&](cpu::Tile tile) { kernels_.forward(source(r.noise), tile, args); });
  }

  void reverse_step(const ReverseStepRequest& r, int position) override {
    require_host(r.memory);
    cpu::ModelSource model;
    model.output = r.model_output.data();
    StepArrays arrays;
    arrays.x_t = r.x_t.data();
    arrays.x_prev = r.x_prev.data();
    arrays.variance_noise = r.variance_noise.empty() ? nullptr : r.variance_noise.data();
    arrays.x0_out = r.pred_original_sample.empty() ? nullptr : r.pred_original_sample.data();
    step_all(arrays, model, r.shape, position, r.noise);
  }

  void sample(const SampleRequest& r, NoisePredictor& predictor, int first, int last) override {
    require_host(r.memory);
    if (!predictor.supports(Memory::host)) {
      throw Error("the noise predictor does not run on the host; use --backend cuda");
    }
    const LoopRange range{first, last};
    float* x = r.x.data();
    predictor.prepare(schedule(), Memory::host, r.shape, nullptr);
    if (!r.initial_noise_given) draw_initial_noise(x, r.shape, r.noise);
    const auto* gaussian = dynamic_cast<const GaussianPredictor*>(&predictor);
    PriorTables tables;
    if (gaussian != nullptr) {
      const cpu::ModelSource model =
          tables.source(gaussian->prior(), r.shape.dim);
      if (x0_.mode != kernels::X0Mode::threshold) {
        sample_fused(x, r, model, range);
      } else {
        Loop loop(*this, r, predictor, &model);
        run_reverse_loop(range, loop, r.cancelled);
      }
    } else {
      Loop loop(*this, r, predictor, nullptr);
      run_reverse_loop(range, loop, r.cancelled);
    }
    if (r.progress) r.progress(range.count(), range.count());
  }

 private:
  struct StepArrays {
    const float* x_t = nullptr;
    float* x_prev = nullptr;
    const float* variance_noise = nullptr;
    float* x0_out = nullptr;
  };

  // The loop with a predictor that writes the model output to a buffer, or
  // (fused_model) the Gaussian prior evaluated inside the step.
  class Loop final : public LoopBackend {
   public:
    Loop(CpuEngine& engine, const SampleRequest& r, NoisePredictor& predictor,
         const cpu::ModelSource* fused_model)
        : engine_(engine), r_(r), predictor_(predictor) {
      if (fused_model != nullptr) {
        model_ = *fused_model;
      } else {
        output_.resize(static_cast<std::size_t>(r.shape.size()));
        model_.output = output_.data();
      }
    }
    void predict(int position) override {
      if (model_.output == nullptr) return;  // computed inside the step
      LoopArrays arrays;
      arrays.x = r_.x.data();
      arrays.model_output = output_.data();
      arrays.class_labels = r_.class_labels.empty() ? nullptr : r_.class_labels.data();
      predictor_.predict(
          make_predictor_call(engine_, arrays, r_.shape, r_.noise.first_sample, position));
    }
    void step(int position) override {
      StepArrays arrays;
      arrays.x_t = r_.x.data();
      arrays.x_prev = r_.x.data();
      engine_.step_all(arrays, model_, r_.shape, position, r_.noise);
    }
    void steps_done(int done, int total) override {
      if (r_.progress) r_.progress(done, total);
    }

   private:
    CpuEngine& engine_;
    const SampleRequest& r_;
    NoisePredictor& predictor_;
    std::vector<float> output_;
    cpu::ModelSource model_;
  };

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

  // One step of the rule at plan position `position` over the whole batch.
  void step_all(const StepArrays& arrays, const cpu::ModelSource& model, Shape shape,
                int position, const NoiseKey& key) {
    cpu::ReverseArgs args;
    args.dim = shape.dim;
    args.x_t = arrays.x_t;
    args.x_prev = arrays.x_prev;
    args.model = model;
    args.variance_noise = arrays.variance_noise;
    args.x0_out = arrays.x0_out;
    args.record = records_[static_cast<std::size_t>(position)];
    args.timestep = timesteps_[static_cast<std::size_t>(position)];
    args.x0 = x0_;
    if (x0_.mode == kernels::X0Mode::threshold) {
      // Every row's quantile before any element of it changes (x_prev may be x_t).
      row_scale_.resize(static_cast<std::size_t>(shape.batch));
      const ThresholdSettings settings{options().dynamic_thresholding_ratio,
                                       options().sample_max_value};
      cpu::parallel_for(shape.batch, threads_, [&](std::int64_t row) {
        thread_local std::vector<float> x0;
        row_x0(arrays.x_t, model, args.record, shape.dim, row, x0);
        row_scale_[static_cast<std::size_t>(row)] = threshold_scale(x0, settings);
      });
      args.x0.row_scale = row_scale_.data();
    }
    for_each_tile(shape, [&](cpu::Tile tile) { kernels_.reverse(source(key), tile, args); });
  }

  // x0_hat of one row, before processing (for its quantile), into `x0`.
  static void row_x0(const float* x_t, const cpu::ModelSource& model, const kernels::StepRecord& r,
                     std::int64_t dim, std::int64_t row, std::vector<float>& x0) {
    x0.resize(static_cast<std::size_t>(dim));
    const float* x = x_t + row * dim;
    for (std::int64_t i = 0; i < dim; ++i) {
      float v;
      if (model.output != nullptr) {
        v = kernels::predicted_x0(x[i], model.output[row * dim + i], r);
      } else {
        const bool per_element = model.means != nullptr;
        v = kernels::gaussian_posterior(x[i], per_element ? model.means[i] : model.mean,
                                        per_element ? model.vars[i] : model.var, r.sqrt_alpha_bar,
                                        r.sqrt_one_minus_alpha_bar)
                .x0;
      }
      x0[static_cast<std::size_t>(i)] = v;
    }
  }

  // Each tile runs the whole loop while it sits in cache.
  void sample_fused(float* x, const SampleRequest& r, const cpu::ModelSource& model,
                    LoopRange range) {
    cpu::FusedArgs args;
    args.dim = r.shape.dim;
    args.x = x;
    args.model = model;
    args.records = records_.data();
    args.timesteps = timesteps_.data();
    args.first = range.first;
    args.last = range.last;
    args.x0 = x0_;
    // Reports and cancellation happen on the calling thread while the tiles
    // run; a cancellation lets the running tiles finish and starts no more.
    std::function<void(std::int64_t, std::int64_t)> progress;
    if (r.progress || r.cancelled) {
      progress = [&](std::int64_t done, std::int64_t tiles) {
        if (r.progress) r.progress(static_cast<int>(done * range.count() / tiles), range.count());
        stop_if_cancelled(r.cancelled);
      };
    }
    for_each_tile(
        r.shape, [&](cpu::Tile tile) { kernels_.fused(source(r.noise), tile, args); }, progress);
    stop_if_cancelled(r.cancelled);  // a run shorter than one report still honours it
  }

  std::vector<kernels::ForwardCoefficients> forward_table_;
  std::vector<kernels::StepRecord> records_;
  std::vector<int> timesteps_;
  cpu::X0Settings x0_;
  int threads_;
  const cpu::CpuKernels& kernels_;
  std::vector<float> row_scale_;
};

}  // namespace

std::unique_ptr<Sampler::Engine> make_cpu_engine(EngineSetup setup) {
  return std::make_unique<CpuEngine>(std::move(setup));
}

}  // namespace ddpm::detail
