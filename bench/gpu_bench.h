#pragma once
// The GPU half of ddpm-bench, seen from plain C++: compiled from the .cu files
// when the CUDA backend is built, from gpu_stub.cpp otherwise.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "row.h"

namespace ddpm::bench {

struct GpuInfo {
  bool compiled = false;  // GPU rows compiled in (the CUDA toolkit was found at build time)
  bool usable = false;    // a device is usable now
  std::string unavailable_reason;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t l2_bytes = 0;
  int driver_cuda_version = 0;  // cudaDriverGetVersion: newest CUDA the driver supports
  int runtime_version = 0;      // cudaRuntimeGetVersion
  int toolkit_version = 0;      // CUDART_VERSION the bench was compiled with
};

struct GpuBenchOptions {
  std::int64_t max_elements = std::int64_t{1} << 28;
  int warmup = 3;        // untimed repetitions before the timed ones
  int repetitions = 25;  // timed repetitions; the median is reported
  int fused_steps = 50;  // K for the fused-step rows: a K-step sample() per call
  std::int64_t loop_small_elements = 12288;  // one 3x64x64 image
  std::int64_t loop_large_elements = std::int64_t{1} << 24;
  int loop_steps = 1000;  // T for the whole-loop rows
  int loop_repetitions = 5;
};

GpuInfo query_gpu_info();

// Runs every GPU row. `notes` collects lines for the report (skipped sizes,
// what the figures include); `progress` gets a line per row as it runs.
std::vector<Row> run_gpu_rows(const GpuBenchOptions& options, const GpuInfo& info,
                              std::vector<std::string>& notes, std::ostream& progress);

}  // namespace ddpm::bench
