// ddpm.Schedule, ddpm._ddpm.Sampler (the engine under ddpm.Sampler) and
// PlannedStep. The array methods here take arrays that ddpm/_arrays.py has
// already put in float32 / int32 C order in the caller's framework; they check
// them, build the request and run it with the GIL released.
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "arrays.h"
#include "module.h"
#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "ddpm/sampler.h"
#include "ddpm/scheduler_config.h"
#include "options.h"
#include "predictors.h"

namespace ddpm::python {
namespace {

// A table as a new float64 NumPy array (tables are small; the schedule keeps its own).
nb::ndarray<nb::numpy, double, nb::ndim<1>> numpy_copy(const std::vector<double>& values) {
  auto* copy = new std::vector<double>(values);
  nb::capsule owner(copy, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  return {copy->data(), {copy->size()}, owner};
}

std::vector<double> doubles(nb::handle values) {
  nb::module_ np = nb::module_::import_("numpy");
  nb::object flat = np.attr("ascontiguousarray")(np.attr("asarray")(values, "float64").attr("reshape")(-1));
  const auto array = nb::cast<nb::ndarray<const double, nb::ndim<1>, nb::device::cpu>>(flat);
  return {array.data(), array.data() + array.shape(0)};
}

void* as_stream(std::uintptr_t stream) { return reinterpret_cast<void*>(stream); }

// An array of the call beside `reference`: the same shape, in the same place.
template <class Array>
Floats beside(const Floats& reference, const Array& array, const char* name) {
  Floats f = floats(array, name);
  require_same_shape(f, reference);
  require_same_place(f.place, name, reference);
  return f;
}

// Optional arrays come as None (an invalid ndarray).
template <class Array, class Span>
Span optional_beside(const Floats& reference, const Array& array, const char* name, Span (Floats::*get)() const) {
  if (!array.is_valid()) return {};
  return (beside(reference, array, name).*get)();
}

// A loop history (SampleRequest::history, ReverseStepRequest::history): float32
// in the place of `reference`, of any shape; the engine checks its size
// (Sampler::history_size()).
std::span<float> history_beside(const Floats& reference, const OutputArray& array) {
  if (!array.is_valid()) return {};
  const Floats history = floats(array, "history");
  require_same_place(history.place, "history", reference);
  return history.out();
}

// The batch shape of an array's extents (first axis the batch).
Shape shape_of(const std::vector<std::int64_t>& extents) {
  if (extents.empty()) throw Error("shape is empty: give (batch, ...) with the batch first");
  Shape shape{extents.front(), 1};
  for (std::size_t i = 1; i < extents.size(); ++i) shape.dim *= extents[i];
  return shape;
}

Ints steps_beside(const Floats& reference, const InputArray& array, const char* name) {
  Ints steps = ints(array, name, reference.batch_shape().batch);
  require_same_place(steps.place, name, reference);
  return steps;
}

// The sampler for a scheduler config (a diffusers scheduler_config.json, or a
// model card's) with keyword overrides, as the CLI's --scheduler-config does.
Sampler sampler_for(const SchedulerConfig& config, const nb::dict& overrides, const std::string& source) {
  SamplerOptions options = config.options;
  // sampler= first, as diffusers' from_config of another class: the
  // config's class-only keys it has no use for are dropped (switch_sampler).
  if (overrides.contains("sampler")) {
    nb::dict just_sampler;
    just_sampler["sampler"] = overrides["sampler"];
    SamplerOptions named = options;
    apply_options(just_sampler, named);
    switch_sampler(options, named.sampler);
  }
  apply_options(overrides, options);
  // A config's fixed-order rule (DPM-Solver++(3M)) overridden to a lower
  // order is the rule of that order (dpmpp_2m).
  const SamplerInfo info = sampler_info(options.sampler);
  if (info.fixed_solver_order != 0 && info.lower_order_sampler && overrides.contains("solver_order") &&
      !overrides.contains("sampler") && options.solver_order != info.fixed_solver_order) {
    options.sampler = *info.lower_order_sampler;
  }
  if (!config.sampler && !overrides.contains("sampler")) {
    throw Error(source + ": scheduler class '" + config.class_name +
                "' has no ddpm step rule; choose one with sampler=");
  }
  Schedule schedule = Schedule::from_spec(config.schedule);
  nb::gil_scoped_release release;
  return Sampler(std::move(schedule), std::move(options));
}

void forward(Sampler& sampler, const InputArray& x0_array, int step, const InputArray& steps_array,
             const InputArray& noise_array, std::uint64_t seed, std::int64_t first_sample,
             const OutputArray& x_t_array, const OutputArray& eps_out_array,
             const OutputArray& velocity_out_array, std::uintptr_t stream) {
  const Floats x0 = floats(x0_array, "x0");
  ForwardRequest r;
  r.x0 = x0.in();
  r.shape = x0.batch_shape();
  r.step = step;
  if (steps_array.is_valid()) r.steps = steps_beside(x0, steps_array, "t").span();
  r.eps = optional_beside(x0, noise_array, "noise", &Floats::in);
  r.noise = {seed, first_sample};
  r.x_t = beside(x0, x_t_array, "out").out();
  r.eps_out = optional_beside(x0, eps_out_array, "eps_out", &Floats::out);
  r.velocity_out = optional_beside(x0, velocity_out_array, "velocity_out", &Floats::out);
  r.memory = x0.place.memory;
  r.stream = as_stream(stream);
  nb::gil_scoped_release release;
  sampler.forward(r);
}

void reverse_step(Sampler& sampler, const InputArray& x_t_array, const InputArray& model_output_array,
                  int step, int step_index, std::uint64_t seed, std::int64_t first_sample,
                  const InputArray& noise_array, const InputArray& previous_x0_array,
                  const OutputArray& history_array, const OutputArray& x_prev_array,
                  const OutputArray& x0_out_array, std::uintptr_t stream) {
  const Floats x_t = floats(x_t_array, "x_t");
  ReverseStepRequest r;
  r.x_t = x_t.in();
  r.model_output = beside(x_t, model_output_array, "model_output").in();
  r.shape = x_t.batch_shape();
  r.step = step;
  r.step_index = step_index;
  r.previous_x0 = optional_beside(x_t, previous_x0_array, "previous_x0", &Floats::in);
  r.history = history_beside(x_t, history_array);
  r.noise = {seed, first_sample};
  r.variance_noise = optional_beside(x_t, noise_array, "noise", &Floats::in);
  r.x_prev = beside(x_t, x_prev_array, "out").out();
  r.pred_original_sample = optional_beside(x_t, x0_out_array, "x0_out", &Floats::out);
  r.memory = x_t.place.memory;
  r.stream = as_stream(stream);
  nb::gil_scoped_release release;
  sampler.reverse_step(r);
}

// The loop's range, by timestep or by plan position (-1: unset).
struct LoopBounds {
  int start_step = -1, end_step = -1, start_index = -1, end_index = -1;
};

void sample(Sampler& sampler, const OutputArray& x_array, bool initial_given, LoopBounds bounds,
            std::uint64_t seed, std::int64_t first_sample, nb::handle predictor,
            const std::string& framework, const InputArray& labels_array, double guidance_scale,
            double guidance_rescale, std::optional<std::int32_t> unconditional_label,
            const OutputArray& history_array, bool history_given, nb::handle progress,
            bool poll_signals, std::uintptr_t stream) {
  const Floats x = floats(x_array, "out");
  SampleRequest r;
  r.x = x.out();
  r.shape = x.batch_shape();
  r.noise = {seed, first_sample};
  r.initial_noise_given = initial_given;
  r.start_step = bounds.start_step;
  r.end_step = bounds.end_step;
  r.start_index = bounds.start_index;
  r.end_index = bounds.end_index;
  r.memory = x.place.memory;
  r.stream = as_stream(stream);
  if (labels_array.is_valid()) r.class_labels = steps_beside(x, labels_array, "class_labels").span();
  r.guidance_scale = guidance_scale;
  r.guidance_rescale = guidance_rescale;
  r.history = history_beside(x, history_array);
  r.history_given = history_given;

  NoisePredictor* engine_predictor = nullptr;
  std::unique_ptr<CallablePredictor> callable;  // destroyed with the GIL held
  if (!nb::try_cast<NoisePredictor*>(predictor, engine_predictor, false) || engine_predictor == nullptr) {
    callable = std::make_unique<CallablePredictor>(nb::borrow(predictor), parse_framework(framework),
                                                   x.place, x.extents, unconditional_label,
                                                   fractional_model_times(sampler));
    engine_predictor = callable.get();
  }
  if (!progress.is_none()) {
    r.progress = [progress](int done, int total) {
      nb::gil_scoped_acquire gil;
      progress(done, total);
    };
  }
  // Ctrl-C: the engine polls between steps; the KeyboardInterrupt that
  // PyErr_CheckSignals raised is kept and re-raised once the engine has
  // stopped with ddpm::Cancelled.
  std::exception_ptr interrupt;
  if (poll_signals) {
    r.cancelled = [&interrupt] {
      nb::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() == 0) return false;
      interrupt = std::make_exception_ptr(nb::python_error());
      return true;
    };
  }
  try {
    nb::gil_scoped_release release;
    sampler.sample(r, *engine_predictor);
  } catch (const Cancelled&) {
    if (interrupt) std::rethrow_exception(interrupt);
    throw;
  }
}

const char* kSamplerDoc =
    "The engine under ddpm.Sampler: arrays already float32 / int32 and C-contiguous.\n"
    "Use ddpm.Sampler, which converts arrays and allocates results.";

const char* kScheduleDoc =
    "A noise schedule: betas and every table derived from them, in float64.\n\n"
    "Schedule(kind='linear', steps=1000, beta_start=1e-4, beta_end=0.02) with kind\n"
    "linear | scaled_linear | cosine | sigmoid, or Schedule(betas=[...]) for your own.\n"
    "Tables are NumPy copies: beta, alpha, alpha_bar (diffusers' betas, alphas,\n"
    "alphas_cumprod), alpha_bar_prev, sqrt_alpha_bar, sqrt_one_minus_alpha_bar,\n"
    "posterior_variance, ...";

}  // namespace

void bind_sampler(nb::module_& m) {
  m.def(
      "default_timestep_spacing",
      [](const std::string& sampler) { return to_string(default_timestep_spacing(parse_sampler_kind(sampler))); },
      nb::arg("sampler"),
      "The timestep spacing a sampler uses unless timestep_spacing is given (diffusers'\n"
      "default for its scheduler class): 'leading' for ddpm and ddim, 'linspace' for the solvers.");
  m.def(
      "sampler_info",
      [](const std::string& sampler) {
        const SamplerInfo info = sampler_info(parse_sampler_kind(sampler));
        nb::dict d;
        d["name"] = info.name;
        d["diffusers_class"] = info.diffusers_class;
        d["default_timestep_spacing"] = to_string(info.default_spacing);
        d["karras_sigmas"] = info.karras_sigmas;
        d["solver_order"] = info.solver_order;
        d["fractional_timesteps"] = info.fractional_timesteps;
        d["model_calls_per_step"] = info.model_calls_per_step;
        d["eta"] = info.eta;
        d["clip_x0"] = info.clip_x0;
        d["thresholding"] = info.thresholding;
        nb::list types;
        for (const PredictionType type : info.prediction_types) types.append(to_string(type));
        d["prediction_types"] = types;
        d["history_depth"] = info.history_depth;
        d["fixed_solver_order"] = info.fixed_solver_order;
        d["lower_order_sampler"] =
            info.lower_order_sampler ? nb::cast(to_string(*info.lower_order_sampler)) : nb::none();
        return d;
      },
      nb::arg("sampler"),
      "What a step rule declares about itself (the engine's rule registry): its\n"
      "diffusers_class, default_timestep_spacing, whether it takes karras_sigmas,\n"
      "solver_order, eta, clip_x0 and thresholding, the prediction_types it takes,\n"
      "whether the model sees fractional_timesteps, its model_calls_per_step (heun:\n"
      "2), history_depth (earlier x0 predictions a step combines), and\n"
      "fixed_solver_order / lower_order_sampler (dpmpp_3m: 3, 'dpmpp_2m').");
  auto schedule = nb::class_<Schedule>(m, "Schedule", kScheduleDoc);
  schedule
      .def(
          "__init__",
          [](Schedule* self, const std::string& kind, int steps, double beta_start, double beta_end,
             nb::handle betas) {
            ScheduleSpec spec{parse_schedule_kind(kind), steps, beta_start, beta_end, {}};
            if (!betas.is_none()) {
              spec.kind = ScheduleKind::custom;
              spec.betas = doubles(betas);
            } else if (spec.kind == ScheduleKind::custom) {
              throw Error("Schedule(kind='custom') needs betas=");
            }
            new (self) Schedule(Schedule::from_spec(spec));
          },
          nb::arg("kind") = "linear", nb::arg("steps") = 1000, nb::arg("beta_start") = 1e-4,
          nb::arg("beta_end") = 0.02, nb::arg("betas") = nb::none(),
          nb::sig("def __init__(self, kind: str = 'linear', steps: int = 1000, beta_start: float = 0.0001, "
                  "beta_end: float = 0.02, betas: numpy.typing.ArrayLike | None = None) -> None"))
      .def_static("linear", &Schedule::linear, nb::arg("steps") = 1000, nb::arg("beta_start") = 1e-4,
                  nb::arg("beta_end") = 0.02)
      .def_static("cosine", &Schedule::cosine, nb::arg("steps") = 1000)
      .def_static(
          "from_betas", [](nb::handle betas) { return Schedule::from_betas(doubles(betas)); },
          nb::arg("betas"), nb::sig("def from_betas(betas: numpy.typing.ArrayLike) -> Schedule"))
      .def("rescaled_zero_terminal_snr", &Schedule::rescaled_zero_terminal_snr,
           "The schedule rescaled to zero terminal SNR (Lin et al. 2024).")
      .def_prop_ro("steps", &Schedule::steps, "T, the number of training steps.")
      .def("__len__", &Schedule::steps)
      .def_prop_ro("zero_terminal_snr", &Schedule::zero_terminal_snr)
      .def("__repr__", [](const Schedule& s) { return "<ddpm.Schedule T=" + std::to_string(s.steps()) + ">"; });
  // One line per table; diffusers' names beside ddpm's.
  const std::pair<const char*, const std::vector<double>& (Schedule::*)() const> tables[] = {
      {"beta", &Schedule::beta},
      {"betas", &Schedule::beta},
      {"alpha", &Schedule::alpha},
      {"alphas", &Schedule::alpha},
      {"alpha_bar", &Schedule::alpha_bar},
      {"alphas_cumprod", &Schedule::alpha_bar},
      {"alpha_bar_prev", &Schedule::alpha_bar_prev},
      {"sqrt_alpha_bar", &Schedule::sqrt_alpha_bar},
      {"sqrt_one_minus_alpha_bar", &Schedule::sqrt_one_minus_alpha_bar},
      {"sqrt_recip_alpha", &Schedule::sqrt_recip_alpha},
      {"eps_coef", &Schedule::eps_coef},
      {"posterior_variance", &Schedule::posterior_variance},
      {"posterior_mean_coef_x0", &Schedule::posterior_mean_coef_x0},
      {"posterior_mean_coef_xt", &Schedule::posterior_mean_coef_xt},
      {"sqrt_recip_alpha_bar", &Schedule::sqrt_recip_alpha_bar},
      {"sqrt_recipm1_alpha_bar", &Schedule::sqrt_recipm1_alpha_bar},
  };
  for (const auto& [name, table] : tables) {
    schedule.def_prop_ro(name, [table](const Schedule& s) { return numpy_copy((s.*table)()); },
                         nb::rv_policy::automatic);
  }

  nb::class_<PlannedStep>(m, "PlannedStep",
                          "One step of the loop as the rule runs it (see ddpm/sampler.h):\n"
                          "x0_hat = x0_from_sample*x_t + x0_from_model_output*m, and so on.")
      .def_ro("timestep", &PlannedStep::timestep)
      .def_ro("prev_timestep", &PlannedStep::prev_timestep)
      .def_ro("alpha_bar", &PlannedStep::alpha_bar)
      .def_ro("alpha_bar_prev", &PlannedStep::alpha_bar_prev)
      .def_ro("beta", &PlannedStep::beta)
      .def_ro("x0_from_sample", &PlannedStep::x0_from_sample)
      .def_ro("x0_from_model_output", &PlannedStep::x0_from_model_output)
      .def_ro("eps_from_sample", &PlannedStep::eps_from_sample)
      .def_ro("eps_from_model_output", &PlannedStep::eps_from_model_output)
      .def_ro("prev_from_x0", &PlannedStep::prev_from_x0)
      .def_ro("prev_from_eps", &PlannedStep::prev_from_eps)
      .def_ro("prev_from_sample", &PlannedStep::prev_from_sample)
      .def_ro("prev_from_x0_prev", &PlannedStep::prev_from_x0_prev,
              "The weight of the previous step's x0_hat (second-order multistep steps).")
      .def_ro("prev_from_x0_prev2", &PlannedStep::prev_from_x0_prev2,
              "The weight of the x0_hat of two steps back (third-order steps).")
      .def_ro("prev_from_last_sample", &PlannedStep::prev_from_last_sample,
              "The weight of the previous step's sample (Heun's second stage).")
      .def_ro("corrects", &PlannedStep::corrects,
              "UniPC: whether the corrector replaces x_t before the update.")
      .def_ro("corrected_from_last_sample", &PlannedStep::corrected_from_last_sample)
      .def_ro("corrected_from_x0", &PlannedStep::corrected_from_x0)
      .def_prop_ro(
          "corrected_from_x0_prev",
          [](const PlannedStep& s) {
            return nb::make_tuple(s.corrected_from_x0_prev[0], s.corrected_from_x0_prev[1],
                                  s.corrected_from_x0_prev[2]);
          },
          nb::sig("def corrected_from_x0_prev(self) -> tuple[float, float, float]"),
          "The corrector's weights of the x0_hats of 1, 2 and 3 steps back.")
      .def_ro("stage", &PlannedStep::stage,
              "Heun: 1 on a step's first model call, 2 on its second; 0 for other rules.")
      .def_ro("sigma", &PlannedStep::sigma)
      .def_ro("model_timestep", &PlannedStep::model_timestep,
              "The time the model is given (fractional for Euler's timesteps).")
      .def_ro("order", &PlannedStep::order,
              "Model outputs the update combines: 2 on second-order multistep steps.")
      .def_ro("noise_step", &PlannedStep::noise_step)
      .def_ro("error", &PlannedStep::error)
      .def("__repr__", [](const PlannedStep& s) {
        return "<PlannedStep t=" + std::to_string(s.timestep) + " -> " + std::to_string(s.prev_timestep) + ">";
      });

  const auto none = nb::none();
  nb::class_<Sampler>(m, "Sampler", kSamplerDoc)
      .def(
          "__init__",
          [](Sampler* self, const Schedule* schedule, const nb::dict& options) {
            SamplerOptions parsed;
            apply_options(options, parsed);
            Schedule chosen = schedule != nullptr ? *schedule : Schedule::linear();
            nb::gil_scoped_release release;
            new (self) Sampler(std::move(chosen), std::move(parsed));
          },
          nb::arg("schedule").none() = none, nb::arg("options") = nb::dict())
      .def_static(
          "from_config",
          [](const std::string& json, const nb::dict& overrides) {
            return sampler_for(SchedulerConfig::from_json(json), overrides, "scheduler config");
          },
          nb::arg("config_json"), nb::arg("overrides") = nb::dict())
      .def_static(
          "for_model",
          [](const NetworkPredictor& model, const nb::dict& overrides) {
            return sampler_for(model.model_card().recommended_config(), overrides, "model card");
          },
          nb::arg("model"), nb::arg("overrides") = nb::dict())
      .def_prop_ro("backend", [](const Sampler& s) { return to_string(s.backend()); })
      .def_prop_ro("schedule", &Sampler::schedule, nb::rv_policy::reference_internal)
      .def_prop_ro("options", [](const Sampler& s) { return options_dict(s.options()); })
      .def_prop_ro("timesteps", &Sampler::timesteps)
      .def_prop_ro(
          "model_timesteps",
          [](const Sampler& s) {
            const bool fractional = fractional_model_times(s);
            nb::list times;
            for (const PlannedStep& step : s.plan()) times.append(model_time(step, fractional));
            return times;
          },
          nb::sig("def model_timesteps(self) -> list[int] | list[float]"))
      .def_prop_ro("initial_noise_scale", &Sampler::initial_noise_scale)
      .def(
          "history_size",
          [](const Sampler& s, const std::vector<std::int64_t>& shape) { return s.history_size(shape_of(shape)); },
          nb::arg("shape"),
          "The float32 values of a loop's history for a batch of `shape` (batch first): slots of the\n"
          "batch's size; 0 for the rules that keep none.")
      .def_prop_ro("plan", [](const Sampler& s) { return s.plan(); })
      .def("forward", &forward, nb::arg("x0").noconvert(), nb::arg("t"), nb::arg("steps").noconvert().none(),
           nb::arg("noise").noconvert().none(), nb::arg("seed"), nb::arg("first_sample"),
           nb::arg("out").noconvert(), nb::arg("eps_out").noconvert().none(),
           nb::arg("velocity_out").noconvert().none(), nb::arg("stream"))
      .def("step", &reverse_step, nb::arg("x_t").noconvert(), nb::arg("model_output").noconvert(),
           nb::arg("t"), nb::arg("step_index"), nb::arg("seed"), nb::arg("first_sample"),
           nb::arg("noise").noconvert().none(), nb::arg("previous_x0").noconvert().none(),
           nb::arg("history").noconvert().none(), nb::arg("out").noconvert(), nb::arg("x0_out").noconvert().none(),
           nb::arg("stream"))
      .def(
          "sample",
          [](Sampler& sampler, const OutputArray& out, bool initial_given, int start_step, int end_step,
             int start_index, int end_index, std::uint64_t seed, std::int64_t first_sample, nb::handle predictor,
             const std::string& framework, const InputArray& class_labels, double guidance_scale,
             double guidance_rescale, std::optional<std::int32_t> unconditional_label,
             const OutputArray& history, bool history_given, nb::handle progress, bool poll_signals,
             std::uintptr_t stream) {
            sample(sampler, out, initial_given, {start_step, end_step, start_index, end_index}, seed,
                   first_sample, predictor, framework, class_labels, guidance_scale, guidance_rescale,
                   unconditional_label, history, history_given, progress, poll_signals, stream);
          },
          nb::arg("out").noconvert(), nb::arg("initial_given"), nb::arg("start_step"), nb::arg("end_step"),
          nb::arg("start_index"), nb::arg("end_index"), nb::arg("seed"), nb::arg("first_sample"),
          nb::arg("predictor"), nb::arg("framework"), nb::arg("class_labels").noconvert().none(),
          nb::arg("guidance_scale"), nb::arg("guidance_rescale"), nb::arg("unconditional_label").none(),
          nb::arg("history").noconvert().none(), nb::arg("history_given"), nb::arg("progress").none(),
          nb::arg("poll_signals"), nb::arg("stream"),
          nb::sig("def sample(self, out: numpy.typing.ArrayLike, initial_given: bool, start_step: int, "
                  "end_step: int, start_index: int, end_index: int, seed: int, first_sample: int, "
                  "predictor: NoisePredictor | collections.abc.Callable, framework: str, "
                  "class_labels: numpy.typing.ArrayLike | None, guidance_scale: float, "
                  "guidance_rescale: float, unconditional_label: int | None, "
                  "history: numpy.typing.ArrayLike | None, history_given: bool, "
                  "progress: collections.abc.Callable[[int, int], None] | None, poll_signals: bool, "
                  "stream: int) -> None"))
      .def(
          "synchronize",
          [](Sampler& s, std::uintptr_t stream) {
            nb::gil_scoped_release release;
            s.synchronize(as_stream(stream));
          },
          nb::arg("stream") = 0, "Waits for the work queued on `stream` (CUDA backend).");
}

}  // namespace ddpm::python
