#pragma once
// The per-step float coefficient table both backends run from.
#include <optional>
#include <vector>

#include "ddpm/schedule.h"
#include "ddpm/types.h"
#include "../kernels/step_coefficients.cuh"

namespace ddpm::detail {

std::vector<kernels::StepCoefficients> make_step_table(const Schedule& schedule,
                                                       VarianceKind variance);

kernels::ClipSettings make_clip_settings(const std::optional<ClipRange>& clip);

}  // namespace ddpm::detail
