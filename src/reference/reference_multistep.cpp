// The reference's multistep and two-call solvers, transcribed from diffusers'
// step() in double and in their own variables, with their own state between
// calls, and written apart from the engine's rules (src/rules/heun_rule.cpp,
// unipc_rule.cpp, dpmpp_2m_rule.cpp) so that they check them:
//   HeunDiscreteScheduler: x_s = sqrt(1 + sigma^2) x, the first-order state
//     (derivative, dt, sample) kept between the two calls of a step;
//   DPMSolverMultistepScheduler at solver_order 3 (dpmsolver++ and
//     sde-dpmsolver++, the latter with the engine's keyed noise): the last
//     three converted model outputs and lower_order_nums;
//   UniPCMultistepScheduler (predict_x0, bh1 or bh2): model_outputs,
//     last_sample and this_order, the corrector before each predictor.
// The model sees the variance-preserving x (diffusers' scale_model_input).
#include <algorithm>
#include <cmath>
#include <deque>

#include "ddpm/error.h"
#include "reference.h"

namespace ddpm::reference {
namespace {

using Vec = std::vector<double>;

// What convert_model_output makes of m at (x, sigma): x0 in the VP state.
Vec to_x0(const Vec& x, const Vec& m, double sigma, const SampleSettings& settings, Shape shape) {
  const double alpha = 1 / std::sqrt(sigma * sigma + 1), s = sigma * alpha;
  Vec x0(x.size());
  for (std::size_t k = 0; k < x.size(); ++k) {
    if (settings.prediction_type == PredictionType::epsilon) x0[k] = (x[k] - s * m[k]) / alpha;
    if (settings.prediction_type == PredictionType::sample) x0[k] = m[k];
    if (settings.prediction_type == PredictionType::v_prediction) x0[k] = alpha * x[k] - s * m[k];
  }
  if (settings.thresholding) {
    // torch.quantile of |x0| per sample (linear interpolation), clamped to [1, max].
    const auto dim = static_cast<std::size_t>(shape.dim);
    for (std::int64_t row = 0; row < shape.batch; ++row) {
      const auto begin = x0.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(row) * dim);
      Vec a(begin, begin + static_cast<std::ptrdiff_t>(dim));
      for (double& v : a) v = std::abs(v);
      std::sort(a.begin(), a.end());
      const double rank = settings.dynamic_thresholding_ratio * static_cast<double>(dim - 1);
      const auto lo = static_cast<std::size_t>(std::floor(rank));
      const std::size_t hi = std::min(lo + 1, dim - 1);
      const double q = a[lo] + (rank - static_cast<double>(lo)) * (a[hi] - a[lo]);
      const double scale = std::min(std::max(q, 1.0), settings.sample_max_value);
      for (auto it = begin; it != begin + static_cast<std::ptrdiff_t>(dim); ++it) {
        *it = std::clamp(*it, -scale, scale) / scale;
      }
    }
  }
  return x0;
}

// Solves the k x k system a y = b (k <= 3) by Cramer's rule.
Vec solve(const std::vector<Vec>& a, const Vec& b) {
  const std::size_t k = b.size();
  const auto det = [&](const std::vector<Vec>& m) {
    if (k == 1) return m[0][0];
    if (k == 2) return m[0][0] * m[1][1] - m[0][1] * m[1][0];
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  };
  const double d = det(a);
  Vec y(k);
  for (std::size_t c = 0; c < k; ++c) {
    std::vector<Vec> m = a;
    for (std::size_t r = 0; r < k; ++r) m[r][c] = b[r];
    y[c] = det(m) / d;
  }
  return y;
}

Vec heun(const Schedule& s, Shape shape, const Model& model, const SampleSettings& settings, Vec x) {
  const SolverPlan plan = solver_plan(s, settings);  // n timesteps, n + 1 sigmas (last 0)
  // diffusers' interleaved lists: [t0, t1, t1, ...], [s0, s1, s1, ..., 0].
  Vec timesteps{plan.timesteps.front()}, sigmas{plan.sigmas.front()};
  for (std::size_t i = 1; i < plan.timesteps.size(); ++i) {
    timesteps.insert(timesteps.end(), 2, plan.timesteps[i]);
    sigmas.insert(sigmas.end(), 2, plan.sigmas[i]);
  }
  sigmas.push_back(0.0);
  // The state in x_s.
  const double scale_0 = std::sqrt(sigmas.front() * sigmas.front() + 1);
  for (double& v : x) v *= scale_0;
  bool first_order = true;
  Vec previous_derivative, stage_sample;
  double dt = 0.0;
  for (std::size_t i = 0; i < timesteps.size(); ++i) {
    const double sigma_in = sigmas[i];  // scale_model_input's sigma
    Vec vp(x.size());
    for (std::size_t k = 0; k < x.size(); ++k) vp[k] = x[k] / std::sqrt(sigma_in * sigma_in + 1);
    const Vec m = model(vp, timesteps[i], 1 / (1 + sigma_in * sigma_in));
    const double sigma = first_order ? sigmas[i] : sigmas[i - 1];
    const double next = first_order ? sigmas[i + 1] : sigmas[i];
    const double sigma_input = first_order ? sigma : next;
    Vec derivative(x.size());
    for (std::size_t k = 0; k < x.size(); ++k) {
      double x0 = m[k];
      if (settings.prediction_type == PredictionType::epsilon) x0 = x[k] - sigma_input * m[k];
      if (settings.prediction_type == PredictionType::v_prediction) {
        x0 = m[k] * (-sigma_input / std::sqrt(sigma_input * sigma_input + 1)) + x[k] / (sigma_input * sigma_input + 1);
      }
      if (settings.clip_x0) x0 = std::clamp(x0, static_cast<double>(settings.clip_x0->lo), static_cast<double>(settings.clip_x0->hi));
      derivative[k] = first_order ? (x[k] - x0) / sigma : (x[k] - x0) / next;
    }
    if (first_order) {
      dt = next - sigma;
      previous_derivative = derivative;
      stage_sample = x;
      for (std::size_t k = 0; k < x.size(); ++k) x[k] += derivative[k] * dt;
    } else {
      for (std::size_t k = 0; k < x.size(); ++k) {
        x[k] = stage_sample[k] + (previous_derivative[k] + derivative[k]) / 2 * dt;
      }
    }
    first_order = !first_order;
  }
  return x;  // sigma 0: x_s is the VP x
}

// lambda_t = log(alpha_t) - log(sigma_t) of a sigma, as diffusers forms it.
struct Point {
  double alpha, s, lambda;
};
Point point(double sigma) {
  const double alpha = 1 / std::sqrt(sigma * sigma + 1), s = sigma * alpha;
  return {alpha, s, std::log(alpha) - std::log(s)};
}

Vec dpm_solver_3(const Schedule& sch, Shape shape, NoiseKey key, const Model& model, const SampleSettings& settings,
                 Vec x) {
  const bool sde = settings.sampler == SamplerKind::dpmpp_2m_sde;
  SolverPlan plan = solver_plan(sch, settings);
  if (settings.final_sigmas_type == FinalSigmasType::sigma_min) {
    const double ab = sch.alpha_bar().front();
    plan.sigmas.back() = static_cast<double>(static_cast<float>(std::sqrt((1 - ab) / ab)));
  }
  const std::size_t n = plan.timesteps.size();
  std::deque<Vec> outputs;  // the last three converted outputs, newest last
  int lower_order_nums = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double sigma = plan.sigmas[i];
    const Vec m = model(x, plan.timesteps[i], 1 / (1 + sigma * sigma));
    outputs.push_back(to_x0(x, m, sigma, settings, shape));
    if (outputs.size() > 3) outputs.pop_front();
    const bool final_lower = i == n - 1 && (settings.lower_order_final && n < 15 ||
                                            settings.final_sigmas_type == FinalSigmasType::zero);
    const bool second_lower = i == n - 2 && settings.lower_order_final && n < 15;
    const Point t = point(plan.sigmas[i + 1]), s0 = point(sigma);
    const double h = t.lambda - s0.lambda;
    const Vec& m0 = outputs.back();
    // The SDE variant's noise term and its z (the engine's keyed draw of step i).
    Vec z(x.size(), 0.0);
    if (sde && plan.sigmas[i + 1] > 0) {
      for (std::int64_t row = 0; row < shape.batch; ++row) {
        const Vec n = normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                              kernels::NoiseStream::reverse, static_cast<std::uint32_t>(i), shape.dim);
        std::copy(n.begin(), n.end(), z.begin() + row * shape.dim);
      }
    }
    const double e1 = std::exp(-h), e2 = std::exp(-2 * h);
    const double noise = sde ? t.s * std::sqrt(1 - e2) : 0.0;
    Vec next(x.size());
    if (lower_order_nums < 1 || final_lower) {
      for (std::size_t k = 0; k < x.size(); ++k) {
        next[k] = sde ? t.s / s0.s * e1 * x[k] + t.alpha * (1 - e2) * m0[k] + noise * z[k]
                      : t.s / s0.s * x[k] - t.alpha * (e1 - 1) * m0[k];
      }
    } else if (lower_order_nums < 2 || second_lower) {
      const Point s1 = point(plan.sigmas[i - 1]);
      const double r0 = (s0.lambda - s1.lambda) / h;
      const Vec& m1 = outputs[outputs.size() - 2];
      for (std::size_t k = 0; k < x.size(); ++k) {
        const double d1 = (m0[k] - m1[k]) / r0;
        next[k] = sde ? t.s / s0.s * e1 * x[k] + t.alpha * (1 - e2) * m0[k] + 0.5 * t.alpha * (1 - e2) * d1 + noise * z[k]
                      : t.s / s0.s * x[k] - t.alpha * (e1 - 1) * m0[k] - 0.5 * t.alpha * (e1 - 1) * d1;
      }
    } else {
      const Point s1 = point(plan.sigmas[i - 1]), s2 = point(plan.sigmas[i - 2]);
      const double r0 = (s0.lambda - s1.lambda) / h, r1 = (s1.lambda - s2.lambda) / h;
      const Vec &m1 = outputs[outputs.size() - 2], &m2 = outputs[outputs.size() - 3];
      for (std::size_t k = 0; k < x.size(); ++k) {
        const double d1_0 = (m0[k] - m1[k]) / r0, d1_1 = (m1[k] - m2[k]) / r1;
        const double d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1), d2 = (d1_0 - d1_1) / (r0 + r1);
        next[k] = sde ? t.s / s0.s * e1 * x[k] + t.alpha * (1 - e2) * m0[k] +
                            t.alpha * ((1 - e2) / (-2 * h) + 1) * d1 +
                            t.alpha * ((1 - e2 - 2 * h) / (4 * h * h) - 0.5) * d2 + noise * z[k]
                      : t.s / s0.s * x[k] - t.alpha * (e1 - 1) * m0[k] + t.alpha * ((e1 - 1) / h + 1) * d1 -
                            t.alpha * ((e1 - 1 + h) / (h * h) - 0.5) * d2;
      }
    }
    x = next;
    lower_order_nums = std::min(lower_order_nums + 1, 3);
  }
  return x;
}

