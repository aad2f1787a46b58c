#include "predictors.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "ddpm/unet2d.h"
#include "module.h"
#include "options.h"

namespace ddpm::python {
namespace {

// A JSON text from a dict (through Python's json) or a str as it is.
std::string json_text(nb::handle value) {
  if (nb::isinstance<nb::str>(value)) return nb::cast<std::string>(value);
  return nb::cast<std::string>(nb::module_::import_("json").attr("dumps")(value));
}

// os.fspath(path) as a str.
std::string path_text(nb::handle path) {
  return nb::cast<std::string>(nb::module_::import_("os").attr("fspath")(path));
}

// A scalar, or per-element values as a flat float32 vector.
bool is_scalar(nb::handle v) {
  return nb::cast<int>(nb::module_::import_("numpy").attr("ndim")(v)) == 0;
}
std::vector<float> per_element(nb::handle v) {
  nb::module_ np = nb::module_::import_("numpy");
  nb::object flat = np.attr("ascontiguousarray")(np.attr("asarray")(v, "float32").attr("reshape")(-1));
  const auto array = nb::cast<nb::ndarray<const float, nb::ndim<1>, nb::device::cpu>>(flat);
  return {array.data(), array.data() + array.shape(0)};
}

nb::object json_loads(const std::string& text) {
  return nb::module_::import_("json").attr("loads")(text);
}

GaussianPrior gaussian_prior(nb::handle mean, nb::handle std, const char* mean_name, const char* std_name) {
  GaussianPrior prior;
  if (is_scalar(mean)) {
    prior.mean = static_cast<float>(number(mean, mean_name));
  } else {
    prior.means = per_element(mean);
  }
  if (is_scalar(std)) {
    prior.std = static_cast<float>(number(std, std_name));
  } else {
    prior.stds = per_element(std);
  }
  return prior;
}

// (mean, std): each a float, or a list where the prior is per element.
nb::tuple prior_pair(const GaussianPrior& p) {
  const nb::object mean = p.means.empty() ? nb::object(nb::float_(p.mean)) : nb::cast(p.means);
  const nb::object std = p.stds.empty() ? nb::object(nb::float_(p.std)) : nb::cast(p.stds);
  return nb::make_tuple(mean, std);
}

// A mixture from a dict, its JSON text or a path to a JSON file.
GmmSpec gmm_spec(nb::handle spec) {
  const bool text = nb::isinstance<nb::str>(spec) && nb::cast<std::string>(spec).find('{') != std::string::npos;
  return (nb::isinstance<nb::dict>(spec) || text) ? GmmSpec::from_json(json_text(spec))
                                                  : GmmSpec::load(path_text(spec));
}

nb::dict spec_dict(const GmmSpec& spec) {
  nb::dict d;
  d["weights"] = spec.weights;
  d["means"] = spec.means;
  d["stds"] = spec.stds;
  return d;
}

}  // namespace

CallablePredictor::CallablePredictor(nb::object bridge, Framework framework, Place place,
                                     std::vector<std::int64_t> extents,
                                     std::optional<std::int32_t> unconditional_label, bool fractional_time)
    : bridge_(std::move(bridge)),
      framework_(framework),
      place_(place),
      extents_(std::move(extents)),
      unconditional_label_(unconditional_label),
      fractional_time_(fractional_time) {}

CallablePredictor::~CallablePredictor() = default;

void CallablePredictor::predict(const PredictorCall& call) {
  nb::gil_scoped_acquire gil;
  // Ctrl-C between steps, also where the engine itself does not poll.
  if (PyErr_CheckSignals() != 0) throw nb::python_error();
  std::vector<std::size_t> shape(extents_.begin(), extents_.end());
  shape.front() = static_cast<std::size_t>(call.shape.batch);
  std::size_t dim = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) dim *= shape[i];
  if (static_cast<std::int64_t>(dim) != call.shape.dim) {
    shape = {static_cast<std::size_t>(call.shape.batch), static_cast<std::size_t>(call.shape.dim)};
  }
  nb::object x_t = float_view(framework_, call.x_t, shape, place_, true);
  nb::object output = float_view(framework_, call.model_output, shape, place_, false);
  nb::object t = call.steps != nullptr
                     ? int_view(framework_, call.steps, static_cast<std::size_t>(call.shape.batch), place_)
                     : fractional_time_ ? nb::object(nb::float_(static_cast<double>(call.timestep)))
                                        : nb::object(nb::int_(call.step));
  nb::object labels =
      call.class_labels != nullptr
          ? int_view(framework_, call.class_labels, static_cast<std::size_t>(call.shape.batch), place_)
          : nb::none();
  bridge_(x_t, t, output, labels);
}

