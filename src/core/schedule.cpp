// Noise schedules and their derived tables, all in double precision.
#include "ddpm/schedule.h"

#include <cmath>
#include <numbers>
#include <sstream>

#include "ddpm/error.h"

namespace ddpm {
namespace {

// np.linspace(start, end, n): evenly spaced, both ends included.
std::vector<double> linspace(double start, double end, int n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  if (n == 1) {
    v[0] = start;
    return v;
  }
  const double step = (end - start) / (n - 1);
  for (int i = 0; i < n; ++i) v[i] = start + step * i;
  v[n - 1] = end;
  return v;
}

void check_steps(int steps) {
  if (steps <= 0) throw Error("schedule needs T > 0 steps, got " + std::to_string(steps));
  if (steps > kMaxSteps) {
    throw Error("schedule T = " + std::to_string(steps) + " exceeds the limit of " +
                std::to_string(kMaxSteps));
  }
}

void check_beta_range(double beta_start, double beta_end) {
  const auto in_unit = [](double b) { return std::isfinite(b) && b > 0.0 && b < 1.0; };
  if (!in_unit(beta_start) || !in_unit(beta_end)) {
    std::ostringstream msg;
    msg << "beta range [" << beta_start << ", " << beta_end << "] must lie inside (0, 1)";
    throw Error(msg.str());
  }
}

// Nichol & Dhariwal 2021, eq. 17: alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T)+s)/(1+s) pi/2),
// betas capped at 0.999 to avoid the singularity at t = T.
std::vector<double> cosine_betas(int steps) {
  constexpr double s = 0.008;
  const auto alpha_bar = [&](double t) {
    const double c = std::cos((t / steps + s) / (1.0 + s) * std::numbers::pi / 2.0);
    return c * c;
  };
  std::vector<double> betas(static_cast<std::size_t>(steps));
  for (int t = 0; t < steps; ++t) {
    betas[t] = std::min(1.0 - alpha_bar(t + 1) / alpha_bar(t), 0.999);
  }
  return betas;
}

// sigmoid(linspace(-6, 6, T)) scaled into [beta_start, beta_end] (Xu et al. 2022, GeoDiff).
std::vector<double> sigmoid_betas(int steps, double beta_start, double beta_end) {
  std::vector<double> betas = linspace(-6.0, 6.0, steps);
  for (double& b : betas) b = beta_start + (beta_end - beta_start) / (1.0 + std::exp(-b));
  return betas;
}

}  // namespace

ScheduleKind parse_schedule_kind(std::string_view name) {
  if (name == "linear") return ScheduleKind::linear;
  if (name == "scaled_linear") return ScheduleKind::scaled_linear;
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "sigmoid") return ScheduleKind::sigmoid;
  if (name == "custom") return ScheduleKind::custom;
  throw Error("unknown schedule '" + std::string(name) +
              "' (expected linear, scaled_linear, cosine, sigmoid or custom)");
}

std::string to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::linear: return "linear";
    case ScheduleKind::scaled_linear: return "scaled_linear";
    case ScheduleKind::cosine: return "cosine";
    case ScheduleKind::sigmoid: return "sigmoid";
    case ScheduleKind::custom: return "custom";
  }
  return "unknown";
}

Schedule Schedule::from_spec(const ScheduleSpec& spec) {
  Schedule schedule = build_from_spec(spec);
  schedule.kind_ = spec.kind;
  return schedule;
}

Schedule Schedule::build_from_spec(const ScheduleSpec& spec) {
  if (spec.kind == ScheduleKind::custom) return from_betas(spec.betas);
  check_steps(spec.steps);
  switch (spec.kind) {
    case ScheduleKind::linear:
      check_beta_range(spec.beta_start, spec.beta_end);
      return from_betas(linspace(spec.beta_start, spec.beta_end, spec.steps));
    case ScheduleKind::scaled_linear: {
      check_beta_range(spec.beta_start, spec.beta_end);
      std::vector<double> betas =
          linspace(std::sqrt(spec.beta_start), std::sqrt(spec.beta_end), spec.steps);
      for (double& b : betas) b *= b;
      return from_betas(std::move(betas));
    }
    case ScheduleKind::cosine:
      return from_betas(cosine_betas(spec.steps));
    case ScheduleKind::sigmoid:
      check_beta_range(spec.beta_start, spec.beta_end);
      return from_betas(sigmoid_betas(spec.steps, spec.beta_start, spec.beta_end));
    case ScheduleKind::custom:
      break;
  }
  throw Error("unknown schedule kind");
}

Schedule Schedule::linear(int steps, double beta_start, double beta_end) {
  return from_spec({ScheduleKind::linear, steps, beta_start, beta_end, {}});
}

