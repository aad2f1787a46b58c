// The analytic Gaussian predictor: E[eps | x_t] when x0 ~ N(mean, std^2).
#include <cmath>
#include <string>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "device_predictors.h"
#include "predictor_steps.h"
#include "../kernels/step_math.cuh"

namespace ddpm {

void GaussianPrior::validate() const {
  if (!std::isfinite(mean)) throw Error("gaussian prior mean must be finite");
  if (!std::isfinite(std) || std < 0.0f) {
    throw Error("gaussian prior std must be finite and >= 0, got " + std::to_string(std));
  }
  if (!means.empty() && !stds.empty() && means.size() != stds.size()) {
    throw Error("per-element means (" + std::to_string(means.size()) + ") and stds (" +
                std::to_string(stds.size()) + ") differ in size");
  }
  for (std::size_t i = 0; i < means.size(); ++i) {
    if (!std::isfinite(means[i])) {
      throw Error("per-element mean " + std::to_string(i) + " is not finite");
    }
  }
  for (std::size_t i = 0; i < stds.size(); ++i) {
    if (!std::isfinite(stds[i]) || stds[i] < 0.0f) {
      throw Error("per-element std " + std::to_string(i) + " is " + std::to_string(stds[i]) +
                  ": must be finite and >= 0");
    }
  }
}

namespace detail {

void check_host_call(const PredictorCall& call) {
  if (call.schedule == nullptr) throw Error("predictor call without a schedule");
  for (std::int64_t row = 0; row < (call.steps ? call.shape.batch : 1); ++row) {
    call.schedule->check_step(row_step(call, row));
  }
}

void check_prior_fits(const GaussianPrior& prior, std::int64_t dim) {
  for (const auto* table : {&prior.means, &prior.stds}) {
    if (!table->empty() && static_cast<std::int64_t>(table->size()) != dim) {
      throw Error("gaussian prior has " + std::to_string(table->size()) +
                  " per-element values but samples have dim " + std::to_string(dim));
    }
  }
}

}  // namespace detail

GaussianPredictor::GaussianPredictor(GaussianPrior prior) : prior_(std::move(prior)) {
  prior_.validate();
}

GaussianPredictor::~GaussianPredictor() = default;

void GaussianPredictor::prepare(const Schedule& schedule, Memory memory, Shape shape,
                                void* stream) {
  detail::check_prior_fits(prior_, shape.dim);
  if (memory == Memory::device) {
    device_ = detail::prepare_gaussian_device(prior_, schedule, shape, stream);
  }
}

void GaussianPredictor::predict(const PredictorCall& call) {
  detail::check_prior_fits(prior_, call.shape.dim);
  if (call.memory == Memory::device) {
    if (!device_) throw Error("GaussianPredictor: call prepare() before predicting on a device");
    detail::predict_gaussian_device(*device_, call);
    return;
  }
  detail::check_host_call(call);
  const std::int64_t dim = call.shape.dim;
  const float scalar_var = prior_.std * prior_.std;
  for (std::int64_t row = 0; row < call.shape.batch; ++row) {
    const kernels::StepCoefficients c =
        detail::forward_coefficients(*call.schedule, detail::row_step(call, row));
    const float* x = call.x_t + row * dim;
    float* eps = call.eps + row * dim;
    for (std::int64_t i = 0; i < dim; ++i) {
      const float mean = prior_.means.empty() ? prior_.mean : prior_.means[i];
      const float var = prior_.stds.empty() ? scalar_var : prior_.stds[i] * prior_.stds[i];
      eps[i] = kernels::gaussian_prior_eps(x[i], mean, var, c);
    }
  }
}

}  // namespace ddpm
