// The CPU backend: float32, threads over (sample, segment) tiles, the
// per-element math shared with the CUDA kernels (kernels/step_rule.cuh,
// kernels/step_math.cuh).
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "ddpm/error.h"
#include "core/engine.h"
#include "core/guidance.h"
#include "core/loop_setup.h"
#include "core/reverse_loop.h"
#include "core/step_plan.h"
#include "core/threshold.h"
#include "kernels/step_math.cuh"
#include "core/validate.h"
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

kernels::NoiseParams source(const NoiseKey& key) { return {key.seed, key.first_sample}; }

// The Gaussian priors as the kernels read them: per-element tables (filled
// in for both when either prior has them) or scalars. Fused into the step, a
// prior gives x0_hat and eps_hat themselves, so the prediction type plays no
// part there.
struct PriorTables {
  std::vector<float> means, vars, unconditional_means, unconditional_vars;

  kernels::ModelView source(const GaussianPredictor& predictor, std::int64_t dim, double guidance) {
    const GaussianPrior& prior = predictor.prior();
    const GaussianPrior* unconditional =
        guidance != 1.0 && predictor.unconditional_prior() ? &*predictor.unconditional_prior() : nullptr;
    const bool per_element = !prior.means.empty() || !prior.stds.empty() ||
                             (unconditional && (!unconditional->means.empty() || !unconditional->stds.empty()));
    kernels::ModelView m;
    m.prior = tables_of(prior, dim, per_element, means, vars);
    if (unconditional) {
      m.guided = true;
      m.guidance_scale = static_cast<float>(guidance);
      m.unconditional_prior = tables_of(*unconditional, dim, per_element, unconditional_means, unconditional_vars);
    }
    return m;
  }

 private:
  static kernels::PriorView tables_of(const GaussianPrior& prior, std::int64_t dim, bool per_element,
                                    std::vector<float>& means, std::vector<float>& vars) {
    kernels::PriorView t;
    t.mean = prior.mean;
    t.var = prior.std * prior.std;
    if (per_element) {
      const auto d = static_cast<std::size_t>(dim);
      means.assign(d, t.mean);
      vars.assign(d, t.var);
      for (std::size_t i = 0; i < d; ++i) {
        if (!prior.means.empty()) means[i] = prior.means[i];
        if (!prior.stds.empty()) vars[i] = prior.stds[i] * prior.stds[i];
      }
      t.means = means.data();
      t.vars = vars.data();
    }
    return t;
  }
};

class CpuEngine final : public detail::Engine {
 public:
  explicit CpuEngine(EngineSetup setup)
      : Engine(std::move(setup)),
        forward_table_(make_forward_table(schedule())),
        records_(make_step_records(plan())),
        threads_(cpu::resolve_threads(options().threads)),
        kernels_(cpu::cpu_kernels()) {
    for (const PlannedStep& s : plan()) {
      noise_steps_.push_back(s.noise_step);
      deep_records_.push_back(make_deep_record(s));
    }
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
    args.eps_out = r.eps_out.empty() ? nullptr : r.eps_out.data();
    args.table = forward_table_.data();
    args.step = r.step;
    args.one_step = true;
    for_each_tile(r.shape, [&](cpu::Tile tile) { kernels_.forward(source(r.noise), tile, args); });
  }

  void reverse_step(const ReverseStepRequest& r, int position) override {
    require_host(r.memory);
    kernels::ModelView model;
    model.output = r.model_output.data();
    StepArrays arrays;
    arrays.x_t = r.x_t.data();
    arrays.x_prev = r.x_prev.data();
    arrays.variance_noise = r.variance_noise.empty() ? nullptr : r.variance_noise.data();
    arrays.x0_out = r.pred_original_sample.empty() ? nullptr : r.pred_original_sample.data();
    arrays.history.in = r.previous_x0.empty() ? nullptr : r.previous_x0.data();
    if (history_layout().deep()) {
      std::vector<float> scratch;
      arrays.deep_history = r.history.data();
      if (r.history.empty()) {  // the step reads none (Sampler::reverse_step checked)
        scratch.resize(static_cast<std::size_t>(history_layout().slots() * r.shape.size()));
        arrays.deep_history = scratch.data();
      }
      step_all(arrays, model, r.shape, position, records_[static_cast<std::size_t>(position)], r.noise);
      return;
    }
    step_all(arrays, model, r.shape, position, record_for(position, !r.previous_x0.empty()), r.noise);
  }

