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

inline FixtureSampler sampler_for(const nlohmann::json& c, Backend backend = Backend::cpu) {
  const SchedulerConfig config = SchedulerConfig::from_json(c.at("config").dump());
  SamplerOptions o = config.options;
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
