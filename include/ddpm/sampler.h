#pragma once
// The engine: forward noising and the reverse (denoising) loop on the CPU or
// on a CUDA device, with reproducible noise (see kernels/noise_counter.cuh).
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ddpm/predictor.h"
#include "ddpm/schedule.h"
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

// q(x_t | x0) for a batch. Arrays are [shape.batch, shape.dim] in `memory`.
struct ForwardRequest {
  std::span<const float> x0;
  Shape shape;
  int step = -1;                            // one step for the batch...
  std::span<const std::int32_t> steps;      // ...or one per sample (in `memory`)
  std::span<const float> eps;               // given noise; empty: draw it from `noise`
  NoiseKey noise;
  std::span<float> x_t;                     // output
  std::span<float> eps_out;                 // optional: the noise used (the training target)
  std::span<float> velocity_out;            // optional: sqrt(ab) eps - sqrt(1 - ab) x0
  Memory memory = Memory::host;
  void* stream = nullptr;                   // cudaStream_t for Memory::device
};

// q(x_t | x_{t-1}) at one step for the batch; eps given or drawn.
struct ForwardOneStepRequest {
  std::span<const float> x_prev;
  Shape shape;
  int step = 0;
  std::span<const float> eps;
  NoiseKey noise;
  std::span<float> x_t;
  std::span<float> eps_out;  // optional: the noise used
  Memory memory = Memory::host;
  void* stream = nullptr;
};

// One reverse update x_t -> x_prev of the sampler's rule at timestep `step`
// (one of Sampler::timesteps()), from the model's output (in the options'
// prediction_type: eps, x0 or v). x_prev may alias x_t (in place).
struct ReverseStepRequest {
  std::span<const float> x_t;
  std::span<const float> model_output;
  Shape shape;
  int step = 0;  // the timestep; must occur once among Sampler::timesteps()
  // The step's position in Sampler::plan() (diffusers' step_index): names
  // the step instead of `step`, which is then ignored. Needed where Karras
  // timesteps round to the same integer near t = 0.
  int step_index = -1;
  NoiseKey noise;
  std::span<float> x_prev;
  Memory memory = Memory::host;
  void* stream = nullptr;
  // Optional: the noise z to add (diffusers' variance_noise), instead of the
  // engine's draw for (seed, sample, step). Ignored where sigma = 0.
  std::span<const float> variance_noise;
  // Optional output: x0_hat after clipping or thresholding (diffusers'
  // pred_original_sample).
  std::span<float> pred_original_sample;
  // Multistep solvers (dpmpp_2m, dpmpp_2m_sde): the previous step's x0_hat
  // (its pred_original_sample). Empty: a second-order step runs at first
  // order, as it would at the start of a fresh loop.
  std::span<const float> previous_x0;
  // The rules with a deeper history (dpmpp_3m, unipc, heun): the loop's
  // history, Sampler::history_size() floats in `memory`, read and then
  // updated in place (as SampleRequest::history). A step that combines
  // earlier steps' outputs needs it; the first step of the plan does not
  // read it (it may hold anything) and every step writes it.
  std::span<float> history;
};

