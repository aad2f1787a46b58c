// UniPC (Zhao et al. 2023), as diffusers' UniPCMultistepScheduler runs it
// with predict_x0 (the data-prediction form), solver_type bh2 or bh1,
// solver_order 1 to 3 and its corrector. With alpha = 1 / sqrt(1 + sigma^2),
// s = sigma alpha (the variance-preserving noise scale), lambda = -log sigma
// and m_k the x0_hat of step k (after thresholding):
//
//   predictor (UniP-p, step i to i + 1, h = lambda_{i+1} - lambda_i):
//     x_{i+1} = (s_{i+1} / s_i) xc_i - alpha_{i+1} (e^{-h} - 1) m_i
//             - alpha_{i+1} B(h) sum_k rho_k (m_{i-k} - m_i) / r_k,
//     r_k = (lambda_{i-k} - lambda_i) / h, rho = 1/2 at order 2, the solution of
//     diffusers' R rho = b at order 3;
//   corrector (UniC, at step i, from the model output of the uncorrected x_i):
//     xc_i = (s_i / s_{i-1}) xc_{i-1} - alpha_i (e^{-h} - 1) m_{i-1}
//          - alpha_i B(h) (sum_k rho_k (m_{i-1-k} - m_{i-1}) / r_k + rho_last (m_i - m_{i-1})),
//     at the order of step i - 1's predictor, unless disable_corrector lists i - 1;
// with B(h) = e^{-h} - 1 (bh2) or -h (bh1). The engine keeps xc_{i-1} and the
// last x0_hats in the loop's history; each step forms xc_i, then x_{i+1}
// (multistep_uni_c_bh_update, multistep_uni_p_bh_update). The predictor's
// order is min(solver_order, i + 1, and n - i under lower_order_final).
//
// Timesteps and sigmas are DPMSolverMultistepScheduler's (without
// lambda_min_clipped): linspace, leading or trailing integer timesteps, or
// Karras sigmas with rounded timesteps; final_sigmas_type zero or sigma_min.
#include <cmath>
#include <string>
#include <vector>

#include "ddpm/error.h"
#include "sigmas.h"
#include "step_rule.h"
#include "core/timesteps.h"

