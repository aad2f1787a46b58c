#include "reference.h"

#include <algorithm>
#include <cmath>

#if defined(DDPM_HAVE_CURAND_HEADERS)
#define QUALIFIERS static inline
#include <curand_kernel.h>
#else
#include "../kernels/philox.cuh"
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

EpsModel gaussian_model(const Schedule& s, Shape shape, const GaussianPrior& prior) {
  return [&s, shape, prior](const std::vector<double>& x, int t) {
    const double a = std::sqrt(at(s.alpha_bar(), t));
    const double b = std::sqrt(1.0 - at(s.alpha_bar(), t));
    std::vector<double> eps(x.size());
    for (std::size_t k = 0; k < x.size(); ++k) {
      const std::size_t i = k % static_cast<std::size_t>(shape.dim);
      const double mean = prior.means.empty() ? prior.mean : prior.means[i];
      const double std = prior.stds.empty() ? prior.std : prior.stds[i];
      // x_t ~ N(a mean, a^2 std^2 + b^2) and Cov(eps, x_t) = b.
      eps[k] = b * (x[k] - a * mean) / (a * a * std * std + b * b);
    }
    return eps;
  };
}

EpsModel gmm_model(const Schedule& s, Shape shape, const GmmSpec& spec) {
  return [&s, shape, spec](const std::vector<double>& x, int t) {
    const double a = std::sqrt(at(s.alpha_bar(), t));
    const double b = std::sqrt(1.0 - at(s.alpha_bar(), t));
    const std::size_t dim = static_cast<std::size_t>(shape.dim);
    const std::size_t k_count = spec.weights.size();
    std::vector<double> eps(x.size(), 0.0);
    for (std::size_t row = 0; row * dim < x.size(); ++row) {
      const double* xr = x.data() + row * dim;
      std::vector<double> log_density(k_count);
      for (std::size_t k = 0; k < k_count; ++k) {
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
          eps[row * dim + i] += r * b / v * (xr[i] - a * spec.means[k][i]);
        }
      }
    }
    return eps;
  };
}

std::vector<double> reverse_step(const Schedule& s, const std::vector<double>& x,
                                 const std::vector<double>& eps, Shape shape, int t, NoiseKey key,
                                 const SampleSettings& settings) {
  const double beta = at(s.beta(), t);
  const double alpha = at(s.alpha(), t);
  const double ab = at(s.alpha_bar(), t);
  const double ab_prev = at(s.alpha_bar_prev(), t);
  const double variance =
      settings.variance == VarianceKind::beta ? beta : beta * (1.0 - ab_prev) / (1.0 - ab);
  const double sigma = t > 0 ? std::sqrt(variance) : 0.0;
  std::vector<double> out(x.size());
  for (std::int64_t row = 0; row < shape.batch; ++row) {
    const std::vector<double> z =
        t > 0 ? normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                        kernels::NoiseStream::reverse, static_cast<std::uint32_t>(t), shape.dim)
              : std::vector<double>(static_cast<std::size_t>(shape.dim), 0.0);
    for (std::int64_t i = 0; i < shape.dim; ++i) {
      const std::size_t k = static_cast<std::size_t>(row * shape.dim + i);
      double mean;
      if (settings.clip_x0) {
        // Posterior form (Ho et al. eq. 7) around the clipped x0 prediction.
        const double x0 = std::clamp((x[k] - std::sqrt(1.0 - ab) * eps[k]) / std::sqrt(ab),
                                     static_cast<double>(settings.clip_x0->lo),
                                     static_cast<double>(settings.clip_x0->hi));
        mean = std::sqrt(ab_prev) * beta / (1.0 - ab) * x0 +
               std::sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab) * x[k];
      } else {
        // Eq. 11.
        mean = (x[k] - beta / std::sqrt(1.0 - ab) * eps[k]) / std::sqrt(alpha);
      }
      out[k] = mean + sigma * z[static_cast<std::size_t>(i)];
    }
  }
  return out;
}

std::vector<double> sample(const Schedule& s, Shape shape, NoiseKey key, const EpsModel& model,
                           const SampleSettings& settings) {
  std::vector<double> x;
  if (settings.x_T) {
    x = *settings.x_T;
  } else {
    for (std::int64_t row = 0; row < shape.batch; ++row) {
      const std::vector<double> z = normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                                            kernels::NoiseStream::initial, 0, shape.dim);
      x.insert(x.end(), z.begin(), z.end());
    }
  }
  const int start = settings.start_step < 0 ? s.steps() - 1 : settings.start_step;
  for (int t = start; t >= settings.end_step; --t) {
    x = reverse_step(s, x, model(x, t), shape, t, key, settings);
  }
  return x;
}

}  // namespace ddpm::reference
