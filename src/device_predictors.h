#pragma once
// Device implementations of the built-in predictors, defined in src/cuda/ (or
// by src/cuda_stub.cpp, which throws, in a build without CUDA). The state
// prepare_* returns is opaque to the predictors, which hold it for predict_*.
#include <memory>
#include <optional>

#include "ddpm/predictor.h"

namespace ddpm::detail {

// Uploads what predict needs (per-element tables, mixture tables).
std::shared_ptr<void> prepare_gaussian_device(const GaussianPrior& prior,
                                              const std::optional<GaussianPrior>& unconditional,
                                              Shape shape, void* stream);
void predict_gaussian_device(const void* state, const PredictorCall& call);

std::shared_ptr<void> prepare_gmm_device(const GmmSpec& spec, const std::optional<GmmSpec>& unconditional,
                                         Shape shape, void* stream);
void predict_gmm_device(const void* state, const PredictorCall& call);

}  // namespace ddpm::detail