namespace ddpm::detail {
namespace {

// diffusers' rhos for an update of `order` over the ratios r_1 .. r_{order-1}
// (rks without its final 1): b_k from h phi_k, and the system R rho = b
// (all of it for the corrector, its leading (order-1) x (order-1) block for
// the predictor).
std::vector<double> unipc_rhos(const std::vector<double>& r, double hh, double b_h, int order,
                               bool corrector) {
  std::vector<double> rks = r;
  rks.push_back(1.0);
  std::vector<double> b;
  double h_phi_k = std::expm1(hh) / hh - 1.0;
  double factorial = 1.0;
  for (int i = 1; i <= order; ++i) {
    b.push_back(h_phi_k * factorial / b_h);
    factorial *= i + 1;
    h_phi_k = h_phi_k / hh - 1.0 / factorial;
  }
  if (!corrector) {
    if (order == 1) return {};
    if (order == 2) return {0.5};
  } else if (order == 1) {
    return {0.5};
  }
  // R[i][j] = rks[j]^i, solved by Gaussian elimination with partial pivoting.
  const int size = corrector ? order : order - 1;
  std::vector<std::vector<double>> a(size, std::vector<double>(size + 1));
  for (int i = 0; i < size; ++i) {
    for (int j = 0; j < size; ++j) a[i][j] = std::pow(rks[static_cast<std::size_t>(j)], i);
    a[i][size] = b[static_cast<std::size_t>(i)];
  }
  for (int c = 0; c < size; ++c) {
    int pivot = c;
    for (int i = c + 1; i < size; ++i) {
      if (std::abs(a[i][c]) > std::abs(a[pivot][c])) pivot = i;
    }
    std::swap(a[c], a[pivot]);
    for (int i = c + 1; i < size; ++i) {
      const double f = a[i][c] / a[c][c];
      for (int j = c; j <= size; ++j) a[i][j] -= f * a[c][j];
    }
  }
  std::vector<double> rho(size);
  for (int i = size - 1; i >= 0; --i) {
    double v = a[i][size];
    for (int j = i + 1; j < size; ++j) v -= a[i][j] * rho[static_cast<std::size_t>(j)];
    rho[static_cast<std::size_t>(i)] = v / a[i][i];
  }
  return rho;
}

}  // namespace

void check_unipc_options(const SamplerOptions& o) {
  if (o.solver_order < 1 || o.solver_order > 3) {
    throw Error("solver_order " + std::to_string(o.solver_order) + " is not 1, 2 or 3");
  }
}

RulePlan plan_unipc(const Schedule& schedule, const SamplerOptions& o) {
  std::vector<double> timesteps = multistep_timesteps(schedule, o, [&] { return schedule.steps(); });
  const std::vector<double> all = training_sigmas(schedule);
  std::vector<double> sigmas;
  if (o.use_karras_sigmas) {
    const std::vector<double> logs = log_sigmas(all);
    sigmas = karras_sigmas(all.front(), all.back(), static_cast<int>(timesteps.size()));
    for (std::size_t i = 0; i < sigmas.size(); ++i) {
      timesteps[i] = static_cast<double>(round_half_even(sigma_to_t(sigmas[i], logs)));
    }
  } else {
    for (double t : timesteps) sigmas.push_back(interpolate_sigma(all, t));
  }
  const double sigma_min = o.use_karras_sigmas ? sigmas.back() : all.front();
  sigmas.push_back(o.final_sigmas_type == FinalSigmasType::sigma_min ? sigma_min : 0.0);
  for (double& s : sigmas) s = to_float32(s);

  const int n = static_cast<int>(timesteps.size());
  const int solver_order = o.solver_order;
  const auto lambda = [&](int i) { return -std::log(sigmas[static_cast<std::size_t>(i)]); };
  const auto alpha = [&](int i) {
    const double s = sigmas[static_cast<std::size_t>(i)];
    return 1.0 / std::sqrt(1.0 + s * s);
  };
  const auto noise_scale = [&](int i) { return sigmas[static_cast<std::size_t>(i)] * alpha(i); };
  const auto b_of = [&](double hh) { return o.solver_type == UniPcSolverType::bh2 ? std::expm1(hh) : hh; };
  const auto disabled = [&](int i) {
    for (int d : o.disable_corrector) {
      if (d == i) return true;
    }
    return false;
  };

  RulePlan plan;
  plan.history_x0_slots = solver_order;
  plan.keeps_last_sample = true;
  plan.steps.resize(static_cast<std::size_t>(n));
  std::vector<int> orders(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    int order = o.lower_order_final ? std::min(solver_order, n - i) : solver_order;
    orders[static_cast<std::size_t>(i)] = std::min(order, i + 1);
  }
  for (int i = 0; i < n; ++i) {
    PlannedStep& s = plan.steps[static_cast<std::size_t>(i)];
    s.model_timestep = timesteps[static_cast<std::size_t>(i)];
    s.timestep = static_cast<int>(round_half_even(s.model_timestep));
    s.prev_timestep = i + 1 < n ? static_cast<int>(round_half_even(timesteps[static_cast<std::size_t>(i + 1)])) : -1;
    s.noise_step = i;
    s.alpha_bar = alpha(i) * alpha(i);
    s.alpha_bar_prev = alpha(i + 1) * alpha(i + 1);
    const int p = orders[static_cast<std::size_t>(i)];
    s.order = p;

    // The corrector of step i - 1's result, at that step's order.
    if (i > 0 && !disabled(i - 1)) {
      const int q = orders[static_cast<std::size_t>(i - 1)];
      const double h = lambda(i) - lambda(i - 1), hh = -h, b_h = b_of(hh);
      std::vector<double> r;
      for (int k = 1; k < q; ++k) r.push_back((lambda(i - 1 - k) - lambda(i - 1)) / h);
      const std::vector<double> rho = unipc_rhos(r, hh, b_h, q, true);
      const double a = alpha(i);
      s.corrects = true;
      s.corrected_from_last_sample = noise_scale(i) / noise_scale(i - 1);
      s.corrected_from_x0 = -a * b_h * rho.back();
      double on_previous = -a * std::expm1(hh) + a * b_h * rho.back();
      for (int k = 1; k < q; ++k) {
        const double w = a * b_h * rho[static_cast<std::size_t>(k - 1)] / r[static_cast<std::size_t>(k - 1)];
        on_previous += w;
        s.corrected_from_x0_prev[k] = -w;
      }
      s.corrected_from_x0_prev[0] = on_previous;
    }

    // The predictor from (the corrected) x_i to x_{i+1}.
    const double h = lambda(i + 1) - lambda(i), hh = -h, b_h = b_of(hh);
    std::vector<double> r;
    for (int k = 1; k < p; ++k) r.push_back((lambda(i - k) - lambda(i)) / h);
    const std::vector<double> rho = unipc_rhos(r, hh, b_h, p, false);
    const double a = alpha(i + 1);
    s.prev_from_sample = noise_scale(i + 1) / noise_scale(i);
    s.prev_from_x0 = -a * std::expm1(hh);
    for (int k = 1; k < p; ++k) {
      const double w = a * b_h * rho[static_cast<std::size_t>(k - 1)] / r[static_cast<std::size_t>(k - 1)];
      s.prev_from_x0 += w;
      (k == 1 ? s.prev_from_x0_prev : s.prev_from_x0_prev2) = -w;
    }
  }
  return plan;
}

}  // namespace ddpm::detail
