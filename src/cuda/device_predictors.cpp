// The device side of the built-in predictors (src/device_predictors.h):
// prepare() uploads the tables, predict() only launches (stream-ordered, no
// allocation, no synchronisation, so it can be captured into a CUDA Graph).
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "check.h"
#include "ddpm/error.h"
#include "device_predictor_state.h"
#include "device_predictors.h"
#include "gmm_tables.h"
#include "tuning.h"

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

void check_device_call(const PredictorCall& call, std::int64_t dim, int steps,
                       const char* predictor) {
  if (call.memory != Memory::device) {
    throw Error(std::string(predictor) + ": predict_*_device needs device memory");
  }
  if (dim > 0 && call.shape.dim != dim) {
    throw Error(std::string(predictor) + " was prepared for dim " + std::to_string(dim) +
                " but is called with dim " + std::to_string(call.shape.dim));
  }
  if (call.steps == nullptr && (call.step < 0 || call.step >= steps)) {
    throw Error(std::string(predictor) + ": step " + std::to_string(call.step) +
                " is outside the prepared schedule of " + std::to_string(steps) + " steps");
  }
}

kernels::StepAB step_ab(const PredictorCall& call, const std::vector<kernels::StepAB>& table) {
  if (call.schedule != nullptr && call.step < call.schedule->steps()) {
    return {static_cast<float>(call.schedule->sqrt_alpha_bar()[call.step]),
            static_cast<float>(call.schedule->sqrt_one_minus_alpha_bar()[call.step])};
  }
  return table[static_cast<std::size_t>(call.step)];
}

}  // namespace

std::vector<kernels::StepAB> make_step_ab_table(const Schedule& schedule) {
  std::vector<kernels::StepAB> table(static_cast<std::size_t>(schedule.steps()));
  for (int t = 0; t < schedule.steps(); ++t) {
    table[t] = {static_cast<float>(schedule.sqrt_alpha_bar()[t]),
                static_cast<float>(schedule.sqrt_one_minus_alpha_bar()[t])};
  }
  return table;
}

std::shared_ptr<GaussianDeviceState> prepare_gaussian_device(const GaussianPrior& prior,
                                                             const Schedule& schedule,
                                                             Shape shape, void* stream) {
  const auto dim = static_cast<std::size_t>(shape.dim);
  if ((!prior.means.empty() && prior.means.size() != dim) ||
      (!prior.stds.empty() && prior.stds.size() != dim)) {
    throw Error("gaussian prior has " + std::to_string(prior.means.size()) + " means and " +
                std::to_string(prior.stds.size()) + " stds but samples have dim " +
                std::to_string(shape.dim));
  }
  auto state = std::make_shared<GaussianDeviceState>();
  state->device = current_device();
  state->steps = schedule.steps();
  state->mean = prior.mean;
  state->var = prior.std * prior.std;
  state->host_table = make_step_ab_table(schedule);
  upload(state->table, state->host_table, "the gaussian predictor's step table", as_stream(stream));
  if (!prior.means.empty() || !prior.stds.empty()) {
    state->dim = shape.dim;
    std::vector<float> means(dim, prior.mean);
    std::vector<float> vars(dim, state->var);
    for (std::size_t i = 0; i < dim; ++i) {
      if (!prior.means.empty()) means[i] = prior.means[i];
      if (!prior.stds.empty()) vars[i] = prior.stds[i] * prior.stds[i];
    }
    upload(state->means, means, "the gaussian prior's means", as_stream(stream));
    upload(state->vars, vars, "the gaussian prior's variances", as_stream(stream));
  }
  return state;
}

void predict_gaussian_device(const GaussianDeviceState& state, const PredictorCall& call) {
  check_device_call(call, state.dim, state.steps, "gaussian predictor");
  kernels::GaussianEpsArgs args;
  args.x_t = call.x_t;
  args.eps = call.eps;
  args.batch = call.shape.batch;
  args.dim = call.shape.dim;
  args.steps = call.steps;
  args.table = state.table.data();
  if (call.steps == nullptr) args.step = step_ab(call, state.host_table);
  args.prior = {state.mean, state.var, state.means.data(), state.vars.data()};
  kernels::launch_gaussian_eps(args, cuda::launch_config(state.device), as_stream(call.stream));
}

std::shared_ptr<GmmDeviceState> prepare_gmm_device(const GmmSpec& spec, const Schedule& schedule,
                                                   Shape shape, void* stream) {
  if (spec.dim() != shape.dim) {
    throw Error("gaussian mixture has dim " + std::to_string(spec.dim()) +
                " but samples have dim " + std::to_string(shape.dim));
  }
  auto state = std::make_shared<GmmDeviceState>();
  state->device = current_device();
  state->steps = schedule.steps();
  state->dim = shape.dim;
  // The same float tables the host predictor reads (components of weight 0 left out).
  const GmmTables tables = make_gmm_tables(spec);
  if (tables.log_weights.empty()) {
    throw Error("gaussian mixture has no component with positive weight");
  }
  state->components = static_cast<int>(tables.log_weights.size());
  const cudaStream_t s = as_stream(stream);
  upload(state->log_weights, tables.log_weights, "the gaussian mixture's weights", s);
  upload(state->means, tables.means, "the gaussian mixture's means", s);
  upload(state->vars, tables.variances, "the gaussian mixture's variances", s);
  state->host_table = make_step_ab_table(schedule);
  upload(state->table, state->host_table, "the gaussian mixture's step table", s);
  return state;
}

void predict_gmm_device(const GmmDeviceState& state, const PredictorCall& call) {
  check_device_call(call, state.dim, state.steps, "gaussian mixture predictor");
  kernels::GmmEpsArgs args;
  args.x_t = call.x_t;
  args.eps = call.eps;
  args.batch = call.shape.batch;
  args.dim = call.shape.dim;
  args.components = state.components;
  args.log_weights = state.log_weights.data();
  args.means = state.means.data();
  args.vars = state.vars.data();
  args.steps = call.steps;
  args.table = state.table.data();
  if (call.steps == nullptr) args.step = step_ab(call, state.host_table);
  kernels::launch_gmm_eps(args, cuda::launch_config(state.device), as_stream(call.stream));
}

}  // namespace ddpm::detail