  void sample(const SampleRequest& r, NoisePredictor& predictor, int first, int last) override {
    require_host(r.memory);
    if (!predictor.supports(Memory::host)) {
      throw Error("the noise predictor does not run on the host; use --backend cuda");
    }
    const LoopRange range{first, last};
    float* x = r.x.data();
    const detail::LoopSetup setup = detail::loop_setup(*this, r, predictor, first, last);
    predictor.prepare(schedule(), Memory::host, setup.guided ? Shape{2 * r.shape.batch, r.shape.dim} : r.shape,
                      nullptr);
    if (!r.initial_noise_given) draw_initial_noise(x, r.shape, r.noise);

    // The history: the request's (pieces hand it on) or the loop's own.
    LoopHistory history;
    if (setup.own_history) {
      history.own.resize(static_cast<std::size_t>(setup.history_floats));
      history.data = history.own.data();
    } else if (setup.multistep) {
      history.data = r.history.data();
      history.valid = r.history_given;
    }

    PriorTables tables;
    if (setup.fused_prior != nullptr) {
      const kernels::ModelView model = tables.source(*setup.fused_prior, r.shape.dim, r.guidance_scale);
      if (x0_.mode != kernels::X0Mode::threshold) {
        sample_fused(x, r, model, range, history);
      } else {
        Loop loop(*this, r, predictor, &model, history);
        run_reverse_loop(range, loop, r.cancelled);
      }
    } else {
      Loop loop(*this, r, predictor, nullptr, history);
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
    cpu::History history;
    float* deep_history = nullptr;  // the deep rules' history (HistoryLayout), read and updated
  };

  // The multistep solvers' x0_hat of the previous step, and whether it is
  // there yet (false until a step of this run wrote it, unless handed in).
  struct LoopHistory {
    float* data = nullptr;  // null: the rule keeps none
    bool valid = false;
    std::vector<float> own;
  };

  // The record of plan position `position`, at first order when its
  // history is missing.
  kernels::StepRecord record_for(int position, bool history_valid) const {
    const PlannedStep& step = plan()[static_cast<std::size_t>(position)];
    if (detail::runs_at_first_order(step, history_valid)) return make_step_record(first_order(step));
    return records_[static_cast<std::size_t>(position)];
  }

  // The loop with a predictor that writes the model output to a buffer
  // (2 x batch rows with guidance), or (fused_model) the Gaussian prior
  // evaluated inside the step.
  class Loop final : public LoopBackend {
   public:
    Loop(CpuEngine& engine, const SampleRequest& r, NoisePredictor& predictor,
         const kernels::ModelView* fused_model, LoopHistory& history)
        : engine_(engine), r_(r), predictor_(predictor), history_(history),
          guided_(detail::guided(r)) {
      const auto n = static_cast<std::size_t>(r.shape.size());
      if (fused_model != nullptr) {
        model_ = *fused_model;
        return;
      }
      output_.resize(guided_ ? 2 * n : n);
      model_.output = output_.data();
      if (guided_) {
        input_.resize(2 * n);
        labels_ = guided_labels({r.class_labels.begin(), r.class_labels.end()}, r.shape.batch, predictor);
        model_.guided = true;
        model_.guidance_scale = static_cast<float>(r.guidance_scale);
        model_.unconditional_offset = r.shape.size();
        if (r.guidance_rescale != 0.0) {
          factors_.resize(static_cast<std::size_t>(r.shape.batch));
          model_.row_factor = factors_.data();
        }
      }
    }
    void predict(int position) override {
      if (model_.output == nullptr) return;  // computed inside the step
      LoopArrays arrays;
      arrays.x = r_.x.data();
      arrays.model_output = output_.data();
      arrays.class_labels = r_.class_labels.empty() ? nullptr : r_.class_labels.data();
      Shape shape = r_.shape;
      if (guided_) {
        // The conditional and the unconditional rows see the same x_t.
        std::copy(r_.x.begin(), r_.x.end(), input_.begin());
        std::copy(r_.x.begin(), r_.x.end(), input_.begin() + static_cast<std::ptrdiff_t>(r_.x.size()));
        arrays.x = input_.data();
        arrays.class_labels = labels_.data();
        shape.batch *= 2;
      }
      predictor_.predict(make_predictor_call(engine_, arrays, shape, r_.shape.batch,
                                             r_.noise.first_sample, position));
      if (!factors_.empty()) {
        const std::int64_t dim = r_.shape.dim;
        cpu::parallel_for(r_.shape.batch, engine_.threads_, [&](std::int64_t row) {
          factors_[static_cast<std::size_t>(row)] = guidance_rescale_factor(
              output_.data() + row * dim, output_.data() + r_.shape.size() + row * dim, dim,
              r_.guidance_scale, r_.guidance_rescale);
        });
      }
    }
    void step(int position) override {
      StepArrays arrays;
      arrays.x_t = r_.x.data();
      arrays.x_prev = r_.x.data();
      arrays.history = {history_.data, history_.data};
      arrays.deep_history = history_.data;
      engine_.step_all(arrays, model_, r_.shape, position, engine_.record_for(position, history_.valid),
                       r_.noise);
      history_.valid = history_.data != nullptr;
    }
    void steps_done(int done, int total) override {
      if (r_.progress) r_.progress(done, total);
    }

   private:
    CpuEngine& engine_;
    const SampleRequest& r_;
    NoisePredictor& predictor_;
    LoopHistory& history_;
    bool guided_;
    std::vector<float> input_, output_, factors_;
    std::vector<std::int32_t> labels_;
    kernels::ModelView model_;
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

  // x_T = scale * N(0, I) (the rule's initial noise scale).
  void draw_initial_noise(float* x, Shape shape, const NoiseKey& key) {
    const auto scale = static_cast<float>(initial_noise_scale());
    for_each_tile(shape, [&](cpu::Tile tile) {
      kernels_.normals(source(key), tile, shape.dim, kernels::NoiseStream::initial, 0, x);
      if (scale == 1.0f) return;
      for (std::int64_t row = tile.row_begin; row < tile.row_end; ++row) {
        for (std::int64_t i = tile.begin; i < tile.end; ++i) x[row * shape.dim + i] *= scale;
      }
    });
  }

  // One step of the rule at plan position `position` over the whole batch.
  void step_all(const StepArrays& arrays, const kernels::ModelView& model, Shape shape, int position,
                const kernels::StepRecord& record, const NoiseKey& key) {
    cpu::ReverseArgs args;
    args.dim = shape.dim;
    args.x_t = arrays.x_t;
    args.x_prev = arrays.x_prev;
    args.model = model;
    args.variance_noise = arrays.variance_noise;
    args.x0_out = arrays.x0_out;
    args.history = arrays.history;
    args.record = record;
    args.noise_step = noise_steps_[static_cast<std::size_t>(position)];
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
    if (history_layout().deep()) {
      deep_step(arrays, model, shape, position, args.x0, key);
      return;
    }
    for_each_tile(shape, [&](cpu::Tile tile) { kernels_.reverse(source(key), tile, args); });
  }

  // A deep rule's step (kernels::DeepRecord) over the whole batch, element
  // by element (kernels::deep_step_element; x_prev may alias x_t), with the
  // step's normals (the given variance noise, or the engine's draw) where
  // sigma != 0 (DPM-Solver++(3M) SDE).
  void deep_step(const StepArrays& arrays, const kernels::ModelView& model, Shape shape, int position,
                 const kernels::X0View& x0_settings, const NoiseKey& key) {
    const kernels::StepRecord r = records_[static_cast<std::size_t>(position)];
    const kernels::DeepRecord d = deep_records_[static_cast<std::size_t>(position)];
    const float* z = nullptr;
    if (d.sigma != 0.0f) {
      z = arrays.variance_noise;
      if (z == nullptr) {
        deep_noise_.resize(static_cast<std::size_t>(shape.size()));
        for_each_tile(shape, [&](cpu::Tile tile) {
          kernels_.normals(source(key), tile, shape.dim, kernels::NoiseStream::reverse,
                           static_cast<std::uint32_t>(noise_steps_[static_cast<std::size_t>(position)]),
                           deep_noise_.data());
        });
        z = deep_noise_.data();
      }
    }
    const HistoryLayout& layout = history_layout();
    const std::int64_t n = shape.size(), dim = shape.dim;
    const auto slot = [&](int k) { return k < layout.x0_slots ? arrays.deep_history + k * n : nullptr; };
    float* last = layout.last_sample ? arrays.deep_history + layout.last_sample_slot() * n : nullptr;
    for_each_tile(shape, [&](cpu::Tile tile) {
      for (std::int64_t row = tile.row_begin; row < tile.row_end; ++row) {
        const float scale = x0_settings.mode == kernels::X0Mode::threshold ? x0_settings.row_scale[row] : 1.0f;
        const float factor = model.row_factor != nullptr ? model.row_factor[row] : 1.0f;
        for (std::int64_t i = row * dim + tile.begin; i < row * dim + tile.end; ++i) {
          const float m = model.guided ? kernels::guided_output(model.output[i], model.output[i + model.unconditional_offset],
                                                                model.guidance_scale, factor)
                                       : model.output[i];
          const kernels::DeepSlots slots{slot(0) ? slot(0) + i : nullptr, slot(1) ? slot(1) + i : nullptr,
                                         slot(2) ? slot(2) + i : nullptr, last ? last + i : nullptr};
          arrays.x_prev[i] = kernels::deep_step_element(
              arrays.x_t[i], m, z ? z[i] : 0.0f, r, d, x0_settings.mode, x0_settings.lo, x0_settings.hi, scale,
              arrays.x0_out ? arrays.x0_out + i : nullptr, slots);
        }
      }
    });
  }

  // x0_hat of one row, before processing (for its quantile), into `x0`.
  static void row_x0(const float* x_t, const kernels::ModelView& model, const kernels::StepRecord& r,
                     std::int64_t dim, std::int64_t row, std::vector<float>& x0) {
    x0.resize(static_cast<std::size_t>(dim));
    const float* x = x_t + row * dim;
    const float factor = model.row_factor ? model.row_factor[row] : 1.0f;
    const auto posterior = [&](const kernels::PriorView& p, std::int64_t i) {
      const bool per_element = p.means != nullptr;
      return kernels::gaussian_posterior(x[i], per_element ? p.means[i] : p.mean,
                                         per_element ? p.vars[i] : p.var, r.sqrt_alpha_bar,
                                         r.sqrt_one_minus_alpha_bar)
          .x0;
    };
    for (std::int64_t i = 0; i < dim; ++i) {
      float v;
      if (model.output != nullptr) {
        const float* c = model.output + row * dim;
        const float m = model.guided ? kernels::guided_output(c[i], c[i + model.unconditional_offset],
                                                              model.guidance_scale, factor)
                                     : c[i];
        v = kernels::predicted_x0(x[i], m, r);
      } else {
        v = posterior(model.prior, i);
        if (model.guided) {
          v = kernels::guided_output(v, posterior(model.unconditional_prior, i), model.guidance_scale, 1.0f);
        }
      }
      x0[static_cast<std::size_t>(i)] = v;
    }
  }

  // Each tile runs the whole loop while it sits in cache.
  void sample_fused(float* x, const SampleRequest& r, const kernels::ModelView& model, LoopRange range,
                    const LoopHistory& history) {
    cpu::FusedArgs args;
    args.dim = r.shape.dim;
    args.x = x;
    args.model = model;
    args.records = records_.data();
    args.first_record = record_for(range.first, history.valid);
    args.noise_steps = noise_steps_.data();
    args.first = range.first;
    args.last = range.last;
    args.history = history.data;
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
  std::vector<kernels::DeepRecord> deep_records_;
  std::vector<int> noise_steps_;
  kernels::X0View x0_;
  int threads_;
  const cpu::CpuKernels& kernels_;
  std::vector<float> row_scale_;
  std::vector<float> deep_noise_;
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(EngineSetup setup) {
  return std::make_unique<CpuEngine>(std::move(setup));
}

}  // namespace ddpm::detail