Schedule Schedule::cosine(int steps) { return from_spec({ScheduleKind::cosine, steps, 0, 0, {}}); }

Schedule Schedule::from_betas(std::vector<double> betas) {
  check_steps(static_cast<int>(std::min<std::size_t>(betas.size(), kMaxSteps + std::size_t{1})));
  for (std::size_t t = 0; t < betas.size(); ++t) {
    const double b = betas[t];
    if (!(std::isfinite(b) && b > 0.0 && b < 1.0)) {
      std::ostringstream msg;
      msg << "beta[" << t << "] = " << b << " is outside (0, 1)";
      throw Error(msg.str());
    }
  }
  return Schedule(std::move(betas));
}

Schedule Schedule::rescaled_zero_terminal_snr() const {
  const std::size_t n = alpha_bar_.size();
  if (n < 2) throw Error("zero terminal SNR rescaling needs a schedule of T >= 2 steps");
  std::vector<double> root(n);
  for (std::size_t t = 0; t < n; ++t) root[t] = std::sqrt(alpha_bar_[t]);
  const double first = root.front(), last = root.back();
  for (double& r : root) r = (r - last) * (first / (first - last));
  std::vector<double> betas(n);
  double previous = 1.0;
  for (std::size_t t = 0; t < n; ++t) {
    const double ab = root[t] * root[t];
    betas[t] = 1.0 - ab / previous;
    previous = ab;
  }
  betas.back() = 1.0;  // exactly: alpha_bar_{T-1} = 0
  for (std::size_t t = 0; t + 1 < n; ++t) {
    if (!(betas[t] > 0.0 && betas[t] < 1.0)) {
      std::ostringstream msg;
      msg << "zero terminal SNR rescaling gives beta[" << t << "] = " << betas[t]
          << ", outside (0, 1)";
      throw Error(msg.str());
    }
  }
  Schedule rescaled(std::move(betas), true);
  rescaled.kind_ = kind_;  // the same kind, shifted to zero terminal SNR
  return rescaled;
}

Schedule::Schedule(std::vector<double> betas, bool allow_terminal_one) : beta_(std::move(betas)) {
  const std::size_t n = beta_.size();
  for (auto* table : {&alpha_, &alpha_bar_, &alpha_bar_prev_, &sqrt_alpha_bar_,
                      &sqrt_one_minus_alpha_bar_, &sqrt_recip_alpha_, &eps_coef_,
                      &posterior_variance_, &posterior_mean_coef_x0_, &posterior_mean_coef_xt_,
                      &sqrt_recip_alpha_bar_, &sqrt_recipm1_alpha_bar_}) {
    table->resize(n);
  }
  double running_product = 1.0;
  for (std::size_t t = 0; t < n; ++t) {
    const double beta = beta_[t];
    const double alpha = 1.0 - beta;
    const double ab_prev = running_product;
    running_product *= alpha;
    const double ab = running_product;
    alpha_[t] = alpha;
    alpha_bar_[t] = ab;
    alpha_bar_prev_[t] = ab_prev;
    sqrt_alpha_bar_[t] = std::sqrt(ab);
    sqrt_one_minus_alpha_bar_[t] = std::sqrt(1.0 - ab);
    sqrt_recip_alpha_[t] = 1.0 / std::sqrt(alpha);
    eps_coef_[t] = beta / std::sqrt(1.0 - ab);
    posterior_variance_[t] = beta * (1.0 - ab_prev) / (1.0 - ab);
    posterior_mean_coef_x0_[t] = beta * std::sqrt(ab_prev) / (1.0 - ab);
    posterior_mean_coef_xt_[t] = (1.0 - ab_prev) * std::sqrt(alpha) / (1.0 - ab);
    sqrt_recip_alpha_bar_[t] = 1.0 / std::sqrt(ab);
    sqrt_recipm1_alpha_bar_[t] = std::sqrt(1.0 / ab - 1.0);
    // The float step tables hold 1/sqrt(alpha_bar); past float's range the
    // x0 prediction is meaningless, so such a schedule is refused (except an
    // exact 0 at the end of a zero-SNR schedule, which the step rules handle).
    const bool terminal_zero = allow_terminal_one && t + 1 == n && ab == 0.0;
    if (!(sqrt_recip_alpha_bar_[t] < 1e30) && !terminal_zero) {
      std::ostringstream msg;
      msg << "schedule is impossible: alpha_bar underflows (" << ab << ") at t = " << t
          << "; use fewer steps or smaller betas";
      throw Error(msg.str());
    }
  }
}

void Schedule::check_step(std::int64_t t) const {
  if (t < 0 || t >= steps()) {
    throw Error("step t = " + std::to_string(t) + " is outside [0, " + std::to_string(steps()) +
                ")");
  }
}

}  // namespace ddpm
