// The device halves of the analytic predictors (device_predictors.h):
// prepare() uploads the tables, predict() only launches (stream-ordered, no
// allocation, no synchronisation, so it can be captured into a CUDA Graph).
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/launch.h"
#include "backends/cuda/check.h"
#include "ddpm/error.h"
#include "backends/cuda/device_buffer.h"
#include "device_predictors.h"
#include "gmm_tables.h"
#include "predictor_steps.h"
#include "backends/cuda/tuning.h"

namespace ddpm::detail {
namespace {

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

int current_device() {
  int device = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

template <typename T>
void upload(cuda::DeviceBuffer<T>& buffer, const std::vector<T>& values, const std::string& what,
            cudaStream_t stream) {
  buffer.allocate(values.size(), what);
  // Pageable source: the copy is staged before cudaMemcpyAsync returns.
  DDPM_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), values.data(), values.size() * sizeof(T),
                                  cudaMemcpyHostToDevice, stream));
}

// sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t) of every timestep, for calls with
// a step per sample (uploaded on first use, for the call's schedule).
struct StepTable {
  const Schedule* schedule = nullptr;
  std::vector<double> alpha_bar;  // to tell a different schedule apart
  cuda::DeviceBuffer<kernels::StepAB> table;

  const kernels::StepAB* for_call(const PredictorCall& call) {
    if (call.steps == nullptr) return nullptr;
    if (call.schedule == nullptr) throw Error("predictor call with per-sample steps needs a schedule");
    if (table.data() == nullptr || alpha_bar != call.schedule->alpha_bar()) {
      // Only outside graph capture: per-sample steps come from direct calls.
      std::vector<kernels::StepAB> values(static_cast<std::size_t>(call.schedule->steps()));
      for (int t = 0; t < call.schedule->steps(); ++t) {
        const PredictorStep p = predictor_step(*call.schedule, t, call.prediction_type);
        values[static_cast<std::size_t>(t)] = {p.a, p.b};
      }
      upload(table, values, "the predictor's step table", as_stream(call.stream));
      alpha_bar = call.schedule->alpha_bar();
    }
    return table.data();
  }
};

void check_device_call(const PredictorCall& call, std::int64_t dim, const char* predictor) {
  if (call.memory != Memory::device) {
    throw Error(std::string(predictor) + ": predict on the device needs device memory");
  }
  if (dim > 0 && call.shape.dim != dim) {
    throw Error(std::string(predictor) + " was prepared for dim " + std::to_string(dim) +
                " but is called with dim " + std::to_string(call.shape.dim));
  }
  if (call.schedule == nullptr) throw Error(std::string(predictor) + ": call without a schedule");
  if (call.steps == nullptr) call.schedule->check_step(call.step);
}

// The batch's step when it has one: the loop's alpha_bar (a solver's sigma
// may fall between timesteps) or the schedule's.
kernels::StepAB uniform_step(const PredictorCall& call) {
  if (call.steps != nullptr) return {};
  const PredictorStep p = predictor_step_for(call, 0);
  return {p.a, p.b};
}

struct DevicePrior {
  std::int64_t dim = 0;  // per-element tables' size, or 0
  float mean = 0.0f;
  float var = 1.0f;
  cuda::DeviceBuffer<float> means;  // per-element prior, dim floats each, or empty
  cuda::DeviceBuffer<float> vars;

  kernels::PriorView view() const { return {mean, var, means.data(), vars.data()}; }
};

void upload_prior(DevicePrior& out, const GaussianPrior& prior, Shape shape, cudaStream_t stream) {
  const auto dim = static_cast<std::size_t>(shape.dim);
  if ((!prior.means.empty() && prior.means.size() != dim) ||
      (!prior.stds.empty() && prior.stds.size() != dim)) {
    throw Error("gaussian prior has " + std::to_string(prior.means.size()) + " means and " +
                std::to_string(prior.stds.size()) + " stds but samples have dim " +
                std::to_string(shape.dim));
  }
  out.mean = prior.mean;
  out.var = prior.std * prior.std;
  if (prior.means.empty() && prior.stds.empty()) return;
  out.dim = shape.dim;
  std::vector<float> means(dim, prior.mean);
  std::vector<float> vars(dim, out.var);
  for (std::size_t i = 0; i < dim; ++i) {
    if (!prior.means.empty()) means[i] = prior.means[i];
    if (!prior.stds.empty()) vars[i] = prior.stds[i] * prior.stds[i];
  }
  upload(out.means, means, "the gaussian prior's means", stream);
  upload(out.vars, vars, "the gaussian prior's variances", stream);
}

class GaussianDevicePart final : public PredictorDevicePart {
 public:
  GaussianDevicePart(const GaussianPrior& prior, const std::optional<GaussianPrior>& unconditional,
                     Shape shape, cudaStream_t stream) {
    device_ = current_device();
    upload_prior(prior_, prior, shape, stream);
    if (unconditional) {
      upload_prior(unconditional_, *unconditional, shape, stream);
      has_unconditional_ = true;
    }
  }

