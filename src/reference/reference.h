#pragma once
// The CPU reference: plain double-precision DDPM, written for clarity and
// independent of the backend code (it reads the double schedule tables and
// draws noise with cuRAND's own host-compiled Philox). Every backend is
// tested against it. Not part of the installed library.
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "ddpm/predictor.h"
#include "ddpm/sampler.h"
#include "ddpm/schedule.h"
#include "ddpm/types.h"
#include "kernels/noise_counter.cuh"

namespace ddpm::reference {

// The standard normal the engine uses for (seed, sample, stream, step, element).
double normal(std::uint64_t seed, std::uint64_t sample, kernels::NoiseStream stream,
              std::uint32_t step, std::int64_t element);
// All `dim` normals of one sample.
std::vector<double> normals(std::uint64_t seed, std::uint64_t sample, kernels::NoiseStream stream,
                            std::uint32_t step, std::int64_t dim);
// The raw Philox4x32-10 output (cuRAND's curand4 after curand_init(seed, subsequence, offset)).
std::vector<std::uint32_t> philox_raw(std::uint64_t seed, std::uint64_t subsequence,
                                      std::uint64_t offset);

// x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, with eps drawn unless given.
struct ForwardResult {
  std::vector<double> x_t, eps, velocity;
};
ForwardResult forward(const Schedule& schedule, const std::vector<double>& x0, Shape shape,
                      const std::vector<int>& step_per_row, const std::vector<double>* eps,
                      NoiseKey key);

// The model output (in the settings' prediction type) for the whole batch
// x_t at model time t, where x_t has the given alpha_bar (the schedule's at t
// for DDPM/DDIM; 1 / (1 + sigma^2) for the sigma-space solvers).
using Model = std::function<std::vector<double>(const std::vector<double>& x_t, double t,
                                                double alpha_bar)>;
// The exact posterior means of the analytic priors, as eps, x0 or v.
Model gaussian_model(const Schedule& schedule, Shape shape, const GaussianPrior& prior,
                     PredictionType type = PredictionType::epsilon);
Model gmm_model(const Schedule& schedule, Shape shape, const GmmSpec& spec,
                PredictionType type = PredictionType::epsilon);

// The step rule and the loop, with diffusers' meanings (DDPMScheduler,
// DDIMScheduler).
struct SampleSettings {
  SamplerKind sampler = SamplerKind::ddpm;
  PredictionType prediction_type = PredictionType::epsilon;
  VarianceKind variance = VarianceKind::beta;
  std::optional<ClipRange> clip_x0;
  bool thresholding = false;
  double dynamic_thresholding_ratio = 0.995;
  double sample_max_value = 1.0;
  double eta = 0.0;
  bool set_alpha_to_one = true;
  int num_inference_steps = 0;  // 0: every step
  std::optional<TimestepSpacing> timestep_spacing;  // empty: the sampler's diffusers default
  bool use_karras_sigmas = false;
  // heun, dpmpp_3m and unipc (their names and defaults in diffusers).
  int solver_order = 2;
  bool lower_order_final = true;
  FinalSigmasType final_sigmas_type = FinalSigmasType::zero;
  UniPcSolverType solver_type = UniPcSolverType::bh2;
  std::vector<int> disable_corrector;
  int steps_offset = 0;
  std::vector<int> timesteps;  // explicit list
  int start_step = -1;                    // a timestep of the list; -1: the first
  int end_step = -1;                      // the last step run; -1: the last timestep
  const std::vector<double>* x_T = nullptr;  // given initial noise, or drawn
};

// The settings that mirror a Sampler's options.
SampleSettings settings_for(const SamplerOptions& options);

// The loop's timesteps, decreasing.
std::vector<int> timesteps(const Schedule& schedule, const SampleSettings& settings);

// One reverse update of the whole batch at timestep t (one of timesteps()),
// with the engine's noise unless `noise` is given; x0_hat (after clipping or
// thresholding) goes to x0_out when set.
std::vector<double> reverse_step(const Schedule& schedule, const std::vector<double>& x_t,
                                 const std::vector<double>& model_output, Shape shape, int t,
                                 NoiseKey key, const SampleSettings& settings,
                                 const std::vector<double>* noise = nullptr,
                                 std::vector<double>* x0_out = nullptr);

// The alpha_bar of timestep t and of the timestep the rule steps to.
struct StepAlphaBars {
  double alpha_bar = 0.0;
  double alpha_bar_prev = 1.0;
};
StepAlphaBars step_alpha_bars(const Schedule& schedule, int t, const SampleSettings& settings);
// reverse_step with the alpha_bars given (to measure how the result depends
// on them, e.g. on another library's float32 rounding of them).
std::vector<double> reverse_step_with(const StepAlphaBars& bars, const std::vector<double>& x_t,
                                      const std::vector<double>& model_output, Shape shape, int t,
                                      NoiseKey key, const SampleSettings& settings,
                                      const std::vector<double>* noise = nullptr,
                                      std::vector<double>* x0_out = nullptr);

// The same formulas evaluated in float32 (as diffusers evaluates them): not a
// reference, a measure of how far float32 rounding moves a result.
std::vector<double> reverse_step_in_float(const StepAlphaBars& bars, const std::vector<double>& x_t,
                                          const std::vector<double>& model_output, Shape shape,
                                          int t, NoiseKey key, const SampleSettings& settings,
                                          const std::vector<double>* noise = nullptr,
                                          std::vector<double>* x0_out = nullptr);

// The sigma-space solvers (dpmpp_2m, dpmpp_2m_sde, euler, euler_ancestral)
// as diffusers' schedulers run them: their timesteps (fractional for Euler),
// sigmas (one more: the final 0) and init_noise_sigma (in diffusers' own
// terms: Euler's x_s = sqrt(1 + sigma^2) x).
struct SolverPlan {
  std::vector<double> timesteps;
  std::vector<double> sigmas;
  double init_noise_sigma = 1.0;
};
SolverPlan solver_plan(const Schedule& schedule, const SampleSettings& settings);
bool is_solver(SamplerKind kind);

// One solver step i on the variance-preserving x_t (the engine's state),
// computed in the solver's own variables; `previous_x0` is the previous
// step's x0_hat (dpmpp: null at first order), `noise` the step's z (null:
// the engine's draw for step i). x0_hat goes to x0_out when set.
std::vector<double> solver_step(const Schedule& schedule, const SampleSettings& settings,
                                const SolverPlan& plan, std::size_t i, const std::vector<double>& x_t,
                                const std::vector<double>& model_output, Shape shape, NoiseKey key,
                                const std::vector<double>* previous_x0,
                                const std::vector<double>* noise = nullptr,
                                std::vector<double>* x0_out = nullptr);

// HeunDiscreteScheduler, DPMSolverMultistepScheduler at solver_order 3 (both algorithms) and
// UniPCMultistepScheduler, each transcribed whole from diffusers' step() in
// double and in its own variables, with its own state between model calls
// (reference_multistep.cpp). The whole loop only (start_step and end_step unset).
bool is_multistep(const SampleSettings& settings);
std::vector<double> multistep_sample(const Schedule& schedule, Shape shape, NoiseKey key, const Model& model,
                                     const SampleSettings& settings);

// The whole reverse loop over timesteps(), from start_step to end_step.
std::vector<double> sample(const Schedule& schedule, Shape shape, NoiseKey key, const Model& model,
                           const SampleSettings& settings = {});

}  // namespace ddpm::reference
