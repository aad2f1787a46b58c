// ddpm sample: the reverse process from x_T (drawn, or given with --initial)
// down to x_0 with a built-in predictor (an element-wise Gaussian prior or a
// Gaussian mixture) or a trained network (--model), optionally class
// conditioned and guided (predictor_options.h), with a labelled picture of
// the samples (--png, sample_figure.h).
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
#include "ddpm/npy.h"
#include "ddpm/predictor.h"
#include "ddpm/sampler.h"
#include "input_arrays.h"
#include "output_files.h"
#include "predictor_options.h"
#include "progress_bar.h"
#include "sample_figure.h"
#include "schedule_options.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

struct SampleOptions {
  PredictorOptions predictor;
  std::string shape;  // empty when not given
  CLI::Option* shape_flag = nullptr;
  std::string initial_path;
  int start_step = -1;
  int end_step = -1;
  std::uint64_t seed = 0;
  std::int64_t first_sample = 0;
  std::string out_path;
  std::string png_path;
  ScheduleOptions schedule;
  BackendOptions backend;
  ChunkedRunOptions chunking;
};

// What the figure's title and the summary say about the run.
std::string describe_run(const Sampler& sampler, const ChosenPredictor& chosen,
                         const std::string& classes) {
  const SamplerOptions& options = sampler.options();
  std::string text = to_string(options.sampler) + ", " + std::to_string(sampler.plan().size()) +
                     " of T=" + std::to_string(sampler.schedule().steps()) + " steps";
  if (options.timestep_spacing && options.timesteps.empty() && options.num_inference_steps > 0) {
    text += " (" + to_string(*options.timestep_spacing) + ")";
  }
  if (options.use_karras_sigmas) text += ", Karras sigmas";
  if (!classes.empty()) text += ", " + classes;
  if (chosen.guidance_scale != 1.0) text += ", guidance " + format_number(chosen.guidance_scale);
  if (chosen.guidance_rescale != 0.0) text += ", rescale " + format_number(chosen.guidance_rescale);
  return text;
}

std::string file_name(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The output's full shape: --initial's, which --shape (if given) must match;
// with --model, --shape N alone is N samples of the model's shape.
std::vector<std::int64_t> given_shape(const SampleOptions& o, const ChosenPredictor& chosen);

std::vector<std::int64_t> output_extents(const SampleOptions& o,
                                         const std::vector<std::int64_t>* initial_extents,
                                         const ChosenPredictor& chosen) {
  if (initial_extents != nullptr) {
    if (o.shape_flag->count() > 0 && given_shape(o, chosen) != *initial_extents) {
      throw Error("shape mismatch: --initial " + o.initial_path + " is " +
                  format_shape(*initial_extents) + " but --shape is " + o.shape);
    }
    return *initial_extents;
  }
  if (o.shape_flag->count() == 0) {
    throw UsageError("--shape is required (or give x_T with --initial)");
  }
  return given_shape(o, chosen);
}

// --shape as given, N alone expanded to N samples of the model's shape.
std::vector<std::int64_t> given_shape(const SampleOptions& o, const ChosenPredictor& chosen) {
  std::vector<std::int64_t> extents = parse_shape(o.shape, "--shape");
  if (extents.size() == 1 && chosen.model != nullptr) {
    const std::vector<std::int64_t>& sample = chosen.model->model_card().sample_shape;
    if (sample.empty()) {
      throw UsageError("--shape " + o.shape + ": the model " + o.predictor.model_path +
                       " does not say its sample shape (no sample_size in its config); give --shape "
                       "N,C,H,W");
    }
    extents.insert(extents.end(), sample.begin(), sample.end());
  }
  return extents;
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
                   const ChosenPredictor& chosen, const std::vector<std::int64_t>& extents,
                   std::chrono::steady_clock::time_point started, const std::string& more) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::string written = o.png_path.empty() ? o.out_path : o.out_path + " and " + o.png_path;
  std::string what = "sampler " + describe_run(sampler, chosen, describe_classes(o.predictor, chosen));
  if (chosen.model != nullptr) what = "model " + file_name(o.predictor.model_path) + ", " + what;
  std::fprintf(stream, "wrote %s: %s float32, backend %s, %s%s, %.2f s\n", written.c_str(),
               format_shape(extents).c_str(), to_string(sampler.backend()).c_str(), what.c_str(),
               more.c_str(), seconds);
}

