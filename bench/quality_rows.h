#pragma once
// Time to a sample of given quality: for the 2-D two-mode GMM predictor, the
// fewest steps each sampler needs to bring the sample law within a fixed
// distance of the target (mode fractions within 0.01, each mode's mean within
// 0.02 and std within 2%), and the wall time of that run, against the
// 1000-step DDPM loop. The figure users choose a sampler by.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ddpm::bench {

struct QualityOptions {
  std::int64_t samples = 100000;  // 2-D samples per run
  int threads = 0;                // 0: all hardware threads
  int runs = 3;                   // timed runs of the step count found; the median is reported
  std::vector<int> ladder = {5, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000};
};

struct QualityRow {
  std::string sampler;  // e.g. "dpmpp_2m (Karras)"
  int steps = 0;        // the fewest of the ladder that meet the target; 0: none did
  double seconds = 0.0; // median wall time of a run with that many steps
  double fraction_error = 0.0, mean_error = 0.0, std_error = 0.0;  // at that step count
  double speedup = 0.0;  // the 1000-step DDPM's time over this one
};

struct QualityReport {
  QualityOptions options;
  std::vector<QualityRow> rows;
  double ddpm_1000_seconds = 0.0;
};

QualityReport run_quality_rows(const QualityOptions& options, std::ostream& progress);
void print_quality(const QualityReport& report, std::ostream& out);
nlohmann::json to_json(const QualityReport& report);

}  // namespace ddpm::bench
