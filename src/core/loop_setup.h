#pragma once
// The decisions both engines make the same way before a reverse loop or a
// step, made here once: whether the analytic Gaussian prior is evaluated
// inside the step (the fused path), which history the loop keeps, and when a
// step runs at first order because its history is missing.
#include <cstdint>

#include "ddpm/predictor.h"
#include "ddpm/requests.h"
#include "engine.h"

namespace ddpm::detail {

struct LoopSetup {
  // Non-null: the step evaluates this prior itself (no model-output buffer,
  // no predictor call). Not with guidance_rescale, which needs the guided
  // output before the step, nor in a deep rule's step, which reads a buffer.
  const GaussianPredictor* fused_prior = nullptr;
  bool guided = false;     // classifier-free guidance: 2 x batch rows per model call
  bool deep = false;       // the rule's deep-history step (dpmpp_3m, unipc, heun)
  bool multistep = false;  // the loop keeps a history (deep, or a second-order step in range)
  // The history's floats for the request's batch (0: none), and whether the
  // loop keeps its own (the request gave none to hand on).
  std::int64_t history_floats = 0;
  bool own_history = false;
};

LoopSetup loop_setup(const Engine& engine, const SampleRequest& request, const NoisePredictor& predictor,
                     int first, int last);

// Whether `step` runs at first order: a second-order step whose previous
// x0_hat is missing (the first step of a piece started without it), as a
// fresh diffusers scheduler would take it.
inline bool runs_at_first_order(const PlannedStep& step, bool history_valid) {
  return step.order > 1 && !history_valid;
}

}  // namespace ddpm::detail
