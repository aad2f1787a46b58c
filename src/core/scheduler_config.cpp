// diffusers' scheduler_config.json -> ScheduleSpec + SamplerOptions.
#include "ddpm/scheduler_config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "io/file_input.h"
#include "io/strict_json.h"
#include "rules/step_rule.h"

namespace ddpm {
namespace {

using nlohmann::json;

// The value of `key` as T, or `fallback` when absent or null.
template <typename T>
T get(const json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  // Python's NaN and Infinity, which diffusers' configs may hold, are numbers
  // no key read here takes (lambda_min_clipped, which takes -Infinity, is
  // read on its own); JSON would print them as null.
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    if (it->is_number_float() && !std::isfinite(it->get<double>())) {
      const double v = it->get<double>();
      throw Error(std::string("scheduler config key \"") + key + "\" is " +
                  (std::isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity") +
                  "; expected a finite number");
    }
  }
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw Error("");
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (!it->is_number()) throw Error("");
      if constexpr (std::is_integral_v<T>) {
        // A whole number the type can hold: 1.5 and 1e30 are refused, not cut.
        const double v = it->get<double>();
        if (v != std::floor(v) || v < static_cast<double>(std::numeric_limits<T>::min()) ||
            v > static_cast<double>(std::numeric_limits<T>::max())) {
          throw Error("");
        }
      }
    } else {
      if (!it->is_string()) throw Error("");
    }
    return it->get<T>();
  } catch (const std::exception&) {
    throw Error(std::string("scheduler config key \"") + key + "\" has the wrong type (" +
                it->dump() + ")");
  }
}

ScheduleKind schedule_kind(const std::string& name) {
  if (name == "linear") return ScheduleKind::linear;
  if (name == "scaled_linear") return ScheduleKind::scaled_linear;
  if (name == "squaredcos_cap_v2") return ScheduleKind::cosine;
  if (name == "sigmoid") return ScheduleKind::sigmoid;
  throw Error("scheduler config beta_schedule \"" + name +
              "\" is not supported (linear, scaled_linear, squaredcos_cap_v2 or sigmoid)");
}

VarianceKind variance_kind(const std::string& name) {
  if (name == "fixed_small") return VarianceKind::posterior;
  if (name == "fixed_large") return VarianceKind::beta;
  throw Error("scheduler config variance_type \"" + name +
              "\" is not supported (fixed_small or fixed_large)");
}

// Named option values (prediction_type, timestep_spacing) with the key in the error.
template <typename Parse>
auto parse_named(const json& j, const char* key, const std::string& fallback, Parse parse) {
  const std::string value = get<std::string>(j, key, fallback);
  try {
    return parse(value);
  } catch (const Error& e) {
    throw Error(std::string("scheduler config ") + key + ": " + e.what());
  }
}

std::string unsupported(const char* key, const std::string& value, const std::string& supported) {
  return std::string("scheduler config ") + key + " " + value + " is not supported (ddpm runs " +
         supported + ")";
}

// The rule a diffusers class is (with its algorithm_type and solver_order
// where the class has several: DPMSolverMultistepScheduler's dpmsolver++ is
// dpmpp_2m, or dpmpp_3m at solver_order 3; sde-dpmsolver++ is dpmpp_2m_sde),
// from the rule registry; null for a class without a ddpm rule.
const detail::RuleEntry* rule_of_class(const json& j, const std::string& class_name) {
  const detail::RuleEntry* found = nullptr;
  std::string algorithms;
  for (const detail::RuleEntry& rule : detail::rule_entries()) {
    if (class_name != rule.diffusers_class) continue;
    if (rule.diffusers_algorithm != nullptr) {
      if (algorithms.find(rule.diffusers_algorithm) == std::string::npos) {
        algorithms += (algorithms.empty() ? "" : " and ") + std::string(rule.diffusers_algorithm);
      }
      if (get<std::string>(j, "algorithm_type", "dpmsolver++") != rule.diffusers_algorithm) continue;
    }
    if (rule.diffusers_solver_order != 0 && get<int>(j, "solver_order", 2) != rule.diffusers_solver_order) {
      continue;
    }
    // A rule of the config's exact solver_order wins over one of any order.
    if (found == nullptr || rule.diffusers_solver_order != 0) found = &rule;
  }
  if (found == nullptr && !algorithms.empty()) {
    throw Error(unsupported("algorithm_type", "\"" + get<std::string>(j, "algorithm_type", "dpmsolver++") + "\"",
                            algorithms));
  }
  return found;
}

