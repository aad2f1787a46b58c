#include "schedule_options.h"

#include <cmath>
#include <limits>

#include "command_line.h"
#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "ddpm/sampler_options.h"
#include "ddpm/scheduler_config.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

// The samplers that take an option, "a, b, c": the rule registry's to say
// (ddpm::sampler_info), never listed here.
std::string samplers_that(bool SamplerInfo::*takes) {
  std::string names;
  for (const SamplerKind kind : sampler_kinds()) {
    if (sampler_info(kind).*takes) names += (names.empty() ? "" : ", ") + to_string(kind);
  }
  return names;
}

}  // namespace

namespace {

// A name from a fixed list, checked while the command line is read (a usage error).
template <typename Parse>
CLI::Validator one_of(Parse parse) {
  return parsed_by([parse](const std::string& value) { parse(value); });
}

std::vector<int> read_timesteps(const std::string& path) {
  const NpyArrayInt64 values = read_npy_int64(path);
  if (values.shape.size() != 1) {
    throw Error("--timesteps " + path + " must be a 1-D array of timesteps, got shape " +
                format_shape(values.shape));
  }
  // An empty list would mean "none given": every step, which is not what
  // the file asked for.
  if (values.data.empty()) throw Error("--timesteps " + path + " holds no timesteps: give at least one");
  std::vector<int> timesteps;
  for (std::size_t i = 0; i < values.data.size(); ++i) {
    const std::int64_t t = values.data[i];
    if (t < std::numeric_limits<int>::min() || t > std::numeric_limits<int>::max()) {
      throw Error("--timesteps " + path + ": entry " + std::to_string(i) + " (" + std::to_string(t) +
                  ") is out of range");
    }
    timesteps.push_back(static_cast<int>(t));
  }
  return timesteps;
}

// Whether the step rule takes these options together.
bool consistent(const SamplerOptions& options) {
  try {
    check_options(options);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

void ScheduleOptions::add_to(CLI::App& command, bool rule) {
  const auto add = [&](const char* flag, CLI::Option* option) {
    flags_.emplace_back(flag, option);
    return option;
  };
  auto* schedule = add("--schedule", command.add_option("--schedule", kind,
                                                        "noise schedule: linear, scaled_linear, cosine or sigmoid")
                                         ->check(one_of(parse_schedule_kind))
                                         ->capture_default_str());
  auto* step_count = add("--steps", command.add_option("--steps", steps, "number of diffusion steps T")
                                        ->capture_default_str());
  auto* start = add("--beta-start", command.add_option("--beta-start", beta_start,
                                                        "first beta (linear, scaled_linear, sigmoid)")
                                         ->capture_default_str());
  auto* end = add("--beta-end", command.add_option("--beta-end", beta_end,
                                                    "last beta (linear, scaled_linear, sigmoid)")
                                     ->capture_default_str());
  // The file defines the whole schedule, so the flags that shape a built-in
  // one would be ignored: refuse them together rather than guess.
  add("--betas", command.add_option("--betas", betas_path, "a .npy of T betas in (0, 1): a custom schedule")
                     ->excludes(schedule)
                     ->excludes(step_count)
                     ->excludes(start)
                     ->excludes(end));
  add("--rescale-zero-snr",
      command.add_flag("--rescale-zero-snr", rescale_zero_snr,
                       "rescale the betas to zero terminal SNR (diffusers' rescale_betas_zero_snr;\n"
                       "needs --prediction-type v_prediction or sample at the last step)"));
  add("--scheduler-config",
      command.add_option("--scheduler-config", config_path,
                         "a diffusers scheduler_config.json; flags given here override it"));
  add("--variance", command.add_option("--variance", variance,
                                       "ddpm variance: beta (fixed_large) or posterior (fixed_small)")
                        ->check(one_of(parse_variance_kind))
                        ->capture_default_str());
  add("--clip-x0", command.add_option("--clip-x0", clip_x0,
                                      "clip the predicted x0 to LO,HI in the reverse step (e.g. -1,1)")
                       ->check(parsed_by([](const std::string& text) { parse_clip_range(text, ""); })));
  if (!rule) return;
  add("--sampler", command.add_option("--sampler", sampler,
                                      "the step rule: " + sampler_kind_names() +
                                          "\n(diffusers' schedulers: see the README)")
                       ->check(one_of(parse_sampler_kind))
                       ->capture_default_str());
  add("--inference-steps",
      command.add_option("--inference-steps", inference_steps,
                         "timesteps to sample with (1 .. T; default all T), spaced by --timestep-spacing"));
  add("--eta", command.add_option("--eta", eta,
                                  samplers_that(&SamplerInfo::eta) + ": noise weight, 0 (deterministic) .. 1 (DDPM)")
                   ->capture_default_str());
  add("--timestep-spacing",
      command.add_option("--timestep-spacing", timestep_spacing,
                         "leading, trailing or linspace (diffusers' timestep_spacing; default\n"
                         "leading for ddpm and ddim, linspace for the solvers)")
          ->check(one_of(parse_timestep_spacing)));
  add("--steps-offset", command.add_option("--steps-offset", steps_offset,
                                           "added to leading timesteps (diffusers' steps_offset)")
                            ->capture_default_str());
  add("--timesteps", command.add_option("--timesteps", timesteps_path,
                                        "a .npy of strictly decreasing timesteps to sample with"));
  add("--prediction-type",
      command.add_option("--prediction-type", prediction_type,
                         "what the model predicts: epsilon, sample (x0) or v_prediction (with\n"
                         "--model or --scheduler-config, theirs unless given)")
          ->check(one_of(parse_prediction_type))
          ->capture_default_str());
  add("--thresholding",
      command.add_option("--thresholding", thresholding,
                         "dynamic thresholding RATIO[,MAX]: x0 clamped to the per-sample RATIO\n"
                         "quantile s of |x0| (s in [1, MAX], MAX default 1) and divided by s")
          ->check(parsed_by([](const std::string& text) {
            parse_numbers(text, "", 1, 2, "RATIO[,MAX] (e.g. 0.995,1.5)");
          })));
  // Which samplers take a flag is the rule registry's to say.
  add("--karras-sigmas",
      command.add_flag("--karras-sigmas", karras_sigmas,
                       "Karras et al.'s sigma spacing (rho = 7, diffusers' use_karras_sigmas) for\n" +
                           samplers_that(&SamplerInfo::karras_sigmas) +
                           " (the model is then called at fractional\ntimesteps by those that work in sigma space)"));
  add("--solver-order",
      command.add_option("--solver-order", solver_order,
                         "model outputs per update, 1, 2 or 3 (diffusers' solver_order), for\n" +
                             samplers_that(&SamplerInfo::solver_order))
          ->check(CLI::Range(1, 3))
          ->capture_default_str());
}

bool ScheduleOptions::given(const char* flag) const {
  for (const auto& [name, option] : flags_) {
    if (name == flag) return option->count() > 0;
  }
  return false;
}

std::optional<SchedulerConfig> ScheduleOptions::base_config(
    const std::optional<SchedulerConfig>& defaults) const {
  if (config_path.empty()) return defaults;
  // Read once, when first needed: the file may be a pipe or a FIFO
  // (/dev/stdin, <(...)), which a second open would find empty or block on.
  if (!loaded_config_) loaded_config_ = SchedulerConfig::load(config_path);
  return loaded_config_;
}

Schedule ScheduleOptions::build(const std::optional<SchedulerConfig>& defaults) const {
  const std::optional<SchedulerConfig> base = base_config(defaults);
  const bool use_config = base.has_value();
  ScheduleSpec spec;
  if (use_config) spec = base->schedule;
  if (!betas_path.empty()) {
    const NpyArrayDouble betas = read_npy_double(betas_path);
    if (betas.shape.size() != 1) {
      throw Error("--betas " + betas_path + " must be a 1-D array of T betas, got shape " +
                  format_shape(betas.shape));
    }
    spec.kind = ScheduleKind::custom;
    spec.betas = betas.data;
    return Schedule::from_spec(spec);
  }
  if (!use_config || given("--schedule")) {
    spec.kind = parse_schedule_kind(kind);
    if (spec.kind == ScheduleKind::custom) throw Error("--schedule custom needs --betas FILE.npy");
  }
  if (!use_config || given("--steps")) spec.steps = steps;
  if (!use_config || given("--beta-start")) spec.beta_start = beta_start;
  if (!use_config || given("--beta-end")) spec.beta_end = beta_end;
  if (spec.kind != ScheduleKind::custom) spec.betas.clear();
  Schedule schedule = Schedule::from_spec(spec);
  if (spec.kind != ScheduleKind::cosine && spec.beta_start > spec.beta_end) {
    warn("--beta-start " + format_number(spec.beta_start) + " is above --beta-end " +
         format_number(spec.beta_end) + ": noise decreases over the steps (swapped?)");
  }
  return schedule;
}

void ScheduleOptions::require_trained(const Schedule& schedule, const ScheduleSpec& trained,
                                      const std::string& model_path) {
  const Schedule expected = Schedule::from_spec(trained);
  const std::vector<double>& got = schedule.beta();
  const std::vector<double>& want = expected.beta();
  bool same = got.size() == want.size();
  for (std::size_t i = 0; same && i < got.size(); ++i) {
    same = std::abs(got[i] - want[i]) <= 1e-12 * std::abs(want[i]);
  }
  if (same) return;
  auto describe = [](const ScheduleSpec& s) {
    std::string text = to_string(s.kind) + " schedule (T = " + std::to_string(s.steps);
    if (s.kind == ScheduleKind::linear || s.kind == ScheduleKind::scaled_linear ||
        s.kind == ScheduleKind::sigmoid) {
      text += ", beta " + format_number(s.beta_start) + " to " + format_number(s.beta_end);
    }
    return text;
  };
  throw Error("--model " + model_path + " was trained with a " + describe(trained) +
              "); the schedule flags give another (T = " + std::to_string(got.size()) +
              ", beta " + format_number(got.front()) + " to " + format_number(got.back()) +
              "): leave --schedule, --beta-start, --beta-end, --betas and --steps out");
}

void ScheduleOptions::apply_to(SamplerOptions& options,
                               const std::optional<SchedulerConfig>& defaults) const {
  const std::optional<SchedulerConfig> base = base_config(defaults);
  const bool use_config = base.has_value();
  if (use_config) {
    const SchedulerConfig& config = *base;
    const Backend backend = options.backend;
    const int threads = options.threads;
    options = config.options;
    options.backend = backend;
    options.threads = threads;
    if (!config.sampler && !given("--sampler")) {
      throw Error("--scheduler-config " + config_path + ": scheduler class '" +
                  config.class_name + "' has no ddpm step rule; choose one with --sampler");
    }
  }
  // A flag given on the command line always counts; without a config, so do
  // the defaults.
  const auto use = [&](const char* flag) { return !use_config || given(flag); };
  // The sampler first: a config's class keys the new sampler lacks are
  // dropped (switch_sampler), not the flags given with it.
  if (use_config && given("--sampler")) {
    switch_sampler(options, parse_sampler_kind(sampler));
  } else if (use("--sampler")) {
    options.sampler = parse_sampler_kind(sampler);
  }
  if (use("--variance")) options.variance = parse_variance_kind(variance);
  if (given("--clip-x0")) {
    options.clip_x0 = parse_clip_range(clip_x0, "--clip-x0");
    options.thresholding = false;
  }
  if (use("--rescale-zero-snr")) options.rescale_betas_zero_snr = rescale_zero_snr;
  if (use("--inference-steps")) options.num_inference_steps = inference_steps;
  if (use("--eta")) options.eta = eta;
  if (given("--timestep-spacing")) {
    options.timestep_spacing =
        parse_timestep_spacing(timestep_spacing);
  }
  if (use("--steps-offset")) options.steps_offset = steps_offset;
  if (given("--timesteps")) {
    if (given("--inference-steps")) {
      throw UsageError("--timesteps and --inference-steps exclude each other: give one");
    }
    options.timesteps = read_timesteps(timesteps_path);
    options.num_inference_steps = 0;
  }
  if (use("--prediction-type")) {
    options.prediction_type =
        parse_prediction_type(prediction_type);
  }
  if (given("--thresholding")) {
    if (given("--clip-x0")) throw UsageError("--clip-x0 and --thresholding exclude each other: give one");
    const std::vector<double> values =
        parse_numbers(thresholding, "--thresholding", 1, 2, "RATIO[,MAX] (e.g. 0.995,1.5)");
    options.thresholding = true;
    options.dynamic_thresholding_ratio = values[0];
    options.sample_max_value = values.size() > 1 ? values[1] : 1.0;
    options.clip_x0.reset();
  }
  if (use("--karras-sigmas")) options.use_karras_sigmas = karras_sigmas;
  if (given("--karras-sigmas") && !sampler_info(options.sampler).karras_sigmas) {
    // e.g. diffusers' DDPM, DDIM and Euler ancestral schedulers have no use_karras_sigmas.
    throw UsageError("--karras-sigmas applies only to --sampler " + samplers_that(&SamplerInfo::karras_sigmas) +
                     ", not " + to_string(options.sampler));
  }
  if (given("--solver-order")) {
    const SamplerKind k = options.sampler;
    if (!sampler_info(k).solver_order) {
      throw UsageError("--solver-order applies only to --sampler " + samplers_that(&SamplerInfo::solver_order) +
                       ", not " + to_string(k));
    }
    const SamplerInfo info = sampler_info(k);
    if (info.fixed_solver_order != 0 && solver_order != info.fixed_solver_order && info.lower_order_sampler) {
      if (given("--sampler")) {
        throw UsageError("--sampler " + info.name + " is solver order " + std::to_string(info.fixed_solver_order) +
                         "; --solver-order " + std::to_string(solver_order) + " is --sampler " +
                         to_string(*info.lower_order_sampler));
      }
      options.sampler = *info.lower_order_sampler;  // a config's fixed order overridden: the rule at this order
    }
    options.solver_order = solver_order;
  }
  if (given("--inference-steps") && inference_steps < 1) {
    throw Error("--inference-steps " + std::to_string(inference_steps) +
                " is outside [1, T]: give at least one step");
  }
  if (given("--eta") && !sampler_info(options.sampler).eta) {
    throw UsageError("--eta applies only to --sampler " + samplers_that(&SamplerInfo::eta));
  }
  if (given("--steps-offset") && options.timestep_spacing.value_or(default_timestep_spacing(
                                     options.sampler)) != TimestepSpacing::leading) {
    throw UsageError("--steps-offset applies only to --timestep-spacing leading");
  }
  // Options that exclude each other (or that the step rule cannot honour),
  // refused before any work: a usage error when the command line made the
  // conflict, a failure when the config (or the model's card) holds it already.
  try {
    check_options(options);
  } catch (const Error& e) {
    if (!use_config || consistent(base->options)) throw UsageError(e.what());
    if (config_path.empty()) throw;
    throw Error("--scheduler-config " + config_path + ": " + e.what());
  }
}

}  // namespace ddpm::cli
