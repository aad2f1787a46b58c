// ddpm forward: q(x_t | x0) for a batch read from .npy, with given or drawn
// noise; optionally also writes the noise used and the v-target.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "backend_options.h"
#include "command_line.h"
#include "commands.h"
#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "input_arrays.h"
#include "output_files.h"
#include "schedule_options.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

struct ForwardOptions {
  std::string x0_path;
  std::optional<int> step;
  std::string steps_path;
  std::string noise_path;
  std::string out_path;
  std::string noise_out_path;
  std::string velocity_out_path;
  std::uint64_t seed = 0;
  std::int64_t first_sample = 0;
  ScheduleOptions schedule;
  BackendOptions backend;
};

// --t-per-sample: one step per sample, integers or whole-number floats.
std::vector<std::int32_t> read_steps(const std::string& path, std::int64_t batch,
                                     const Schedule& schedule) {
  const NpyArrayInt64 steps = read_npy_int64(path);
  if (static_cast<std::int64_t>(steps.data.size()) != batch) {
    throw Error("--t-per-sample " + path + " has " + std::to_string(steps.data.size()) +
                " steps but the batch has " + std::to_string(batch) + " samples");
  }
  std::vector<std::int32_t> result;
  result.reserve(steps.data.size());
  for (std::size_t i = 0; i < steps.data.size(); ++i) {
    try {
      schedule.check_step(steps.data[i]);
    } catch (const Error& e) {
      throw Error("--t-per-sample " + path + ": entry " + std::to_string(i) + ": " + e.what());
    }
    result.push_back(static_cast<std::int32_t>(steps.data[i]));
  }
  return result;
}

void run_forward(const ForwardOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  if (o.step.has_value() == !o.steps_path.empty()) {
    throw UsageError("give the step either as --t T or as --t-per-sample T.npy (exactly one)");
  }
  check_outputs({{"--out", o.out_path},
                 {"--noise-out", o.noise_out_path},
                 {"--velocity-out", o.velocity_out_path}});

  SamplerOptions sampler_options;
  o.schedule.apply_to(sampler_options);
  o.backend.apply_to(sampler_options);
  Sampler sampler(o.schedule.build(), sampler_options);

  const BatchArray x0 = read_batch(o.x0_path, "--x0");
  std::optional<BatchArray> noise;
  if (!o.noise_path.empty()) {
    noise = read_batch(o.noise_path, "--noise");
    require_same_shape(*noise, "--noise", x0, "--x0");
  }
  std::vector<std::int32_t> steps;
  if (!o.steps_path.empty()) steps = read_steps(o.steps_path, x0.shape.batch, sampler.schedule());

  const auto size = static_cast<std::size_t>(x0.shape.size());
  std::vector<float> x_t(size);
  std::vector<float> eps_out(o.noise_out_path.empty() ? 0 : size);
  std::vector<float> velocity_out(o.velocity_out_path.empty() ? 0 : size);

  ForwardRequest request;
  request.x0 = x0.array.data;
  request.shape = x0.shape;
  request.step = o.step.value_or(-1);
  request.steps = steps;
  if (noise) request.eps = noise->array.data;
  request.noise = {o.seed, o.first_sample};
  request.x_t = x_t;
  request.eps_out = eps_out;
  request.velocity_out = velocity_out;
  sampler.forward(request);

  OutputFiles outputs;
  outputs.write_npy(o.out_path, x0.array.shape, x_t.data());
  if (!eps_out.empty()) outputs.write_npy(o.noise_out_path, x0.array.shape, eps_out.data());
  if (!velocity_out.empty()) {
    outputs.write_npy(o.velocity_out_path, x0.array.shape, velocity_out.data());
  }
  outputs.commit();

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::string step_text = o.step ? "t=" + std::to_string(*o.step) : "t per sample";
  std::fprintf(outputs.summary_stream(), "wrote %s: %s float32, backend %s, T=%d, %s, %.2f s\n",
               o.out_path.c_str(), format_shape(x0.array.shape).c_str(),
               to_string(sampler.backend()).c_str(), sampler.schedule().steps(),
               step_text.c_str(), seconds);
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto options = std::make_shared<ForwardOptions>();
  CLI::App* command = app.add_subcommand(
      "forward", "Noise a batch: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps");
  command->add_option("--x0", options->x0_path, "clean batch (.npy, first axis the batch)")
      ->required();
  command->add_option("--t", options->step, "the step t in [0, T) for the whole batch");
  command->add_option("--t-per-sample", options->steps_path,
                      "one step per sample instead of --t (.npy of whole numbers, length batch)");
  command->add_option("--noise", options->noise_path,
                      "the noise eps (.npy, same shape as --x0); drawn from --seed if absent");
  command->add_option("--out", options->out_path, "where to write x_t (.npy)")->required();
  command->add_option("--noise-out", options->noise_out_path, "also write the noise used (.npy)");
  command->add_option("--velocity-out", options->velocity_out_path,
                      "also write the v-target sqrt(ab) eps - sqrt(1 - ab) x0 (.npy)");
  add_seed_option(*command, options->seed);
  add_first_sample_option(*command, options->first_sample);
  options->schedule.add_to(*command, false);
  options->backend.add_to(*command);
  command->callback([options] { run_forward(*options); });
}

}  // namespace ddpm::cli
