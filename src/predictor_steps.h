#pragma once
// The forward-process coefficients a predictor needs at a row's step.
#include <cstdint>

#include "ddpm/predictor.h"
#include "../kernels/step_coefficients.cuh"

namespace ddpm::detail {

inline int row_step(const PredictorCall& call, std::int64_t row) {
  return call.steps ? call.steps[row] : call.step;
}

inline kernels::StepCoefficients forward_coefficients(const Schedule& s, int t) {
  kernels::StepCoefficients c{};
  c.sqrt_alpha_bar = static_cast<float>(s.sqrt_alpha_bar()[t]);
  c.sqrt_one_minus_alpha_bar = static_cast<float>(s.sqrt_one_minus_alpha_bar()[t]);
  return c;
}

// Host calls: the schedule is set and every step is in range.
void check_host_call(const PredictorCall& call);

}  // namespace ddpm::detail
