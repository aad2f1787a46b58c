#pragma once
// What a built-in predictor needs at a row's step: sqrt(alpha_bar_t),
// sqrt(1 - alpha_bar_t) and the weights of its output in the asked
// prediction type.
#include <cmath>
#include <cstdint>

#include "ddpm/predictor.h"
#include "../kernels/step_rule.cuh"

namespace ddpm::detail {

inline int row_step(const PredictorCall& call, std::int64_t row) {
  return call.steps ? call.steps[row] : call.step;
}

struct PredictorStep {
  float a = 0.0f;  // sqrt(alpha_bar_t)
  float b = 0.0f;  // sqrt(1 - alpha_bar_t)
  kernels::OutputWeights weights{1.0f, 0.0f};
};

inline PredictorStep predictor_step(const Schedule& s, int t, PredictionType type) {
  PredictorStep p;
  p.a = static_cast<float>(s.sqrt_alpha_bar()[static_cast<std::size_t>(t)]);
  p.b = static_cast<float>(s.sqrt_one_minus_alpha_bar()[static_cast<std::size_t>(t)]);
  p.weights = kernels::output_weights(static_cast<int>(type), p.a, p.b);
  return p;
}

// The output buffer of a call (model_output, or eps when only that is set).
inline float* output_of(const PredictorCall& call) {
  return call.model_output != nullptr ? call.model_output : call.eps;
}

// Host calls: the schedule is set, every step is in range, the buffers are there.
void check_host_call(const PredictorCall& call);

}  // namespace ddpm::detail
