// Times Sampler::sample on the CPU backend with the built-in Gaussian
// predictor (which the backend fuses into the step): the figure users compare
// with a NumPy loop (bench/numpy_baseline.py).
#include "cpu_rows.h"

#include <algorithm>
#include <chrono>
#include <ostream>
#include <random>
#include <thread>

#include "ddpm/ddpm.h"

namespace ddpm::bench {
namespace {

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

Row time_cpu_sampling(const CpuBenchOptions& options, int requested_threads,
                      const std::vector<float>& x_T, std::ostream& progress) {
  const int threads = resolve_threads(requested_threads);
  SamplerOptions sampler_options;
  sampler_options.backend = Backend::cpu;
  sampler_options.threads = threads;
  Sampler sampler(Schedule::linear(options.steps), sampler_options);

  GaussianPrior prior;
  prior.mean = options.prior_mean;
  prior.std = options.prior_std;
  GaussianPredictor predictor(prior);

  const Shape shape{options.batch, options.dim};
  std::vector<float> x(x_T.size());
  SampleRequest request;
  request.x = x;
  request.shape = shape;
  request.noise = NoiseKey{1234, 0};
  request.initial_noise_given = true;
  request.memory = Memory::host;

  // Warm-up: a short loop (up to 50 steps) touches the pages and starts the workers.
  x = x_T;
  request.start_step = std::min(options.steps, 50) - 1;
  sampler.sample(request, predictor);

  request.start_step = options.steps - 1;
  std::vector<double> per_step;
  for (int run = 0; run < options.runs; ++run) {
    x = x_T;  // the same x_T each run, outside the timed region
    request.noise.seed = 1234 + static_cast<std::uint64_t>(run);
    const auto start = std::chrono::steady_clock::now();
    sampler.sample(request, predictor);
    const auto stop = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(stop - start).count();
    per_step.push_back(seconds / options.steps);
    progress << "  cpu, " << threads << " thread(s), run " << (run + 1) << "/" << options.runs
             << ": " << seconds << " s\n"
             << std::flush;
  }

  Row row;
  row.section = "cpu";
  row.kernel = "cpu_sample";
  row.label = "CPU sample loop, Gaussian prior (fused)";
  row.elements = shape.size();
  row.steps = options.steps;
  row.bytes_per_element = 8.0;  // x read and written once per step
  row.seconds = summarize(per_step);
  row.shape = std::to_string(options.batch) + "x" + std::to_string(options.dim);
  row.threads = threads;
  row.derive_rates();
  row.note = "Gaussian prior mean " + std::to_string(options.prior_mean) + ", std " +
             std::to_string(options.prior_std) + "; warm-up of up to 50 steps, then " +
             std::to_string(options.runs) + " timed runs";
  return row;
}

}  // namespace

std::vector<Row> run_cpu_rows(const CpuBenchOptions& options, std::ostream& progress) {
  if (options.batch <= 0 || options.dim <= 0) throw Error("cpu rows: batch and dim must be > 0");
  if (options.steps <= 0) throw Error("cpu rows: steps must be > 0");
  if (options.runs <= 0) throw Error("cpu rows: runs must be > 0");

  // x_T ~ N(0, 1): random, never zeros.
  std::vector<float> x_T(static_cast<std::size_t>(options.batch * options.dim));
  std::mt19937_64 rng(20261123);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x_T) v = normal(rng);

  std::vector<Row> rows;
  for (int threads : options.threads)
    rows.push_back(time_cpu_sampling(options, threads, x_T, progress));
  return rows;
}

}  // namespace ddpm::bench
