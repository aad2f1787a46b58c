// ddpm schedule: the table a sampling run would use, one row per timestep in
// loop order: the timesteps, the (respaced) betas and alpha_bars, the
// coefficients of the rule's update (ddpm::PlannedStep), and what a solver's
// plan gives the model (its fractional time, the step's sigma, the order).
// Printed as CSV, or written as a float64 .npy of shape [steps, columns]
// with --out. With --model, the model card's settings are the defaults, as
// for `ddpm sample --model`.
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend_options.h"
#include "commands.h"
#include "ddpm/error.h"
#include "ddpm/model.h"
#include "ddpm/npy.h"
#include "ddpm/sampler.h"
#include "output_files.h"
#include "schedule_options.h"

namespace ddpm::cli {
namespace {

struct ScheduleCommandOptions {
  std::string out_path;
  std::string model_path;
  ScheduleOptions schedule;
};

// The model card's recommended settings, as `ddpm sample --model` starts from.
std::optional<SchedulerConfig> card_defaults(const std::string& model_path) {
  if (model_path.empty()) return std::nullopt;
  ModelOptions options;
  options.threads = 1;
  return load_model(model_path, options)->model_card().recommended_config();
}

// The columns, in order (also the CSV header).
constexpr const char* kColumns[] = {
    "timestep",       "prev_timestep",         "beta",           "alpha_bar",
    "alpha_bar_prev", "x0_from_sample",        "x0_from_model_output",
    "eps_from_sample", "eps_from_model_output", "prev_from_x0", "prev_from_eps",
    "prev_from_sample", "sigma",
    // Added after the first 13, which keep their places.
    "model_timestep", "solver_sigma", "prev_from_x0_prev", "order",
    // The deeper-history rules' terms (dpmpp_3m, unipc, heun), after those.
    "prev_from_x0_prev2", "prev_from_last_sample", "corrects", "corrected_from_last_sample",
    "corrected_from_x0", "corrected_from_x0_prev", "corrected_from_x0_prev2", "corrected_from_x0_prev3",
    "stage"};
constexpr std::size_t kColumnCount = sizeof(kColumns) / sizeof(kColumns[0]);

std::vector<double> row_of(const PlannedStep& s) {
  return {static_cast<double>(s.timestep), static_cast<double>(s.prev_timestep), s.beta,
          s.alpha_bar, s.alpha_bar_prev, s.x0_from_sample, s.x0_from_model_output,
          s.eps_from_sample, s.eps_from_model_output, s.prev_from_x0, s.prev_from_eps,
          s.prev_from_sample, s.sigma, s.model_timestep,
          std::sqrt((1.0 - s.alpha_bar) / s.alpha_bar), s.prev_from_x0_prev,
          static_cast<double>(s.order), s.prev_from_x0_prev2, s.prev_from_last_sample,
          s.corrects ? 1.0 : 0.0, s.corrected_from_last_sample, s.corrected_from_x0,
          s.corrected_from_x0_prev[0], s.corrected_from_x0_prev[1], s.corrected_from_x0_prev[2],
          static_cast<double>(s.stage)};
}

bool integer_column(std::size_t c) {
  const std::string name = kColumns[c];
  return name == "timestep" || name == "prev_timestep" || name == "order" || name == "corrects" ||
         name == "stage";
}

void run_schedule(const ScheduleCommandOptions& o) {
  check_outputs({{"--out", o.out_path}});
  const std::optional<SchedulerConfig> defaults = card_defaults(o.model_path);
  SamplerOptions options;
  o.schedule.apply_to(options, defaults);
  options.backend = Backend::cpu;  // the table is the same for every backend
  const Schedule schedule = o.schedule.build(defaults);
  if (defaults) ScheduleOptions::require_trained(schedule, defaults->schedule, o.model_path);
  const Sampler sampler(schedule, options);
  const std::vector<PlannedStep>& plan = sampler.plan();
  // A step the run could not take fails the run, so it fails the table too.
  for (const PlannedStep& s : plan) {
    if (!s.error.empty()) throw Error(s.error);
  }
  if (o.out_path.empty()) {
    for (std::size_t c = 0; c < kColumnCount; ++c) std::printf("%s%s", c ? "," : "", kColumns[c]);
    std::printf("\n");
    for (const PlannedStep& s : plan) {
      const std::vector<double> row = row_of(s);
      for (std::size_t c = 0; c < kColumnCount; ++c) {
        if (c > 0) std::printf(",");
        if (integer_column(c)) {
          std::printf("%d", static_cast<int>(row[c]));
        } else {
          std::printf("%.17g", row[c]);
        }
      }
      std::printf("\n");
    }
    return;
  }
  std::vector<double> table;
  for (const PlannedStep& s : plan) {
    const std::vector<double> row = row_of(s);
    table.insert(table.end(), row.begin(), row.end());
  }
  write_npy(o.out_path,
            {static_cast<std::int64_t>(plan.size()), static_cast<std::int64_t>(kColumnCount)},
            table.data());
  std::fprintf(stderr, "wrote %s: %zu steps x %zu columns float64 (", o.out_path.c_str(),
               plan.size(), kColumnCount);
  for (std::size_t c = 0; c < kColumnCount; ++c) std::fprintf(stderr, "%s%s", c ? ", " : "", kColumns[c]);
  std::fprintf(stderr, ")\n");
}

}  // namespace

void add_schedule_command(CLI::App& app) {
  auto options = std::make_shared<ScheduleCommandOptions>();
  CLI::App* command = app.add_subcommand(
      "schedule",
      "Print (CSV) or write (.npy) the per-step table a sampling run would use: timestep,\n"
      "prev_timestep, beta, alpha_bar, alpha_bar_prev, x0_from_sample, x0_from_model_output,\n"
      "eps_from_sample, eps_from_model_output, prev_from_x0, prev_from_eps, prev_from_sample,\n"
      "sigma, model_timestep, solver_sigma, prev_from_x0_prev, order, where\n"
      "x0 = x0_from_sample x_t + x0_from_model_output m (then clipped or thresholded), eps\n"
      "likewise, and x_prev = prev_from_x0 x0 + prev_from_eps eps + prev_from_sample x_t +\n"
      "prev_from_x0_prev x0' + sigma z (x0' the previous step's x0, for order 2).\n"
      "Then prev_from_x0_prev2, prev_from_last_sample, corrects, corrected_from_last_sample,\n"
      "corrected_from_x0, corrected_from_x0_prev, corrected_from_x0_prev2,\n"
      "corrected_from_x0_prev3 and stage: the terms of the rules that keep more history\n"
      "(dpmpp_3m's x0 of two steps back; UniPC's corrector, which first replaces x_t by\n"
      "a combination of the previous corrected sample, x0 and earlier x0s; Heun's stage 2,\n"
      "which reads stage 1's sample). Heun has one row per model call.\n"
      "model_timestep is the time the model is given (fractional for Euler with Karras\n"
      "sigmas); solver_sigma = sqrt((1 - alpha_bar) / alpha_bar), diffusers' sigma of x_t");
  command->add_option("--out", options->out_path,
                      "write a float64 .npy [steps, 26] instead of printing CSV");
  command->add_option("--model", options->model_path,
                      "a model (.safetensors with a card): its schedule and recommended sampler\n"
                      "are the defaults, as for ddpm sample --model");
  options->schedule.add_to(*command, true);
  command->callback([options] { run_schedule(*options); });
}

}  // namespace ddpm::cli
