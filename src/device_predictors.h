#pragma once
// Device implementations of the built-in predictors, defined in src/cuda/ (or
// by src/cuda_stub.cpp, which throws, in a build without CUDA).
#include <memory>

#include "ddpm/predictor.h"

namespace ddpm::detail {

// Uploads what predict needs (per-step coefficients, per-element tables).
std::shared_ptr<GaussianDeviceState> prepare_gaussian_device(const GaussianPrior& prior,
                                                             const Schedule& schedule,
                                                             Shape shape, void* stream);
void predict_gaussian_device(const GaussianDeviceState& state, const PredictorCall& call);

std::shared_ptr<GmmDeviceState> prepare_gmm_device(const GmmSpec& spec, const Schedule& schedule,
                                                   Shape shape, void* stream);
void predict_gmm_device(const GmmDeviceState& state, const PredictorCall& call);

}  // namespace ddpm::detail
