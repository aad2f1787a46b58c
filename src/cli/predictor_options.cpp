#include "predictor_options.h"

#include <charconv>
#include <cstdlib>
#include <limits>

#include <nlohmann/json.hpp>

#include "command_line.h"
#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "ddpm/unet2d.h"
#include "input_arrays.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

// guidance_rescale: a weight >= 0 (Lin et al. use 0.7; diffusers sets no
// upper bound, and above 1 it extrapolates past the rescaled output). NaN
// and Inf are refused for every number option (refuse_non_finite_numbers).
CLI::Validator non_negative_number() {
  return parsed_by([](const std::string& text) {
    if (std::strtod(text.c_str(), nullptr) < 0.0) {
      throw Error("'" + text + "' is negative (a weight >= 0, e.g. 0.7)");
    }
  });
}

// What a per-element prior value must be (the gaussian predictor's limits).
struct ValueRange {
  float lo;
  float hi;
  const char* expected;
};
constexpr ValueRange kPriorMeans{-1e30f, 1e30f,
                                 "a finite number with magnitude <= 1e30 (the float32 range "
                                 "the engine computes in)"};
constexpr ValueRange kPriorStds{0.0f, 1e15f,
                                "a finite number >= 0 and <= 1e15 (its square must stay in "
                                "float32 range)"};

// "3,64,64", as --shape takes it.
std::string comma_list(const std::vector<std::int64_t>& shape) {
  std::string text;
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text;
}

std::string shape_list(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// A shape without its leading 1s ([1, 3, 64, 64] -> [3, 64, 64]).
std::vector<std::int64_t> without_leading_ones(std::vector<std::int64_t> shape) {
  while (shape.size() > 1 && shape.front() == 1) shape.erase(shape.begin());
  return shape;
}

// Per-element prior values: one per element of a sample, each checked here,
// where the file's name and the index are known (JSON, which carries them on
// to the predictor, has no NaN). A flat file fits any sample of as many
// elements; a multi-dimensional one (an image is [1, C, H, W]) must have the
// sample's shape, so that a photograph is never laid out as another shape.
std::vector<float> read_per_element(const std::string& path, const std::string& flag,
                                    std::int64_t dim, const std::vector<std::int64_t>& extents,
                                    const ValueRange& range) {
  NpyArray values = read_input_array(path);
  if (static_cast<std::int64_t>(values.data.size()) != dim) {
    throw Error("shape mismatch: " + flag + " " + path + " has " +
                std::to_string(values.data.size()) + " values but a sample has " +
                std::to_string(dim) + " elements");
  }
  const std::vector<std::int64_t> file = without_leading_ones(values.shape);
  const std::vector<std::int64_t> sample =
      without_leading_ones(std::vector<std::int64_t>(extents.begin() + (extents.empty() ? 0 : 1), extents.end()));
  if (file.size() > 1 && sample.size() > 1 && file != sample) {
    throw Error("shape mismatch: " + flag + " " + path + " is " + shape_list(values.shape) +
                " but a sample is " + shape_list(sample) + " (--shape N," + comma_list(file) +
                " takes it as it is)");
  }
  for (std::size_t i = 0; i < values.data.size(); ++i) {
    const float v = values.data[i];
    if (!(v >= range.lo && v <= range.hi)) {
      throw Error(flag + " " + path + ": element " + std::to_string(i) + " is " +
                  format_number(v) + "; expected " + range.expected);
    }
  }
  return std::move(values.data);
}

void refuse_given(const PredictorOptions& o, const std::vector<CLI::Option*>& flags,
                  const std::string& reason) {
  for (const CLI::Option* flag : flags) {
    if (o.given(flag)) throw UsageError(flag->get_name() + " " + reason);
  }
}

// The labels of `batch` rows from --class, checked against the model's classes.
std::vector<std::int32_t> model_labels(const PredictorOptions& o, const NetworkPredictor& model,
                                       std::int64_t batch) {
  const int classes = model.model_card().num_classes;
  if (classes == 0) {
    throw Error("--class: the model " + o.model_path +
                " is unconditional (its card has num_classes 0): it takes no class");
  }
  const ClassSpec spec = parse_class_spec(o.class_text);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  if (spec.all) {
    for (std::int64_t i = 0; i < batch; ++i) labels[i] = static_cast<std::int32_t>(i % classes);
    return labels;
  }
  if (spec.labels.size() != 1 && static_cast<std::int64_t>(spec.labels.size()) != batch) {
    throw Error("--class gives " + std::to_string(spec.labels.size()) +
                " labels but the batch has " + std::to_string(batch) +
                " samples: give one class for all, one per sample, or all");
  }
  for (std::size_t i = 0; i < spec.labels.size(); ++i) {
    if (spec.labels[i] >= classes) {
      throw Error("--class " + std::to_string(spec.labels[i]) +
                  " is outside the model's classes 0.." + std::to_string(classes - 1) + " (" +
                  std::to_string(model.model_card().null_label) +
                  " is its null label: leave --class out for unconditional samples)");
    }
  }
  if (spec.labels.size() == 1) return std::vector<std::int32_t>(labels.size(), spec.labels[0]);
  return spec.labels;
}

// The description make_predictor builds a built-in predictor from.
nlohmann::json builtin_description(const PredictorOptions& o, Shape shape,
                                   const std::vector<std::int64_t>& extents) {
  nlohmann::json description;
  if (o.predictor == "gaussian") {
    description = {{"type", "gaussian"}, {"mean", o.mean}, {"std", o.std}};
    if (!o.mean_path.empty())
      description["means"] = read_per_element(o.mean_path, "--mean-npy", shape.dim, extents, kPriorMeans);
    if (!o.std_path.empty())
      description["stds"] = read_per_element(o.std_path, "--std-npy", shape.dim, extents, kPriorStds);
    if (o.given(o.uncond_mean_flag) || o.given(o.uncond_std_flag)) {
      // Each unconditional value not given is the conditional one.
      nlohmann::json unconditional = description;
      unconditional.erase("type");
      if (o.given(o.uncond_mean_flag)) {
        unconditional["mean"] = o.uncond_mean;
        unconditional.erase("means");
      }
      if (o.given(o.uncond_std_flag)) {
        unconditional["std"] = o.uncond_std;
        unconditional.erase("stds");
      }
      description["unconditional"] = unconditional;
    }
    return description;
  }
  description = {{"type", "gmm"}, {"path", o.gmm_path}};
  if (!o.uncond_gmm_path.empty()) description["unconditional"] = {{"path", o.uncond_gmm_path}};
  return description;
}

void check_gmm_dim(const GmmSpec& spec, const std::string& flag, const std::string& path,
                   Shape shape, const std::string& shape_text) {
  if (spec.dim() != shape.dim) {
    throw Error("dimension mismatch: " + flag + " " + path + " has dimension " +
                std::to_string(spec.dim()) + " but a sample of " + shape_text + " has " +
                std::to_string(shape.dim) + " elements");
  }
}

}  // namespace