// The multistep solvers' shared keys (DPMSolverMultistepScheduler,
// UniPCMultistepScheduler), with diffusers' defaults.
void read_multistep_keys(const json& j, SamplerOptions& o) {
  o.solver_order = get<int>(j, "solver_order", 2);
  if (o.solver_order < 1 || o.solver_order > 3) {
    throw Error(unsupported("solver_order", std::to_string(o.solver_order), "orders 1, 2 and 3"));
  }
  o.lower_order_final = get<bool>(j, "lower_order_final", true);
  o.final_sigmas_type = parse_named(j, "final_sigmas_type", "zero", parse_final_sigmas_type);
}

// The class's keys whose other values would change the sampler in a way
// ddpm does not implement (the registry's fixed_config_keys): refused by
// name instead of silently ignored.
void check_fixed_keys(const json& j, const detail::RuleEntry& rule) {
  for (const detail::FixedConfigKey& fixed : rule.fixed_config_keys) {
    const auto it = j.find(fixed.key);
    const json expected = json::parse(fixed.value);
    const bool is_default = it == j.end() || *it == expected || (expected.is_null() && it->is_null());
    if (is_default) continue;
    // A missing key takes the class's default, which is the fixed value.
    std::string supported = expected.is_boolean() ? "the default, " + expected.dump() : expected.dump();
    if (fixed.why != nullptr) supported += std::string(" (") + fixed.why + ")";
    throw Error(unsupported(fixed.key, it->dump(), supported));
  }
}

// DPM-Solver++'s own keys: euler_at_final, use_lu_lambdas and
// lambda_min_clipped (a number, -inf as the string "-inf" or Python's
// -Infinity, or null for none).
void read_dpm_keys(const json& j, SamplerOptions& o) {
  // DPM-Solver reads variance_type only to drop a learned variance's channels
  // ("learned", "learned_range"); other values (a DDPM config's "fixed_small",
  // carried over by from_config) change nothing.
  if (j.contains("variance_type") && j.at("variance_type").is_string()) {
    const std::string variance = j.at("variance_type").get<std::string>();
    if (variance == "learned" || variance == "learned_range") {
      throw Error(unsupported("variance_type", j.at("variance_type").dump(), "null (no learned variance)"));
    }
  }
  o.euler_at_final = get<bool>(j, "euler_at_final", false);
  o.use_lu_lambdas = get<bool>(j, "use_lu_lambdas", false);
  if (j.contains("lambda_min_clipped") && !j.at("lambda_min_clipped").is_null()) {
    const json& v = j.at("lambda_min_clipped");
    if (v.is_string() && v.get<std::string>() == "-inf") {
      o.lambda_min_clipped = -std::numeric_limits<double>::infinity();
    } else if (v.is_number() && !std::isnan(v.get<double>()) && v.get<double>() != std::numeric_limits<double>::infinity()) {
      o.lambda_min_clipped = v.get<double>();
    } else {
      const std::string text = v.is_number() ? (std::isnan(v.get<double>()) ? "NaN" : "Infinity") : v.dump();
      throw Error("scheduler config key \"lambda_min_clipped\" must be a number, -inf or null, not " + text);
    }
  }
}

// UniPC's own keys: solver_type and disable_corrector.
void read_unipc_keys(const json& j, SamplerOptions& o) {
  o.solver_type = parse_named(j, "solver_type", "bh2", parse_unipc_solver_type);
  if (j.contains("disable_corrector") && !j.at("disable_corrector").is_null()) {
    const json& v = j.at("disable_corrector");
    bool ok = v.is_array();
    for (std::size_t i = 0; ok && i < v.size(); ++i) ok = v[i].is_number_integer() && v[i].get<long long>() >= 0;
    if (!ok) {
      throw Error("scheduler config key \"disable_corrector\" must be a list of step indices (integers >= 0), not " +
                  v.dump());
    }
    o.disable_corrector = v.get<std::vector<int>>();
  }
}

}  // namespace

