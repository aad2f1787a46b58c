#pragma once
// What a built-in predictor needs at a row's step: sqrt(alpha_bar_t),
// sqrt(1 - alpha_bar_t) and the weights of its output in the asked
// prediction type.
#include <cmath>
#include <cstdint>

#include "ddpm/predictor.h"
#include "kernels/step_rule.cuh"

namespace ddpm::detail {

inline int row_step(const PredictorCall& call, std::int64_t row) {
  return call.steps ? call.steps[row] : call.step;
}

struct PredictorStep {
  float a = 0.0f;  // sqrt(alpha_bar_t)
  float b = 0.0f;  // sqrt(1 - alpha_bar_t)
  kernels::OutputWeights weights{1.0f, 0.0f};
};

inline PredictorStep predictor_step_at(double alpha_bar, PredictionType type) {
  PredictorStep p;
  p.a = static_cast<float>(std::sqrt(alpha_bar));
  p.b = static_cast<float>(std::sqrt(1.0 - alpha_bar));
  p.weights = kernels::output_weights(static_cast<int>(type), p.a, p.b);
  return p;
}

inline PredictorStep predictor_step(const Schedule& s, int t, PredictionType type) {
  return predictor_step_at(s.alpha_bar()[static_cast<std::size_t>(t)], type);
}

// The step of row `row` of a call: the loop's alpha_bar when it gives one
// (a solver's sigma may fall between timesteps), else the schedule's.
inline PredictorStep predictor_step_for(const PredictorCall& call, std::int64_t row) {
  if (call.steps == nullptr && call.alpha_bar >= 0.0) {
    return predictor_step_at(call.alpha_bar, call.prediction_type);
  }
  return predictor_step(*call.schedule, row_step(call, row), call.prediction_type);
}

// Whether row `row` asks for the unconditional model (kUnconditionalLabel).
inline bool unconditional_row(const PredictorCall& call, std::int64_t row) {
  return call.class_labels != nullptr && call.class_labels[row] == kUnconditionalLabel;
}

// The output buffer of a call (model_output, or eps when only that is set).
inline float* output_of(const PredictorCall& call) {
  return call.model_output != nullptr ? call.model_output : call.eps;
}

// Host calls: the schedule is set, every step is in range, the buffers are there.
void check_host_call(const PredictorCall& call);

}  // namespace ddpm::detail
