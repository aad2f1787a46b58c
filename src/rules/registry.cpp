// The step rules by name: what each one is, reproduces and accepts. Every
// front end (the CLI's --sampler and its checks, Python's options,
// --scheduler-config's class mapping, `ddpm schedule`) asks this table.
#include "step_rule.h"

#include <string>

#include "ddpm/error.h"

namespace ddpm::detail {
namespace {

// What each rule accepts beyond the common options.
constexpr RuleTakes kDdpmTakes{.clip_x0 = true, .thresholding = true, .variance_type = true,
                               .clip_by_default = true};
constexpr RuleTakes kDdimTakes{.eta = true, .clip_x0 = true, .thresholding = true, .variance_type = true,
                               .clip_by_default = true};
constexpr RuleTakes kDpmTakes{.thresholding = true, .karras_sigmas = true, .multistep_keys = true,
                              .dpm_solver_keys = true};
constexpr RuleTakes kEulerTakes{.karras_sigmas = true};
constexpr RuleTakes kEulerAncestralTakes{.sample_prediction = false};
constexpr RuleTakes kHeunTakes{.clip_x0 = true, .karras_sigmas = true};
constexpr RuleTakes kUniPcTakes{.thresholding = true, .karras_sigmas = true, .multistep_keys = true,
                                .unipc_keys = true};

// Config keys of a diffusers class that ddpm runs only at these values.
constexpr FixedConfigKey kSolverSigmaKeys[] = {
    {"use_exponential_sigmas", "false"}, {"use_beta_sigmas", "false"}, {"sigma_min", "null"}, {"sigma_max", "null"}};
constexpr FixedConfigKey kDpmKeys[] = {
    {"use_exponential_sigmas", "false"}, {"use_beta_sigmas", "false"}, {"sigma_min", "null"},
    {"sigma_max", "null"}, {"solver_type", "\"midpoint\""}, {"use_flow_sigmas", "false"}};
constexpr FixedConfigKey kEulerKeys[] = {
    {"use_exponential_sigmas", "false"}, {"use_beta_sigmas", "false"}, {"sigma_min", "null"},
    {"sigma_max", "null"}, {"final_sigmas_type", "\"zero\""}, {"interpolation_type", "\"linear\""},
    {"timestep_type", "\"discrete\""}};
constexpr FixedConfigKey kEulerAncestralKeys[] = {{"sigma_min", "null"}, {"sigma_max", "null"}};
constexpr FixedConfigKey kUniPcKeys[] = {
    {"use_exponential_sigmas", "false"}, {"use_beta_sigmas", "false"}, {"sigma_min", "null"},
    {"sigma_max", "null"}, {"predict_x0", "true"}, {"solver_p", "null", "UniPC's own predictor"},
    {"use_flow_sigmas", "false"}, {"use_dynamic_shifting", "false"}};

constexpr double kDdpmBetas[2] = {1e-4, 0.02};
// HeunDiscreteScheduler's own defaults are Stable Diffusion's betas.
constexpr double kStableDiffusionBetas[2] = {0.00085, 0.012};

template <std::size_t N>
constexpr std::span<const FixedConfigKey> keys(const FixedConfigKey (&list)[N]) {
  return {list, N};
}

// In SamplerKind order. Columns: kind, name, plan, check, default spacing,
// diffusers class, algorithm_type (or null), the solver_order that picks
// it within its class (0: any), what it takes, float timesteps, model calls
// per step, history depth, default betas, fixed config keys, and the rule
// a fixed-order one becomes at a lower solver_order.
const RuleEntry kRules[] = {
    {SamplerKind::ddpm, "ddpm", plan_ddpm, check_ddpm_options, TimestepSpacing::leading, "DDPMScheduler",
     nullptr, 0, kDdpmTakes, false, 1, 0, kDdpmBetas, {}, std::nullopt},
    {SamplerKind::ddim, "ddim", plan_ddim, check_ddim_options, TimestepSpacing::leading, "DDIMScheduler",
     nullptr, 0, kDdimTakes, false, 1, 0, kDdpmBetas, {}, std::nullopt},
    {SamplerKind::dpmpp_2m, "dpmpp_2m", plan_dpmpp_2m, check_dpmpp_options, TimestepSpacing::linspace,
     "DPMSolverMultistepScheduler", "dpmsolver++", 0, kDpmTakes, false, 1, 2, kDdpmBetas, keys(kDpmKeys),
     std::nullopt},
    {SamplerKind::dpmpp_2m_sde, "dpmpp_2m_sde", plan_dpmpp_2m, check_dpmpp_options, TimestepSpacing::linspace,
     "DPMSolverMultistepScheduler", "sde-dpmsolver++", 0, kDpmTakes, false, 1, 2, kDdpmBetas,
     keys(kDpmKeys), std::nullopt},
    {SamplerKind::euler, "euler", plan_euler, check_euler_options, TimestepSpacing::linspace,
     "EulerDiscreteScheduler", nullptr, 0, kEulerTakes, true, 1, 0, kDdpmBetas, keys(kEulerKeys),
     std::nullopt},
    {SamplerKind::euler_ancestral, "euler_ancestral", plan_euler_ancestral, check_euler_ancestral_options,
     TimestepSpacing::linspace, "EulerAncestralDiscreteScheduler", nullptr, 0, kEulerAncestralTakes, true, 1,
     0, kDdpmBetas, keys(kEulerAncestralKeys), std::nullopt},
    {SamplerKind::heun, "heun", plan_heun, check_heun_options, TimestepSpacing::linspace,
     "HeunDiscreteScheduler", nullptr, 0, kHeunTakes, true, 2, 1, kStableDiffusionBetas,
     keys(kSolverSigmaKeys), std::nullopt},
    {SamplerKind::dpmpp_3m, "dpmpp_3m", plan_dpmpp_2m, check_dpmpp_options, TimestepSpacing::linspace,
     "DPMSolverMultistepScheduler", "dpmsolver++", 3, kDpmTakes, false, 1, 2, kDdpmBetas, keys(kDpmKeys),
     SamplerKind::dpmpp_2m},
    {SamplerKind::unipc, "unipc", plan_unipc, check_unipc_options, TimestepSpacing::linspace,
     "UniPCMultistepScheduler", nullptr, 0, kUniPcTakes, false, 1, 3, kDdpmBetas, keys(kUniPcKeys),
     std::nullopt},
};

}  // namespace

std::span<const RuleEntry> rule_entries() { return kRules; }

const RuleEntry& rule_for(SamplerKind kind) {
  for (const RuleEntry& rule : kRules) {
    if (rule.kind == kind) return rule;
  }
  throw Error("unknown sampler kind " + std::to_string(static_cast<int>(kind)));
}

std::string rule_names(bool (*takes)(const RuleEntry&)) {
  std::string names;
  for (const RuleEntry& rule : kRules) {
    if (takes == nullptr || takes(rule)) names += (names.empty() ? "" : ", ") + std::string(rule.name);
  }
  return names;
}

}  // namespace ddpm::detail

