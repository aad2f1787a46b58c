// The reference's sigma-space solvers: diffusers' DPMSolverMultistepScheduler
// (dpmsolver++ and sde-dpmsolver++, order 2, lower_order_final, final sigma 0),
// EulerDiscreteScheduler and EulerAncestralDiscreteScheduler transcribed in
// double, in their own variables (Euler keeps x_s = sqrt(1 + sigma^2) x), and
// written apart from the engine's rules (src/rules/) so that they check them.
#include <algorithm>
#include <cmath>

#include "reference.h"

namespace ddpm::reference {
namespace {

double f32(double v) { return static_cast<double>(static_cast<float>(v)); }

// diffusers builds this array in float32 from float32 alphas_cumprod.
std::vector<double> all_sigmas(const Schedule& s) {
  std::vector<double> sigmas;
  for (double ab : s.alpha_bar()) {
    ab = ab == 0.0 ? std::pow(2.0, -24) : f32(ab);  // the solvers' zero-SNR clamp
    sigmas.push_back(f32(std::sqrt(f32((1 - ab) / ab))));
  }
  return sigmas;
}

double interp(double t, const std::vector<double>& ys) {
  if (t <= 0) return ys.front();
  if (t >= static_cast<double>(ys.size() - 1)) return ys.back();
  const double lo = std::floor(t);
  const auto i = static_cast<std::size_t>(lo);
  return ys[i] + (t - lo) * (ys[i + 1] - ys[i]);
}

std::vector<double> karras(double sigma_min, double sigma_max, int n) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    const double ramp = n == 1 ? 0.0 : static_cast<double>(i) / (n - 1);
    out.push_back(std::pow(std::pow(sigma_max, 1 / 7.0) + ramp * (std::pow(sigma_min, 1 / 7.0) - std::pow(sigma_max, 1 / 7.0)), 7.0));
  }
  return out;
}

