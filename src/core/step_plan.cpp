#include "step_plan.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "ddpm/error.h"
#include "rules/step_rule.h"

namespace ddpm::detail {
namespace {

// The prediction-type conversion (diffusers' "pred_original_sample" and
// "pred_epsilon" for each type), linear in (x_t, m).
void fill_prediction(PlannedStep& s, PredictionType type) {
  const double ab = s.alpha_bar;
  const double a = std::sqrt(ab), b = std::sqrt(1.0 - ab);
  switch (type) {
    case PredictionType::epsilon:
      s.x0_from_sample = 1.0 / a;
      s.x0_from_model_output = -b / a;
      s.eps_from_sample = 0.0;
      s.eps_from_model_output = 1.0;
      if (ab == 0.0) {
        s.error = "prediction type epsilon cannot be used at timestep " +
                  std::to_string(s.timestep) +
                  ", where alpha_bar = 0 (zero terminal SNR): x0 = (x_t - eps) / 0; use "
                  "v_prediction or sample";
      }
      break;
    case PredictionType::sample:
      s.x0_from_sample = 0.0;
      s.x0_from_model_output = 1.0;
      s.eps_from_sample = 1.0 / b;
      s.eps_from_model_output = -a / b;
      break;
    case PredictionType::v_prediction:
      s.x0_from_sample = a;
      s.x0_from_model_output = -b;
      s.eps_from_sample = b;
      s.eps_from_model_output = a;
      break;
  }
}

// A float record holds these; past ~1e30 the step means nothing in float.
void check_representable(PlannedStep& s) {
  if (!s.error.empty()) return;
  for (double c : {s.x0_from_sample, s.x0_from_model_output, s.eps_from_sample,
                   s.eps_from_model_output, s.prev_from_x0, s.prev_from_eps, s.prev_from_sample,
                   s.prev_from_x0_prev, s.prev_from_x0_prev2, s.prev_from_last_sample,
                   s.corrected_from_last_sample, s.corrected_from_x0, s.corrected_from_x0_prev[0],
                   s.corrected_from_x0_prev[1], s.corrected_from_x0_prev[2], s.sigma}) {
    if (!std::isfinite(c) || std::abs(c) > 1e30) {
      // Either end of the schedule: alpha_bar 1 (no noise: betas too small
      // to register) or alpha_bar near 0 (a division by sqrt(alpha_bar)).
      const bool no_noise = s.alpha_bar >= 1.0 - 1e-12;
      std::ostringstream msg;
      if (s.order > 1 && s.alpha_bar_prev == 1.0) {
        // A multistep step of higher order to sigma = 0 divides by h = inf.
        msg << "the last step (timestep " << s.timestep << ") is of order " << s.order
            << " to sigma 0, where its coefficients are infinite (diffusers' result there is inf or NaN); "
               "keep lower_order_final on, or use final_sigmas_type sigma_min";
        s.error = msg.str();
        return;
      }
      msg << "the step at timestep " << s.timestep << " has a coefficient of " << c
          << " (alpha_bar = " << s.alpha_bar << "), outside float range; "
          << (no_noise ? "the betas are too small to add any noise by this step: raise them"
                       : "use fewer steps or smaller betas");
      s.error = msg.str();
      return;
    }
  }
}

void check_thresholding(const SamplerOptions& o) {
  if (!o.thresholding) return;
  if (o.clip_x0) {
    throw Error("x0 clipping and dynamic thresholding are exclusive: choose one");
  }
  if (!(o.dynamic_thresholding_ratio > 0.0 && o.dynamic_thresholding_ratio <= 1.0)) {
    std::ostringstream msg;
    msg << "dynamic thresholding ratio " << o.dynamic_thresholding_ratio
        << " is outside (0, 1]";
    throw Error(msg.str());
  }
  if (!(std::isfinite(o.sample_max_value) && o.sample_max_value > 0.0)) {
    std::ostringstream msg;
    msg << "thresholding sample max value " << o.sample_max_value
        << " is invalid: need a finite value > 0";
    throw Error(msg.str());
  }
}

}  // namespace

}  // namespace ddpm::detail

namespace ddpm {

void check_options(const SamplerOptions& options) {
  detail::check_thresholding(options);
  const SamplerKind kind = options.sampler;
  detail::refuse_untaken_options(options);
  detail::rule_for(kind).check(options);
  if (options.use_karras_sigmas && !options.timesteps.empty()) {
    throw Error("an explicit timestep list and Karras sigmas exclude each other");
  }
}

}  // namespace ddpm