// Chunked or distributed (chunked_run.h): --initial is read a chunk at a
// time; each chunk gets its rows' class labels.
void run_sample_in_chunks(const SampleOptions& o, Sampler& sampler, ChosenPredictor& chosen,
                          std::chrono::steady_clock::time_point started) {
  if (!o.png_path.empty()) {
    throw UsageError("--png draws the whole batch at once: it cannot be combined with a chunked "
                     "or distributed run (--chunk-rows, --resume, mpirun)");
  }
  std::optional<BatchRows> initial;
  if (!o.initial_path.empty()) initial.emplace(open_batch_rows(o.initial_path, "--initial"));
  const std::vector<std::int64_t> extents =
      output_extents(o, initial ? &initial->extents() : nullptr, chosen);
  const Shape shape = batch_shape(extents);
  const std::string shape_text =
      initial ? "--initial " + o.initial_path + " (" + format_shape(extents) + ")" : "--shape " + o.shape;
  finish_predictor(o.predictor, chosen, shape, shape_text, extents);

  ChunkedJob job;
  job.label = "sampling";
  job.shape = extents;
  job.outputs = {{"--out", o.out_path}};
  job.backend = sampler.backend();
  job.extra_row_buffers = 3;  // the engine's history and model output, a guided batch's rows
  job.row_alignment = chosen.predictor->split_alignment();
  job.first_sample = o.first_sample;
  job.compute = [&](RowRange rows, std::span<const std::span<float>> out,
                    const std::function<void(double)>& progress) {
    if (initial) initial->read_rows(rows.begin, out[0]);
    SampleRequest request = request_for(o, out[0], {rows.size(), shape.dim}, rows.begin);
    request.progress = [&](int done, int total) { progress(static_cast<double>(done) / total); };
    if (!chosen.class_labels.empty()) {
      request.class_labels = std::span<const std::int32_t>(chosen.class_labels)
                                 .subspan(static_cast<std::size_t>(rows.begin),
                                          static_cast<std::size_t>(rows.size()));
    }
    request.guidance_scale = chosen.guidance_scale;
    request.guidance_rescale = chosen.guidance_rescale;
    sampler.sample(request, *chosen.predictor);
  };
  const ChunkedRunResult result = run_chunked(job, o.chunking);
  if (result.reports) {
    print_summary(stdout, o, sampler, chosen, extents, started, describe_chunked_run(result));
  }
}

