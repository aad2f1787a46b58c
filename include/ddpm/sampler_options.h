#pragma once
// What decides how samples are drawn (SamplerOptions), and what each step
// rule declares about itself (SamplerInfo, from the rule registry).
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/types.h"

namespace ddpm {

// Everything that decides how samples are drawn. The names of the rule's
// fields are those of diffusers' scheduler config where the concept is the
// same (a model's scheduler_config.json maps onto them: see
// scheduler_config.h), so that values can be copied across.
struct SamplerOptions {
  // DDPM rule: sigma_t^2 = beta_t (diffusers' variance_type "fixed_large") or
  // the posterior variance ("fixed_small").
  VarianceKind variance = VarianceKind::beta;
  // Clip the predicted x0 to [lo, hi] before the update (diffusers'
  // clip_sample with clip_sample_range, which is symmetric).
  std::optional<ClipRange> clip_x0 = std::nullopt;
  Backend backend = Backend::automatic;
  int threads = 0;  // CPU backend worker threads; 0 = all hardware threads

  // The step rule.
  SamplerKind sampler = SamplerKind::ddpm;
  PredictionType prediction_type = PredictionType::epsilon;
  // Timesteps: all T training steps (0), or this many picked by
  // timestep_spacing, or an explicit strictly decreasing list in [0, T).
  // The spacing defaults to the sampler's in diffusers: leading for ddpm and
  // ddim, linspace for the solvers.
  int num_inference_steps = 0;
  std::optional<TimestepSpacing> timestep_spacing = std::nullopt;  // Sampler::options() has it set
  int steps_offset = 0;           // added to "leading" timesteps (diffusers' steps_offset)
  std::vector<int> timesteps = {};  // explicit list; overrides the two fields above
  // DDIM: the weight of fresh noise, 0 (deterministic) ... 1 (DDPM's posterior variance).
  double eta = 0.0;
  // DDIM: alpha_bar of the step after the last one is 1 (true) or alpha_bar_0.
  bool set_alpha_to_one = true;
  // Solvers (dpmpp_2m, dpmpp_2m_sde, dpmpp_3m, euler, heun, unipc): Karras et al.'s sigma spacing
  // (rho = 7) between the largest and smallest sigma instead of the
  // timestep spacing (diffusers' use_karras_sigmas).
  bool use_karras_sigmas = false;
  // DPM-Solver++ (dpmpp_2m, dpmpp_2m_sde, dpmpp_3m) and UniPC, with the
  // names and defaults of diffusers' DPMSolverMultistepScheduler and
  // UniPCMultistepScheduler:
  // solver_order 1 (every step first order), 2, or 3 (dpmpp_3m, which is
  // dpmpp_2m at order 3, and unipc; dpmpp_3m takes 2 to mean its own 3);
  int solver_order = 2;
  // the last step at first order when there are fewer than 15 steps...
  bool lower_order_final = true;
  // ...or always (with final_sigmas_type zero it always is);
  bool euler_at_final = false;
  // timesteps from sigmas uniform in log sigma (Lu et al.'s lambdas) instead
  // of the timestep spacing;
  bool use_lu_lambdas = false;
  // no timestep whose lambda = log(alpha_t / sigma_t) is below this (-inf: none clipped);
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();
  // the sigma after the last step: 0 (a clean sample) or the schedule's
  // smallest, sigma at t = 0 ("sigma_min").
  FinalSigmasType final_sigmas_type = FinalSigmasType::zero;
  // UniPC: its B(h), and the steps whose corrector is off (diffusers'
  // disable_corrector: the corrector that would run at step i + 1 to correct
  // step i's result is skipped for each i listed).
  UniPcSolverType solver_type = UniPcSolverType::bh2;
  std::vector<int> disable_corrector = {};
  // Dynamic thresholding (Saharia et al. 2022, diffusers' thresholding): x0 is
  // clamped to [-s, s] and divided by s, s = the per-sample quantile
  // dynamic_thresholding_ratio of |x0|, clamped to [1, sample_max_value].
  // Exclusive with clip_x0.
  bool thresholding = false;
  double dynamic_thresholding_ratio = 0.995;
  double sample_max_value = 1.0;
  // Rescale the betas to zero terminal SNR (Lin et al. 2024, diffusers'
  // rescale_betas_zero_snr); the sampler's schedule() is the rescaled one.
  bool rescale_betas_zero_snr = false;
};

// The spacing a sampler uses when SamplerOptions::timestep_spacing is unset
// (diffusers' default for the scheduler class).
TimestepSpacing default_timestep_spacing(SamplerKind sampler);

// What a step rule declares about itself (its entry in the rule registry):
// front ends ask this instead of naming samplers.
struct SamplerInfo {
  std::string name;             // the CLI's and Python's name
  std::string diffusers_class;  // the diffusers scheduler it reproduces
  TimestepSpacing default_spacing = TimestepSpacing::leading;
  bool karras_sigmas = false;   // takes use_karras_sigmas
  bool solver_order = false;    // takes solver_order
  // The model is given diffusers' float32 timesteps (the sigma-space
  // schedulers), not integers.
  bool fractional_timesteps = false;
  int model_calls_per_step = 1;  // Heun: 2 (each a plan position)
  bool eta = false;              // takes eta (DDIM)
  bool clip_x0 = false;          // takes clip_x0 (diffusers' clip_sample)
  bool thresholding = false;     // takes dynamic thresholding
  std::vector<PredictionType> prediction_types;  // the model outputs it takes
  int history_depth = 0;         // earlier steps' x0 predictions a step may combine
  // The solver_order it is (dpmpp_3m: 3; 0: whatever solver_order says),
  // and what it becomes at a lower one (dpmpp_3m: dpmpp_2m).
  int fixed_solver_order = 0;
  std::optional<SamplerKind> lower_order_sampler;
};
SamplerInfo sampler_info(SamplerKind sampler);
// Every sampler, in the registry's order.
std::vector<SamplerKind> sampler_kinds();

// What a Sampler checks first, needing no schedule: throws ddpm::Error for
// options that exclude each other or that the rule cannot honour.
void check_options(const SamplerOptions& options);

}  // namespace ddpm