// UniPC's rhos for `order` over rks (its last entry 1): diffusers' R and b.
Vec unipc_rhos(const Vec& rks, double hh, double b_h, int order, bool corrector) {
  Vec b;
  double h_phi_k = std::expm1(hh) / hh - 1, factorial = 1;
  std::vector<Vec> r;
  for (int i = 1; i <= order; ++i) {
    Vec row;
    for (double v : rks) row.push_back(std::pow(v, i - 1));
    r.push_back(row);
    b.push_back(h_phi_k * factorial / b_h);
    factorial *= i + 1;
    h_phi_k = h_phi_k / hh - 1 / factorial;
  }
  if (corrector) return order == 1 ? Vec{0.5} : solve(r, b);
  if (order == 1) return {};
  if (order == 2) return {0.5};
  const std::size_t k = static_cast<std::size_t>(order - 1);
  std::vector<Vec> block(k, Vec(k));
  for (std::size_t i = 0; i < k; ++i) {
    for (std::size_t j = 0; j < k; ++j) block[i][j] = r[i][j];
  }
  return solve(block, Vec(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(k)));
}

Vec unipc(const Schedule& sch, Shape shape, const Model& model, const SampleSettings& settings, Vec x) {
  SolverPlan plan = solver_plan(sch, settings);
  if (settings.final_sigmas_type == FinalSigmasType::sigma_min) {
    const double ab = sch.alpha_bar().front();
    plan.sigmas.back() = settings.use_karras_sigmas ? plan.sigmas[plan.sigmas.size() - 2]
                                                    : static_cast<double>(static_cast<float>(std::sqrt((1 - ab) / ab)));
  }
  const int n = static_cast<int>(plan.timesteps.size()), order_max = settings.solver_order;
  std::deque<Vec> outputs;  // the last order_max converted outputs, newest last
  Vec last_sample;
  int this_order = 0, lower_order_nums = 0;
  const auto b_of = [&](double hh) { return settings.solver_type == UniPcSolverType::bh2 ? std::expm1(hh) : hh; };
  for (int i = 0; i < n; ++i) {
    const double sigma = plan.sigmas[static_cast<std::size_t>(i)];
    const Vec m = model(x, plan.timesteps[static_cast<std::size_t>(i)], 1 / (1 + sigma * sigma));
    const Vec converted = to_x0(x, m, sigma, settings, shape);
    const bool disabled = std::find(settings.disable_corrector.begin(), settings.disable_corrector.end(), i - 1) !=
                          settings.disable_corrector.end();
    if (i > 0 && !disabled) {
      // multistep_uni_c_bh_update(this_model_output=converted, last_sample, this_sample=x, this_order).
      const Point t = point(sigma), s0 = point(plan.sigmas[static_cast<std::size_t>(i - 1)]);
      const double h = t.lambda - s0.lambda, hh = -h, b_h = b_of(hh);
      const Vec& m0 = outputs.back();
      Vec rks;
      std::vector<const Vec*> ms;
      for (int k = 1; k < this_order; ++k) {
        rks.push_back((point(plan.sigmas[static_cast<std::size_t>(i - 1 - k)]).lambda - s0.lambda) / h);
        ms.push_back(&outputs[outputs.size() - 1 - static_cast<std::size_t>(k)]);
      }
      rks.push_back(1.0);
      const Vec rho = unipc_rhos(rks, hh, b_h, this_order, true);
      for (std::size_t e = 0; e < x.size(); ++e) {
        double corr = 0;
        for (std::size_t k = 0; k < ms.size(); ++k) corr += rho[k] * ((*ms[k])[e] - m0[e]) / rks[k];
        x[e] = t.s / s0.s * last_sample[e] - t.alpha * std::expm1(hh) * m0[e] -
               t.alpha * b_h * (corr + rho.back() * (converted[e] - m0[e]));
      }
    }
    outputs.push_back(converted);
    if (static_cast<int>(outputs.size()) > order_max) outputs.pop_front();
    this_order = settings.lower_order_final ? std::min(order_max, n - i) : order_max;
    this_order = std::min(this_order, lower_order_nums + 1);
    last_sample = x;
    // multistep_uni_p_bh_update(sample=x, order=this_order).
    const Point t = point(plan.sigmas[static_cast<std::size_t>(i + 1)]), s0 = point(sigma);
    const double h = t.lambda - s0.lambda, hh = -h, b_h = b_of(hh);
    const Vec& m0 = outputs.back();
    Vec rks;
    std::vector<const Vec*> ms;
    for (int k = 1; k < this_order; ++k) {
      rks.push_back((point(plan.sigmas[static_cast<std::size_t>(i - k)]).lambda - s0.lambda) / h);
      ms.push_back(&outputs[outputs.size() - 1 - static_cast<std::size_t>(k)]);
    }
    rks.push_back(1.0);
    const Vec rho = unipc_rhos(rks, hh, b_h, this_order, false);
    Vec next(x.size());
    for (std::size_t e = 0; e < x.size(); ++e) {
      double pred = 0;
      for (std::size_t k = 0; k < ms.size(); ++k) pred += rho[k] * ((*ms[k])[e] - m0[e]) / rks[k];
      next[e] = t.s / s0.s * x[e] - t.alpha * std::expm1(hh) * m0[e] - (ms.empty() ? 0.0 : t.alpha * b_h * pred);
    }
    x = next;
    lower_order_nums = std::min(lower_order_nums + 1, order_max);
  }
  return x;
}

}  // namespace

