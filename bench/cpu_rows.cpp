// Times Sampler::sample on the CPU backend with the built-in Gaussian
// predictor (which the backend fuses into the step): the figure users compare
// with a NumPy loop (bench/numpy_baseline.py); the same loop for every step
// rule and solver at a respaced 50 steps, so that they compare per step,
// with classifier-free guidance fused into the step; and the unfused GMM
// predictor on many short rows, with guidance through its 2N-row call.
#include "cpu_rows.h"

#include <algorithm>
#include <chrono>
#include <ostream>
#include <random>
#include <thread>

#include "ddpm/ddpm.h"

namespace ddpm::bench {
namespace {

// What one CPU row runs.
struct CpuLoop {
  std::string kernel, label;
  SamplerOptions options;
  Shape shape;
  NoisePredictor* predictor = nullptr;
  double bytes_per_element = 8.0;  // x read and written once per step (fused)
  double guidance_scale = 1.0;
};

Row time_cpu_loop(const CpuBenchOptions& options, const CpuLoop& loop, const std::vector<float>& x_T,
                  std::ostream& progress) {
  Sampler sampler(Schedule::linear(options.steps), loop.options);
  const int steps = static_cast<int>(sampler.plan().size());
  std::vector<float> x(x_T.begin(), x_T.begin() + loop.shape.size());
  SampleRequest request;
  request.x = x;
  request.shape = loop.shape;
  request.noise = NoiseKey{1234, 0};
  request.initial_noise_given = true;
  request.memory = Memory::host;
  request.guidance_scale = loop.guidance_scale;

  // Warm-up: a short loop (up to 50 steps) touches the pages and starts the workers.
  const std::vector<int> timesteps = sampler.timesteps();
  request.start_step = timesteps[static_cast<std::size_t>(std::max(0, steps - 50))];
  sampler.sample(request, *loop.predictor);

  request.start_step = -1;
  std::vector<double> per_step;
  for (int run = 0; run < options.runs; ++run) {
    std::copy(x_T.begin(), x_T.begin() + loop.shape.size(), x.begin());  // outside the timed region
    request.noise.seed = 1234 + static_cast<std::uint64_t>(run);
    const auto start = std::chrono::steady_clock::now();
    sampler.sample(request, *loop.predictor);
    const auto stop = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(stop - start).count();
    per_step.push_back(seconds / steps);
    progress << "  " << loop.kernel << ", " << loop.options.threads << " thread(s), run "
             << (run + 1) << "/" << options.runs << ": " << seconds << " s\n"
             << std::flush;
  }

  Row row;
  row.section = "cpu";
  row.kernel = loop.kernel;
  row.label = loop.label;
  row.elements = loop.shape.size();
  row.steps = steps;
  row.bytes_per_element = loop.bytes_per_element;
  row.seconds = summarize(per_step);
  row.shape = std::to_string(loop.shape.batch) + "x" + std::to_string(loop.shape.dim);
  row.threads = loop.options.threads;
  row.derive_rates();
  row.note = "T=" + std::to_string(options.steps) + ", " + std::to_string(steps) +
             " steps; warm-up of up to 50 steps, then " + std::to_string(options.runs) +
             " timed runs";
  return row;
}

SamplerOptions cpu_options(int threads) {
  SamplerOptions o;
  o.backend = Backend::cpu;
  o.threads = threads;
  return o;
}

// Every rule at 50 respaced steps (trailing), so that their per-step costs compare.
std::vector<CpuLoop> rule_loops(const CpuBenchOptions& options, int threads,
                                NoisePredictor& gaussian, NoisePredictor& guided_gaussian) {
  const Shape shape{options.batch, options.dim};
  const auto rule = [&](std::string name, std::string label, auto adjust) {
    SamplerOptions o = cpu_options(threads);
    o.num_inference_steps = std::min(options.steps, 50);
    o.timestep_spacing = TimestepSpacing::trailing;
    adjust(o);
    return CpuLoop{"cpu_rule_" + name, label + ", Gaussian prior fused", o, shape, &gaussian};
  };
  return {
      rule("ddpm", "DDPM eps", [](SamplerOptions&) {}),
      rule("ddpm_v", "DDPM v_prediction", [](SamplerOptions& o) { o.prediction_type = PredictionType::v_prediction; }),
      rule("ddpm_sample", "DDPM sample", [](SamplerOptions& o) { o.prediction_type = PredictionType::sample; }),
      rule("ddpm_clip", "DDPM eps, x0 clipped", [](SamplerOptions& o) { o.clip_x0 = ClipRange{-1.0f, 1.0f}; }),
      rule("ddpm_threshold", "DDPM eps, thresholding (+quantile pass)", [](SamplerOptions& o) {
        o.thresholding = true;
        o.sample_max_value = 1.5;
      }),
      rule("ddim", "DDIM eta=0", [](SamplerOptions& o) { o.sampler = SamplerKind::ddim; }),
      rule("ddim_eta1", "DDIM eta=1", [](SamplerOptions& o) {
        o.sampler = SamplerKind::ddim;
        o.eta = 1.0;
      }),
      rule("euler", "Euler", [](SamplerOptions& o) { o.sampler = SamplerKind::euler; }),
      rule("euler_ancestral", "Euler ancestral", [](SamplerOptions& o) { o.sampler = SamplerKind::euler_ancestral; }),
      rule("dpmpp_2m", "DPM-Solver++(2M)", [](SamplerOptions& o) { o.sampler = SamplerKind::dpmpp_2m; }),
      rule("dpmpp_2m_karras", "DPM-Solver++(2M), Karras sigmas", [](SamplerOptions& o) {
        o.sampler = SamplerKind::dpmpp_2m;
        o.use_karras_sigmas = true;
      }),
      rule("dpmpp_2m_sde", "DPM-Solver++(2M) SDE", [](SamplerOptions& o) { o.sampler = SamplerKind::dpmpp_2m_sde; }),
      [&] {  // the conditional and unconditional priors both evaluated inside the step
        CpuLoop loop = rule("dpmpp_2m_cfg", "DPM-Solver++(2M), guidance w=5", [](SamplerOptions& o) {
          o.sampler = SamplerKind::dpmpp_2m;
        });
        loop.predictor = &guided_gaussian;
        loop.guidance_scale = 5.0;
        return loop;
      }(),
  };
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

  GaussianPrior prior;
  prior.mean = options.prior_mean;
  prior.std = options.prior_std;
  GaussianPredictor gaussian(prior);
  GaussianPrior unconditional;
  unconditional.std = 1.0f;
  GaussianPredictor guided_gaussian(prior, unconditional);
  const Shape shape{options.batch, options.dim};

  std::vector<Row> rows;
  for (int threads : options.threads) {
    CpuLoop loop{"cpu_sample", "DDPM eps, every step, Gaussian prior fused", cpu_options(threads),
                 shape, &gaussian};
    rows.push_back(time_cpu_loop(options, loop, x_T, progress));
  }
  const int all_threads = options.threads.empty() ? 0 : options.threads.back();
  for (const CpuLoop& loop : rule_loops(options, all_threads, gaussian, guided_gaussian)) {
    rows.push_back(time_cpu_loop(options, loop, x_T, progress));
  }
  // The unfused path: the GMM predictor on 2-D rows, then the step.
  GmmSpec spec{{0.3, 0.7}, {{-2.0, -2.0}, {2.0, 2.0}}, {0.3, 0.3}};
  GmmPredictor gmm(spec, GmmSpec{{1.0}, {{0.0, 0.0}}, {2.0}});
  const Shape gmm_shape{std::min<std::int64_t>(100000, shape.size() / 2), 2};
  CpuLoop gmm_loop{"cpu_gmm", "DDPM eps, every step, 2-D GMM predictor", cpu_options(all_threads),
                   gmm_shape, &gmm, 16.0};
  rows.push_back(time_cpu_loop(options, gmm_loop, x_T, progress));
  // Guidance through the predictor: one call of 2N rows per step, then the step.
  CpuLoop gmm_guided = gmm_loop;
  gmm_guided.kernel = "cpu_gmm_cfg";
  gmm_guided.label = "DDPM eps, every step, 2-D GMM, guidance w=3 (2N-row calls)";
  gmm_guided.guidance_scale = 3.0;
  gmm_guided.bytes_per_element = 24.0;
  rows.push_back(time_cpu_loop(options, gmm_guided, x_T, progress));
  return rows;
}

}  // namespace ddpm::bench
