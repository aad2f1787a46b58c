// Times a diffusers UNet2DModel folder in ddpm: one evaluation and a DDIM
// loop per batch (unet_rows.h).
#include "unet_rows.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <ostream>
#include <random>
#include <thread>

#include "ddpm/ddpm.h"
#include "format.h"

namespace ddpm::bench {
namespace {

constexpr int kMaxRuns = 200;

std::string folder_name(const std::string& folder) {
  return std::filesystem::path(folder).lexically_normal().filename().string();
}

std::string shape_of(std::int64_t batch, const std::vector<std::int64_t>& sample) {
  std::string text = std::to_string(batch);
  for (std::int64_t e : sample) text += "x" + std::to_string(e);
  return text;
}

// Median and spread of `body` over at least min_runs runs and min_seconds, after a warm-up.
Stats time_runs(const UNetBenchOptions& o, const std::function<void()>& body, int* runs) {
  std::vector<double> seconds;
  double total = 0.0;
  for (int run = -1; run < kMaxRuns; ++run) {
    const auto start = std::chrono::steady_clock::now();
    body();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (run < 0) continue;
    seconds.push_back(s);
    total += s;
    if (static_cast<int>(seconds.size()) >= o.min_runs && total >= o.min_seconds) break;
  }
  *runs = static_cast<int>(seconds.size());
  return summarize(seconds);
}

Row base_row(const std::string& kernel, const std::string& folder, std::int64_t batch, const std::string& shape) {
  Row row;
  row.section = "unet";
  row.kernel = kernel;
  row.label = folder_name(folder) + (kernel == std::string("unet_eval") ? ", one evaluation" : ", ddim loop");
  row.shape = shape.empty() ? std::to_string(batch) : shape;
  return row;
}

// The rows every timing starts from: seeded N(0, 1) samples and, for a
// class-conditional model, labels 0, 1, ... in turn (never the null label).
struct BenchInputs {
  std::vector<float> x_T;
  std::vector<std::int32_t> labels;
};
BenchInputs bench_inputs(const UNet2DPredictor& model, std::int64_t batch) {
  const std::vector<std::int64_t>& sample = model.model_card().sample_shape;
  BenchInputs in;
  in.x_T.resize(static_cast<std::size_t>(batch * sample[0] * sample[1] * sample[2]));
  std::mt19937_64 rng(20261208);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : in.x_T) v = normal(rng);
  if (const auto null_label = model.unconditional_label()) {
    for (std::int64_t i = 0; i < batch; ++i) in.labels.push_back(static_cast<std::int32_t>(i % *null_label));
  }
  return in;
}

// The DDIM loop of `model` from x_T on `backend`.
Row loop_row(const UNetBenchOptions& o, UNet2DPredictor& model, const std::string& folder, Backend backend,
             std::int64_t batch, int threads, std::ostream& progress) {
  const std::vector<std::int64_t> sample = model.model_card().sample_shape;
  const std::int64_t dim = sample[0] * sample[1] * sample[2];
  const BenchInputs in = bench_inputs(model, batch);
  const std::vector<float>& x_T = in.x_T;
  const std::vector<std::int32_t>& labels = in.labels;
  std::vector<float> x(x_T.size());
  SchedulerConfig config = model.model_card().recommended_config();
  switch_sampler(config.options, SamplerKind::ddim);
  config.options.num_inference_steps = o.loop_steps;
  config.options.timestep_spacing = TimestepSpacing::trailing;
  config.options.backend = backend;
  config.options.threads = threads;
  Sampler sampler(Schedule::from_spec(config.schedule), config.options);
  SampleRequest request;
  request.x = x;
  request.shape = {batch, dim};
  request.initial_noise_given = true;
  request.class_labels = labels;
  int runs = 0;
  Row loop = base_row(backend == Backend::cuda ? "unet_ddim_loop_gpu" : "unet_ddim_loop", folder, batch,
                      shape_of(batch, sample));
  if (backend == Backend::cuda) loop.label += " (cuda)";
  loop.seconds = time_runs(o, [&] {
    std::copy(x_T.begin(), x_T.end(), x.begin());
    sampler.sample(request, model);
  }, &runs);
  loop.steps = o.loop_steps;
  loop.elements = batch * dim;
  loop.threads = backend == Backend::cuda ? 0 : threads;
  loop.samples_per_second = static_cast<double>(batch) / loop.seconds.median;
  loop.note = "DDIM " + std::to_string(o.loop_steps) + " trailing steps, " +
              to_string(config.options.prediction_type) + (labels.empty() ? "" : ", labels in turn") +
              ", no guidance, x_T copied in each run; " + std::to_string(runs) + " timed runs after a warm-up";
  progress << "  " << loop.label << ", batch " << batch << ": " << format_seconds(loop.seconds.median) << " ("
           << runs << " runs)\n" << std::flush;
  return loop;
}

std::vector<Row> folder_rows(const UNetBenchOptions& o, const std::string& folder, std::ostream& progress) {
  std::vector<Row> rows;
  UNet2DPredictorOptions model_options;
  model_options.threads = o.threads;
  UNet2DPredictor model(folder, model_options);
  const std::vector<std::int64_t> sample = model.model_card().sample_shape;
  if (sample.size() != 3) throw Error(folder + ": its config has no sample_size");
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = o.threads > 0 ? o.threads : hardware;
  for (std::int64_t batch : o.cpu ? o.batches : std::vector<std::int64_t>{}) {
    const std::int64_t dim = sample[0] * sample[1] * sample[2];
    const BenchInputs in = bench_inputs(model, batch);
    const std::vector<float>& x_T = in.x_T;
    const std::vector<std::int32_t>& labels = in.labels;
    std::vector<float> out(x_T.size());
    const std::vector<float> times(static_cast<std::size_t>(batch), 500.0f);
    const std::string shape = shape_of(batch, sample);

    int runs = 0;
    Row eval = base_row("unet_eval", folder, batch, shape);
    eval.seconds = time_runs(o, [&] { model.evaluate(x_T, batch, sample[1], sample[2], times, labels, out); }, &runs);
    eval.steps = 1;
    eval.elements = batch * dim;
    eval.threads = threads;
    eval.samples_per_second = static_cast<double>(batch) / eval.seconds.median;
    eval.note = std::to_string(model.parameter_count()) + " parameters, t = 500; " + std::to_string(runs) +
                " timed runs after a warm-up";
    progress << "  " << eval.label << ", batch " << batch << ": " << format_seconds(eval.seconds.median) << " ("
             << runs << " runs)\n" << std::flush;
    rows.push_back(eval);

    rows.push_back(loop_row(o, model, folder, Backend::cpu, batch, threads, progress));
  }
  if (o.gpu) {
    for (std::int64_t batch : o.gpu_batches) {
      if (!cuda_available()) {
        Row row = base_row("unet_ddim_loop_gpu", folder, batch, shape_of(batch, sample));
        row.skipped = cuda_unavailable_reason();
        rows.push_back(row);
      } else {
        rows.push_back(loop_row(o, model, folder, Backend::cuda, batch, 0, progress));
      }
    }
  }
  return rows;
}

}  // namespace