SchedulerConfig SchedulerConfig::from_json(const std::string& text) {
  // diffusers writes Python's json: "lambda_min_clipped": -Infinity.
  const json j = detail::parse_json(text, "scheduler config", {.python_nonfinite = true});
  if (!j.is_object()) throw Error("scheduler config must be a JSON object");

  SchedulerConfig c;
  c.class_name = get<std::string>(j, "_class_name", "");
  // A class without a ddpm rule reads as DDPM's keys (its sampler is then
  // the caller's to choose); keys a class does not have are ignored, as
  // diffusers ignores them.
  const detail::RuleEntry* rule = rule_of_class(j, c.class_name);
  const detail::RuleTakes takes = rule != nullptr ? rule->takes : detail::rule_for(SamplerKind::ddpm).takes;
  if (rule != nullptr) {
    c.sampler = rule->kind;
    check_fixed_keys(j, *rule);
  }
  if (takes.karras_sigmas) c.options.use_karras_sigmas = get<bool>(j, "use_karras_sigmas", false);
  if (takes.multistep_keys) read_multistep_keys(j, c.options);
  if (takes.dpm_solver_keys) read_dpm_keys(j, c.options);
  if (takes.unipc_keys) read_unipc_keys(j, c.options);

  // The schedule, with the class's defaults (T 1000, linear betas from the
  // registry: 1e-4 -> 0.02 but for Heun's, Stable Diffusion's).
  ScheduleSpec& s = c.schedule;
  s.steps = get<int>(j, "num_train_timesteps", 1000);
  const double* betas = rule != nullptr ? rule->default_betas : detail::rule_for(SamplerKind::ddpm).default_betas;
  s.beta_start = get<double>(j, "beta_start", betas[0]);
  s.beta_end = get<double>(j, "beta_end", betas[1]);
  s.kind = schedule_kind(get<std::string>(j, "beta_schedule", "linear"));
  if (j.contains("trained_betas") && !j.at("trained_betas").is_null()) {
    try {
      s.betas = j.at("trained_betas").get<std::vector<double>>();
    } catch (const json::exception&) {
      throw Error("scheduler config key \"trained_betas\" must be null or an array of numbers");
    }
    s.kind = ScheduleKind::custom;
  }

  // The rule, with the class's defaults for missing keys.
  SamplerOptions& o = c.options;
  if (c.sampler) o.sampler = *c.sampler;
  const std::string default_variance = c.class_name == "DDPMScheduler" ? "fixed_small" : "fixed_large";
  if (takes.variance_type) o.variance = variance_kind(get<std::string>(j, "variance_type", default_variance));
  o.prediction_type = parse_named(j, "prediction_type", "epsilon", parse_prediction_type);
  if (j.contains("timestep_spacing") && !j.at("timestep_spacing").is_null()) {
    o.timestep_spacing = parse_named(j, "timestep_spacing", "leading", parse_timestep_spacing);
  }
  o.steps_offset = get<int>(j, "steps_offset", 0);
  if (takes.thresholding) {
    o.thresholding = get<bool>(j, "thresholding", false);
    o.dynamic_thresholding_ratio = get<double>(j, "dynamic_thresholding_ratio", 0.995);
    o.sample_max_value = get<double>(j, "sample_max_value", 1.0);
  }
  o.rescale_betas_zero_snr = get<bool>(j, "rescale_betas_zero_snr", false);
  o.set_alpha_to_one = get<bool>(j, "set_alpha_to_one", true);
  // diffusers clips by default; thresholding, when on, takes its place.
  const bool clip_sample = takes.clip_x0 && get<bool>(j, "clip_sample", rule != nullptr && takes.clip_by_default);
  const double range = get<double>(j, "clip_sample_range", 1.0);
  if (clip_sample && !o.thresholding) {
    if (!(std::isfinite(range) && range > 0.0)) {
      throw Error("scheduler config clip_sample_range must be a finite number > 0");
    }
    o.clip_x0 = ClipRange{static_cast<float>(-range), static_cast<float>(range)};
  }
  if (o.steps_offset < 0) throw Error("scheduler config steps_offset must be >= 0");
  return c;
}

void switch_sampler(SamplerOptions& o, SamplerKind sampler) {
  const SamplerOptions defaults;
  o.sampler = sampler;
  const detail::RuleTakes& takes = detail::rule_for(sampler).takes;
  if (!takes.multistep_keys) {
    o.solver_order = defaults.solver_order;
    o.lower_order_final = defaults.lower_order_final;
    o.final_sigmas_type = defaults.final_sigmas_type;
  }
  if (!takes.dpm_solver_keys) {
    o.euler_at_final = defaults.euler_at_final;
    o.use_lu_lambdas = defaults.use_lu_lambdas;
    o.lambda_min_clipped = defaults.lambda_min_clipped;
  }
  if (!takes.unipc_keys) {
    o.solver_type = defaults.solver_type;
    o.disable_corrector.clear();
  }
  // The keys of the config's class that the new one lacks (DDPM's default
  // clip_sample, a solver's use_karras_sigmas, thresholding).
  if (!takes.clip_x0) o.clip_x0.reset();
  if (!takes.thresholding) o.thresholding = defaults.thresholding;
  if (!takes.karras_sigmas) o.use_karras_sigmas = defaults.use_karras_sigmas;
  if (!takes.eta) o.eta = defaults.eta;
}

SchedulerConfig SchedulerConfig::load(const std::string& path) {
  const std::string text = detail::read_file_bounded(path, detail::kMaxJsonBytes, "scheduler config");
  try {
    return from_json(text);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace ddpm
