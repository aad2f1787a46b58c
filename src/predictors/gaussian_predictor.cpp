// The analytic Gaussian predictor: the posterior means when x0 ~ N(mean, std^2).
#include <cmath>
#include <memory>
#include <string>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "device_predictors.h"
#include "predictor_steps.h"
#include "kernels/step_math.cuh"

namespace ddpm {

// The engine computes in float32: a prior mean up to 1e30 and a variance up
// to 1e30 (std 1e15) keep every intermediate value finite.
constexpr float kMaxPriorMean = 1e30f;
constexpr float kMaxPriorStd = 1e15f;

namespace {
void check_prior_value(float mean, float std, const std::string& what) {
  if (!std::isfinite(mean) || std::abs(mean) > kMaxPriorMean) {
    throw Error(what + " mean " + std::to_string(mean) +
                " must be finite with magnitude <= 1e30 (the float32 range the engine computes in)");
  }
  if (!std::isfinite(std) || std < 0.0f || std > kMaxPriorStd) {
    throw Error(what + " std " + std::to_string(std) +
                " must be finite, >= 0 and <= 1e15 (its square must stay in float32 range)");
  }
}
}  // namespace

void GaussianPrior::validate() const {
  check_prior_value(mean, std, "gaussian prior");
  if (!means.empty() && !stds.empty() && means.size() != stds.size()) {
    throw Error("per-element means (" + std::to_string(means.size()) + ") and stds (" +
                std::to_string(stds.size()) + ") differ in size");
  }
  for (std::size_t i = 0; i < means.size(); ++i) {
    check_prior_value(means[i], 0.0f, "per-element " + std::to_string(i) + ":");
  }
  for (std::size_t i = 0; i < stds.size(); ++i) {
    check_prior_value(0.0f, stds[i], "per-element " + std::to_string(i) + ":");
  }
}

namespace detail {

void check_host_call(const PredictorCall& call) {
  if (call.schedule == nullptr) throw Error("predictor call without a schedule");
  if (call.x_t == nullptr || output_of(call) == nullptr) {
    throw Error("predictor call without an input or an output buffer");
  }
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

GaussianPredictor::GaussianPredictor(GaussianPrior prior, std::optional<GaussianPrior> unconditional)
    : prior_(std::move(prior)), unconditional_(std::move(unconditional)) {
  prior_.validate();
  if (unconditional_) unconditional_->validate();
}

std::optional<std::int32_t> GaussianPredictor::unconditional_label() const {
  return unconditional_ ? std::optional<std::int32_t>(kUnconditionalLabel) : std::nullopt;
}

// The device half, made by prepare() for device memory.
struct GaussianPredictor::DeviceState {
  std::unique_ptr<detail::PredictorDevicePart> part;
};

GaussianPredictor::~GaussianPredictor() = default;

void GaussianPredictor::prepare(const Schedule& /*schedule*/, Memory memory, Shape shape,
                                void* stream) {
  detail::check_prior_fits(prior_, shape.dim);
  if (unconditional_) detail::check_prior_fits(*unconditional_, shape.dim);
  if (memory == Memory::device) {
#if DDPM_HAVE_CUDA
    device_ = std::make_shared<DeviceState>(
        DeviceState{detail::make_gaussian_device_part(prior_, unconditional_, shape, stream)});
#else
    (void)stream;
    detail::throw_without_cuda("GaussianPredictor");
#endif
  }
}

void GaussianPredictor::predict(const PredictorCall& call) {
  detail::check_prior_fits(prior_, call.shape.dim);
  if (unconditional_) detail::check_prior_fits(*unconditional_, call.shape.dim);
  if (call.memory == Memory::device) {
    if (!device_) throw Error("GaussianPredictor: call prepare() before predicting on a device");
    device_->part->predict(call);
    return;
  }
  detail::check_host_call(call);
  const std::int64_t dim = call.shape.dim;
  float* output = detail::output_of(call);
  for (std::int64_t row = 0; row < call.shape.batch; ++row) {
    const bool unconditional = detail::unconditional_row(call, row);
    if (unconditional && !unconditional_) {
      throw Error("row " + std::to_string(row) +
                  " asks for the unconditional prior, but this gaussian predictor has none");
    }
    const GaussianPrior& prior = unconditional ? *unconditional_ : prior_;
    const detail::PredictorStep p = detail::predictor_step_for(call, row);
    const float* x = call.x_t + row * dim;
    float* out = output + row * dim;
    const float scalar_var = prior.std * prior.std;
    for (std::int64_t i = 0; i < dim; ++i) {
      const float mean = prior.means.empty() ? prior.mean : prior.means[i];
      const float var = prior.stds.empty() ? scalar_var : prior.stds[i] * prior.stds[i];
      out[i] = kernels::gaussian_model_output(x[i], mean, var, p.a, p.b, p.weights);
    }
  }
}

}  // namespace ddpm