double to_t(double sigma, const std::vector<double>& sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  std::size_t low = 0;
  for (std::size_t i = 0; i < sigmas.size(); ++i) {
    if (f32(std::log(sigmas[i])) <= log_sigma) low = i;  // np.log of the float32 array
  }
  low = std::min(low, sigmas.size() - 2);
  const double a = f32(std::log(sigmas[low])), b = f32(std::log(sigmas[low + 1]));
  const double w = std::clamp((a - log_sigma) / (a - b), 0.0, 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

// np.arange(start, 0, -step) as NumPy fills it, rounded half to even.
std::vector<double> arange_down_rounded(double start, double step) {
  std::vector<double> out;
  const double delta = (start - step) - start;
  const auto n = static_cast<long long>(std::ceil(-start / -step));
  for (long long i = 0; i < n; ++i) out.push_back(std::nearbyint(start + static_cast<double>(i) * delta));
  return out;
}

double torch_quantile_scale(std::vector<double> v, const SampleSettings& s) {
  for (double& x : v) x = std::abs(x);
  std::sort(v.begin(), v.end());
  const double rank = s.dynamic_thresholding_ratio * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return std::min(std::max(v[lo] + (rank - static_cast<double>(lo)) * (v[hi] - v[lo]), 1.0), s.sample_max_value);
}

}  // namespace

bool is_solver(SamplerKind kind) {
  return kind != SamplerKind::ddpm && kind != SamplerKind::ddim;
}

SolverPlan solver_plan(const Schedule& s, const SampleSettings& settings) {
  const int T = s.steps();
  const int n = settings.num_inference_steps == 0 ? T : settings.num_inference_steps;
  const TimestepSpacing spacing = settings.timestep_spacing.value_or(TimestepSpacing::linspace);
  // DPM-Solver's timesteps, which UniPC shares; Heun's are Euler's.
  const bool dpm = settings.sampler == SamplerKind::dpmpp_2m || settings.sampler == SamplerKind::dpmpp_2m_sde ||
                   settings.sampler == SamplerKind::dpmpp_3m || settings.sampler == SamplerKind::unipc;
  const std::vector<double> sigmas = all_sigmas(s);
  SolverPlan p;
  if (!settings.timesteps.empty()) {
    p.timesteps.assign(settings.timesteps.begin(), settings.timesteps.end());
  } else if (dpm) {
    if (spacing == TimestepSpacing::linspace) {  // n + 1 points, t = 0 dropped
      for (int i = n; i >= 1; --i) p.timesteps.push_back(std::nearbyint(i * ((T - 1.0) / n)));
      if (n >= 1) p.timesteps.front() = T - 1;
    } else if (spacing == TimestepSpacing::leading) {
      for (int i = n; i >= 1; --i) p.timesteps.push_back(i * (T / (n + 1)) + settings.steps_offset);
    } else {
      for (double v : arange_down_rounded(T, static_cast<double>(T) / n)) p.timesteps.push_back(v - 1);
    }
  } else {
    if (spacing == TimestepSpacing::linspace) {
      for (int i = n - 1; i >= 0; --i) p.timesteps.push_back(f32(i == n - 1 && n > 1 ? T - 1.0 : i * ((T - 1.0) / (n - 1))));
      if (n == 1) p.timesteps = {0.0};
    } else if (spacing == TimestepSpacing::leading) {
      for (int i = n - 1; i >= 0; --i) p.timesteps.push_back(i * (T / n) + settings.steps_offset);
    } else {
      for (double v : arange_down_rounded(T, static_cast<double>(T) / n)) p.timesteps.push_back(v - 1);
    }
  }
  std::vector<double> chosen;
  if (settings.use_karras_sigmas && dpm) {
    chosen = karras(sigmas.front(), sigmas.back(), static_cast<int>(p.timesteps.size()));
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      const double t = to_t(chosen[i], sigmas);
      p.timesteps[i] = s.kind() == ScheduleKind::cosine ? t : std::nearbyint(t);
    }
  } else {
    for (double t : p.timesteps) chosen.push_back(interp(t, sigmas));
    if (settings.use_karras_sigmas) {
      chosen = karras(chosen.back(), chosen.front(), static_cast<int>(chosen.size()));
      for (std::size_t i = 0; i < chosen.size(); ++i) p.timesteps[i] = f32(to_t(chosen[i], sigmas));
    }
  }
  for (double& v : chosen) v = f32(v);
  chosen.push_back(0.0);
  p.sigmas = chosen;
  const double max = *std::max_element(chosen.begin(), chosen.end());
  p.init_noise_sigma = dpm ? std::sqrt(max * max + 1)  // 1 in the VP state, as diffusers' 1.0
                           : spacing == TimestepSpacing::leading ? std::sqrt(max * max + 1) : max;
  return p;
}