bool fractional_model_times(const Sampler& sampler) {
  // diffusers' sigma-space schedulers keep float32 timesteps.
  if (sampler_info(sampler.options().sampler).fractional_timesteps) return true;
  for (const PlannedStep& step : sampler.plan()) {
    if (static_cast<double>(static_cast<float>(step.model_timestep)) != static_cast<double>(step.timestep)) {
      return true;
    }
  }
  return false;
}

nb::object model_time(const PlannedStep& step, bool fractional) {
  if (!fractional) return nb::int_(step.timestep);
  return nb::float_(static_cast<double>(static_cast<float>(step.model_timestep)));
}

void bind_predictors(nb::module_& m) {
  nb::class_<NoisePredictor>(
      m, "NoisePredictor",
      "A model of the reverse process: writes eps (or x0, or v) for a batch of x_t.\n\n"
      "The built-in predictors derive from it. Any Python callable f(x_t, t) -> model_output\n"
      "can be given to Sampler.sample instead (see ddpm.Predictor).")
      .def(
          "supports",
          [](const NoisePredictor& p, const std::string& memory) {
            if (memory != "host" && memory != "device") {
              throw Error("memory must be 'host' or 'device', got '" + memory + "'");
            }
            return p.supports(memory == "host" ? Memory::host : Memory::device);
          },
          nb::arg("memory"), "Whether predict() accepts arrays in 'host' or 'device' memory.")
      .def_prop_ro("capturable", &NoisePredictor::capturable,
                   "True when the predictor can be recorded into a CUDA Graph.")
      .def_prop_ro("unconditional_label", &NoisePredictor::unconditional_label,
                   "The class label that asks for the unconditional output (classifier-free\n"
                   "guidance), or None: the predictor has no unconditional model.")
      .def_prop_ro("split_alignment", &NoisePredictor::split_alignment,
                   "Parts of a batch that begin at global samples (first_sample) that are\n"
                   "multiples of this give the same bits as one call: 1 for the analytic\n"
                   "predictors, 64 for MlpPredictor on the CPU (it computes 64-sample blocks\n"
                   "alone, since BLAS rounds differently in products of different sizes).");

  nb::class_<GaussianPredictor, NoisePredictor>(
      m, "GaussianPredictor",
      "The exact E[eps | x_t] for x0 ~ N(mean, std^2) element-wise (built in and fused\n"
      "into the step). mean and std are numbers or per-element arrays of a sample's size.\n"
      "With std = 0 and mean = a known x0 it is the oracle: sampling returns x0.\n\n"
      "unconditional=(mean, std): the prior of the unconditional model, for classifier-free\n"
      "guidance (Sampler.sample(guidance_scale=w) then samples N(m_u + w (m - m_u), std^2)\n"
      "in the limit of many steps when the stds are equal); labels are not needed.")
      .def(
          "__init__",
          [](GaussianPredictor* self, nb::handle mean, nb::handle std, nb::handle unconditional) {
            GaussianPrior prior = gaussian_prior(mean, std, "mean", "std");
            std::optional<GaussianPrior> unconditional_prior;
            if (!unconditional.is_none()) {
              if (!(nb::isinstance<nb::tuple>(unconditional) || nb::isinstance<nb::list>(unconditional)) ||
                  nb::len(unconditional) != 2) {
                throw nb::type_error(("unconditional must be None or a pair (mean, std), got " +
                                      std::string(nb::type_name(unconditional.type()).c_str()))
                                         .c_str());
              }
              unconditional_prior = gaussian_prior(unconditional[0], unconditional[1], "unconditional mean",
                                                   "unconditional std");
            }
            new (self) GaussianPredictor(std::move(prior), std::move(unconditional_prior));
          },
          nb::arg("mean") = 0.0, nb::arg("std") = 1.0, nb::kw_only(), nb::arg("unconditional") = nb::none(),
          nb::sig("def __init__(self, mean: float | numpy.typing.ArrayLike = 0.0, std: float | "
                  "numpy.typing.ArrayLike = 1.0, *, unconditional: tuple[float | numpy.typing.ArrayLike, "
                  "float | numpy.typing.ArrayLike] | None = None) -> None"))
      .def_prop_ro("mean", [](const GaussianPredictor& p) { return p.prior().mean; })
      .def_prop_ro("std", [](const GaussianPredictor& p) { return p.prior().std; })
      .def_prop_ro("means", [](const GaussianPredictor& p) { return p.prior().means; },
                   "Per-element means (empty when the scalar mean applies).")
      .def_prop_ro("stds", [](const GaussianPredictor& p) { return p.prior().stds; },
                   "Per-element stds (empty when the scalar std applies).")
      .def_prop_ro(
          "unconditional",
          [](const GaussianPredictor& p) -> nb::object {
            if (!p.unconditional_prior()) return nb::none();
            return prior_pair(*p.unconditional_prior());
          },
          nb::sig("def unconditional(self) -> tuple[float | list[float], float | list[float]] | None"),
          "The unconditional prior as (mean, std) (lists where per element), or None.");

  nb::class_<GmmPredictor, NoisePredictor>(
      m, "GmmPredictor",
      "The exact posterior expectations for an isotropic Gaussian mixture. spec is a dict\n"
      "{'weights': [...], 'means': [[...], ...], 'stds': [...]}, its JSON text, or a path\n"
      "to a JSON file of that form. unconditional: the mixture of the unconditional model,\n"
      "in the same forms, for classifier-free guidance (labels are not needed).")
      .def(
          "__init__",
          [](GmmPredictor* self, nb::handle spec, nb::handle unconditional) {
            GmmSpec parsed = gmm_spec(spec);
            std::optional<GmmSpec> unconditional_spec;
            if (!unconditional.is_none()) unconditional_spec = gmm_spec(unconditional);
            new (self) GmmPredictor(std::move(parsed), std::move(unconditional_spec));
          },
          nb::arg("spec"), nb::kw_only(), nb::arg("unconditional") = nb::none(),
          nb::sig("def __init__(self, spec: dict | str | os.PathLike, *, "
                  "unconditional: dict | str | os.PathLike | None = None) -> None"))
      .def_prop_ro("dim", [](const GmmPredictor& p) { return p.spec().dim(); })
      .def_prop_ro("components", [](const GmmPredictor& p) { return p.spec().components(); })
      .def_prop_ro("weights", [](const GmmPredictor& p) { return p.spec().weights; })
      .def_prop_ro("means", [](const GmmPredictor& p) { return p.spec().means; })
      .def_prop_ro("stds", [](const GmmPredictor& p) { return p.spec().stds; })
      .def_prop_ro(
          "unconditional",
          [](const GmmPredictor& p) -> nb::object {
            if (!p.unconditional_spec()) return nb::none();
            return spec_dict(*p.unconditional_spec());
          },
          nb::sig("def unconditional(self) -> dict | None"),
          "The unconditional mixture as a dict {'weights', 'means', 'stds'}, or None.");

  nb::class_<NetworkPredictor, NoisePredictor>(
      m, "NetworkPredictor",
      "A trained network of any architecture (ddpm.load_model creates the one a model\n"
      "file's card names); its card is .card.")
      .def_prop_ro("architecture", [](const NetworkPredictor& p) { return p.model_card().architecture; },
                   "The card's architecture (e.g. 'mlp_denoiser').");

  m.def(
      "load_model",
      [](nb::handle path, int threads, bool allow_tf32, std::optional<std::string> variant,
         const std::string& precision) {
        const std::string file = path_text(path);
        const Precision parsed = parse_precision(precision);
        nb::gil_scoped_release release;
        return load_model(file, {.threads = threads,
                                 .allow_tf32 = allow_tf32,
                                 .variant = variant.value_or(""),
                                 .precision = parsed});
      },
      nb::arg("path"), nb::arg("threads") = 0, nb::arg("allow_tf32") = false, nb::arg("variant") = nb::none(),
      nb::arg("precision") = "fp32",
      nb::sig("def load_model(path: str | os.PathLike, threads: int = 0, allow_tf32: bool = False, "
              "variant: str | None = None, precision: str = 'fp32') -> NetworkPredictor"),
      "Reads a trained network: a diffusers UNet2DModel or pipeline folder (a\n"
      "UNet2DPredictor; variant='fp16' reads diffusion_pytorch_model.fp16.safetensors),\n"
      "or a model file whose card names its architecture (an MlpPredictor for\n"
      "'mlp_denoiser'); ddpm.Error names what it cannot read.");

  nb::class_<MlpPredictor, NetworkPredictor>(
      m, "MlpPredictor",
      "A trained mlp_denoiser network (a .safetensors file with a model card, see\n"
      "docs/model-format.md): OpenBLAS on the CPU, cuBLAS on a CUDA device. Class labels\n"
      "go to Sampler.sample(class_labels=...). Sampler.for_model(predictor) builds the\n"
      "sampler the card recommends.")
      .def(
          "__init__",
          [](MlpPredictor* self, nb::handle path, int threads, bool allow_tf32) {
            const std::string file = path_text(path);
            nb::gil_scoped_release release;
            new (self) MlpPredictor(file, {.threads = threads, .allow_tf32 = allow_tf32});
          },
          nb::arg("path"), nb::arg("threads") = 0, nb::arg("allow_tf32") = false,
          nb::sig("def __init__(self, path: str | os.PathLike, threads: int = 0, allow_tf32: bool = False) -> None"))
      .def_prop_ro("card", [](const MlpPredictor& p) { return json_loads(p.card().json); },
                   "The model card as stored (a dict).")
      .def_prop_ro(
          "scheduler_config",
          [](const MlpPredictor& p) {
            // An object, not the item accessor, which would refer to the
            // temporary dict after the return.
            return nb::object(json_loads(p.card().json)["scheduler"]);
          },
          "The diffusers scheduler config the model was trained with (a dict; "
          "Sampler.from_config takes it).")
      .def_prop_ro(
          "recommended_sampler",
          [](const MlpPredictor& p) {
            const RecommendedSampler& s = p.card().sampler;
            nb::dict d;
            d["name"] = s.name;
            d["num_inference_steps"] = s.num_inference_steps;
            d["timestep_spacing"] = s.timestep_spacing;
            d["eta"] = s.eta;
            d["clip_sample"] = s.clip_sample;
            d["guidance_scale"] = s.guidance_scale;
            return d;
          },
          "The sampler the model was checked with (the card's 'sampler').")
      .def_prop_ro(
          "guidance_scale", [](const MlpPredictor& p) { return p.card().sampler.guidance_scale; },
          "The classifier-free guidance scale the card recommends: Sampler.sample uses it\n"
          "when class_labels are given and guidance_scale is not.")
      .def_prop_ro(
          "normalization",
          [](const MlpPredictor& p) {
            const DataNormalization& n = p.normalization();
            nb::dict d;
            d["model_min"] = n.model_min;
            d["model_max"] = n.model_max;
            d["pixel_min"] = n.pixel_min;
            d["pixel_max"] = n.pixel_max;
            d["pixel_scale"] = n.pixel_scale;
            d["pixel_offset"] = n.pixel_offset;
            return d;
          },
          "Model space to data units: pixel = (x + pixel_offset) * pixel_scale.")
      .def_prop_ro("prediction_type", [](const MlpPredictor& p) { return to_string(p.prediction_type()); })
      .def_prop_ro("data_dim", &MlpPredictor::data_dim)
      .def_prop_ro("data_shape", [](const MlpPredictor& p) { return p.card().data_shape; })
      .def_prop_ro("num_classes", &MlpPredictor::num_classes)
      .def_prop_ro("null_label", &MlpPredictor::null_label,
                   "The 'no class' label (classifier-free guidance); -1 for an unconditional model.")
      .def_prop_ro("class_names", [](const MlpPredictor& p) { return p.card().class_names; });

  nb::class_<UNet2DPredictor, NetworkPredictor>(
      m, "UNet2DPredictor",
      "A diffusers UNet2DModel folder (config.json and diffusion_pytorch_model.safetensors)\n"
      "or a pipeline folder (model_index.json, unet/, scheduler/), see docs/model-format.md.\n"
      "Sampler.for_model(model) builds the sampler its scheduler config gives; calling it,\n"
      "model(sample, timestep, class_labels), is diffusers' UNet2DModel(...).sample.")
      .def(
          "__init__",
          [](UNet2DPredictor* self, nb::handle path, int threads, std::optional<std::string> variant,
             const std::string& precision) {
            const std::string folder = path_text(path);
            const Precision parsed = parse_precision(precision);
            nb::gil_scoped_release release;
            new (self) UNet2DPredictor(folder, {.threads = threads, .variant = variant.value_or(""),
                                                .precision = parsed});
          },
          nb::arg("path"), nb::arg("threads") = 0, nb::arg("variant") = nb::none(), nb::arg("precision") = "fp32",
          nb::sig("def __init__(self, path: str | os.PathLike, threads: int = 0, variant: str | None = None, "
                  "precision: str = 'fp32') -> None"))
      .def_prop_ro("config", [](const UNet2DPredictor& p) { return json_loads(p.config().json); },
                   "config.json as a dict.")
      .def_prop_ro(
          "scheduler_config",
          [](const UNet2DPredictor& p) -> nb::object {
            if (p.scheduler_config_json().empty()) return nb::none();
            return json_loads(p.scheduler_config_json());
          },
          nb::sig("def scheduler_config(self) -> dict | None"),
          "A pipeline folder's scheduler/scheduler_config.json as a dict (None for a bare model folder,\n"
          "which samples with DDPMScheduler's defaults).")
      .def_prop_ro("prediction_type", [](const UNet2DPredictor& p) { return to_string(p.model_card().prediction_type); })
      .def_prop_ro("sample_shape", [](const UNet2DPredictor& p) { return p.model_card().sample_shape; },
                   "[channels, height, width] of one sample ([] without a sample_size).")
      .def_prop_ro("num_class_embeds", [](const UNet2DPredictor& p) { return p.config().num_class_embeds; })
      .def_prop_ro("null_label", [](const UNet2DPredictor& p) { return p.model_card().null_label; },
                   "The label guidance uses as 'no class': the last class embedding (-1: unconditional).")
      .def_prop_ro("guidance_scale", [](const UNet2DPredictor& p) { return p.model_card().sampler.guidance_scale; })
      .def_prop_ro("parameter_count", &UNet2DPredictor::parameter_count)
      .def("set_sample_size", &UNet2DPredictor::set_sample_size, nb::arg("height"), nb::arg("width"),
           "Sample at another spatial size (multiples of 2^(levels - 1)).")
      .def(
          "__call__",
          [](const UNet2DPredictor& p, nb::handle sample, nb::handle timestep, nb::handle class_labels) {
            nb::module_ np = nb::module_::import_("numpy");
            nb::object x = np.attr("ascontiguousarray")(np.attr("asarray")(sample, "float32"));
            if (nb::cast<int>(x.attr("ndim")) != 4) {
              throw nb::value_error("sample must be [batch, channels, height, width]");
            }
            const auto in = nb::cast<nb::ndarray<const float, nb::ndim<4>, nb::c_contig, nb::device::cpu>>(x);
            const auto batch = static_cast<std::int64_t>(in.shape(0));
            if (static_cast<int>(in.shape(1)) != p.config().in_channels) {
              throw nb::value_error(("sample has " + std::to_string(in.shape(1)) + " channels; the model takes [batch, " +
                                     std::to_string(p.config().in_channels) + ", height, width]")
                                        .c_str());
            }
            // diffusers turns a Python number into a long tensor (17.5 -> 17);
            // arrays and tensors keep fractional times.
            nb::object t = nb::isinstance<nb::float_>(timestep) || nb::isinstance<nb::int_>(timestep)
                               ? np.attr("asarray")(np.attr("trunc")(timestep), "float32")
                               : np.attr("asarray")(timestep, "float32");
            std::vector<float> times;
            for (nb::handle v : t.attr("reshape")(-1)) times.push_back(nb::cast<float>(v));
            if (times.size() == 1) times.assign(static_cast<std::size_t>(batch), times[0]);
            if (static_cast<std::int64_t>(times.size()) != batch) {
              throw nb::value_error("timestep must be one time or one per sample");
            }
            std::vector<std::int32_t> labels;
            if (!class_labels.is_none()) {
              // As diffusers' embedding lookup: integer labels only (1.5 is no label).
              nb::object given = np.attr("asarray")(class_labels);
              if (!nb::cast<bool>(np.attr("issubdtype")(given.attr("dtype"), np.attr("integer")))) {
                throw nb::type_error("class_labels must be integers");
              }
              for (nb::handle v : given.attr("astype")("int64").attr("reshape")(-1)) {
                labels.push_back(static_cast<std::int32_t>(std::clamp<std::int64_t>(
                    nb::cast<std::int64_t>(v), -1, std::numeric_limits<std::int32_t>::max())));
              }
            }
            nb::object out = np.attr("empty")(
                nb::make_tuple(batch, p.config().out_channels, in.shape(2), in.shape(3)), "float32");
            auto result = nb::cast<nb::ndarray<float, nb::ndim<4>, nb::c_contig, nb::device::cpu>>(out);
            {
              nb::gil_scoped_release release;
              p.evaluate({in.data(), in.size()}, batch, static_cast<std::int64_t>(in.shape(2)),
                         static_cast<std::int64_t>(in.shape(3)), times, labels, {result.data(), result.size()});
            }
            return out;
          },
          nb::arg("sample"), nb::arg("timestep"), nb::arg("class_labels") = nb::none(),
          nb::sig("def __call__(self, sample: ArrayLike, timestep: float | ArrayLike, class_labels: ArrayLike | None = None) "
                  "-> numpy.ndarray"),
          "The network on the CPU: float32 [batch, out_channels, height, width], as diffusers'\n"
          "UNet2DModel(sample, timestep, class_labels).sample (a Python number timestep is\n"
          "truncated to an integer, as diffusers does; arrays keep fractional times).");

  m.def(
      "make_predictor",
      [](nb::handle description) {
        const std::string text = json_text(description);
        nb::gil_scoped_release release;
        return make_predictor(text);
      },
      nb::arg("description"),
      nb::sig("def make_predictor(description: dict | str) -> NoisePredictor"),
      "A predictor from its description, the form configuration files use:\n"
      "{'type': 'gaussian', 'mean': 0.5, 'std': 0.3}, {'type': 'gmm', 'path': 'spec.json'},\n"
      "{'type': 'mlp', 'path': 'model.safetensors', 'threads': 0, 'allow_tf32': False}.\n"
      "gaussian and gmm take 'unconditional': {a prior or mixture of the same form} for\n"
      "classifier-free guidance.");
}

}  // namespace ddpm::python
