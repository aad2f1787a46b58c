#pragma once
// The plan: the step rule's per-step coefficients, in the order the loop
// runs them (Sampler::plan()). Backends read it; rules write it.
#include <string>

namespace ddpm {

// One step of the reverse loop as the rule runs it, in double precision.
// The loop's state x_t is always variance-preserving, x_t = sqrt(ab) x0 +
// sqrt(1 - ab) eps with ab = alpha_bar below, whatever the rule (sigma-space
// solvers such as Euler are rewritten in these terms, so predictors see the
// model input diffusers' scale_model_input gives them). With m the model
// output (in options.prediction_type):
//   x0_hat  = x0_from_sample * x_t + x0_from_model_output * m   (then clipped or thresholded)
//   eps_hat = eps_from_sample * x_t + eps_from_model_output * m
//   x_prev  = prev_from_x0 * x0_hat + prev_from_eps * eps_hat + prev_from_sample * x_t
//           + prev_from_x0_prev * x0_hat of the previous step (multistep solvers) + sigma * z
// with z ~ N(0, I) (drawn only where sigma != 0).
struct PlannedStep {
  int timestep = 0;             // t (model_timestep rounded; identifies the step)
  double model_timestep = 0.0;  // the time the model is given (fractional for Euler's)
  int prev_timestep = -1;       // the timestep x_prev belongs to; -1 after the last step
  double alpha_bar = 0.0;       // of x_t: 1 / (1 + sigma_t^2) for the sigma-space solvers
  double alpha_bar_prev = 1.0;  // of x_prev (the rule's choice after the last step)
  double beta = 0.0;            // 1 - alpha_bar / alpha_bar_prev: the respaced beta
  double x0_from_sample = 0.0, x0_from_model_output = 0.0;
  double eps_from_sample = 0.0, eps_from_model_output = 0.0;
  double prev_from_x0 = 0.0, prev_from_eps = 0.0, prev_from_sample = 0.0;
  double prev_from_x0_prev = 0.0;  // nonzero on second-order steps of multistep solvers
  // Rules that keep more than the previous step's x0_hat (dpmpp_3m, unipc,
  // heun), in the loop's history (Sampler::history_size()):
  double prev_from_x0_prev2 = 0.0;     // x0_hat of two steps back
  double prev_from_last_sample = 0.0;  // the previous step's sample (corrected, for UniPC)
  // UniPC's corrector: before the update, x_t is replaced by the corrected
  //   x_c = corrected_from_last_sample * (previous step's x_c)
  //       + corrected_from_x0 * x0_hat + sum_k corrected_from_x0_prev[k] * (x0_hat of k + 1 steps back)
  // (the model output is that of the uncorrected x_t, as in diffusers).
  bool corrects = false;
  double corrected_from_last_sample = 0.0, corrected_from_x0 = 0.0;
  double corrected_from_x0_prev[3] = {0.0, 0.0, 0.0};
  double sigma = 0.0;
  int order = 1;        // model outputs the update combines (2: this one and the previous; 3 ...)
  // Heun: 1 on a step's first model call, 2 on its second (which reads the
  // first one's x0_hat and sample from the history); 0 for other rules.
  int stage = 0;
  int noise_step = 0;   // keys this step's noise: t, or the step's index where t is fractional
  // Non-empty when this step cannot run (e.g. epsilon prediction where
  // alpha_bar = 0): the reason, reported when a request uses the step.
  std::string error;
};

}  // namespace ddpm
