#include "schedule_options.h"

#include "command_line.h"
#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "text_parsing.h"

namespace ddpm::cli {

void ScheduleOptions::add_to(CLI::App& command) {
  auto* schedule = command
                       .add_option("--schedule", kind,
                                   "noise schedule: linear, scaled_linear, cosine or sigmoid")
                       ->check(parsed_by([](const std::string& s) { parse_schedule_kind(s); }))
                       ->capture_default_str();
  auto* step_count =
      command.add_option("--steps", steps, "number of diffusion steps T")->capture_default_str();
  auto* start =
      command.add_option("--beta-start", beta_start, "first beta (linear, scaled_linear, sigmoid)")
          ->capture_default_str();
  auto* end =
      command.add_option("--beta-end", beta_end, "last beta (linear, scaled_linear, sigmoid)")
          ->capture_default_str();
  // The file defines the whole schedule, so the flags that shape a built-in
  // one would be ignored: refuse them together rather than guess.
  command.add_option("--betas", betas_path, "a .npy of T betas in (0, 1): a custom schedule")
      ->excludes(schedule)
      ->excludes(step_count)
      ->excludes(start)
      ->excludes(end);
  command
      .add_option("--variance", variance, "reverse-step variance: beta, or posterior (beta tilde)")
      ->check(CLI::IsMember({"beta", "posterior"}))
      ->capture_default_str();
  command
      .add_option("--clip-x0", clip_x0,
                  "clip the predicted x0 to LO,HI in the reverse step (e.g. -1,1)")
      ->check(parsed_by([](const std::string& text) { parse_clip_range(text, ""); }));
}

Schedule ScheduleOptions::build() const {
  ScheduleSpec spec;
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
  spec.kind = parse_schedule_kind(kind);
  if (spec.kind == ScheduleKind::custom) throw Error("--schedule custom needs --betas FILE.npy");
  spec.steps = steps;
  spec.beta_start = beta_start;
  spec.beta_end = beta_end;
  Schedule schedule = Schedule::from_spec(spec);
  if (spec.kind != ScheduleKind::cosine && beta_start > beta_end) {
    warn("--beta-start " + format_number(beta_start) + " is above --beta-end " +
         format_number(beta_end) + ": noise decreases over the steps (swapped?)");
  }
  return schedule;
}

void ScheduleOptions::apply_to(SamplerOptions& options) const {
  if (variance == "beta") {
    options.variance = VarianceKind::beta;
  } else if (variance == "posterior") {
    options.variance = VarianceKind::posterior;
  } else {
    throw Error("unknown --variance '" + variance + "' (expected beta or posterior)");
  }
  if (!clip_x0.empty()) options.clip_x0 = parse_clip_range(clip_x0, "--clip-x0");
}

}  // namespace ddpm::cli