std::vector<double> solver_step(const Schedule&, const SampleSettings& settings, const SolverPlan& plan,
                                std::size_t i, const std::vector<double>& x, const std::vector<double>& m,
                                Shape shape, NoiseKey key, const std::vector<double>* previous_x0,
                                const std::vector<double>* noise, std::vector<double>* x0_out) {
  const double sigma = plan.sigmas[i], next = plan.sigmas[i + 1];
  const auto dim = static_cast<std::size_t>(shape.dim);
  std::vector<double> out(x.size());
  if (x0_out) x0_out->assign(x.size(), 0.0);
  const bool ancestral = settings.sampler == SamplerKind::euler_ancestral;
  const bool sde = settings.sampler == SamplerKind::dpmpp_2m_sde;
  const bool noisy = ancestral || sde;
  for (std::int64_t row = 0; row < shape.batch; ++row) {
    const std::size_t begin = static_cast<std::size_t>(row) * dim;
    std::vector<double> z(dim, 0.0);
    if (noisy) {
      z = noise ? std::vector<double>(noise->begin() + static_cast<std::ptrdiff_t>(begin),
                                      noise->begin() + static_cast<std::ptrdiff_t>(begin + dim))
                : normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                          kernels::NoiseStream::reverse, static_cast<std::uint32_t>(i), shape.dim);
    }
    if (!is_solver(settings.sampler) || settings.sampler == SamplerKind::euler || ancestral) {
      // EulerDiscreteScheduler.step / EulerAncestralDiscreteScheduler.step on x_s.
      const double scale = std::sqrt(sigma * sigma + 1), scale_next = std::sqrt(next * next + 1);
      for (std::size_t k = 0; k < dim; ++k) {
        const double xs = x[begin + k] * scale, mo = m[begin + k];
        double x0 = mo;
        if (settings.prediction_type == PredictionType::epsilon) x0 = xs - sigma * mo;
        if (settings.prediction_type == PredictionType::v_prediction) {
          x0 = mo * (-sigma / std::sqrt(sigma * sigma + 1)) + xs / (sigma * sigma + 1);
        }
        const double derivative = (xs - x0) / sigma;
        double xs_next;
        if (ancestral) {
          const double up = std::sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
          const double down = std::sqrt(next * next - up * up);
          xs_next = xs + derivative * (down - sigma) + z[k] * up;
        } else {
          xs_next = xs + derivative * (next - sigma);
        }
        out[begin + k] = xs_next / scale_next;
        if (x0_out) (*x0_out)[begin + k] = x0;
      }
      continue;
    }
    // DPMSolverMultistepScheduler: convert_model_output, then the update.
    const double alpha_s = 1 / std::sqrt(sigma * sigma + 1), sigma_s = sigma * alpha_s;
    std::vector<double> x0(dim);
    for (std::size_t k = 0; k < dim; ++k) {
      const double xv = x[begin + k], mo = m[begin + k];
      if (settings.prediction_type == PredictionType::epsilon) x0[k] = (xv - sigma_s * mo) / alpha_s;
      if (settings.prediction_type == PredictionType::sample) x0[k] = mo;
      if (settings.prediction_type == PredictionType::v_prediction) x0[k] = alpha_s * xv - sigma_s * mo;
    }
    if (settings.thresholding) {
      const double s = torch_quantile_scale(x0, settings);
      for (double& v : x0) v = std::clamp(v, -s, s) / s;
    }
    const double alpha_t = 1 / std::sqrt(next * next + 1), sigma_t = next * alpha_t;
    const double lambda_t = std::log(alpha_t) - std::log(sigma_t);  // +inf at sigma 0
    const double lambda_s = std::log(alpha_s) - std::log(sigma_s);
    const double h = lambda_t - lambda_s;
    const std::size_t n = plan.timesteps.size();
    const bool second = previous_x0 != nullptr && i > 0 && i + 1 < n;
    for (std::size_t k = 0; k < dim; ++k) {
      const double xv = x[begin + k];
      double d0 = x0[k], d1 = 0.0;
      if (second) {
        const double sigma_prev = plan.sigmas[i - 1];
        const double alpha_p = 1 / std::sqrt(sigma_prev * sigma_prev + 1);
        const double lambda_p = std::log(alpha_p) - std::log(sigma_prev * alpha_p);
        const double r0 = (lambda_s - lambda_p) / h;
        d1 = (x0[k] - (*previous_x0)[begin + k]) / r0;
      }
      double v;
      if (sde) {
        v = (sigma_t / sigma_s * std::exp(-h)) * xv + (alpha_t * (1 - std::exp(-2 * h))) * d0 +
            0.5 * (alpha_t * (1 - std::exp(-2 * h))) * d1 + sigma_t * std::sqrt(1 - std::exp(-2 * h)) * z[k];
      } else {
        v = (sigma_t / sigma_s) * xv - (alpha_t * (std::exp(-h) - 1)) * d0 - 0.5 * (alpha_t * (std::exp(-h) - 1)) * d1;
      }
      out[begin + k] = v;
      if (x0_out) (*x0_out)[begin + k] = x0[k];
    }
  }
  return out;
}

}  // namespace ddpm::reference