namespace ddpm::detail {

Plan make_plan(const Schedule& schedule, const SamplerOptions& options) {
  ddpm::check_options(options);
  RulePlan planned = rule_for(options.sampler).plan(schedule, options);
  for (PlannedStep& s : planned.steps) {
    s.beta = 1.0 - s.alpha_bar / s.alpha_bar_prev;
    fill_prediction(s, options.prediction_type);
    check_representable(s);
  }
  HistoryLayout history{planned.history_x0_slots, planned.keeps_last_sample};
  // The one-slot history of dpmpp_2m exists only where a step reads it.
  if (!history.deep() && !multistep(planned.steps, 0, static_cast<int>(planned.steps.size()) - 1)) {
    const SamplerKind kind = options.sampler;
    history.x0_slots = kind == SamplerKind::dpmpp_2m || kind == SamplerKind::dpmpp_2m_sde ? 1 : 0;
  }
  return {std::move(planned.steps), planned.initial_noise_scale, history};
}

namespace {
// (scale, p, q) with p x + q m = (from_sample x + from_model m) / scale and
// max(|p|, |q|) = 1 (kernels/step_rule.cuh says why).
void normalised(double from_sample, double from_model, float& scale, float& p, float& q) {
  const double s = std::max(std::abs(from_sample), std::abs(from_model));
  scale = static_cast<float>(s);
  p = static_cast<float>(s == 0.0 ? 0.0 : from_sample / s);
  q = static_cast<float>(s == 0.0 ? 0.0 : from_model / s);
}
}  // namespace

kernels::StepRecord make_step_record(const PlannedStep& s) {
  const auto f = [](double v) { return static_cast<float>(v); };
  kernels::StepRecord r{};
  normalised(s.x0_from_sample, s.x0_from_model_output, r.x0_scale, r.x0_from_sample, r.x0_from_model);
  normalised(s.eps_from_sample, s.eps_from_model_output, r.eps_scale, r.eps_from_sample, r.eps_from_model);
  r.prev_from_x0 = f(s.prev_from_x0);
  r.prev_from_eps = f(s.prev_from_eps);
  r.prev_from_sample = f(s.prev_from_sample);
  r.prev_from_x0_prev = f(s.prev_from_x0_prev);
  r.sigma = f(s.sigma);
  // The same update with x0_hat and eps_hat substituted, in double.
  r.folded_sample = f(s.prev_from_x0 * s.x0_from_sample + s.prev_from_eps * s.eps_from_sample +
                      s.prev_from_sample);
  r.folded_model =
      f(s.prev_from_x0 * s.x0_from_model_output + s.prev_from_eps * s.eps_from_model_output);
  r.sqrt_alpha_bar = f(std::sqrt(s.alpha_bar));
  r.sqrt_one_minus_alpha_bar = f(std::sqrt(1.0 - s.alpha_bar));
  return r;
}

std::vector<kernels::StepRecord> make_step_records(const std::vector<PlannedStep>& plan) {
  std::vector<kernels::StepRecord> records;
  records.reserve(plan.size());
  for (const PlannedStep& s : plan) {
    // A step that cannot run keeps finite records (it is never launched).
    records.push_back(s.error.empty() ? make_step_record(s) : kernels::StepRecord{});
  }
  return records;
}

bool reads_history(const PlannedStep& s) {
  return s.prev_from_x0_prev != 0.0 || s.prev_from_x0_prev2 != 0.0 || s.prev_from_last_sample != 0.0 ||
         s.corrects;
}

std::vector<int> history_slots_read(const PlannedStep& s, const HistoryLayout& layout) {
  std::vector<int> slots;
  const bool x0_read[3] = {s.prev_from_x0_prev != 0.0 || s.corrected_from_x0_prev[0] != 0.0,
                           s.prev_from_x0_prev2 != 0.0 || s.corrected_from_x0_prev[1] != 0.0,
                           s.corrected_from_x0_prev[2] != 0.0};
  for (int k = 0; k < layout.x0_slots && k < 3; ++k) {
    if (x0_read[k]) slots.push_back(k);
  }
  if (layout.last_sample && (s.prev_from_last_sample != 0.0 || s.corrects)) slots.push_back(layout.last_sample_slot());
  return slots;
}

void require_history(const std::vector<PlannedStep>& plan, const SamplerOptions& options, int position,
                     bool given, const char* what) {
  if (given || !reads_history(plan[static_cast<std::size_t>(position)])) return;
  throw Error("the " + to_string(options.sampler) + " sampler's step " + std::to_string(position) +
              " combines earlier steps' outputs: a run that starts there needs the loop's history (" + what +
              ", Sampler::history_size() floats) from the run before it");
}

kernels::DeepRecord make_deep_record(const PlannedStep& s) {
  const auto f = [](double v) { return static_cast<float>(v); };
  kernels::DeepRecord d{};
  d.prev_from_x0 = f(s.prev_from_x0);
  d.prev_from_eps = f(s.prev_from_eps);
  d.prev_from_sample = f(s.prev_from_sample);
  d.prev_from_last_sample = f(s.prev_from_last_sample);
  d.prev_from_x0_prev[0] = f(s.prev_from_x0_prev);
  d.prev_from_x0_prev[1] = f(s.prev_from_x0_prev2);
  d.corrects = s.corrects;
  d.corrected_from_last_sample = f(s.corrected_from_last_sample);
  d.corrected_from_x0 = f(s.corrected_from_x0);
  for (int k = 0; k < 3; ++k) d.corrected_from_x0_prev[k] = f(s.corrected_from_x0_prev[k]);
  d.sigma = f(s.sigma);
  return d;
}

PlannedStep first_order(PlannedStep step) {
  step.prev_from_x0 += step.prev_from_x0_prev;
  step.prev_from_x0_prev = 0.0;
  step.order = 1;
  return step;
}

bool multistep(const std::vector<PlannedStep>& plan, int first, int last) {
  for (int i = first; i <= last; ++i) {
    if (plan[static_cast<std::size_t>(i)].order > 1) return true;
  }
  return false;
}

kernels::X0Mode x0_mode(const SamplerOptions& options) {
  if (options.thresholding) return kernels::X0Mode::threshold;
  if (options.clip_x0) return kernels::X0Mode::clip;
  return kernels::X0Mode::none;
}

void check_plan_range(const std::vector<PlannedStep>& plan, int first, int last) {
  for (int i = first; i <= last; ++i) {
    if (!plan[static_cast<std::size_t>(i)].error.empty()) {
      throw Error(plan[static_cast<std::size_t>(i)].error);
    }
  }
}

int plan_position(const std::vector<PlannedStep>& plan, int t, const char* what) {
  int found = -1, count = 0;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].timestep != t) continue;
    if (found < 0) found = static_cast<int>(i);
    ++count;
  }
  if (count > 1) {
    throw Error(std::string(what) + " t = " + std::to_string(t) + " occurs " + std::to_string(count) +
                " times among the sampler's timesteps (from index " + std::to_string(found) +
                "): name the step by its index instead");
  }
  if (found >= 0) return found;
  std::string list;
  for (std::size_t i = 0; i < plan.size() && i < 6; ++i) {
    list += (i ? ", " : "") + std::to_string(plan[i].timestep);
  }
  if (plan.size() > 6) list += ", ..., " + std::to_string(plan.back().timestep);
  throw Error(std::string(what) + " t = " + std::to_string(t) +
              " is not one of the sampler's " + std::to_string(plan.size()) + " timesteps (" +
              list + ")");
}

int plan_index(const std::vector<PlannedStep>& plan, int index, const char* what) {
  if (index < 0 || index >= static_cast<int>(plan.size())) {
    throw Error(std::string(what) + " " + std::to_string(index) + " is outside the plan's 0.." +
                std::to_string(static_cast<int>(plan.size()) - 1));
  }
  return index;
}

std::vector<kernels::ForwardCoefficients> make_forward_table(const Schedule& s) {
  std::vector<kernels::ForwardCoefficients> table(static_cast<std::size_t>(s.steps()));
  for (int t = 0; t < s.steps(); ++t) {
    kernels::ForwardCoefficients& c = table[static_cast<std::size_t>(t)];
    c.sqrt_alpha_bar = static_cast<float>(s.sqrt_alpha_bar()[t]);
    c.sqrt_one_minus_alpha_bar = static_cast<float>(s.sqrt_one_minus_alpha_bar()[t]);
    c.sqrt_alpha = static_cast<float>(std::sqrt(s.alpha()[t]));
    c.sqrt_beta = static_cast<float>(std::sqrt(s.beta()[t]));
  }
  return table;
}

}  // namespace ddpm::detail