namespace ddpm {

SamplerInfo sampler_info(SamplerKind kind) {
  const detail::RuleEntry& rule = detail::rule_for(kind);
  SamplerInfo info;
  info.name = rule.name;
  info.diffusers_class = rule.diffusers_class;
  info.default_spacing = rule.default_spacing;
  info.karras_sigmas = rule.takes.karras_sigmas;
  info.solver_order = rule.takes.multistep_keys;
  info.fractional_timesteps = rule.fractional_timesteps;
  info.model_calls_per_step = rule.model_calls_per_step;
  info.eta = rule.takes.eta;
  info.clip_x0 = rule.takes.clip_x0;
  info.thresholding = rule.takes.thresholding;
  info.prediction_types = {PredictionType::epsilon, PredictionType::v_prediction};
  if (rule.takes.sample_prediction) info.prediction_types.insert(info.prediction_types.begin() + 1, PredictionType::sample);
  info.history_depth = rule.history_depth;
  info.fixed_solver_order = rule.diffusers_solver_order;
  info.lower_order_sampler = rule.lower_order_sampler;
  return info;
}

std::vector<SamplerKind> sampler_kinds() {
  std::vector<SamplerKind> kinds;
  for (const detail::RuleEntry& rule : detail::rule_entries()) kinds.push_back(rule.kind);
  return kinds;
}

}  // namespace ddpm
