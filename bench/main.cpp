// ddpm-bench: large-batch throughput of the engine against the memory
// bandwidth limit (GPU), beside an eager unfused baseline, and the CPU
// backend's element-steps per second. See bench/README.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cpu_rows.h"
#include "ddpm/error.h"
#include "gpu_bench.h"
#include "mlp_rows.h"
#include "unet_rows.h"
#include "plot.h"
#include "report.h"
#include "system_info.h"

namespace {

using namespace ddpm::bench;

struct Options {
  std::string json_path;
  std::string commit;
  bool cpu_only = false;
  bool gpu_only = false;
  bool mlp_only = false;
  bool quick = false;
  bool skip_quality = false;
  bool quality_only = false;
  GpuBenchOptions gpu;
  CpuBenchOptions cpu;
  QualityOptions quality;
  MlpBenchOptions mlp;
  UNetBenchOptions unet;
};

// The committed digits model: where the build saw the sources, else relative
// to the working directory (scripts/gpu-check runs carried binaries from the
// repository root of another machine).
std::string default_model_path() {
  const std::string built = DDPM_BENCH_MODEL;
  return std::filesystem::exists(built) ? built : "models/digits.safetensors";
}

// The committed diffusers UNet2DModel pipeline, found as the digits model is.
std::string default_unet_path() {
  return (std::filesystem::path(default_model_path()).parent_path() / "digits-unet").string();
}

// Parses the options (--quick fills those not given), runs the rows, prints
// the table and writes the JSON and the plot.
int run(int argc, char** argv) {
  CLI::App app{
      "ddpm-bench: DDPM engine throughput against the memory-bandwidth limit, "
      "with unfused and CPU figures"};
  Options o;
  std::vector<int> cpu_threads;
  app.add_option("--json", o.json_path,
                 "Write every row as JSON to FILE, and a plot to FILE with .png")
      ->type_name("FILE");
  app.add_option("--commit", o.commit,
                 "Record this git commit (default: the one at configure time)")
      ->type_name("HASH");
  auto* cpu_only = app.add_flag("--cpu-only", o.cpu_only, "Run the CPU rows only");
  auto* gpu_only = app.add_flag("--gpu-only", o.gpu_only, "Run the GPU rows only");
  cpu_only->excludes(gpu_only);
  app.add_flag("--mlp-only", o.mlp_only,
               "Run the trained model's rows only (with --cpu-only or --gpu-only: on that backend)");
  app.add_flag("--quick", o.quick,
               "Few repetitions and small sizes (CI smoke runs): sizes up to 2^20, 5 repetitions, "
               "CPU T=100 with 3 runs; options given explicitly still apply");
  auto* max_elements =
      app.add_option("--max-elements", o.gpu.max_elements,
                     "Largest size of the GPU ladder (default 2^28; --quick: 2^20)")
          ->check(CLI::PositiveNumber);
  auto* repetitions = app.add_option("--repetitions", o.gpu.repetitions,
                                     "Timed repetitions per GPU row (default 25; --quick: 5)")
                          ->check(CLI::PositiveNumber);
  auto* warmup =
      app.add_option("--warmup", o.gpu.warmup, "Untimed repetitions first (default 3; --quick: 1)")
          ->check(CLI::NonNegativeNumber);
  auto* fused_steps =
      app.add_option("--fused-steps", o.gpu.fused_steps,
                     "K: steps per sample() call in the fused-step rows (default 50; --quick: 10)")
          ->check(CLI::Range(1, 1000));
  app.add_option("--loop-steps", o.gpu.loop_steps, "T of the whole-loop rows (default 1000)")
      ->check(CLI::Range(1, 100000));
  auto* loop_elements =
      app.add_option("--loop-elements", o.gpu.loop_large_elements,
                     "Large batch of the whole-loop rows (default 2^24; --quick: 2^20)")
          ->check(CLI::PositiveNumber);
  auto* loop_repetitions = app.add_option("--loop-repetitions", o.gpu.loop_repetitions,
                                          "Timed calls per whole-loop row (default 5; --quick: 2)")
                               ->check(CLI::PositiveNumber);
  auto* threads = app.add_option("--cpu-threads", cpu_threads,
                                 "CPU worker threads, one row each, e.g. 1,2 (default: 1 and all "
                                 "hardware threads; --quick: all; 0 = all)")
                      ->delimiter(',')
                      ->check(CLI::NonNegativeNumber);
  auto* cpu_steps =
      app.add_option("--cpu-steps", o.cpu.steps, "T of the CPU rows (default 1000; --quick: 100)")
          ->check(CLI::Range(1, 100000));
  auto* cpu_runs = app.add_option("--cpu-runs", o.cpu.runs,
                                  "Timed CPU runs, median reported (default 5; --quick: 3)")
                       ->check(CLI::PositiveNumber);
  auto* skip_quality = app.add_flag("--skip-quality", o.skip_quality,
                                    "Leave out the time-to-quality table (each sampler's steps to a GMM "
                                    "sample of fixed quality)");
  app.add_flag("--quality-only", o.quality_only, "Run the time-to-quality table (CPU) only")
      ->excludes(skip_quality)
      ->excludes(gpu_only);
  auto* quality_samples =
      app.add_option("--quality-samples", o.quality.samples,
                     "Samples per time-to-quality run (default 100000; --quick: 20000)")
          ->check(CLI::PositiveNumber);
  app.add_option("--cpu-batch", o.cpu.batch, "CPU batch (default 128)")->check(CLI::PositiveNumber);
  app.add_option("--cpu-dim", o.cpu.dim, "CPU elements per sample (default 3072)")
      ->check(CLI::PositiveNumber);
  o.mlp.model_path = default_model_path();
  app.add_option("--mlp-model", o.mlp.model_path,
                 "The trained model of the MLP rows (default: models/digits.safetensors)")
      ->type_name("FILE");
  app.add_option("--unet", o.unet.folders,
                 "diffusers UNet2DModel folders of the UNet rows, one evaluation and a DDIM loop at\n"
                 "batch 1 and 16 (default: models/digits-unet; repeatable)")
      ->type_name("FOLDER");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (o.quick) {
    if (max_elements->count() == 0) o.gpu.max_elements = std::int64_t{1} << 20;
    if (repetitions->count() == 0) o.gpu.repetitions = 5;
    if (warmup->count() == 0) o.gpu.warmup = 1;
    if (fused_steps->count() == 0) o.gpu.fused_steps = 10;
    if (loop_elements->count() == 0) o.gpu.loop_large_elements = std::int64_t{1} << 20;
    if (loop_repetitions->count() == 0) o.gpu.loop_repetitions = 2;
    if (cpu_steps->count() == 0) o.cpu.steps = 100;
    if (cpu_runs->count() == 0) o.cpu.runs = 3;
    if (quality_samples->count() == 0) o.quality.samples = 20000;
    o.quality.runs = 1;
    o.quality.ladder = {10, 25, 50, 100, 250, 1000};
    o.mlp.batches = {1, 64};
    o.mlp.min_seconds = 0.2;
    o.unet.loop_steps = 10;
    o.unet.min_seconds = 0.2;
  }
  if (o.unet.folders.empty()) o.unet.folders = {default_unet_path()};
  o.gpu.loop_large_elements = std::min(o.gpu.loop_large_elements, o.gpu.max_elements);
  o.gpu.loop_small_elements = std::min(o.gpu.loop_small_elements, o.gpu.max_elements);
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads->count() == 0) {
    cpu_threads =
        o.quick || hardware == 1 ? std::vector<int>{hardware} : std::vector<int>{1, hardware};
  }
  for (int& t : cpu_threads) t = t == 0 ? hardware : t;
  o.cpu.threads = cpu_threads;