ClassSpec parse_class_spec(const std::string& text) {
  if (text == "all") return {true, {}};
  ClassSpec spec;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
    std::int32_t label = 0;
    const char* end = part.data() + part.size();
    const auto [stop, error] = std::from_chars(part.data(), end, label);
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos ||
        error != std::errc() || stop != end) {
      throw Error("'" + text +
                  "' is not a class: expected a class number K >= 0, a list K0,K1,... " +
                  "with one per sample, or all");
    }
    spec.labels.push_back(label);
    if (comma == std::string::npos) return spec;
    start = comma + 1;
  }
}

void PredictorOptions::add_to(CLI::App& command) {
  predictor_flag =
      command
          .add_option("--predictor", predictor,
                      "gaussian (element-wise prior) or gmm (mixture); --model uses a network")
          ->check(CLI::IsMember({"gaussian", "gmm"}))
          ->capture_default_str();
  auto* mean_flag =
      command.add_option("--mean", mean, "gaussian prior mean")->capture_default_str();
  auto* std_flag =
      command.add_option("--std", std, "gaussian prior std (>= 0)")->capture_default_str();
  auto* mean_npy =
      command.add_option("--mean-npy", mean_path, "per-element prior means (.npy with dim values, or a PNG/JPEG image)")
          ->excludes(mean_flag);
  auto* std_npy =
      command.add_option("--std-npy", std_path, "per-element prior stds (.npy with dim values, or a PNG/JPEG image)")
          ->excludes(std_flag);
  uncond_mean_flag = command.add_option(
      "--uncond-mean", uncond_mean,
      "gaussian: the unconditional prior's mean, for --guidance-scale (default: the\n"
      "conditional prior's, --mean or --mean-npy)");
  uncond_std_flag = command.add_option(
      "--uncond-std", uncond_std,
      "gaussian: the unconditional prior's std (default: the conditional prior's)");
  gaussian_flags = {mean_flag, std_flag, mean_npy, std_npy, uncond_mean_flag, uncond_std_flag};
  auto* gmm_flag = command.add_option(
      "--gmm", gmm_path,
      R"(mixture spec JSON: {"weights": [...], "means": [[...]], "stds": [...]})");
  auto* uncond_gmm =
      command.add_option("--uncond-gmm", uncond_gmm_path,
                         "gmm: the unconditional mixture (spec JSON), for --guidance-scale");
  gmm_flags = {gmm_flag, uncond_gmm};
  auto* model =
      command
          .add_option("--model", model_path,
                      "a trained network: an mlp_denoiser .safetensors with its model card, or a\n"
                      "diffusers UNet2DModel folder (config.json and its safetensors) or pipeline\n"
                      "folder (model_index.json, unet/, scheduler/) (docs/model-format.md); its\n"
                      "schedule and recommended sampler are the defaults of every schedule and\n"
                      "rule flag not given")
          ->excludes(predictor_flag);
  class_flag =
      command
          .add_option("--class", class_text,
                      "--model: the class of every sample (K), one per sample (K0,K1,...), or all\n"
                      "(sample i gets class i mod the number of classes); default: none, i.e.\n"
                      "the null label (unconditional samples)")
          ->check(parsed_by([](const std::string& text) { parse_class_spec(text); }));
  auto* tf32 = command.add_flag("--allow-tf32", allow_tf32,
                                "--model on a CUDA device: let cuBLAS use TF32 (faster, ~1e-3)");
  auto* variant_flag =
      command.add_option("--variant", variant,
                         "--model FOLDER: read diffusion_pytorch_model.VARIANT.safetensors (diffusers'\n"
                         "variant, e.g. fp16: half weights, widened to the --precision computed in)");
  auto* precision_flag =
      command
          .add_option("--precision", precision,
                      "--model FOLDER: the forward pass's arithmetic: fp32; on CUDA also tf32,\n"
                      "fp16 or bf16 (weights and activations in half, float accumulation)")
          ->check(CLI::IsMember({"fp32", "tf32", "fp16", "bf16"}))
          ->capture_default_str();
  model_flags = {class_flag, tf32, variant_flag, precision_flag};
  (void)model;
  guidance_scale_flag =
      command
          .add_option("--guidance-scale", guidance_scale,
                      "classifier-free guidance weight w: u + w (c - u), c the conditional and u\n"
                      "the unconditional prediction, from one batched call of 2N rows; 1: none.\n"
                      "Default: the model card's recommendation with --model and --class, else 1");
  guidance_rescale_flag =
      command
          .add_option("--guidance-rescale", guidance_rescale,
                      "diffusers' guidance_rescale, a weight >= 0 (Lin et al. 2024 use 0.7):\n"
                      "rescales the guided output towards the conditional one's std")
          ->check(non_negative_number())
          ->capture_default_str();
}

