#pragma once
// diffusers UNet2DModel folders through ddpm: one network evaluation
// (UNet2DPredictor::evaluate, as UNet2DModel(x, t).sample) and a 50-step DDIM
// loop (Sampler::sample, trailing spacing, the folder's prediction type), at
// batch 1 and 16 on the CPU. bench/torch_baseline.py --unet times the same
// folders in PyTorch eager and alternates with ddpm's Python module when it
// is importable, so that a ratio comes from one run.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "row.h"

namespace ddpm::bench {

struct UNetBenchOptions {
  std::vector<std::string> folders;  // UNet2DModel or pipeline folders
  std::vector<std::int64_t> batches = {1, 16};      // CPU rows
  std::vector<std::int64_t> gpu_batches = {1, 64};  // GPU rows: the loop on the CUDA backend, one graph
  bool cpu = true, gpu = true;
  int threads = 0;                   // 0: all hardware threads
  int loop_steps = 50;
  double min_seconds = 1.0;          // time each row for at least this long...
  int min_runs = 3;                  // ...and at least this many runs (median reported)
};

// The rows of section "unet": per folder and batch, "unet_eval" and
// "unet_ddim_loop" on the CPU, "unet_ddim_loop_gpu" on a CUDA device (skipped
// with the reason without one); a folder that cannot be read gives skipped rows.
std::vector<Row> run_unet_rows(const UNetBenchOptions& options, std::ostream& progress);

void print_unet_rows(const std::vector<Row>& rows, std::ostream& out);

}  // namespace ddpm::bench