  Report report;
  report.run = collect_run_info(o.commit);
  report.gpu = query_gpu_info();
  report.gpu_rows_requested = !o.cpu_only;
  report.cpu_rows_requested = !o.gpu_only;
  report.settings = {
      {"quick", o.quick},
      {"gpu",
       {{"max_elements", o.gpu.max_elements},
        {"warmup", o.gpu.warmup},
        {"repetitions", o.gpu.repetitions},
        {"fused_steps", o.gpu.fused_steps},
        {"loop_steps", o.gpu.loop_steps},
        {"loop_small_elements", o.gpu.loop_small_elements},
        {"loop_large_elements", o.gpu.loop_large_elements},
        {"loop_repetitions", o.gpu.loop_repetitions},
        {"schedule", "linear, T=1000, beta 1e-4 .. 0.02 (ladder); linear, T=loop_steps (loops)"},
        {"timed_step", 500},
        {"prior", {{"mean", 0.5}, {"std", 0.3}}}}},
      {"cpu",
       {{"threads", o.cpu.threads},
        {"batch", o.cpu.batch},
        {"dim", o.cpu.dim},
        {"steps", o.cpu.steps},
        {"runs", o.cpu.runs},
        {"schedule", "linear, beta 1e-4 .. 0.02"},
        {"prior", {{"mean", o.cpu.prior_mean}, {"std", o.cpu.prior_std}}}}},
      {"mlp",
       {{"model", o.mlp.model_path},
        {"batches", o.mlp.batches},
        {"loop", "the model card's: DDIM, 50 trailing steps, v_prediction, eta 0; labels 0..9 "
                 "in turn, no guidance"},
        {"min_seconds", o.mlp.min_seconds},
        {"min_runs", o.mlp.min_runs}}},
  };

