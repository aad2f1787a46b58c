// ddpm sample: the reverse process from x_T (drawn, or given with --initial)
// down to x_0 with a built-in predictor: an element-wise Gaussian prior or a
// Gaussian mixture.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include <nlohmann/json.hpp>

#include "backend_options.h"
#include "chunked_run.h"
#include "command_line.h"
#include "commands.h"
#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "ddpm/predictor.h"
#include "ddpm/sampler.h"
#include "input_arrays.h"
#include "output_files.h"
#include "progress_bar.h"
#include "schedule_options.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

struct SampleOptions {
  std::string predictor = "gaussian";
  float mean = 0.0f;
  float std = 1.0f;
  std::string mean_path;
  std::string std_path;
  std::string gmm_path;
  std::string shape;  // empty when not given
  CLI::Option* shape_flag = nullptr;
  std::string initial_path;
  int start_step = -1;
  int end_step = -1;
  std::uint64_t seed = 0;
  std::int64_t first_sample = 0;
  std::string out_path;
  ScheduleOptions schedule;
  BackendOptions backend;
  ChunkedRunOptions chunking;
  // The flags that only the Gaussian predictor reads, to refuse them for gmm.
  std::vector<CLI::Option*> gaussian_flags;
};

// Per-element prior values: one per element of a sample, whatever the file's shape.
std::vector<float> read_per_element(const std::string& path, const std::string& flag,
                                    std::int64_t dim) {
  NpyArray values = read_npy(path);
  if (static_cast<std::int64_t>(values.data.size()) != dim) {
    throw Error("shape mismatch: " + flag + " " + path + " has " +
                std::to_string(values.data.size()) + " values but a sample has " +
                std::to_string(dim) + " elements");
  }
  return std::move(values.data);
}

// The predictor the flags describe, built by the library from its JSON
// description (ddpm::make_predictor).
std::unique_ptr<NoisePredictor> predictor_from_flags(const SampleOptions& o, Shape shape) {
  nlohmann::json description;
  if (o.predictor == "gaussian") {
    if (!o.gmm_path.empty()) throw UsageError("--gmm applies only to --predictor gmm");
    description = {{"type", "gaussian"}, {"mean", o.mean}, {"std", o.std}};
    if (!o.mean_path.empty()) description["means"] = read_per_element(o.mean_path, "--mean-npy", shape.dim);
    if (!o.std_path.empty()) description["stds"] = read_per_element(o.std_path, "--std-npy", shape.dim);
    return make_predictor(description.dump());
  }
  if (o.predictor == "gmm") {
    for (const CLI::Option* flag : o.gaussian_flags) {
      if (flag->count() > 0) {
        throw UsageError(flag->get_name() + " applies only to --predictor gaussian");
      }
    }
    if (o.gmm_path.empty()) throw UsageError("--predictor gmm needs --gmm SPEC.json");
    std::unique_ptr<NoisePredictor> predictor =
        make_predictor(nlohmann::json{{"type", "gmm"}, {"path", o.gmm_path}}.dump());
    const int dim = static_cast<const GmmPredictor&>(*predictor).spec().dim();
    if (dim != shape.dim) {
      throw Error("dimension mismatch: GMM " + o.gmm_path + " has dimension " +
                  std::to_string(dim) + " but a sample of --shape " + o.shape + " has " +
                  std::to_string(shape.dim) + " elements");
    }
    return predictor;
  }
  throw Error("unknown predictor '" + o.predictor + "' (expected gaussian or gmm)");
}

// The output's full shape: --initial's, which --shape (if given) must match.
std::vector<std::int64_t> output_extents(const SampleOptions& o,
                                         const std::vector<std::int64_t>* initial_extents) {
  if (initial_extents != nullptr) {
    if (o.shape_flag->count() > 0 && parse_shape(o.shape, "--shape") != *initial_extents) {
      throw Error("shape mismatch: --initial " + o.initial_path + " is " +
                  format_shape(*initial_extents) + " but --shape is " + o.shape);
    }
    return *initial_extents;
  }
  if (o.shape_flag->count() == 0) {
    throw UsageError("--shape is required (or give x_T with --initial)");
  }
  return parse_shape(o.shape, "--shape");
}

// The request for the rows [first_row, first_row + shape.batch) of the output in `x`.
SampleRequest request_for(const SampleOptions& o, std::span<float> x, Shape shape,
                          std::int64_t first_row) {
  SampleRequest request;
  request.x = x;
  request.shape = shape;
  request.noise = {o.seed, o.first_sample + first_row};
  request.initial_noise_given = !o.initial_path.empty();
  request.start_step = o.start_step;
  request.end_step = o.end_step;
  return request;
}

void print_summary(std::FILE* stream, const SampleOptions& o, const Sampler& sampler,
                   const std::vector<std::int64_t>& extents,
                   std::chrono::steady_clock::time_point started, const std::string& more) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stream,
               "wrote %s: %s float32, backend %s, sampler %s, %zu of T=%d steps%s, %.2f s\n",
               o.out_path.c_str(), format_shape(extents).c_str(),
               to_string(sampler.backend()).c_str(), to_string(sampler.options().sampler).c_str(),
               sampler.plan().size(), sampler.schedule().steps(), more.c_str(), seconds);
}

