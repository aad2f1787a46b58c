#pragma once
// The CPU backend's whole sampling loop: element-steps per second.
#include <cstdint>
#include <iosfwd>
#include <vector>

#include "row.h"

namespace ddpm::bench {

struct CpuBenchOptions {
  std::vector<int> threads;  // one row per entry; 0 = all hardware threads
  std::int64_t batch = 128;
  std::int64_t dim = 3072;
  int steps = 1000;         // T
  int runs = 5;             // timed runs; the median is reported
  float prior_mean = 0.5f;  // the Gaussian predictor's prior
  float prior_std = 0.3f;
};

std::vector<Row> run_cpu_rows(const CpuBenchOptions& options, std::ostream& progress);

}  // namespace ddpm::bench
