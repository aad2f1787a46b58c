// What make_plan refuses before a rule plans: the options its registry
// entry does not take, named with the rules that do take them.
#include <string>

#include "ddpm/error.h"
#include "step_rule.h"

namespace ddpm::detail {
namespace {

// "the ddim sampler" or "the dpmpp_2m, dpmpp_2m_sde, dpmpp_3m samplers".
std::string the_samplers(bool (*takes)(const RuleEntry&)) {
  const std::string names = rule_names(takes);
  return "the " + names + (names.find(',') == std::string::npos ? " sampler" : " samplers");
}

}  // namespace

void refuse_untaken_options(const SamplerOptions& o) {
  const RuleEntry& rule = rule_for(o.sampler);
  const RuleTakes& takes = rule.takes;
  const std::string name = rule.name;
  const SamplerOptions defaults;
  if (o.eta != 0.0 && !takes.eta) {
    throw Error("eta applies only to " + the_samplers([](const RuleEntry& r) { return r.takes.eta; }) +
                ", not " + name);
  }
  if (o.thresholding && !takes.thresholding) {
    throw Error("the " + name + " sampler has no dynamic thresholding in diffusers");
  }
  if (o.clip_x0 && !takes.clip_x0) {
    throw Error("the " + name + " sampler has no x0 clipping in diffusers" +
                (takes.thresholding ? "; use dynamic thresholding or another sampler" : ""));
  }
  if (o.use_karras_sigmas && !takes.karras_sigmas) {
    throw Error("Karras sigmas apply to " +
                the_samplers([](const RuleEntry& r) { return r.takes.karras_sigmas; }) + ", not " + name);
  }
  if (!takes.multistep_keys) {
    const char* given = o.solver_order != defaults.solver_order             ? "solver_order"
                        : o.lower_order_final != defaults.lower_order_final ? "lower_order_final"
                        : o.final_sigmas_type != defaults.final_sigmas_type ? "final_sigmas_type"
                                                                            : nullptr;
    if (given != nullptr) {
      throw Error(std::string(given) + " applies to " +
                  the_samplers([](const RuleEntry& r) { return r.takes.multistep_keys; }) + ", not " + name);
    }
  }
  if (!takes.dpm_solver_keys) {
    const char* given = o.euler_at_final != defaults.euler_at_final           ? "euler_at_final"
                        : o.use_lu_lambdas != defaults.use_lu_lambdas         ? "use_lu_lambdas"
                        : !(o.lambda_min_clipped == defaults.lambda_min_clipped) ? "lambda_min_clipped"
                                                                              : nullptr;
    if (given != nullptr) {
      throw Error(std::string(given) + " applies to " +
                  the_samplers([](const RuleEntry& r) { return r.takes.dpm_solver_keys; }) + ", not " + name);
    }
  }
  if (!takes.unipc_keys) {
    const auto unipc = [](const RuleEntry& r) { return r.takes.unipc_keys; };
    if (o.solver_type != defaults.solver_type) {
      throw Error("solver_type " + to_string(o.solver_type) + " applies to " + the_samplers(unipc) + ", not " +
                  name);
    }
    if (!o.disable_corrector.empty()) {
      throw Error("disable_corrector applies to " + the_samplers(unipc) + ", not " + name);
    }
  }
  if (o.prediction_type == PredictionType::sample && !takes.sample_prediction) {
    throw Error("the " + name + " sampler does not take prediction type sample in diffusers "
                "(NotImplementedError); use epsilon or v_prediction");
  }
}

}  // namespace ddpm::detail
