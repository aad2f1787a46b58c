// Names of the option enums, as the CLI, scheduler configs and errors use them.
#include <string>

#include "ddpm/error.h"
#include "rules/step_rule.h"
#include "ddpm/types.h"

namespace ddpm {
namespace {

template <typename Enum, std::size_t N>
Enum parse_name(std::string_view name, const std::pair<const char*, Enum> (&names)[N],
                const char* what) {
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i].first) return names[i].second;
    expected += std::string(i == 0 ? "" : (i + 1 == N ? " or " : ", ")) + names[i].first;
  }
  throw Error("unknown " + std::string(what) + " '" + std::string(name) + "' (expected " +
              expected + ")");
}

template <typename Enum, std::size_t N>
std::string name_of(Enum value, const std::pair<const char*, Enum> (&names)[N]) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "unknown";
}

constexpr std::pair<const char*, VarianceKind> kVariances[] = {
    {"beta", VarianceKind::beta}, {"posterior", VarianceKind::posterior}};
constexpr std::pair<const char*, PredictionType> kPredictionTypes[] = {
    {"epsilon", PredictionType::epsilon},
    {"sample", PredictionType::sample},
    {"v_prediction", PredictionType::v_prediction}};
constexpr std::pair<const char*, TimestepSpacing> kSpacings[] = {
    {"leading", TimestepSpacing::leading},
    {"trailing", TimestepSpacing::trailing},
    {"linspace", TimestepSpacing::linspace}};
constexpr std::pair<const char*, FinalSigmasType> kFinalSigmas[] = {
    {"zero", FinalSigmasType::zero}, {"sigma_min", FinalSigmasType::sigma_min}};
constexpr std::pair<const char*, Precision> kPrecisions[] = {
    {"fp32", Precision::fp32}, {"tf32", Precision::tf32}, {"fp16", Precision::fp16}, {"bf16", Precision::bf16}};
constexpr std::pair<const char*, UniPcSolverType> kUniPcSolverTypes[] = {
    {"bh2", UniPcSolverType::bh2}, {"bh1", UniPcSolverType::bh1}};

}  // namespace

std::string to_string(VarianceKind kind) { return name_of(kind, kVariances); }
std::string to_string(SamplerKind kind) { return detail::rule_for(kind).name; }
std::string to_string(PredictionType type) { return name_of(type, kPredictionTypes); }
std::string to_string(TimestepSpacing spacing) { return name_of(spacing, kSpacings); }
std::string to_string(FinalSigmasType type) { return name_of(type, kFinalSigmas); }
std::string to_string(UniPcSolverType type) { return name_of(type, kUniPcSolverTypes); }
std::string to_string(Precision precision) { return name_of(precision, kPrecisions); }

VarianceKind parse_variance_kind(std::string_view name) {
  return parse_name(name, kVariances, "variance");
}
std::string sampler_kind_names() { return detail::rule_names(); }
SamplerKind parse_sampler_kind(std::string_view name) {
  std::string expected;
  const auto rules = detail::rule_entries();
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (name == rules[i].name) return rules[i].kind;
    expected += std::string(i == 0 ? "" : (i + 1 == rules.size() ? " or " : ", ")) + rules[i].name;
  }
  throw Error("unknown sampler '" + std::string(name) + "' (expected " + expected + ")");
}
PredictionType parse_prediction_type(std::string_view name) {
  return parse_name(name, kPredictionTypes, "prediction type");
}
TimestepSpacing parse_timestep_spacing(std::string_view name) {
  return parse_name(name, kSpacings, "timestep spacing");
}
FinalSigmasType parse_final_sigmas_type(std::string_view name) {
  return parse_name(name, kFinalSigmas, "final_sigmas_type");
}
UniPcSolverType parse_unipc_solver_type(std::string_view name) {
  return parse_name(name, kUniPcSolverTypes, "solver_type");
}

Precision parse_precision(std::string_view name) { return parse_name(name, kPrecisions, "precision"); }

}  // namespace ddpm
