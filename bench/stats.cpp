#include "stats.h"

#include <algorithm>

#include "ddpm/error.h"

namespace ddpm::bench {

Stats summarize(std::vector<double> samples) {
  if (samples.empty()) throw Error("summarize: no samples");
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  Stats stats;
  stats.count = static_cast<int>(n);
  stats.min = samples.front();
  stats.max = samples.back();
  stats.median = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  return stats;
}

}  // namespace ddpm::bench