ChosenPredictor load_predictor(const PredictorOptions& o, int threads) {
  ChosenPredictor chosen;
  if (o.has_model()) {
    refuse_given(o, o.gaussian_flags, "does not apply to --model (the network is the predictor)");
    refuse_given(o, o.gmm_flags, "does not apply to --model (the network is the predictor)");
    std::unique_ptr<NetworkPredictor> network =
        load_model(o.model_path, {.threads = threads,
                                  .allow_tf32 = o.allow_tf32,
                                  .variant = o.variant,
                                  .precision = parse_precision(o.precision)});
    chosen.model = network.get();
    chosen.predictor = std::move(network);
    return chosen;
  }
  if (o.given(o.class_flag)) {
    throw UsageError("--class applies only to a class-conditional --model; --predictor " +
                     o.predictor + " takes no class (its conditional prior is --" +
                     (o.predictor == "gmm" ? std::string("gmm") : std::string("mean/--std")) + ")");
  }
  refuse_given(o, o.model_flags, "applies only to --model");
  if (o.predictor == "gaussian") {
    refuse_given(o, o.gmm_flags, "applies only to --predictor gmm");
  } else {
    refuse_given(o, o.gaussian_flags, "applies only to --predictor gaussian");
    if (o.gmm_path.empty()) throw UsageError("--predictor gmm needs --gmm SPEC.json");
  }
  return chosen;
}

