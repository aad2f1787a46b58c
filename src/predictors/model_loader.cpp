// ddpm::load_model: a model file's card names its architecture, and the
// architecture names the network that reads the rest. The architecture-neutral
// card's recommended settings are here too.
#include <functional>
#include <string>

#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "ddpm/model.h"
#include "ddpm/unet2d.h"
#include "io/safetensors.h"
#include "io/strict_json.h"
#include "predictors/networks/unet2d/unet2d_folder.h"

namespace ddpm {
namespace {

using Loader = std::function<std::unique_ptr<NetworkPredictor>(const std::string& path, const ModelOptions&)>;

struct Architecture {
  const char* name;
  Loader load;
};

// Every network ddpm can load, by the card's "architecture".
const Architecture kArchitectures[] = {
    {kMlpArchitecture,
     [](const std::string& path, const ModelOptions& o) -> std::unique_ptr<NetworkPredictor> {
       return std::make_unique<MlpPredictor>(path, MlpPredictorOptions{.threads = o.threads, .allow_tf32 = o.allow_tf32});
     }},
};

}  // namespace

std::int64_t ModelCard::dim() const {
  std::int64_t n = sample_shape.empty() ? 0 : 1;
  for (std::int64_t extent : sample_shape) n *= extent;
  return n;
}

SchedulerConfig ModelCard::recommended_config() const {
  SchedulerConfig config = scheduler;
  SamplerOptions& o = config.options;
  try {
    o.sampler = parse_sampler_kind(sampler.name);
    o.timestep_spacing = parse_timestep_spacing(sampler.timestep_spacing);
  } catch (const Error& e) {
    throw Error(std::string("model card \"sampler\": ") + e.what());
  }
  o.prediction_type = prediction_type;
  o.num_inference_steps = sampler.num_inference_steps;
  o.eta = sampler.eta;
  if (!sampler.clip_sample) o.clip_x0.reset();
  if (sampler.clip_sample && !o.clip_x0 && !o.thresholding) o.clip_x0 = ClipRange{-1.0f, 1.0f};
  config.sampler = o.sampler;
  return config;
}

std::string known_architectures() {
  std::string names;
  for (const Architecture& a : kArchitectures) names += (names.empty() ? "" : ", ") + std::string(a.name);
  return names + ", " + kUNet2DArchitecture + " (a diffusers folder)";
}

std::unique_ptr<NetworkPredictor> load_model(const std::string& path, ModelOptions options) {
  if (detail::is_diffusers_folder(path)) {
    const Precision precision = options.allow_tf32 && options.precision == Precision::fp32 ? Precision::tf32
                                                                                           : options.precision;
    return std::make_unique<UNet2DPredictor>(
        path, UNet2DPredictorOptions{.threads = options.threads, .variant = options.variant, .precision = precision});
  }
  if (!options.variant.empty()) {
    throw Error(path + ": a weights variant (\"" + options.variant + "\") is for a diffusers folder, not a model file");
  }
  std::string architecture;
  {
    const detail::SafetensorsFile file = detail::SafetensorsFile::open(path);
    const auto card = file.metadata().find(kModelCardKey);
    if (card == file.metadata().end()) {
      throw Error(path + ": no model card: the safetensors metadata has no \"" + std::string(kModelCardKey) +
                  "\" (docs/model-format.md)");
    }
    const nlohmann::json json = detail::parse_json(card->second, path + " model card");
    if (!json.is_object() || !json.contains("architecture") || !json.at("architecture").is_string()) {
      throw Error(path + ": model card has no \"architecture\" string (docs/model-format.md)");
    }
    architecture = json.at("architecture").get<std::string>();
  }
  for (const Architecture& a : kArchitectures) {
    if (architecture == a.name) return a.load(path, options);
  }
  throw Error(path + ": model card architecture '" + architecture + "' is not one ddpm can load (" +
              known_architectures() + ")");
}

}  // namespace ddpm
