// make_predictor: a predictor from its JSON description (the library, not the
// CLI, turns a description into an object).
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "ddpm/predictor.h"
#include "io/strict_json.h"

namespace ddpm {
namespace {

using nlohmann::json;

void refuse_unknown_keys(const json& j, std::initializer_list<const char*> known,
                         const std::string& type) {
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (const char* k : known) found = found || key == k;
    if (!found) throw Error("predictor \"" + type + "\" has no option \"" + key + "\"");
  }
}

GaussianPrior gaussian_prior(const json& j, const std::string& what) {
  if (!j.is_object()) throw Error(what + " must be a JSON object");
  refuse_unknown_keys(j, {"type", "mean", "std", "means", "stds", "unconditional"}, "gaussian");
  GaussianPrior prior;
  prior.mean = j.value("mean", 0.0f);
  prior.std = j.value("std", 1.0f);
  prior.means = j.value("means", std::vector<float>{});
  prior.stds = j.value("stds", std::vector<float>{});
  return prior;
}

// {"type": "gaussian", "mean": .., "std": .., "unconditional": {"mean": .., "std": ..}}:
// the optional unconditional prior makes classifier-free guidance possible.
std::unique_ptr<NoisePredictor> make_gaussian(const json& j) {
  GaussianPrior prior = gaussian_prior(j, "predictor \"gaussian\"");
  std::optional<GaussianPrior> unconditional;
  if (j.contains("unconditional")) {
    const json& u = j.at("unconditional");
    if (u.contains("unconditional")) throw Error("an unconditional prior has no \"unconditional\"");
    unconditional = gaussian_prior(u, "predictor \"gaussian\" \"unconditional\"");
  }
  return std::make_unique<GaussianPredictor>(std::move(prior), std::move(unconditional));
}

GmmSpec gmm_spec(const json& j) {
  if (!j.is_object()) throw Error("predictor \"gmm\": a mixture must be a JSON object");
  if (j.contains("path")) {
    refuse_unknown_keys(j, {"type", "path", "unconditional"}, "gmm");
    return GmmSpec::load(j.at("path").get<std::string>());
  }
  refuse_unknown_keys(j, {"type", "weights", "means", "stds", "unconditional"}, "gmm");
  json spec = j;
  spec.erase("type");
  spec.erase("unconditional");
  return GmmSpec::from_json(spec.dump());
}

// {"type": "gmm", "path": .. or "weights"/"means"/"stds", "unconditional": {the same}}.
std::unique_ptr<NoisePredictor> make_gmm(const json& j) {
  GmmSpec spec = gmm_spec(j);
  std::optional<GmmSpec> unconditional;
  if (j.contains("unconditional")) {
    const json& u = j.at("unconditional");
    if (u.is_object() && u.contains("unconditional")) {
      throw Error("an unconditional mixture has no \"unconditional\"");
    }
    unconditional = gmm_spec(u);
  }
  return std::make_unique<GmmPredictor>(std::move(spec), std::move(unconditional));
}

std::unique_ptr<NoisePredictor> make_mlp(const json& j) {
  refuse_unknown_keys(j, {"type", "path", "threads", "allow_tf32"}, "mlp");
  if (!j.contains("path")) throw Error("predictor \"mlp\" needs a \"path\" to a .safetensors model");
  MlpPredictorOptions options;
  options.threads = j.value("threads", 0);
  options.allow_tf32 = j.value("allow_tf32", false);
  return std::make_unique<MlpPredictor>(j.at("path").get<std::string>(), options);
}

}  // namespace

std::unique_ptr<NoisePredictor> make_predictor(const std::string& json_description) {
  const json j = detail::parse_json(json_description, "predictor description");
  if (!j.is_object() || !j.contains("type") || !j.at("type").is_string()) {
    throw Error("predictor description needs a \"type\" (gaussian, gmm or mlp)");
  }
  const std::string type = j.at("type").get<std::string>();
  try {
    if (type == "gaussian") return make_gaussian(j);
    if (type == "gmm") return make_gmm(j);
    if (type == "mlp") return make_mlp(j);
  } catch (const json::exception& e) {
    throw Error("predictor \"" + type + "\": " + e.what());
  }
  throw Error("unknown predictor type '" + type + "' (expected gaussian, gmm or mlp)");
}

}  // namespace ddpm