void run_sample(const SampleOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  if (o.start_step < -1) throw Error("--start-step must be >= 0 (or -1 for the first timestep)");
  if (o.end_step < -1) throw Error("--end-step must be >= 0 (or -1 for the last timestep)");
  o.chunking.require_files({{"--out", o.out_path}});
  check_outputs({{"--out", o.out_path}, {"--png", o.png_path}});
  ChosenPredictor chosen = load_predictor(o.predictor, o.backend.threads);
  if (!o.png_path.empty() && chosen.model != nullptr) {
    check_figure_model(chosen.model->model_card(), o.predictor.model_path);
  }
  const std::optional<SchedulerConfig> defaults = model_defaults(chosen);

  SamplerOptions sampler_options;
  o.schedule.apply_to(sampler_options, defaults);
  o.backend.apply_to(sampler_options);
  const Schedule schedule = o.schedule.build(defaults);
  if (chosen.model != nullptr) {
    ScheduleOptions::require_trained(schedule, chosen.model->model_card().scheduler.schedule,
                                     o.predictor.model_path);
  }
  Sampler sampler(schedule, sampler_options);
  if (o.chunking.active()) return run_sample_in_chunks(o, sampler, chosen, started);

  // The output keeps the full shape; the engine sees [batch, dim].
  std::vector<std::int64_t> extents;
  std::vector<float> x;
  std::string shape_text = "--shape " + o.shape;
  if (!o.initial_path.empty()) {
    BatchArray initial = read_batch(o.initial_path, "--initial");
    extents = output_extents(o, &initial.array.shape, chosen);
    x = std::move(initial.array.data);
    shape_text = "--initial " + o.initial_path + " (" + format_shape(extents) + ")";
  } else {
    extents = output_extents(o, nullptr, chosen);
    require_memory(batch_shape(extents).size(), "--shape " + o.shape);
  }
  const Shape shape = batch_shape(extents);
  finish_predictor(o.predictor, chosen, shape, shape_text, extents);
  if (!o.png_path.empty() && chosen.model == nullptr) {
    try {
      require_image_shape(extents);
    } catch (const Error& e) {
      throw Error("--png: " + shape_text + ": " + e.what());
    }
  }
  if (x.empty()) x.resize(static_cast<std::size_t>(shape.size()));

  ProgressBar progress("sampling");
  SampleRequest request = request_for(o, x, shape, 0);
  request.progress = [&progress](int done, int total) { progress.update(done, total); };
  request.class_labels = chosen.class_labels;
  request.guidance_scale = chosen.guidance_scale;
  request.guidance_rescale = chosen.guidance_rescale;
  sampler.sample(request, *chosen.predictor);

  const std::string classes = describe_classes(o.predictor, chosen);
  OutputFiles outputs;
  outputs.write_npy(o.out_path, extents, x.data());
  if (!o.png_path.empty() && chosen.model == nullptr) {
    outputs.write_bytes(o.png_path, encode_png(x, extents));
  } else if (!o.png_path.empty()) {
    SampleFigure figure;
    figure.title = {file_name(o.predictor.model_path) + ", seed " + std::to_string(o.seed),
                    describe_run(sampler, chosen, classes)};
    figure.class_labels = chosen.class_labels;
    if (o.predictor.class_text == "all") figure.columns = chosen.model->model_card().num_classes;
    outputs.write_bytes(o.png_path, sample_figure_png(chosen.model->model_card(), x, shape, figure));
  }
  outputs.commit();
  print_summary(outputs.summary_stream(), o, sampler, chosen, extents, started, "");
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto options = std::make_shared<SampleOptions>();
  SampleOptions& o = *options;
  CLI::App* command = app.add_subcommand(
      "sample",
      "Draw samples with the reverse process and a built-in predictor or a trained --model");
  o.predictor.add_to(*command);
  o.shape_flag = command->add_option("--shape", o.shape,
                                     "output shape, first axis the batch: 256,3072 or 16,3,64,64; with\n"
                                     "--model, N alone: N samples of the model's shape")
                     ->check(parsed_by([](const std::string& text) { parse_shape(text, ""); }));
  command->add_option("--initial", o.initial_path, "start from this x_T (.npy or PNG/JPEG image) instead of noise");
  command->add_option("--start-step", o.start_step,
                      "first timestep to run (default: the first of the sampler's timesteps)");
  command->add_option("--end-step", o.end_step,
                      "last timestep to run (default: the last); the output is the sample\n"
                      "after it, which --initial with --start-step <the next timestep>\n"
                      "continues bit for bit (ddpm schedule lists the timesteps)");
  add_seed_option(*command, o.seed);
  add_first_sample_option(*command, o.first_sample);
  command->add_option("--out", o.out_path, "where to write the samples (.npy)")->required();
  command->add_option("--png", o.png_path,
                      "also draw the samples (PNG). --model: a labelled grid, classes, sampler\n"
                      "and steps in the picture, pixels in the card's data units; otherwise the\n"
                      "samples as images ([-1, 1] -> [0, 255], clipped; shape [N, C, H, W] or\n"
                      "[C, H, W], C = 1 or 3), a batch as a grid");
  o.schedule.add_to(*command, true);
  o.backend.add_to(*command);
  o.chunking.add_to(*command);
  command->callback([options] {
    run_on_every_rank(options->chunking, options->backend, [&] { run_sample(*options); });
  });
}

}  // namespace ddpm::cli
