// Times Sampler::sample with the MLP denoiser as its predictor: the figure a
// user of a trained model compares with PyTorch (bench/torch_baseline.py
// --mlp runs the same loop in eager PyTorch on the same weights).
#include "mlp_rows.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <ostream>
#include <random>
#include <thread>

#include "ddpm/ddpm.h"
#include "format.h"

namespace ddpm::bench {
namespace {

constexpr int kMaxRuns = 200;


Row skipped_row(const std::string& kernel, const std::string& label, std::int64_t batch,
                const std::string& reason) {
  Row row;
  row.section = "mlp";
  row.kernel = kernel;
  row.label = label;
  row.shape = std::to_string(batch) + "x64";
  row.skipped = reason;
  return row;
}

// One backend at one batch: the card's loop from the same x_T every run.
Row time_loop(const MlpBenchOptions& options, Backend backend, int threads, std::int64_t batch,
              std::ostream& progress) {
  MlpPredictor model(options.model_path, {.threads = threads});
  SamplerOptions o = model.card().recommended_config().options;
  o.backend = backend;
  o.threads = threads;
  Sampler sampler(Schedule::from_spec(model.scheduler_config().schedule), o);
  const Shape shape{batch, model.data_dim()};
  std::vector<float> x_T(static_cast<std::size_t>(shape.size()));
  std::mt19937_64 rng(20261127);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x_T) v = normal(rng);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  for (std::int64_t i = 0; i < batch; ++i) labels[i] = static_cast<std::int32_t>(i % model.num_classes());
  std::vector<float> x(x_T.size());
  SampleRequest request;
  request.x = x;
  request.shape = shape;
  request.initial_noise_given = true;
  request.class_labels = labels;

  std::vector<double> seconds;
  double total = 0.0;
  for (int run = -1; run < kMaxRuns; ++run) {  // run -1: the warm-up
    std::copy(x_T.begin(), x_T.end(), x.begin());
    const auto start = std::chrono::steady_clock::now();
    sampler.sample(request, model);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (run < 0) continue;
    seconds.push_back(s);
    total += s;
    if (static_cast<int>(seconds.size()) >= options.min_runs && total >= options.min_seconds) break;
  }
  const int steps = static_cast<int>(sampler.plan().size());
  for (double& s : seconds) s /= steps;  // Row's times are per step

  Row row;
  row.section = "mlp";
  row.kernel = backend == Backend::cpu ? "mlp_cpu" : "mlp_gpu";
  row.label = "digits MLP, " + to_string(o.sampler) + " " + std::to_string(steps) + " steps, " +
              to_string(sampler.backend());
  row.elements = shape.size();
  row.shape = std::to_string(batch) + "x" + std::to_string(shape.dim);
  row.steps = steps;
  row.seconds = summarize(seconds);
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  row.threads = backend == Backend::cpu ? (threads > 0 ? threads : hardware) : 0;
  row.derive_rates();
  row.samples_per_second = static_cast<double>(batch) / (row.seconds.median * steps);
  row.note = "the card's loop (" + to_string(o.sampler) + ", " +
             to_string(*sampler.options().timestep_spacing) + ", " +
             to_string(o.prediction_type) + "), labels 0..9 in turn, no guidance; " +
             std::to_string(seconds.size()) + " timed runs after a warm-up";
  progress << "  " << row.label << ", " << row.threads << " thread(s), batch " << batch << ": "
           << format_fixed(row.samples_per_second, 1) << " samples/s (" << seconds.size()
           << " runs)\n"
           << std::flush;
  return row;
}

}  // namespace

std::vector<Row> run_mlp_rows(const MlpBenchOptions& options, std::ostream& progress) {
  std::vector<Row> rows;
  const bool have_model = std::filesystem::is_regular_file(options.model_path);
  for (const bool gpu : {false, true}) {
    if (gpu ? !options.gpu : !options.cpu) continue;
    const std::string kernel = gpu ? "mlp_gpu" : "mlp_cpu";
    const std::string label = std::string("digits MLP, ddim 50 steps, ") + (gpu ? "cuda" : "cpu");
    // GPU rows: one (the CPU threads only run the host side); CPU rows: one per thread count.
    const std::vector<int> thread_counts = gpu ? std::vector<int>{0} : options.threads;
    for (int threads : thread_counts) {
      for (std::int64_t batch : options.batches) {
        if (!have_model) {
          rows.push_back(skipped_row(kernel, label, batch, "no model file '" + options.model_path + "'"));
        } else if (gpu && !cuda_available()) {
          rows.push_back(skipped_row(kernel, label, batch, cuda_unavailable_reason()));
        } else {
          rows.push_back(time_loop(options, gpu ? Backend::cuda : Backend::cpu, threads, batch, progress));
        }
      }
    }
  }
  return rows;
}

void print_mlp_rows(const std::vector<Row>& rows, std::ostream& out) {
  out << "  " << pad("loop", 34) << pad("threads", 8, true) << "  " << pad("shape", 10)
      << pad("time per sample() call: median [min .. max]", 46) << pad("samples/s", 12, true)
      << "\n";
  for (const Row& row : rows) {
    if (row.section != "mlp") continue;
    out << "  " << pad(row.label, 34) << pad(row.threads ? std::to_string(row.threads) : "-", 8, true)
        << "  " << pad(row.shape, 10);
    if (!row.skipped.empty()) {
      out << "skipped: " << row.skipped << "\n";
      continue;
    }
    const double per_call = row.steps;
    out << pad(format_seconds(row.seconds.median * per_call) + " [" +
                   format_seconds(row.seconds.min * per_call) + " .. " +
                   format_seconds(row.seconds.max * per_call) + "]",
               46)
        << pad(format_fixed(row.samples_per_second, 1), 12, true) << "\n";
  }
}

}  // namespace ddpm::bench
