#pragma once
// The schedule flags every subcommand takes (--schedule, --steps,
// --beta-start, --beta-end, --betas, --variance, --clip-x0), kept in one
// place so that forward, sample and demo read them the same way.
#include <CLI/CLI.hpp>
#include <string>

#include "ddpm/sampler.h"
#include "ddpm/schedule.h"

namespace ddpm::cli {

struct ScheduleOptions {
  std::string kind = "linear";
  int steps = 1000;
  double beta_start = 1e-4;
  double beta_end = 0.02;
  std::string betas_path;  // a .npy of betas: ScheduleKind::custom
  std::string variance = "beta";
  std::string clip_x0;  // "LO,HI", or empty for no clipping

  void add_to(CLI::App& command);
  // Throws ddpm::Error for an impossible schedule (Schedule::from_spec checks it).
  Schedule build() const;
  // Sets the variance and clipping of `options`.
  void apply_to(SamplerOptions& options) const;
};

}  // namespace ddpm::cli
