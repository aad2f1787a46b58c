// ddpm forward: q(x_t | x0) for a batch read from .npy, with given or drawn
// noise; optionally also writes the noise used and the v-target.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "backend_options.h"
#include "chunked_run.h"
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
  ChunkedRunOptions chunking;
};

void require_step_count(const std::string& path, std::int64_t count, std::int64_t batch) {
  if (count != batch) {
    throw Error("--t-per-sample " + path + " has " + std::to_string(count) +
                " steps but the batch has " + std::to_string(batch) + " samples");
  }
}

// Steps checked against the schedule; entry i of `values` is entry first + i of the file.
std::vector<std::int32_t> checked_steps(const std::string& path,
                                        std::span<const std::int64_t> values, std::int64_t first,
                                        const Schedule& schedule) {
  std::vector<std::int32_t> result;
  result.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    try {
      schedule.check_step(values[i]);
    } catch (const Error& e) {
      throw Error("--t-per-sample " + path + ": entry " +
                  std::to_string(first + static_cast<std::int64_t>(i)) + ": " + e.what());
    }
    result.push_back(static_cast<std::int32_t>(values[i]));
  }
  return result;
}

// --t-per-sample: one step per sample, integers or whole-number floats.
std::vector<std::int32_t> read_steps(const std::string& path, std::int64_t batch,
                                     const Schedule& schedule) {
  const NpyArrayInt64 steps = read_npy_int64(path);
  require_step_count(path, static_cast<std::int64_t>(steps.data.size()), batch);
  return checked_steps(path, steps.data, 0, schedule);
}

// The request for rows [first_row, first_row + shape.batch), without its arrays.
ForwardRequest request_for(const ForwardOptions& o, Shape shape, std::int64_t first_row) {
  ForwardRequest request;
  request.shape = shape;
  request.step = o.step.value_or(-1);
  request.noise = {o.seed, o.first_sample + first_row};
  return request;
}

void print_summary(std::FILE* stream, const ForwardOptions& o, const Sampler& sampler,
                   const std::vector<std::int64_t>& extents,
                   std::chrono::steady_clock::time_point started, const std::string& more) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::string step_text = o.step ? "t=" + std::to_string(*o.step) : "t per sample";
  std::fprintf(stream, "wrote %s: %s float32, backend %s, T=%d, %s%s, %.2f s\n",
               o.out_path.c_str(), format_shape(extents).c_str(),
               to_string(sampler.backend()).c_str(), sampler.schedule().steps(),
               step_text.c_str(), more.c_str(), seconds);
}

// Chunked or distributed (chunked_run.h): every input is read a chunk at a time.
void run_forward_in_chunks(const ForwardOptions& o, Sampler& sampler,
                           std::chrono::steady_clock::time_point started) {
  const BatchRows x0 = open_batch_rows(o.x0_path, "--x0");
  std::optional<BatchRows> noise;
  if (!o.noise_path.empty()) {
    noise.emplace(open_batch_rows(o.noise_path, "--noise"));
    require_same_shape(*noise, "--noise", x0, "--x0");
  }
  std::optional<NpyRowReader> steps;
  if (!o.steps_path.empty()) {
    steps.emplace(o.steps_path);
    require_step_count(o.steps_path, steps->rows() * steps->row_size(), x0.shape.batch);
    if (steps->row_size() != 1) {
      throw Error("--t-per-sample " + o.steps_path + " has shape " +
                  format_shape(steps->shape()) +
                  ": a chunked run reads one step per row, so give it as a 1-d array");
    }
  }

  ChunkedJob job;
  job.label = "noising";
  job.shape = x0.extents();
  job.outputs = {{"--out", o.out_path}};
  if (!o.noise_out_path.empty()) job.outputs.emplace_back("--noise-out", o.noise_out_path);
  if (!o.velocity_out_path.empty()) job.outputs.emplace_back("--velocity-out", o.velocity_out_path);
  job.backend = sampler.backend();
  job.first_sample = o.first_sample;
  job.extra_row_buffers = noise ? 2 : 1;
  std::vector<float> x0_rows, noise_rows;
  std::vector<std::int64_t> step_values;
  job.compute = [&](RowRange rows, std::span<const std::span<float>> out,
                    const std::function<void(double)>&) {
    const auto size = static_cast<std::size_t>(rows.size() * x0.shape.dim);
    x0_rows.resize(size);
    x0.rows.read_rows(rows.begin, x0_rows);
    ForwardRequest request = request_for(o, {rows.size(), x0.shape.dim}, rows.begin);
    request.x0 = x0_rows;
    if (noise) {
      noise_rows.resize(size);
      noise->rows.read_rows(rows.begin, noise_rows);
      request.eps = noise_rows;
    }
    std::vector<std::int32_t> step_rows;
    if (steps) {
      step_values.resize(static_cast<std::size_t>(rows.size()));
      steps->read_rows(rows.begin, step_values);
      step_rows = checked_steps(o.steps_path, step_values, rows.begin, sampler.schedule());
      request.steps = step_rows;
    }
    std::size_t next = 0;
    request.x_t = out[next++];
    if (!o.noise_out_path.empty()) request.eps_out = out[next++];
    if (!o.velocity_out_path.empty()) request.velocity_out = out[next++];
    sampler.forward(request);
  };
  const ChunkedRunResult result = run_chunked(job, o.chunking);
  if (result.reports) {
    print_summary(stdout, o, sampler, x0.extents(), started, describe_chunked_run(result));
  }
}

void run_forward(const ForwardOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  if (o.step.has_value() == !o.steps_path.empty()) {
    throw UsageError("give the step either as --t T or as --t-per-sample T.npy (exactly one)");
  }
  const std::vector<std::pair<std::string, std::string>> output_paths{
      {"--out", o.out_path}, {"--noise-out", o.noise_out_path}, {"--velocity-out", o.velocity_out_path}};
  o.chunking.require_files(output_paths);
  check_outputs(output_paths);

  SamplerOptions sampler_options;
  o.schedule.apply_to(sampler_options);
  o.backend.apply_to(sampler_options);
  Sampler sampler(o.schedule.build(), sampler_options);
  if (o.chunking.active()) return run_forward_in_chunks(o, sampler, started);

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

  ForwardRequest request = request_for(o, x0.shape, 0);
  request.x0 = x0.array.data;
  request.steps = steps;
  if (noise) request.eps = noise->array.data;
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
  print_summary(outputs.summary_stream(), o, sampler, x0.array.shape, started, "");
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
  options->chunking.add_to(*command);
  command->callback([options] {
    run_on_every_rank(options->chunking, options->backend, [&] { run_forward(*options); });
  });
}

}  // namespace ddpm::cli
