#pragma once
// Noise schedules: betas and every table derived from them, computed once in
// double precision (Ho et al. 2020, eqs. 4, 6, 7, 11, 15).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ddpm {

enum class ScheduleKind { linear, scaled_linear, cosine, sigmoid, custom };

// "linear" -> ScheduleKind::linear; throws ddpm::Error for an unknown name.
ScheduleKind parse_schedule_kind(std::string_view name);
std::string to_string(ScheduleKind kind);

struct ScheduleSpec {
  ScheduleKind kind = ScheduleKind::linear;
  int steps = 1000;
  double beta_start = 1e-4;
  double beta_end = 0.02;
  std::vector<double> betas;  // only for ScheduleKind::custom
};

// The largest T the engine accepts; the noise counter reserves 28 bits for the step.
inline constexpr int kMaxSteps = 1 << 24;

class Schedule {
 public:
  // Throws ddpm::Error for T <= 0, betas outside (0, 1), NaN, or a bad range.
  static Schedule from_spec(const ScheduleSpec& spec);
  static Schedule from_betas(std::vector<double> betas);
  static Schedule linear(int steps = 1000, double beta_start = 1e-4, double beta_end = 0.02);
  static Schedule cosine(int steps = 1000);

  // The same schedule rescaled to zero terminal SNR (Lin et al. 2024,
  // algorithm 1; diffusers' rescale_zero_terminal_snr): sqrt(alpha_bar) is
  // shifted and scaled so that it keeps its first value and ends at exactly
  // 0, which makes the last beta 1. The tables that divide by alpha_bar
  // (sqrt_recip_alpha_bar, ...) are infinite at that last step. Throws
  // ddpm::Error for T < 2.
  Schedule rescaled_zero_terminal_snr() const;
  // Whether alpha_bar of the last step is exactly 0.
  bool zero_terminal_snr() const { return !alpha_bar_.empty() && alpha_bar_.back() == 0.0; }

  int steps() const { return static_cast<int>(beta_.size()); }
  // The kind from_spec built (custom for betas given directly).
  ScheduleKind kind() const { return kind_; }
  // Throws ddpm::Error unless 0 <= t < steps().
  void check_step(std::int64_t t) const;

  // Tables indexed by t in [0, T).
  const std::vector<double>& beta() const { return beta_; }
  const std::vector<double>& alpha() const { return alpha_; }
  const std::vector<double>& alpha_bar() const { return alpha_bar_; }
  const std::vector<double>& alpha_bar_prev() const { return alpha_bar_prev_; }  // 1 at t = 0
  const std::vector<double>& sqrt_alpha_bar() const { return sqrt_alpha_bar_; }
  const std::vector<double>& sqrt_one_minus_alpha_bar() const { return sqrt_one_minus_alpha_bar_; }
  const std::vector<double>& sqrt_recip_alpha() const { return sqrt_recip_alpha_; }  // 1/sqrt(alpha)
  // beta_t / sqrt(1 - alpha_bar_t): the weight of eps in the reverse mean.
  const std::vector<double>& eps_coef() const { return eps_coef_; }
  // beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t); 0 at t = 0.
  const std::vector<double>& posterior_variance() const { return posterior_variance_; }
  // Posterior mean = coef_x0 * x0 + coef_xt * x_t (eq. 7).
  const std::vector<double>& posterior_mean_coef_x0() const { return posterior_mean_coef_x0_; }
  const std::vector<double>& posterior_mean_coef_xt() const { return posterior_mean_coef_xt_; }
  // x0 = sqrt_recip_alpha_bar * x_t - sqrt_recipm1_alpha_bar * eps.
  const std::vector<double>& sqrt_recip_alpha_bar() const { return sqrt_recip_alpha_bar_; }
  const std::vector<double>& sqrt_recipm1_alpha_bar() const { return sqrt_recipm1_alpha_bar_; }

 private:
  static Schedule build_from_spec(const ScheduleSpec& spec);
  // allow_terminal_one: the last beta may be exactly 1 (a zero-SNR rescale).
  explicit Schedule(std::vector<double> betas, bool allow_terminal_one = false);

  ScheduleKind kind_ = ScheduleKind::custom;
  std::vector<double> beta_, alpha_, alpha_bar_, alpha_bar_prev_, sqrt_alpha_bar_,
      sqrt_one_minus_alpha_bar_, sqrt_recip_alpha_, eps_coef_, posterior_variance_,
      posterior_mean_coef_x0_, posterior_mean_coef_xt_, sqrt_recip_alpha_bar_,
      sqrt_recipm1_alpha_bar_;
};

}  // namespace ddpm
