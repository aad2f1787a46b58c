#include "reference.h"

#include <algorithm>
#include <cmath>

#if defined(DDPM_HAVE_CURAND_HEADERS)
#define QUALIFIERS static inline
#include <curand_kernel.h>
#else
#include "kernels/philox.cuh"
#endif

namespace ddpm::reference {
namespace {

// Four normals of one group of four elements, as curand_normal4 returns them.
std::vector<double> normal4(std::uint64_t seed, std::uint64_t sample, std::uint64_t offset) {
#if defined(DDPM_HAVE_CURAND_HEADERS)
  curandStatePhilox4_32_10_t state;
  curand_init(seed, sample, offset, &state);
  const float4 n = curand_normal4(&state);
  return {n.x, n.y, n.z, n.w};
#else
  const std::uint64_t counter = offset / 4;
  const kernels::Philox4 r = kernels::philox4x32_10(
      static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
      static_cast<std::uint32_t>(sample), static_cast<std::uint32_t>(sample >> 32),
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  std::vector<double> out;
  for (int pair = 0; pair < 2; ++pair) {
    const float radius = std::sqrt(-2.0f * std::log(kernels::philox_uniform(r.v[2 * pair])));
    const float angle = kernels::philox_angle(r.v[2 * pair + 1]);
    out.push_back(std::sin(angle) * radius);
    out.push_back(std::cos(angle) * radius);
  }
  return out;
#endif
}

double at(const std::vector<double>& table, int t) { return table[static_cast<std::size_t>(t)]; }

}  // namespace

std::vector<std::uint32_t> philox_raw(std::uint64_t seed, std::uint64_t subsequence,
                                      std::uint64_t offset) {
#if defined(DDPM_HAVE_CURAND_HEADERS)
  curandStatePhilox4_32_10_t state;
  curand_init(seed, subsequence, offset, &state);
  const uint4 r = curand4(&state);
  return {r.x, r.y, r.z, r.w};
#else
  const std::uint64_t counter = offset / 4;
  const kernels::Philox4 r = kernels::philox4x32_10(
      static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
      static_cast<std::uint32_t>(subsequence), static_cast<std::uint32_t>(subsequence >> 32),
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  return {r.v[0], r.v[1], r.v[2], r.v[3]};
#endif
}

double normal(std::uint64_t seed, std::uint64_t sample, kernels::NoiseStream stream,
              std::uint32_t step, std::int64_t element) {
  const auto group = static_cast<std::uint64_t>(element / 4);
  return normal4(seed, sample, kernels::noise_offset(stream, step, group))[element % 4];
}

std::vector<double> normals(std::uint64_t seed, std::uint64_t sample, kernels::NoiseStream stream,
                            std::uint32_t step, std::int64_t dim) {
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(dim + 3));
  for (std::int64_t group = 0; 4 * group < dim; ++group) {
    const std::vector<double> four =
        normal4(seed, sample, kernels::noise_offset(stream, step, static_cast<std::uint64_t>(group)));
    out.insert(out.end(), four.begin(), four.end());
  }
  out.resize(static_cast<std::size_t>(dim));
  return out;
}

ForwardResult forward(const Schedule& s, const std::vector<double>& x0, Shape shape,
                      const std::vector<int>& step_per_row, const std::vector<double>* eps,
                      NoiseKey key) {
  ForwardResult result;
  result.x_t.resize(x0.size());
  result.eps.resize(x0.size());
  result.velocity.resize(x0.size());
  for (std::int64_t row = 0; row < shape.batch; ++row) {
    const int t = step_per_row[static_cast<std::size_t>(row)];
    const std::vector<double> drawn =
        eps ? std::vector<double>()
            : normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                      kernels::NoiseStream::forward, static_cast<std::uint32_t>(t), shape.dim);
    const double a = std::sqrt(at(s.alpha_bar(), t));
    const double b = std::sqrt(1.0 - at(s.alpha_bar(), t));
    for (std::int64_t i = 0; i < shape.dim; ++i) {
      const std::size_t k = static_cast<std::size_t>(row * shape.dim + i);
      const double e = eps ? (*eps)[k] : drawn[static_cast<std::size_t>(i)];
      result.eps[k] = e;
      result.x_t[k] = a * x0[k] + b * e;
      result.velocity[k] = a * e - b * x0[k];
    }
  }
  return result;
}

Model gaussian_model(const Schedule&, Shape shape, const GaussianPrior& prior,
                     PredictionType type) {
  return [shape, prior, type](const std::vector<double>& x, double, double alpha_bar) {
    const double a = std::sqrt(alpha_bar);
    const double b = std::sqrt(1.0 - alpha_bar);
    std::vector<double> out(x.size());
    for (std::size_t k = 0; k < x.size(); ++k) {
      const std::size_t i = k % static_cast<std::size_t>(shape.dim);
      const double mean = prior.means.empty() ? prior.mean : prior.means[i];
      const double std = prior.stds.empty() ? prior.std : prior.stds[i];
      // x_t ~ N(a mean, a^2 std^2 + b^2); Cov(eps, x_t) = b, Cov(x0, x_t) = a std^2.
      const double var_xt = a * a * std * std + b * b;
      const double eps = b * (x[k] - a * mean) / var_xt;
      const double x0 = mean + a * std * std * (x[k] - a * mean) / var_xt;
      out[k] = type == PredictionType::epsilon ? eps
               : type == PredictionType::sample ? x0
                                                : a * eps - b * x0;
    }
    return out;
  };
}

Model gmm_model(const Schedule&, Shape shape, const GmmSpec& spec, PredictionType type) {
  return [shape, spec, type](const std::vector<double>& x, double, double alpha_bar) {
    const double a = std::sqrt(alpha_bar);
    const double b = std::sqrt(1.0 - alpha_bar);
    const std::size_t dim = static_cast<std::size_t>(shape.dim);
    const std::size_t k_count = spec.weights.size();
    std::vector<double> out(x.size(), 0.0);
    for (std::size_t row = 0; row * dim < x.size(); ++row) {
      const double* xr = x.data() + row * dim;
      std::vector<double> log_density(k_count, -INFINITY);
      for (std::size_t k = 0; k < k_count; ++k) {
        if (spec.weights[k] == 0.0) continue;
        const double v = a * a * spec.stds[k] * spec.stds[k] + b * b;
        double d2 = 0.0;
        for (std::size_t i = 0; i < dim; ++i) d2 += std::pow(xr[i] - a * spec.means[k][i], 2);
        log_density[k] = std::log(spec.weights[k]) - 0.5 * dim * std::log(v) - 0.5 * d2 / v;
      }
      const double top = *std::max_element(log_density.begin(), log_density.end());
      double total = 0.0;
      for (double& l : log_density) total += (l = std::exp(l - top));
      for (std::size_t k = 0; k < k_count; ++k) {
        const double v = a * a * spec.stds[k] * spec.stds[k] + b * b;
        const double r = log_density[k] / total;
        for (std::size_t i = 0; i < dim; ++i) {
          const double residual = xr[i] - a * spec.means[k][i];
          const double eps = b / v * residual;
          const double x0 = spec.means[k][i] + a * spec.stds[k] * spec.stds[k] / v * residual;
          out[row * dim + i] += r * (type == PredictionType::epsilon ? eps
                                     : type == PredictionType::sample ? x0
                                                                      : a * eps - b * x0);
        }
      }
    }
    return out;
  };
}

SampleSettings settings_for(const SamplerOptions& o) {
  SampleSettings r;
  r.sampler = o.sampler;
  r.prediction_type = o.prediction_type;
  r.variance = o.variance;
  r.clip_x0 = o.clip_x0;
  r.thresholding = o.thresholding;
  r.dynamic_thresholding_ratio = o.dynamic_thresholding_ratio;
  r.sample_max_value = o.sample_max_value;
  r.eta = o.eta;
  r.set_alpha_to_one = o.set_alpha_to_one;
  r.num_inference_steps = o.num_inference_steps;
  r.timestep_spacing = o.timestep_spacing;
  r.use_karras_sigmas = o.use_karras_sigmas;
  r.solver_order = o.solver_order;
  r.lower_order_final = o.lower_order_final;
  r.final_sigmas_type = o.final_sigmas_type;
  r.solver_type = o.solver_type;
  r.disable_corrector = o.disable_corrector;
  r.steps_offset = o.steps_offset;
  r.timesteps = o.timesteps;
  return r;
}

std::vector<int> timesteps(const Schedule& s, const SampleSettings& settings) {
  const int T = s.steps();
  if (!settings.timesteps.empty()) return settings.timesteps;
  const int n = settings.num_inference_steps;
  std::vector<int> out;
  if (n == 0) {
    for (int t = T - 1; t >= 0; --t) out.push_back(t);
    return out;
  }
  switch (settings.timestep_spacing.value_or(TimestepSpacing::leading)) {
    case TimestepSpacing::linspace: {
      // np.linspace(0, T - 1, n).round()[::-1]
      const double step = n > 1 ? (T - 1.0) / (n - 1) : 0.0;
      for (int i = n - 1; i >= 0; --i) {
        out.push_back(static_cast<int>(std::nearbyint(i == n - 1 && n > 1 ? T - 1.0 : i * step)));
      }
      break;
    }
    case TimestepSpacing::leading:
      // np.arange(0, n) * (T // n), reversed, + steps_offset
      for (int i = n - 1; i >= 0; --i) out.push_back(i * (T / n) + settings.steps_offset);
      break;
    case TimestepSpacing::trailing: {
      // np.round(np.arange(T, 0, -T / n)) - 1
      const double ratio = static_cast<double>(T) / n;
      const double delta = (T - ratio) - T;
      const int count = static_cast<int>(std::ceil(-T / -ratio));
      for (int i = 0; i < count; ++i) out.push_back(static_cast<int>(std::nearbyint(T + i * delta)) - 1);
      break;
    }
  }
  return out;
}

namespace {

// torch.quantile(|x0|, ratio) of one sample, clamped to [1, max]: the s of
// dynamic thresholding.
double threshold_scale(std::vector<double> values, const SampleSettings& settings) {
  for (double& v : values) v = std::abs(v);
  std::sort(values.begin(), values.end());
  const double rank = settings.dynamic_thresholding_ratio * static_cast<double>(values.size() - 1);
  const std::size_t below = static_cast<std::size_t>(std::floor(rank));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double q = values[below] + (rank - below) * (values[above] - values[below]);
  return std::min(std::max(q, 1.0), settings.sample_max_value);
}

}  // namespace

StepAlphaBars step_alpha_bars(const Schedule& s, int t, const SampleSettings& settings) {
  const std::vector<int> list = timesteps(s, settings);
  const auto position = static_cast<std::size_t>(std::find(list.begin(), list.end(), t) - list.begin());
  const bool ddim = settings.sampler == SamplerKind::ddim;
  int prev;
  if (ddim && settings.timesteps.empty()) {
    const int n = settings.num_inference_steps == 0 ? s.steps() : settings.num_inference_steps;
    prev = t - s.steps() / n;  // diffusers' DDIMScheduler.step
  } else {
    prev = position + 1 < list.size() ? list[position + 1] : -1;
  }
  StepAlphaBars bars;
  bars.alpha_bar = at(s.alpha_bar(), t);
  bars.alpha_bar_prev = prev >= 0                              ? at(s.alpha_bar(), prev)
                        : !ddim || settings.set_alpha_to_one ? 1.0
                                                             : at(s.alpha_bar(), 0);
  return bars;
}

std::vector<double> reverse_step(const Schedule& s, const std::vector<double>& x,
                                 const std::vector<double>& m, Shape shape, int t, NoiseKey key,
                                 const SampleSettings& settings, const std::vector<double>* noise,
                                 std::vector<double>* x0_out) {
  return reverse_step_with(step_alpha_bars(s, t, settings), x, m, shape, t, key, settings, noise,
                           x0_out);
}

namespace {

// One step in arithmetic type Real (double: the reference; float: the same
// formulas in float32, as diffusers evaluates them).
template <typename Real>
std::vector<double> step_in(const StepAlphaBars& bars, const std::vector<double>& x,
                            const std::vector<double>& m, Shape shape, int t, NoiseKey key,
                            const SampleSettings& settings, const std::vector<double>* noise,
                            std::vector<double>* x0_out) {
  using std::sqrt;
  const bool ddim = settings.sampler == SamplerKind::ddim;
  const Real one = 1;
  const Real ab = static_cast<Real>(bars.alpha_bar);
  const Real ab_prev = static_cast<Real>(bars.alpha_bar_prev);
  const Real beta_prod = one - ab;
  std::vector<double> out(x.size());
  if (x0_out) x0_out->resize(x.size());
  for (std::int64_t row = 0; row < shape.batch; ++row) {
    const auto begin = static_cast<std::size_t>(row * shape.dim);
    const auto dim = static_cast<std::size_t>(shape.dim);
    // pred_original_sample and pred_epsilon (diffusers' names).
    std::vector<Real> x0(dim), eps(dim);
    for (std::size_t i = 0; i < dim; ++i) {
      const Real xt = static_cast<Real>(x[begin + i]), mo = static_cast<Real>(m[begin + i]);
      switch (settings.prediction_type) {
        case PredictionType::epsilon:
          x0[i] = (xt - sqrt(beta_prod) * mo) / sqrt(ab);
          eps[i] = mo;
          break;
        case PredictionType::sample:
          x0[i] = mo;
          eps[i] = (xt - sqrt(ab) * mo) / sqrt(beta_prod);
          break;
        case PredictionType::v_prediction:
          x0[i] = sqrt(ab) * xt - sqrt(beta_prod) * mo;
          eps[i] = sqrt(ab) * mo + sqrt(beta_prod) * xt;
          break;
      }
    }
    if (settings.thresholding) {
      const Real scale = static_cast<Real>(threshold_scale(std::vector<double>(x0.begin(), x0.end()), settings));
      for (Real& v : x0) v = std::clamp(v, -scale, scale) / scale;
    } else if (settings.clip_x0) {
      for (Real& v : x0) {
        v = std::clamp(v, static_cast<Real>(settings.clip_x0->lo), static_cast<Real>(settings.clip_x0->hi));
      }
    }
    Real sigma = 0;
    std::vector<Real> mean(dim);
    if (ddim) {
      const Real variance = (one - ab_prev) / beta_prod * (one - ab / ab_prev);
      sigma = static_cast<Real>(settings.eta) * sqrt(variance);
      const Real direction = sqrt(std::max(Real(0), one - ab_prev - sigma * sigma));
      for (std::size_t i = 0; i < dim; ++i) mean[i] = sqrt(ab_prev) * x0[i] + direction * eps[i];
      if (settings.eta == 0.0) sigma = 0;
    } else {
      // Eq. 7 with the respaced beta = 1 - ab / ab_prev.
      const Real current_alpha = ab / ab_prev;
      const Real current_beta = one - current_alpha;
      for (std::size_t i = 0; i < dim; ++i) {
        mean[i] = sqrt(ab_prev) * current_beta / beta_prod * x0[i] +
                  sqrt(current_alpha) * (one - ab_prev) / beta_prod * static_cast<Real>(x[begin + i]);
      }
      const Real posterior = std::max((one - ab_prev) / beta_prod * current_beta, Real(1e-20));
      if (t > 0) sigma = sqrt(settings.variance == VarianceKind::posterior ? posterior : current_beta);
    }
    std::vector<double> z(dim, 0.0);
    if (sigma != 0) {
      if (noise) {
        z.assign(noise->begin() + static_cast<std::ptrdiff_t>(begin),
                 noise->begin() + static_cast<std::ptrdiff_t>(begin + dim));
      } else {
        z = normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                    kernels::NoiseStream::reverse, static_cast<std::uint32_t>(t), shape.dim);
      }
    }
    for (std::size_t i = 0; i < dim; ++i) {
      out[begin + i] = mean[i] + sigma * static_cast<Real>(z[i]);
      if (x0_out) (*x0_out)[begin + i] = x0[i];
    }
  }
  return out;
}

}  // namespace

