// diffusers' scheduler_config.json -> ScheduleSpec + SamplerOptions.
#include "ddpm/scheduler_config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "file_input.h"
#include "strict_json.h"

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

enum class SolverClass { none, euler, euler_ancestral, dpm, heun, unipc };

SolverClass solver_class(const std::string& name) {
  if (name == "EulerDiscreteScheduler") return SolverClass::euler;
  if (name == "EulerAncestralDiscreteScheduler") return SolverClass::euler_ancestral;
  if (name == "DPMSolverMultistepScheduler") return SolverClass::dpm;
  if (name == "HeunDiscreteScheduler") return SolverClass::heun;
  if (name == "UniPCMultistepScheduler") return SolverClass::unipc;
  return SolverClass::none;
}

std::string unsupported(const char* key, const std::string& value, const std::string& supported) {
  return std::string("scheduler config ") + key + " " + value + " is not supported (ddpm runs " +
         supported + ")";
}

// algorithm_type: dpmsolver++ -> dpmpp_2m (dpmpp_3m at solver_order 3),
// sde-dpmsolver++ -> dpmpp_2m_sde.
SamplerKind dpm_sampler(const json& j) {
  const std::string algorithm = get<std::string>(j, "algorithm_type", "dpmsolver++");
  if (algorithm == "dpmsolver++") return get<int>(j, "solver_order", 2) == 3 ? SamplerKind::dpmpp_3m : SamplerKind::dpmpp_2m;
  if (algorithm == "sde-dpmsolver++") return SamplerKind::dpmpp_2m_sde;
  throw Error(unsupported("algorithm_type", "\"" + algorithm + "\"", "dpmsolver++ and sde-dpmsolver++"));
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

// The solver keys whose non-default values would change the sampler in a way
// ddpm does not implement: refused by name instead of silently ignored.
void check_solver_keys(const json& j, SolverClass solver) {
  const auto require_false = [&](const char* key) {
    if (get<bool>(j, key, false)) throw Error(unsupported(key, "true", "the default, false"));
  };
  const auto require_text = [&](const char* key, const char* expected) {
    const std::string value = get<std::string>(j, key, expected);
    if (value != expected) {
      throw Error(unsupported(key, "\"" + value + "\"", std::string("\"") + expected + "\""));
    }
  };
  if (solver != SolverClass::euler_ancestral) {
    for (const char* key : {"use_exponential_sigmas", "use_beta_sigmas"}) require_false(key);
  }
  if (solver == SolverClass::euler) require_text("final_sigmas_type", "zero");
  if (solver == SolverClass::unipc) {
    if (!get<bool>(j, "predict_x0", true)) throw Error(unsupported("predict_x0", "false", "the default, true"));
    if (j.contains("solver_p") && !j.at("solver_p").is_null()) {
      throw Error(unsupported("solver_p", j.at("solver_p").dump(), "null (UniPC's own predictor)"));
    }
    for (const char* key : {"use_flow_sigmas", "use_dynamic_shifting"}) require_false(key);
  }
  if (solver == SolverClass::euler) {
    require_text("interpolation_type", "linear");
    require_text("timestep_type", "discrete");
  }
  // diffusers' Karras sigmas span sigma_min .. sigma_max where a config sets them.
  for (const char* key : {"sigma_min", "sigma_max"}) {
    if (j.contains(key) && !j.at(key).is_null()) {
      throw Error(unsupported(key, j.at(key).dump(), "the schedule's own sigma range (null)"));
    }
  }
  if (solver == SolverClass::dpm) {
    require_text("solver_type", "midpoint");
    require_false("use_flow_sigmas");
    if (j.contains("variance_type") && !j.at("variance_type").is_null()) {
      throw Error(unsupported("variance_type", j.at("variance_type").dump(), "null (no learned variance)"));
    }
  }
}

// DPM-Solver++'s own keys: euler_at_final, use_lu_lambdas and
// lambda_min_clipped (a number, -inf as the string "-inf" or Python's
// -Infinity, or null for none).
void read_dpm_keys(const json& j, SamplerOptions& o) {
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
  const SolverClass solver = solver_class(c.class_name);
  // DDPM and DDIM clip x0 by default; the solvers have no clip_sample.
  const bool diffusers_class = c.class_name == "DDPMScheduler" || c.class_name == "DDIMScheduler";
  if (c.class_name == "DDPMScheduler") c.sampler = SamplerKind::ddpm;
  if (c.class_name == "DDIMScheduler") c.sampler = SamplerKind::ddim;
  if (solver == SolverClass::euler) c.sampler = SamplerKind::euler;
  if (solver == SolverClass::euler_ancestral) c.sampler = SamplerKind::euler_ancestral;
  if (solver == SolverClass::dpm) c.sampler = dpm_sampler(j);
  if (solver == SolverClass::heun) c.sampler = SamplerKind::heun;
  if (solver == SolverClass::unipc) c.sampler = SamplerKind::unipc;
  if (solver != SolverClass::none) check_solver_keys(j, solver);
  if (solver != SolverClass::none && solver != SolverClass::euler_ancestral) {
    c.options.use_karras_sigmas = get<bool>(j, "use_karras_sigmas", false);
  }
  if (solver == SolverClass::dpm || solver == SolverClass::unipc) read_multistep_keys(j, c.options);
  if (solver == SolverClass::dpm) read_dpm_keys(j, c.options);
  if (solver == SolverClass::unipc) read_unipc_keys(j, c.options);

  // The schedule: diffusers' defaults are ddpm's (T 1000, linear 1e-4 -> 0.02),
  // except Heun's.
  ScheduleSpec& s = c.schedule;
  s.steps = get<int>(j, "num_train_timesteps", 1000);
  // HeunDiscreteScheduler's own defaults are Stable Diffusion's betas.
  const bool heun = solver == SolverClass::heun;
  s.beta_start = get<double>(j, "beta_start", heun ? 0.00085 : 1e-4);
  s.beta_end = get<double>(j, "beta_end", heun ? 0.012 : 0.02);
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
  if (solver == SolverClass::none) {
    o.variance = variance_kind(get<std::string>(j, "variance_type", default_variance));
  }
  o.prediction_type = parse_named(j, "prediction_type", "epsilon", parse_prediction_type);
  if (j.contains("timestep_spacing") && !j.at("timestep_spacing").is_null()) {
    o.timestep_spacing = parse_named(j, "timestep_spacing", "leading", parse_timestep_spacing);
  }
  o.steps_offset = get<int>(j, "steps_offset", 0);
  // Keys a class does not have are ignored, as diffusers ignores them:
  // thresholding exists for DDPM, DDIM, DPM-Solver and UniPC, clip_sample for
  // DDPM, DDIM and Heun.
  const bool has_thresholding =
      solver == SolverClass::none || solver == SolverClass::dpm || solver == SolverClass::unipc;
  if (has_thresholding) {
    o.thresholding = get<bool>(j, "thresholding", false);
    o.dynamic_thresholding_ratio = get<double>(j, "dynamic_thresholding_ratio", 0.995);
    o.sample_max_value = get<double>(j, "sample_max_value", 1.0);
  }
  o.rescale_betas_zero_snr = get<bool>(j, "rescale_betas_zero_snr", false);
  o.set_alpha_to_one = get<bool>(j, "set_alpha_to_one", true);
  // diffusers clips by default; thresholding, when on, takes its place.
  const bool clip_sample = (solver == SolverClass::none || solver == SolverClass::heun) &&
                           get<bool>(j, "clip_sample", diffusers_class);
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
  if (!sampler_info(sampler).solver_order) {
    o.solver_order = defaults.solver_order;
    o.lower_order_final = defaults.lower_order_final;
    o.final_sigmas_type = defaults.final_sigmas_type;
  }
  const bool dpm = sampler == SamplerKind::dpmpp_2m || sampler == SamplerKind::dpmpp_2m_sde ||
                   sampler == SamplerKind::dpmpp_3m;
  if (!dpm) {
    o.euler_at_final = defaults.euler_at_final;
    o.use_lu_lambdas = defaults.use_lu_lambdas;
    o.lambda_min_clipped = defaults.lambda_min_clipped;
  }
  if (sampler != SamplerKind::unipc) {
    o.solver_type = defaults.solver_type;
    o.disable_corrector.clear();
  }
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