// The reverse loop over the rule's timesteps from start_step down to
// end_step (by default all of them). Both are timesteps (values of
// Sampler::timesteps(), where every value in [0, T) is one by default).
// `x` holds the result, the sample after step end_step; it is also the input
// x_{start_step} when initial_noise_given, otherwise that is drawn as x_T.
// The noise of step t does not depend on where a run starts or stops, so a
// loop run in pieces (each piece's output given as the next one's input, the
// next piece starting at the timestep after end_step) equals the whole loop
// bit for bit: snapshots, checkpoints, SDEdit.
struct SampleRequest {
  std::span<float> x;
  Shape shape;
  NoiseKey noise;
  bool initial_noise_given = false;
  int start_step = -1;  // -1: the first timestep
  int end_step = -1;    // -1: the last timestep; otherwise a timestep <= start_step
  // Or the same by position in Sampler::plan() (a timestep that occurs more
  // than once, as Karras timesteps near 0 can, must be named this way).
  int start_index = -1;
  int end_index = -1;
  Memory memory = Memory::host;
  void* stream = nullptr;
  // Called with (steps done, steps total) from the calling thread; may be
  // called less often than every step.
  std::function<void(int, int)> progress;
  // Optional per-row class labels (in `memory`) for class-conditional
  // predictors, handed to them as PredictorCall::class_labels.
  std::span<const std::int32_t> class_labels;
  // Multistep solvers (dpmpp_2m, dpmpp_2m_sde) combine each step's x0_hat
  // with the previous step's. A loop run in pieces hands that from one piece
  // to the next through `history` (Sampler::history_size() floats in
  // `memory`: [batch, dim] for these): a piece reads it when history_given
  // and writes it at its end. Without it, a piece that starts after the
  // first step takes that step at first order, as a fresh diffusers
  // scheduler would, and so differs from the whole loop there. The rules
  // with a deeper history (dpmpp_3m, unipc, and heun between its two model
  // calls) have no such fallback: a piece that starts where a step needs
  // the history must be given it.
  std::span<float> history;
  bool history_given = false;
  // Classifier-free guidance (Ho & Salimans 2022): the model output is
  // u + w (c - u), c the predictor's output for the row's class label and u
  // for the predictor's null label, from one batched call of 2 x batch rows
  // (conditional rows first). 1: no guidance (one call of batch rows); 0:
  // the unconditional model alone; any other finite w extrapolates (diffusers'
  // pipelines guide only for w > 1, the formula is the same).
  double guidance_scale = 1.0;
  // diffusers' guidance_rescale (Lin et al. 2024, eq. 16): the guided output
  // is rescaled towards the conditional output's per-sample std by this
  // weight (>= 0; 0.7 in the paper, 0: off).
  double guidance_rescale = 0.0;
  // Optional: polled from the calling thread between steps (on the CPU's
  // fused path between tiles, on a CUDA device while waiting for the queued
  // loop, which runs to its end first); when it returns true the run stops
  // and sample() throws ddpm::Cancelled, with `x` unspecified.
  std::function<bool()> cancelled;
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
};
SamplerInfo sampler_info(SamplerKind sampler);

class Sampler {
 public:
  // Throws ddpm::Error for invalid options (an unknown combination, inference
  // steps out of range, a bad timestep list, ...) and for Backend::cuda when
  // no CUDA device is usable.
  explicit Sampler(Schedule schedule, SamplerOptions options = {});
  ~Sampler();
  Sampler(Sampler&&) noexcept;
  Sampler& operator=(Sampler&&) noexcept;

  Backend backend() const;  // the backend in use (never automatic)
  const Schedule& schedule() const;  // rescaled when options().rescale_betas_zero_snr
  const SamplerOptions& options() const;
  // The rule's timesteps, in the order the loop runs them (decreasing).
  std::vector<int> timesteps() const;
  // Everything the loop uses, one entry per timestep, in loop order.
  const std::vector<PlannedStep>& plan() const;
  // A drawn x_T is this times N(0, I) (diffusers' init_noise_sigma, in the
  // loop's variance-preserving terms: below 1 for Euler's linspace spacing).
  double initial_noise_scale() const;
  // The floats of a loop's history for a batch of this shape
  // (SampleRequest::history, ReverseStepRequest::history): slots of [batch,
  // dim] each, the x0_hat of the last k steps (k = 1 for dpmpp_2m, 2 for
  // dpmpp_3m, up to 3 for unipc, 1 for heun) and, for unipc and heun, the
  // previous step's sample; 0 for the rules that keep none.
  std::int64_t history_size(Shape shape) const;

  void forward(const ForwardRequest& request);
  void forward_one_step(const ForwardOneStepRequest& request);
  void reverse_step(const ReverseStepRequest& request);
  void sample(const SampleRequest& request, NoisePredictor& predictor);
  // Waits for the work queued on a request's stream (CUDA backend); no-op on the CPU.
  void synchronize(void* stream = nullptr);

  class Engine;  // backend implementation (src/)

 private:
  void validate_history_read(std::span<const float> history, Shape shape, int position) const;
  std::unique_ptr<Engine> engine_;
};

// True when the CUDA backend is compiled in and a device is usable.
bool cuda_available();
// Why cuda_available() is false, in one line (empty when it is true).
std::string cuda_unavailable_reason();
std::string to_string(Backend backend);
Backend parse_backend(const std::string& name);  // "auto" | "cpu" | "cuda"

}  // namespace ddpm
