#pragma once
// The trained digits model (models/digits.safetensors) sampled end to end:
// samples per second of its recommended loop (DDIM, 50 trailing steps,
// v-prediction, conditional labels, no guidance) at batch 1, 64 and 4096, on
// the CPU and, when a device is usable, the GPU; bench/torch_baseline.py
// --mlp runs the same model and loop in PyTorch eager.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "row.h"

namespace ddpm::bench {

struct MlpBenchOptions {
  std::string model_path;            // the mlp_denoiser to time
  std::vector<std::int64_t> batches = {1, 64, 4096};
  std::vector<int> threads = {0};    // CPU rows: one per entry (engine and OpenBLAS); 0 = all
  bool cpu = true, gpu = true;       // which backends' rows
  double min_seconds = 1.0;          // time each row for at least this long...
  int min_runs = 3;                  // ...and at least this many runs (median reported)
};

// The rows of section "mlp": one per backend and batch; GPU rows are skipped
// with the reason when no device is usable, every row when the model is missing.
std::vector<Row> run_mlp_rows(const MlpBenchOptions& options, std::ostream& progress);

// The table of the "mlp" rows.
void print_mlp_rows(const std::vector<Row>& rows, std::ostream& out);

}  // namespace ddpm::bench