std::optional<SchedulerConfig> model_defaults(const ChosenPredictor& chosen) {
  if (chosen.model == nullptr) return std::nullopt;
  return chosen.model->model_card().recommended_config();
}

void finish_predictor(const PredictorOptions& o, ChosenPredictor& chosen, Shape shape,
                      const std::string& shape_text, const std::vector<std::int64_t>& extents) {
  const bool scale_given = o.given(o.guidance_scale_flag);
  chosen.guidance_scale = o.guidance_scale;
  chosen.guidance_rescale = o.guidance_rescale;
  if (chosen.model != nullptr) {
    const NetworkPredictor& model = *chosen.model;
    // A U-Net is fully convolutional: --shape N,C,H,W sets its sample size.
    if (auto* unet = dynamic_cast<UNet2DPredictor*>(chosen.predictor.get());
        unet != nullptr && extents.size() == 4 && extents[1] == unet->config().in_channels &&
        (extents[2] != unet->sample_height() || extents[3] != unet->sample_width())) {
      unet->set_sample_size(extents[2], extents[3]);
    }
    const ModelCard& card = model.model_card();
    if (shape.dim != card.dim()) {
      throw Error("shape mismatch: " + shape_text + " gives samples of " +
                  std::to_string(shape.dim) + " elements but the model " + o.model_path +
                  " has data_dim " + std::to_string(card.dim()) + " (data_shape " +
                  shape_list(card.sample_shape) + ")");
    }
    const bool has_class = o.given(o.class_flag);
    if (has_class) chosen.class_labels = model_labels(o, model, shape.batch);
    if (!scale_given && has_class) chosen.guidance_scale = card.sampler.guidance_scale;
    if (chosen.guidance_scale != 1.0) {
      if (!model.unconditional_label()) {
        throw Error("--guidance-scale: the model " + o.model_path +
                    " has no null label (an unconditional model), so it cannot be guided; "
                    "leave --guidance-scale at 1");
      }
      if (!has_class) {
        throw UsageError(
            "--guidance-scale needs --class with --model: without a class every "
            "sample is unconditional and guidance changes nothing");
      }
    }
  } else {
    const nlohmann::json description = builtin_description(o, shape, extents);
    chosen.predictor = make_predictor(description.dump());
    if (o.predictor == "gmm") {
      const auto& gmm = static_cast<const GmmPredictor&>(*chosen.predictor);
      check_gmm_dim(gmm.spec(), "--gmm", o.gmm_path, shape, shape_text);
      if (gmm.unconditional_spec()) {
        check_gmm_dim(*gmm.unconditional_spec(), "--uncond-gmm", o.uncond_gmm_path, shape,
                      shape_text);
      }
    }
    const bool has_unconditional = description.contains("unconditional");
    if (chosen.guidance_scale != 1.0 && !has_unconditional) {
      throw UsageError("--guidance-scale needs an unconditional " +
                       (o.predictor == "gmm"
                            ? std::string("mixture: give --uncond-gmm SPEC.json")
                            : std::string("prior: give --uncond-mean and/or --uncond-std")));
    }
    if (o.given(o.guidance_rescale_flag) && chosen.guidance_scale == 1.0) {
      throw UsageError("--guidance-rescale needs a --guidance-scale other than 1");
    }
    if (chosen.guidance_scale == 1.0 && has_unconditional) {
      warn(std::string(o.predictor == "gmm" ? "--uncond-gmm" : "--uncond-mean/--uncond-std") +
           " has no effect without --guidance-scale");
    }
    return;
  }
  if (o.given(o.guidance_rescale_flag) && chosen.guidance_scale == 1.0) {
    throw UsageError("--guidance-rescale needs a --guidance-scale other than 1");
  }
}

std::string describe_classes(const PredictorOptions& o, const ChosenPredictor& chosen) {
  if (chosen.class_labels.empty()) return "";
  const ClassSpec spec = parse_class_spec(o.class_text);
  if (spec.all) {
    return "classes 0.." + std::to_string(chosen.model->model_card().num_classes - 1) + " in turn";
  }
  if (spec.labels.size() == 1) return "class " + std::to_string(spec.labels[0]);
  return "a class per sample";
}

}  // namespace ddpm::cli
