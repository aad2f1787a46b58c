#pragma once
// The schedule and step-rule flags, kept in one place so that forward,
// sample, schedule and demo read them the same way:
//   schedule (every subcommand): --schedule --steps --beta-start --beta-end
//     --betas --rescale-zero-snr --scheduler-config --variance --clip-x0
//   rule (sample, schedule): --sampler --inference-steps --eta
//     --timestep-spacing --steps-offset --timesteps --prediction-type
//     --thresholding --karras-sigmas --solver-order
// With --scheduler-config FILE the file's values (with diffusers' defaults
// for the keys it lacks) come first and the flags given on the command line
// override them. A caller may give defaults of the same kind (a model card's
// recommended settings); a --scheduler-config file replaces them, and flags
// given on the command line override either.
#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/sampler.h"
#include "ddpm/schedule.h"
#include "ddpm/scheduler_config.h"

namespace ddpm::cli {

struct ScheduleOptions {
  std::string kind = "linear";
  int steps = 1000;
  double beta_start = 1e-4;
  double beta_end = 0.02;
  std::string betas_path;  // a .npy of betas: ScheduleKind::custom
  bool rescale_zero_snr = false;
  std::string config_path;  // diffusers scheduler_config.json
  std::string variance = "beta";
  std::string clip_x0;  // "LO,HI", or empty for no clipping
  // The rule.
  std::string sampler = "ddpm";
  int inference_steps = 0;
  double eta = 0.0;
  std::string timestep_spacing = "leading";
  int steps_offset = 0;
  std::string timesteps_path;
  std::string prediction_type = "epsilon";
  std::string thresholding;  // "RATIO[,MAX]"
  bool karras_sigmas = false;
  int solver_order = 2;

  // Adds the schedule flags, and the rule flags when `rule` is set.
  void add_to(CLI::App& command, bool rule);
  // The schedule and the options the flags (and the config, or `defaults`)
  // describe; throws ddpm::Error naming the flag for a bad value.
  Schedule build(const std::optional<SchedulerConfig>& defaults = std::nullopt) const;
  void apply_to(SamplerOptions& options,
                const std::optional<SchedulerConfig>& defaults = std::nullopt) const;
  // Whether the flag was given on the command line.
  bool given(const char* flag) const;
  // With --model: the schedule must be the one the model was trained with
  // (its card's `trained`); another (--schedule, --beta-*, --betas,
  // --scheduler-config) is an error naming both, since the network only
  // knows its own noise levels.
  static void require_trained(const Schedule& schedule, const ScheduleSpec& trained,
                              const std::string& model_path);

 private:
  // --scheduler-config's file, else `defaults`.
  std::optional<SchedulerConfig> base_config(const std::optional<SchedulerConfig>& defaults) const;
  mutable std::optional<SchedulerConfig> loaded_config_;  // --scheduler-config's, once read
  std::vector<std::pair<std::string, CLI::Option*>> flags_;
};

}  // namespace ddpm::cli
