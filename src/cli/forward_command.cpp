// ddpm forward: q(x_t | x0) for a batch read from .npy or an image, with
// given or drawn noise; optionally also writes the noise used, the v-target
// and x_t as a picture (--png). With --from-step, the one step
// q(x_t | x_{t-1}) from a sample of x_{t-1} instead.
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
#include "ddpm/image.h"
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
  std::string png_path;
  bool from_step = false;
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

// The same for --from-step: q(x_t | x_{t-1}) at step t.
ForwardOneStepRequest one_step_request_for(const ForwardOptions& o, Shape shape,
                                           std::int64_t first_row) {
  ForwardOneStepRequest request;
  request.shape = shape;
  request.step = *o.step;
  request.noise = {o.seed, o.first_sample + first_row};
  return request;
}

// One call of the engine on rows whose arrays are set in `arrays` (x0 is
// x_{t-1} with --from-step).
struct ForwardArrays {
  std::span<const float> x0, eps;
  std::span<const std::int32_t> steps;
  std::span<float> x_t, eps_out, velocity_out;
};
void run_rows(const ForwardOptions& o, Sampler& sampler, Shape shape, std::int64_t first_row,
              const ForwardArrays& a) {
  if (o.from_step) {
    ForwardOneStepRequest request = one_step_request_for(o, shape, first_row);
    request.x_prev = a.x0;
    request.eps = a.eps;
    request.x_t = a.x_t;
    request.eps_out = a.eps_out;
    sampler.forward_one_step(request);
    return;
  }
  ForwardRequest request = request_for(o, shape, first_row);
  request.x0 = a.x0;
  request.eps = a.eps;
  request.steps = a.steps;
  request.x_t = a.x_t;
  request.eps_out = a.eps_out;
  request.velocity_out = a.velocity_out;
  sampler.forward(request);
}

void print_summary(std::FILE* stream, const ForwardOptions& o, const Sampler& sampler,
                   const std::vector<std::int64_t>& extents,
                   std::chrono::steady_clock::time_point started, const std::string& more) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string step_text = o.step ? "t=" + std::to_string(*o.step) : "t per sample";
  if (o.from_step) step_text = "one step from t-1 to " + step_text;
  const std::string written = o.png_path.empty() ? o.out_path : o.out_path + " and " + o.png_path;
  std::fprintf(stream, "wrote %s: %s float32, backend %s, T=%d, %s%s, %.2f s\n",
               written.c_str(), format_shape(extents).c_str(),
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
    x0.read_rows(rows.begin, x0_rows);
    ForwardArrays arrays;
    arrays.x0 = x0_rows;
    if (noise) {
      noise_rows.resize(size);
      noise->read_rows(rows.begin, noise_rows);
      arrays.eps = noise_rows;
    }
    std::vector<std::int32_t> step_rows;
    if (steps) {
      step_values.resize(static_cast<std::size_t>(rows.size()));
      steps->read_rows(rows.begin, step_values);
      step_rows = checked_steps(o.steps_path, step_values, rows.begin, sampler.schedule());
      arrays.steps = step_rows;
    }
    std::size_t next = 0;
    arrays.x_t = out[next++];
    if (!o.noise_out_path.empty()) arrays.eps_out = out[next++];
    if (!o.velocity_out_path.empty()) arrays.velocity_out = out[next++];
    run_rows(o, sampler, {rows.size(), x0.shape.dim}, rows.begin, arrays);
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
  if (o.from_step && !o.steps_path.empty()) {
    throw UsageError("--from-step takes one step for the batch: give it as --t T");
  }
  if (o.from_step && !o.velocity_out_path.empty()) {
    throw UsageError("--velocity-out is the v-target of q(x_t | x0); --from-step has no x0");
  }
  if (!o.png_path.empty() && o.chunking.active()) {
    throw UsageError("--png draws the whole batch at once: it cannot be combined with a chunked "
                     "or distributed run (--chunk-rows, --resume, mpirun)");
  }
  const std::vector<std::pair<std::string, std::string>> output_paths{
      {"--out", o.out_path}, {"--noise-out", o.noise_out_path}, {"--velocity-out", o.velocity_out_path}};
  o.chunking.require_files(output_paths);
  auto checked_paths = output_paths;
  checked_paths.emplace_back("--png", o.png_path);
  check_outputs(checked_paths);

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
  if (!o.png_path.empty()) {
    try {
      require_image_shape(x0.array.shape);
    } catch (const Error& e) {
      throw Error("--png: --x0 " + o.x0_path + ": " + e.what());
    }
  }

  const auto size = static_cast<std::size_t>(x0.shape.size());
  std::vector<float> x_t(size);
  std::vector<float> eps_out(o.noise_out_path.empty() ? 0 : size);
  std::vector<float> velocity_out(o.velocity_out_path.empty() ? 0 : size);

  ForwardArrays arrays;
  arrays.x0 = x0.array.data;
  arrays.steps = steps;
  if (noise) arrays.eps = noise->array.data;
  arrays.x_t = x_t;
  arrays.eps_out = eps_out;
  arrays.velocity_out = velocity_out;
  run_rows(o, sampler, x0.shape, 0, arrays);

  OutputFiles outputs;
  outputs.write_npy(o.out_path, x0.array.shape, x_t.data());
  if (!eps_out.empty()) outputs.write_npy(o.noise_out_path, x0.array.shape, eps_out.data());
  if (!velocity_out.empty()) {
    outputs.write_npy(o.velocity_out_path, x0.array.shape, velocity_out.data());
  }
  if (!o.png_path.empty()) outputs.write_bytes(o.png_path, encode_png(x_t, x0.array.shape));
  outputs.commit();
  print_summary(outputs.summary_stream(), o, sampler, x0.array.shape, started, "");
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto options = std::make_shared<ForwardOptions>();
  CLI::App* command = app.add_subcommand(
      "forward", "Noise a batch: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps");
  command->add_option("--x0", options->x0_path,
                      "clean batch (.npy, first axis the batch; or a PNG/JPEG image, read as\n"
                      "[1, C, H, W] in [-1, 1]); x_{t-1} with --from-step")
      ->required();
  command->add_option("--t", options->step, "the step t in [0, T) for the whole batch");
  command->add_flag("--from-step", options->from_step,
                    "one step instead: x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps,\n"
                    "q(x_t | x_{t-1}) with --x0 the sample of x_{t-1}");
  command->add_option("--t-per-sample", options->steps_path,
                      "one step per sample instead of --t (.npy of whole numbers, length batch)");
  command->add_option("--noise", options->noise_path,
                      "the noise eps (.npy or image, same shape as --x0); drawn from --seed if\n"
                      "absent");
  command->add_option("--out", options->out_path, "where to write x_t (.npy)")->required();
  command->add_option("--png", options->png_path,
                      "also draw x_t as a picture (PNG; [-1, 1] -> [0, 255], clipped; a batch as\n"
                      "a grid); --x0 must be [N, C, H, W] or [C, H, W] with C = 1 or 3");
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
