// make_predictor: a predictor from its JSON description (the library, not the
// CLI, turns a description into an object).
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "ddpm/predictor.h"

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

std::unique_ptr<NoisePredictor> make_gaussian(const json& j) {
  refuse_unknown_keys(j, {"type", "mean", "std", "means", "stds"}, "gaussian");
  GaussianPrior prior;
  prior.mean = j.value("mean", 0.0f);
  prior.std = j.value("std", 1.0f);
  prior.means = j.value("means", std::vector<float>{});
  prior.stds = j.value("stds", std::vector<float>{});
  return std::make_unique<GaussianPredictor>(std::move(prior));
}

std::unique_ptr<NoisePredictor> make_gmm(const json& j) {
  if (j.contains("path")) {
    refuse_unknown_keys(j, {"type", "path"}, "gmm");
    return std::make_unique<GmmPredictor>(GmmSpec::load(j.at("path").get<std::string>()));
  }
  refuse_unknown_keys(j, {"type", "weights", "means", "stds"}, "gmm");
  json spec = j;
  spec.erase("type");
  return std::make_unique<GmmPredictor>(GmmSpec::from_json(spec.dump()));
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
  json j;
  try {
    j = json::parse(json_description);
  } catch (const json::exception& e) {
    throw Error(std::string("predictor description is not valid JSON: ") + e.what());
  }
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