std::vector<double> reverse_step_with(const StepAlphaBars& bars, const std::vector<double>& x,
                                      const std::vector<double>& m, Shape shape, int t,
                                      NoiseKey key, const SampleSettings& settings,
                                      const std::vector<double>* noise,
                                      std::vector<double>* x0_out) {
  return step_in<double>(bars, x, m, shape, t, key, settings, noise, x0_out);
}

std::vector<double> reverse_step_in_float(const StepAlphaBars& bars, const std::vector<double>& x,
                                          const std::vector<double>& m, Shape shape, int t,
                                          NoiseKey key, const SampleSettings& settings,
                                          const std::vector<double>* noise,
                                          std::vector<double>* x0_out) {
  return step_in<float>(bars, x, m, shape, t, key, settings, noise, x0_out);
}

std::vector<double> sample(const Schedule& s, Shape shape, NoiseKey key, const Model& model,
                           const SampleSettings& settings) {
  if (is_multistep(settings)) return multistep_sample(s, shape, key, model, settings);
  const bool solver = is_solver(settings.sampler);
  const SolverPlan plan = solver ? solver_plan(s, settings) : SolverPlan{};
  std::vector<double> x;
  if (settings.x_T) {
    x = *settings.x_T;
  } else {
    // Solvers start from init_noise_sigma * z in their own variables.
    const double sigma_max = solver ? plan.sigmas.front() : 0.0;
    const double scale = solver ? plan.init_noise_sigma / std::sqrt(1.0 + sigma_max * sigma_max) : 1.0;
    for (std::int64_t row = 0; row < shape.batch; ++row) {
      const std::vector<double> z = normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                                            kernels::NoiseStream::initial, 0, shape.dim);
      for (double v : z) x.push_back(static_cast<double>(static_cast<float>(v) * static_cast<float>(scale)));
    }
  }
  if (solver) {
    std::vector<double> previous_x0;
    bool running = settings.start_step < 0;
    for (std::size_t i = 0; i < plan.timesteps.size(); ++i) {
      const int t = static_cast<int>(std::nearbyint(plan.timesteps[i]));
      if (t == settings.start_step) running = true;
      if (!running) continue;
      const double sigma = plan.sigmas[i];
      std::vector<double> x0;
      x = solver_step(s, settings, plan, i, x, model(x, plan.timesteps[i], 1.0 / (1.0 + sigma * sigma)),
                      shape, key, previous_x0.empty() ? nullptr : &previous_x0, nullptr, &x0);
      previous_x0 = std::move(x0);
      if (t == settings.end_step) break;
    }
    return x;
  }
  const std::vector<int> list = timesteps(s, settings);
  bool running = settings.start_step < 0;
  for (int t : list) {
    if (t == settings.start_step) running = true;
    if (!running) continue;
    x = reverse_step(s, x, model(x, t, at(s.alpha_bar(), t)), shape, t, key, settings);
    if (t == settings.end_step) break;
  }
  return x;
}

}  // namespace ddpm::reference
