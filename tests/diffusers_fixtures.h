#pragma once
// The fixtures scripts/make_diffusers_fixtures.py wrote from diffusers
// (tests/data/diffusers/README.md describes them), as JSON, and helpers to
// turn a fixture's scheduler config into ddpm's schedule and options.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ddpm/ddpm.h"

namespace ddpm::test {

inline nlohmann::json load_fixture(const std::string& name) {
  const std::string path = std::string(DDPM_TEST_DATA_DIR) + "/diffusers/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read fixture " + path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

inline std::vector<float> floats(const nlohmann::json& j) {
  std::vector<float> out;
  for (const auto& v : j) out.push_back(static_cast<float>(v.get<double>()));
  return out;
}

inline std::vector<double> doubles(const nlohmann::json& j) { return j.get<std::vector<double>>(); }

// The Sampler a fixture case describes: its diffusers config through
// SchedulerConfig, plus the set_timesteps arguments and eta.
struct FixtureSampler {
  Schedule schedule;
  SamplerOptions options;
};

// DPM-Solver's options that SchedulerConfig does not read yet (ddpm.Sampler.from_config
// hands them over the same way): taken out of the config into the options.
inline void take_dpm_solver_options(nlohmann::json& config, SamplerOptions& o) {
  const auto take = [&](const char* key, auto apply) {
    if (config.contains(key)) {
      if (!config.at(key).is_null()) apply(config.at(key));
      config.erase(key);
    }
  };
  take("solver_order", [&](const nlohmann::json& v) { o.solver_order = v.get<int>(); });
  take("lower_order_final", [&](const nlohmann::json& v) { o.lower_order_final = v.get<bool>(); });
  take("euler_at_final", [&](const nlohmann::json& v) { o.euler_at_final = v.get<bool>(); });
  take("use_lu_lambdas", [&](const nlohmann::json& v) { o.use_lu_lambdas = v.get<bool>(); });
  take("final_sigmas_type", [&](const nlohmann::json& v) {
    o.final_sigmas_type = parse_final_sigmas_type(v.get<std::string>());
  });
  take("lambda_min_clipped", [&](const nlohmann::json& v) {  // a number, or the string "-inf"
    o.lambda_min_clipped = v.is_string() ? std::stod(v.get<std::string>()) : v.get<double>();
  });
}

inline FixtureSampler sampler_for(const nlohmann::json& c, Backend backend = Backend::cpu) {
  nlohmann::json json = c.at("config");
  SamplerOptions dpm_options;
  const bool dpm = json.value("_class_name", "") == "DPMSolverMultistepScheduler";
  if (dpm) take_dpm_solver_options(json, dpm_options);
  SchedulerConfig config = SchedulerConfig::from_json(json.dump());
  SamplerOptions o = config.options;
  if (dpm) {
    o.solver_order = dpm_options.solver_order;
    o.lower_order_final = dpm_options.lower_order_final;
    o.euler_at_final = dpm_options.euler_at_final;
    o.use_lu_lambdas = dpm_options.use_lu_lambdas;
    o.final_sigmas_type = dpm_options.final_sigmas_type;
    o.lambda_min_clipped = dpm_options.lambda_min_clipped;
  }
  o.backend = backend;
  o.threads = 2;
  if (c.contains("num_inference_steps") && !c.at("num_inference_steps").is_null()) {
    o.num_inference_steps = c.at("num_inference_steps").get<int>();
  }
  if (c.contains("custom_timesteps") && !c.at("custom_timesteps").is_null()) {
    o.timesteps = c.at("custom_timesteps").get<std::vector<int>>();
  }
  if (c.contains("eta") && !c.at("eta").is_null()) o.eta = c.at("eta").get<double>();
  return {Schedule::from_spec(config.schedule), o};
}

}  // namespace ddpm::test
