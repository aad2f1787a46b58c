#pragma once
// What the Sampler's calls take: the arrays, shapes, noise keys and streams
// of a forward noising, one reverse step, or a whole reverse loop.
#include <cstdint>
#include <functional>
#include <span>

#include "ddpm/types.h"

namespace ddpm {

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

}  // namespace ddpm
