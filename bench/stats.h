#pragma once
// Summary statistics of repeated timings: the median is the figure reported,
// min and max show the spread.
#include <vector>

namespace ddpm::bench {

struct Stats {
  double median = 0.0;
  double min = 0.0;
  double max = 0.0;
  int count = 0;
};

// Throws ddpm::Error for an empty sample.
Stats summarize(std::vector<double> samples);

}  // namespace ddpm::bench