  std::ostream& progress = std::cerr;
  if (report.gpu_rows_requested && !o.mlp_only) {
    if (report.gpu.usable) {
      progress << "GPU rows on " << report.gpu.name << "\n";
      report.rows = run_gpu_rows(o.gpu, report.gpu, report.notes, progress);
    } else {
      report.gpu_skipped = report.gpu.unavailable_reason.empty() ? "no usable CUDA device"
                                                                 : report.gpu.unavailable_reason;
      progress << "GPU rows skipped: " << report.gpu_skipped << "\n";
    }
  }
  if (o.quality_only) {
    report.gpu_rows_requested = false;
    report.gpu_skipped = "--quality-only";
  }
  if (report.cpu_rows_requested && !o.mlp_only) {
    if (!o.quality_only) {
      progress << "CPU rows: " << o.cpu.batch << "x" << o.cpu.dim << ", T=" << o.cpu.steps << "\n";
      std::vector<Row> cpu = run_cpu_rows(o.cpu, progress);
      report.rows.insert(report.rows.end(), cpu.begin(), cpu.end());
    }
    if (!o.skip_quality) {
      o.quality.threads = o.cpu.threads.empty() ? 0 : o.cpu.threads.back();
      progress << "Time-to-quality rows: " << o.quality.samples << " GMM samples per run\n";
      report.quality = run_quality_rows(o.quality, progress);
    }
  }

  if (!o.quality_only) {
    o.mlp.cpu = report.cpu_rows_requested;
    o.mlp.gpu = report.gpu_rows_requested;
    o.mlp.threads = cpu_threads;
    progress << "MLP rows: " << o.mlp.model_path << "\n";
    const std::vector<Row> mlp = run_mlp_rows(o.mlp, progress);
    report.rows.insert(report.rows.end(), mlp.begin(), mlp.end());
  }
  if (!o.quality_only) {
    o.unet.cpu = report.cpu_rows_requested;
    o.unet.gpu = report.gpu_rows_requested;
    o.unet.threads = cpu_threads.empty() ? 0 : cpu_threads.back();
    progress << "UNet rows:\n";
    const std::vector<Row> unet = run_unet_rows(o.unet, progress);
    report.rows.insert(report.rows.end(), unet.begin(), unet.end());
  }

  print_table(report, std::cout);
  if (!o.json_path.empty()) {
    write_json(report, o.json_path);
    const std::string png = plot_path_for(o.json_path);
    write_plot(report, png);
    std::cout << "\nwrote " << o.json_path << " and " << png << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "ddpm-bench: error: " << e.what() << "\n";
    return 1;
  }
}
