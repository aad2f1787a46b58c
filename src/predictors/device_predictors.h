#pragma once
// The device halves of the analytic predictors (device_predictors.cpp,
// compiled in CUDA builds only): prepare() uploads the tables, predict()
// only launches.
#include <memory>
#include <optional>

#include "ddpm/predictor.h"
#include "predictor_device.h"

namespace ddpm::detail {

std::unique_ptr<PredictorDevicePart> make_gaussian_device_part(
    const GaussianPrior& prior, const std::optional<GaussianPrior>& unconditional, Shape shape, void* stream);

std::unique_ptr<PredictorDevicePart> make_gmm_device_part(const GmmSpec& spec,
                                                          const std::optional<GmmSpec>& unconditional,
                                                          Shape shape, void* stream);

}  // namespace ddpm::detail
