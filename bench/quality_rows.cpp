// Time to a sample of given quality (bench/quality_rows.h), on the CPU
// backend: every sampler walks up the ladder of step counts until its
// samples of the two-mode GMM meet the target; that run's steps and median
// wall time are its row.
#include "quality_rows.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <ostream>

#include "ddpm/ddpm.h"
#include "format.h"

namespace ddpm::bench {
namespace {

constexpr double kWeight0 = 0.3;  // mode 0 at (-2, -2), mode 1 at (2, 2), std 0.3 each
constexpr double kModeStd = 0.3;
constexpr double kFractionTarget = 0.01, kMeanTarget = 0.02, kStdTarget = 0.02;

GmmSpec target_mixture() { return GmmSpec{{kWeight0, 1.0 - kWeight0}, {{-2.0, -2.0}, {2.0, 2.0}}, {kModeStd, kModeStd}}; }

struct Candidate {
  std::string name;
  SamplerOptions options;
};

std::vector<Candidate> candidates(int threads) {
  const auto make = [&](std::string name, SamplerKind kind, bool karras = false) {
    SamplerOptions o;
    o.backend = Backend::cpu;
    o.threads = threads;
    o.sampler = kind;
    o.use_karras_sigmas = karras;
    if (kind == SamplerKind::ddpm || kind == SamplerKind::ddim) o.timestep_spacing = TimestepSpacing::trailing;
    return Candidate{std::move(name), o};
  };
  return {make("ddpm", SamplerKind::ddpm),
          make("ddim (eta 0)", SamplerKind::ddim),
          make("euler", SamplerKind::euler),
          make("euler (Karras)", SamplerKind::euler, true),
          make("euler_ancestral", SamplerKind::euler_ancestral),
          make("dpmpp_2m", SamplerKind::dpmpp_2m),
          make("dpmpp_2m (Karras)", SamplerKind::dpmpp_2m, true),
          make("dpmpp_2m_sde (Karras)", SamplerKind::dpmpp_2m_sde, true),
          // Heun calls the model twice a step (2n - 1 calls for n steps).
          make("heun", SamplerKind::heun),
          make("heun (Karras)", SamplerKind::heun, true),
          make("dpmpp_3m", SamplerKind::dpmpp_3m),
          make("dpmpp_3m (Karras)", SamplerKind::dpmpp_3m, true),
          make("unipc", SamplerKind::unipc),
          make("unipc (Karras)", SamplerKind::unipc, true)};
}

struct Quality {
  double fraction_error = 0.0, mean_error = 0.0, std_error = 0.0;
  bool meets() const {
    return fraction_error <= kFractionTarget && mean_error <= kMeanTarget && std_error <= kStdTarget;
  }
};

Quality quality_of(const std::vector<float>& x) {
  std::array<double, 2> count{};
  std::array<std::array<double, 2>, 2> sum{}, sum_sq{};
  for (std::size_t i = 0; i + 1 < x.size(); i += 2) {
    const std::size_t mode = x[i] + x[i + 1] < 0.0f ? 0 : 1;
    count[mode] += 1;
    for (std::size_t c = 0; c < 2; ++c) {
      sum[mode][c] += x[i + c];
      sum_sq[mode][c] += static_cast<double>(x[i + c]) * x[i + c];
    }
  }
  Quality q;
  q.fraction_error = std::abs(count[0] / (count[0] + count[1]) - kWeight0);
  for (std::size_t mode = 0; mode < 2; ++mode) {
    if (count[mode] < 2) return {1.0, 1.0, 1.0};  // a lost mode
    for (std::size_t c = 0; c < 2; ++c) {
      const double mean = sum[mode][c] / count[mode];
      const double sd = std::sqrt(std::max(0.0, sum_sq[mode][c] / count[mode] - mean * mean));
      q.mean_error = std::max(q.mean_error, std::abs(mean - (mode == 0 ? -2.0 : 2.0)));
      q.std_error = std::max(q.std_error, std::abs(sd / kModeStd - 1.0));
    }
  }
  return q;
}

// One run of `steps` steps: its samples and wall time.
double run_once(const SamplerOptions& options, int steps, std::int64_t samples, std::uint64_t seed,
                std::vector<float>& x) {
  SamplerOptions o = options;
  o.num_inference_steps = steps;
  Sampler sampler(Schedule::linear(1000), o);
  GmmPredictor predictor(target_mixture());
  x.assign(static_cast<std::size_t>(2 * samples), 0.0f);
  SampleRequest request;
  request.x = x;
  request.shape = {samples, 2};
  request.noise = {seed, 0};
  const auto start = std::chrono::steady_clock::now();
  sampler.sample(request, predictor);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median_time(const SamplerOptions& options, int steps, const QualityOptions& q, std::vector<float>& x) {
  std::vector<double> times;
  for (int run = 0; run < q.runs; ++run) times.push_back(run_once(options, steps, q.samples, 100 + run, x));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

QualityReport run_quality_rows(const QualityOptions& options, std::ostream& progress) {
  QualityReport report;
  report.options = options;
  std::vector<float> x;
  SamplerOptions ddpm_1000 = candidates(options.threads).front().options;
  report.ddpm_1000_seconds = median_time(ddpm_1000, 1000, options, x);
  progress << "  quality: ddpm, 1000 steps: " << report.ddpm_1000_seconds << " s\n" << std::flush;
  for (const Candidate& c : candidates(options.threads)) {
    QualityRow row;
    row.sampler = c.name;
    for (const int steps : options.ladder) {
      run_once(c.options, steps, options.samples, 7, x);
      const Quality q = quality_of(x);
      progress << "  quality: " << c.name << ", " << steps << " steps: fraction error " << q.fraction_error
               << ", mean error " << q.mean_error << ", std error " << q.std_error << "\n"
               << std::flush;
      if (!q.meets()) continue;
      row.steps = steps;
      row.fraction_error = q.fraction_error;
      row.mean_error = q.mean_error;
      row.std_error = q.std_error;
      row.seconds = median_time(c.options, steps, options, x);
      row.speedup = report.ddpm_1000_seconds / row.seconds;
      break;
    }
    report.rows.push_back(row);
  }
  return report;
}

void print_quality(const QualityReport& report, std::ostream& out) {
  out << "\nTIME TO QUALITY (CPU): " << report.options.samples
      << " samples of a 2-D two-mode GMM (weights 0.3/0.7, std 0.3); target: mode fraction within "
      << kFractionTarget << ", each mode's mean within " << kMeanTarget << " and std within "
      << kStdTarget * 100 << "%\n";
  out << "  ddpm at every one of T = 1000 steps: " << format_seconds(report.ddpm_1000_seconds) << "\n";
  out << "  " << pad("sampler", 24) << pad("steps", 7, true) << pad("time", 11, true)
      << pad("vs ddpm 1000", 14, true) << "  errors (fraction, mean, std)\n";
  for (const QualityRow& row : report.rows) {
    out << "  " << pad(row.sampler, 24);
    if (row.steps == 0) {
      out << "  not within the target at any step count up to " << report.options.ladder.back() << "\n";
      continue;
    }
    char errors[96];
    std::snprintf(errors, sizeof errors, "%.4f, %.4f, %.1f%%", row.fraction_error, row.mean_error,
                  row.std_error * 100);
    char speedup[32];
    std::snprintf(speedup, sizeof speedup, "%.1fx", row.speedup);
    out << pad(std::to_string(row.steps), 7, true) << pad(format_seconds(row.seconds), 11, true)
        << pad(speedup, 14, true) << "  " << errors << "\n";
  }
}

nlohmann::json to_json(const QualityReport& report) {
  nlohmann::json rows = nlohmann::json::array();
  for (const QualityRow& row : report.rows) {
    rows.push_back({{"sampler", row.sampler},
                    {"steps", row.steps},
                    {"seconds", row.seconds},
                    {"speedup_vs_ddpm_1000", row.speedup},
                    {"fraction_error", row.fraction_error},
                    {"mean_error", row.mean_error},
                    {"std_error", row.std_error}});
  }
  return {{"samples", report.options.samples},
          {"ladder", report.options.ladder},
          {"target", {{"fraction", kFractionTarget}, {"mean", kMeanTarget}, {"std_relative", kStdTarget}}},
          {"ddpm_1000_seconds", report.ddpm_1000_seconds},
          {"rows", rows}};
}

}  // namespace ddpm::bench