bool is_multistep(const SampleSettings& settings) {
  const SamplerKind kind = settings.sampler;
  return kind == SamplerKind::heun || kind == SamplerKind::dpmpp_3m || kind == SamplerKind::unipc ||
         (kind == SamplerKind::dpmpp_2m_sde && settings.solver_order == 3);
}

std::vector<double> multistep_sample(const Schedule& s, Shape shape, NoiseKey key, const Model& model,
                                     const SampleSettings& settings) {
  if (settings.start_step >= 0 || settings.end_step >= 0) {
    throw Error("the reference runs heun, dpmpp_3m and unipc loops whole");
  }
  Vec x;
  if (settings.x_T) {
    x = *settings.x_T;
  } else {
    const SolverPlan plan = solver_plan(s, settings);
    const double sigma_max = plan.sigmas.front();
    const double scale = settings.sampler == SamplerKind::heun ? plan.init_noise_sigma / std::sqrt(1 + sigma_max * sigma_max)
                                                                : 1.0;
    for (std::int64_t row = 0; row < shape.batch; ++row) {
      const Vec z = normals(key.seed, static_cast<std::uint64_t>(key.first_sample + row),
                            kernels::NoiseStream::initial, 0, shape.dim);
      for (double v : z) x.push_back(static_cast<double>(static_cast<float>(v) * static_cast<float>(scale)));
    }
  }
  if (settings.sampler == SamplerKind::heun) return heun(s, shape, model, settings, x);
  if (settings.sampler != SamplerKind::unipc) return dpm_solver_3(s, shape, key, model, settings, x);
  return unipc(s, shape, model, settings, x);
}

}  // namespace ddpm::reference