std::vector<Row> run_unet_rows(const UNetBenchOptions& options, std::ostream& progress) {
  std::vector<Row> rows;
  for (const std::string& folder : options.folders) {
    try {
      const std::vector<Row> more = folder_rows(options, folder, progress);
      rows.insert(rows.end(), more.begin(), more.end());
    } catch (const Error& e) {
      for (std::int64_t batch : options.batches) {
        for (const char* kernel : {"unet_eval", "unet_ddim_loop", "unet_ddim_loop_gpu"}) {
          Row row = base_row(kernel, folder, batch, "");
          row.skipped = e.what();
          rows.push_back(row);
        }
      }
    }
  }
  return rows;
}

void print_unet_rows(const std::vector<Row>& rows, std::ostream& out) {
  out << "  " << pad("model and work", 40) << pad("threads", 8, true) << "  " << pad("shape", 14)
      << pad("time per call: median [min .. max]", 40) << pad("samples/s", 12, true) << "\n";
  for (const Row& row : rows) {
    if (row.section != "unet") continue;
    out << "  " << pad(row.label, 40) << pad(row.threads ? std::to_string(row.threads) : "-", 8, true) << "  "
        << pad(row.shape, 14);
    if (!row.skipped.empty()) {
      out << "skipped: " << row.skipped << "\n";
      continue;
    }
    out << pad(format_seconds(row.seconds.median) + " [" + format_seconds(row.seconds.min) + " .. " +
                   format_seconds(row.seconds.max) + "]",
               40)
        << pad(format_fixed(row.samples_per_second, 2), 12, true) << "\n";
  }
}

}  // namespace ddpm::bench