  void predict(const PredictorCall& call) override {
    const std::int64_t dim = prior_.dim > 0 ? prior_.dim : unconditional_.dim;
    check_device_call(call, dim, "gaussian predictor");
    kernels::GaussianOutputArgs args;
    args.x_t = call.x_t;
    args.output = output_of(call);
    args.batch = call.shape.batch;
    args.dim = call.shape.dim;
    args.prediction_type = static_cast<int>(call.prediction_type);
    args.steps = call.steps;
    args.table = steps_.for_call(call);
    args.step = uniform_step(call);
    args.prior = prior_.view();
    // The labels are on the device, so rows cannot be checked here: without an
    // unconditional prior every row is conditional (the loop refuses guidance
    // for a predictor without unconditional_label()).
    if (has_unconditional_) {
      args.labels = call.class_labels;
      args.unconditional_prior = unconditional_.view();
    }
    kernels::launch_gaussian_output(args, cuda::launch_config(device_), as_stream(call.stream));
  }

 private:
  int device_ = 0;
  DevicePrior prior_;
  DevicePrior unconditional_;
  bool has_unconditional_ = false;
  StepTable steps_;
};

// A mixture's device tables (components of weight 0 left out).
struct DeviceMixture {
  int components = 0;
  cuda::DeviceBuffer<double> log_weights;  // K
  cuda::DeviceBuffer<float> means;         // K x dim
  cuda::DeviceBuffer<double> vars;         // K: s_k^2
  cuda::DeviceBuffer<kernels::GmmComponentStep> step_constants;  // K, per call

  kernels::GmmParams params(std::int64_t dim) const {
    kernels::GmmParams p;
    p.dim = dim;
    p.components = components;
    p.log_weights = log_weights.data();
    p.means = means.data();
    p.vars = vars.data();
    return p;
  }
};

void upload_mixture(DeviceMixture& out, const GmmSpec& spec, cudaStream_t stream) {
  // The same tables the host predictor reads.
  const GmmTables tables = make_gmm_tables(spec);
  if (tables.log_weights.empty()) {
    throw Error("gaussian mixture has no component with positive weight");
  }
  out.components = static_cast<int>(tables.log_weights.size());
  upload(out.log_weights, tables.log_weights, "the gaussian mixture's weights", stream);
  upload(out.means, tables.means, "the gaussian mixture's means", stream);
  upload(out.vars, tables.variances, "the gaussian mixture's variances", stream);
  out.step_constants.allocate(static_cast<std::size_t>(out.components),
                              "the gaussian mixture's per-step constants");
}

class GmmDevicePart final : public PredictorDevicePart {
 public:
  GmmDevicePart(const GmmSpec& spec, const std::optional<GmmSpec>& unconditional, Shape shape,
                cudaStream_t stream) {
    if (spec.dim() != shape.dim) {
      throw Error("gaussian mixture has dim " + std::to_string(spec.dim()) + " but samples have dim " +
                  std::to_string(shape.dim));
    }
    device_ = current_device();
    dim_ = shape.dim;
    upload_mixture(mixture_, spec, stream);
    if (unconditional) {
      upload_mixture(unconditional_, *unconditional, stream);
      has_unconditional_ = true;
    }
  }

  void predict(const PredictorCall& call) override {
    check_device_call(call, dim_, "gaussian mixture predictor");
    kernels::GmmOutputArgs args;
    args.x_t = call.x_t;
    args.output = output_of(call);
    args.batch = call.shape.batch;
    args.dim = call.shape.dim;
    args.params = mixture_.params(call.shape.dim);
    args.prediction_type = static_cast<int>(call.prediction_type);
    args.step_constants = mixture_.step_constants.data();
    args.steps = call.steps;
    args.table = steps_.for_call(call);
    args.step = uniform_step(call);
    if (has_unconditional_) {  // see GaussianDevicePart::predict
      args.labels = call.class_labels;
      args.unconditional = unconditional_.params(call.shape.dim);
      args.unconditional_constants = unconditional_.step_constants.data();
    }
    kernels::launch_gmm_output(args, cuda::launch_config(device_), as_stream(call.stream));
  }

 private:
  int device_ = 0;
  std::int64_t dim_ = 0;
  DeviceMixture mixture_;
  DeviceMixture unconditional_;
  bool has_unconditional_ = false;
  StepTable steps_;
};

}  // namespace

std::unique_ptr<PredictorDevicePart> make_gaussian_device_part(
    const GaussianPrior& prior, const std::optional<GaussianPrior>& unconditional, Shape shape, void* stream) {
  return std::make_unique<GaussianDevicePart>(prior, unconditional, shape, as_stream(stream));
}

std::unique_ptr<PredictorDevicePart> make_gmm_device_part(const GmmSpec& spec,
                                                          const std::optional<GmmSpec>& unconditional,
                                                          Shape shape, void* stream) {
  return std::make_unique<GmmDevicePart>(spec, unconditional, shape, as_stream(stream));
}

}  // namespace ddpm::detail