// Chunked or distributed (chunked_run.h): --initial is read a chunk at a time.
void run_sample_in_chunks(const SampleOptions& o, Sampler& sampler,
                          std::chrono::steady_clock::time_point started) {
  std::optional<BatchRows> initial;
  if (!o.initial_path.empty()) initial.emplace(open_batch_rows(o.initial_path, "--initial"));
  const std::vector<std::int64_t> extents =
      output_extents(o, initial ? &initial->extents() : nullptr);
  const Shape shape = batch_shape(extents);
  std::unique_ptr<NoisePredictor> predictor = predictor_from_flags(o, shape);

  ChunkedJob job;
  job.label = "sampling";
  job.shape = extents;
  job.outputs = {{"--out", o.out_path}};
  job.backend = sampler.backend();
  job.extra_row_buffers = 3;  // the engine's history and model output, a guided batch's rows
  job.compute = [&](RowRange rows, std::span<const std::span<float>> out,
                    const std::function<void(double)>& progress) {
    if (initial) initial->rows.read_rows(rows.begin, out[0]);
    SampleRequest request = request_for(o, out[0], {rows.size(), shape.dim}, rows.begin);
    request.progress = [&](int done, int total) { progress(static_cast<double>(done) / total); };
    sampler.sample(request, *predictor);
  };
  const ChunkedRunResult result = run_chunked(job, o.chunking);
  if (result.reports) {
    print_summary(stdout, o, sampler, extents, started, describe_chunked_run(result));
  }
}

void run_sample(const SampleOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  if (o.start_step < -1) throw Error("--start-step must be >= 0 (or -1 for the first timestep)");
  if (o.end_step < -1) throw Error("--end-step must be >= 0 (or -1 for the last timestep)");
  check_outputs({{"--out", o.out_path}});

  SamplerOptions sampler_options;
  o.schedule.apply_to(sampler_options);
  o.backend.apply_to(sampler_options);
  Sampler sampler(o.schedule.build(), sampler_options);
  if (o.chunking.active()) return run_sample_in_chunks(o, sampler, started);

  // The output keeps the full shape; the engine sees [batch, dim].
  std::vector<std::int64_t> extents;
  std::vector<float> x;
  if (!o.initial_path.empty()) {
    BatchArray initial = read_batch(o.initial_path, "--initial");
    extents = output_extents(o, &initial.array.shape);
    x = std::move(initial.array.data);
  } else {
    extents = output_extents(o, nullptr);
    require_memory(batch_shape(extents).size(), "--shape " + o.shape);
  }
  const Shape shape = batch_shape(extents);
  std::unique_ptr<NoisePredictor> predictor = predictor_from_flags(o, shape);
  if (x.empty()) x.resize(static_cast<std::size_t>(shape.size()));

  ProgressBar progress("sampling");
  SampleRequest request = request_for(o, x, shape, 0);
  request.progress = [&progress](int done, int total) { progress.update(done, total); };
  sampler.sample(request, *predictor);

  OutputFiles outputs;
  outputs.write_npy(o.out_path, extents, x.data());
  outputs.commit();
  print_summary(outputs.summary_stream(), o, sampler, extents, started, "");
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto options = std::make_shared<SampleOptions>();
  SampleOptions& o = *options;
  CLI::App* command = app.add_subcommand(
      "sample", "Draw samples with the reverse process and a built-in predictor");
  command->add_option("--predictor", o.predictor, "gaussian (element-wise prior) or gmm (mixture)")
      ->check(CLI::IsMember({"gaussian", "gmm"}))
      ->capture_default_str();
  auto* mean = command->add_option("--mean", o.mean, "gaussian prior mean")->capture_default_str();
  auto* std =
      command->add_option("--std", o.std, "gaussian prior std (>= 0)")->capture_default_str();
  auto* mean_npy =
      command
          ->add_option("--mean-npy", o.mean_path, "per-element prior means (.npy with dim values)")
          ->excludes(mean);
  auto* std_npy =
      command->add_option("--std-npy", o.std_path, "per-element prior stds (.npy with dim values)")
          ->excludes(std);
  o.gaussian_flags = {mean, std, mean_npy, std_npy};
  command->add_option("--gmm", o.gmm_path,
                      R"(mixture spec JSON: {"weights": [...], "means": [[...]], "stds": [...]})");
  o.shape_flag = command->add_option("--shape", o.shape,
                                     "output shape, first axis the batch: 256,3072 or 16,3,64,64")
                     ->check(parsed_by([](const std::string& text) { parse_shape(text, ""); }));
  command->add_option("--initial", o.initial_path, "start from this x_T (.npy) instead of noise");
  command->add_option("--start-step", o.start_step,
                      "first timestep to run (default: the first of the sampler's timesteps)");
  command->add_option("--end-step", o.end_step,
                      "last timestep to run (default: the last); the output is the sample\n"
                      "after it, which --initial with --start-step <the next timestep>\n"
                      "continues bit for bit (ddpm schedule lists the timesteps)");
  add_seed_option(*command, o.seed);
  add_first_sample_option(*command, o.first_sample);
  command->add_option("--out", o.out_path, "where to write the samples (.npy)")->required();
  o.schedule.add_to(*command, true);
  o.backend.add_to(*command);
  o.chunking.add_to(*command);
  command->callback([options] {
    run_on_every_rank(options->chunking, options->backend, [&] { run_sample(*options); });
  });
}

}  // namespace ddpm::cli
