// The Gaussian-mixture predictor and its JSON specification.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "device_predictors.h"
#include "io/file_input.h"
#include "io/strict_json.h"
#include "backends/cpu/parallel_for.h"
#include "gmm_tables.h"
#include "predictor_steps.h"

namespace ddpm {

void GmmSpec::validate() const {
  const std::size_t k = weights.size();
  if (k == 0) throw Error("GMM needs at least one component");
  if (means.size() != k || stds.size() != k) {
    throw Error("GMM has " + std::to_string(k) + " weights but " + std::to_string(means.size()) +
                " means and " + std::to_string(stds.size()) + " stds");
  }
  const std::size_t d = means.front().size();
  if (d == 0) throw Error("GMM means must have at least one dimension");
  double total = 0.0;
  for (std::size_t i = 0; i < k; ++i) {
    if (!std::isfinite(weights[i]) || weights[i] < 0.0) {
      throw Error("GMM weight " + std::to_string(i) + " must be finite and >= 0");
    }
    total += weights[i];
    if (!std::isfinite(stds[i]) || stds[i] < 0.0 || stds[i] > 1e15) {
      throw Error("GMM std " + std::to_string(i) + " is " + std::to_string(stds[i]) +
                  ": must be finite, >= 0 and <= 1e15");
    }
    if (means[i].size() != d) {
      throw Error("GMM mean " + std::to_string(i) + " has dimension " +
                  std::to_string(means[i].size()) + ", expected " + std::to_string(d));
    }
    for (double m : means[i]) {
      // Means are stored in float32; 1e30 keeps x_t - a mu and the outputs in range.
      if (!std::isfinite(m) || std::abs(m) > 1e30) {
        throw Error("GMM mean " + std::to_string(i) + " has a value (" + std::to_string(m) +
                    ") that is not finite or exceeds 1e30 in magnitude (the float32 range the "
                    "engine computes in)");
      }
    }
  }
  if (std::abs(total - 1.0) > 1e-6) {
    throw Error("GMM weights sum to " + std::to_string(total) + ", not 1");
  }
}

GmmSpec GmmSpec::from_json(const std::string& text) {
  const nlohmann::json j = detail::parse_json(text, "GMM spec");
  GmmSpec spec;
  try {
    spec.weights = j.at("weights").get<std::vector<double>>();
    spec.means = j.at("means").get<std::vector<std::vector<double>>>();
    spec.stds = j.at("stds").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("GMM spec needs numeric \"weights\", \"means\" and \"stds\": ") +
                e.what());
  }
  spec.validate();
  return spec;
}

GmmSpec GmmSpec::load(const std::string& path) {
  const std::string text = detail::read_file_bounded(path, detail::kMaxJsonBytes, "GMM spec");
  try {
    return from_json(text);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

namespace detail {

GmmTables make_gmm_tables(const GmmSpec& spec) {
  GmmTables t;
  for (std::size_t k = 0; k < spec.weights.size(); ++k) {
    if (spec.weights[k] == 0.0) continue;  // contributes nothing; log(0) would poison the sums
    t.log_weights.push_back(std::log(spec.weights[k]));
    t.variances.push_back(spec.stds[k] * spec.stds[k]);
    for (double m : spec.means[k]) t.means.push_back(static_cast<float>(m));
  }
  return t;
}

kernels::GmmParams GmmTables::params(std::int64_t dim) const {
  kernels::GmmParams p;
  p.dim = dim;
  p.components = static_cast<int>(log_weights.size());
  p.log_weights = log_weights.data();
  p.means = means.data();
  p.vars = variances.data();
  return p;
}

}  // namespace detail

// The host path's tables of both mixtures, and the per-component constants
// of the call's step.
struct GmmPredictor::HostState {
  detail::GmmTables tables, unconditional;
  std::vector<kernels::GmmComponentStep> step, unconditional_step;
};

GmmPredictor::GmmPredictor(GmmSpec spec, std::optional<GmmSpec> unconditional)
    : spec_(std::move(spec)), unconditional_(std::move(unconditional)) {
  spec_.validate();
  if (unconditional_) {
    unconditional_->validate();
    if (unconditional_->dim() != spec_.dim()) {
      throw Error("the unconditional GMM has dimension " + std::to_string(unconditional_->dim()) +
                  " but the conditional one " + std::to_string(spec_.dim()));
    }
  }
}

GmmPredictor::~GmmPredictor() = default;

std::optional<std::int32_t> GmmPredictor::unconditional_label() const {
  return unconditional_ ? std::optional<std::int32_t>(kUnconditionalLabel) : std::nullopt;
}

namespace {
void check_gmm_dim(const GmmSpec& spec, std::int64_t dim) {
  if (dim != spec.dim()) {
    throw Error("GMM has dimension " + std::to_string(spec.dim()) + " but samples have dim " +
                std::to_string(dim));
  }
}

// The per-component constants of one step for `tables`.
void fill_step(const detail::GmmTables& tables, std::int64_t dim, const detail::PredictorStep& p,
               std::vector<kernels::GmmComponentStep>& step) {
  const kernels::GmmParams params = tables.params(dim);
  step.resize(static_cast<std::size_t>(params.components));
  for (int k = 0; k < params.components; ++k) {
    step[static_cast<std::size_t>(k)] = kernels::gmm_component_step(params, k, p.a, p.b, p.weights);
  }
}
}  // namespace

// The device half, made by prepare() for device memory.
struct GmmPredictor::DeviceState {
  std::unique_ptr<detail::PredictorDevicePart> part;
};

void GmmPredictor::prepare(const Schedule& /*schedule*/, Memory memory, Shape shape, void* stream) {
  check_gmm_dim(spec_, shape.dim);
  if (memory != Memory::device) return;
#if DDPM_HAVE_CUDA
  device_ = std::make_shared<DeviceState>(
      DeviceState{detail::make_gmm_device_part(spec_, unconditional_, shape, stream)});
#else
  (void)stream;
  detail::throw_without_cuda("GmmPredictor");
#endif
}

void GmmPredictor::predict(const PredictorCall& call) {
  check_gmm_dim(spec_, call.shape.dim);
  if (call.memory == Memory::device) {
    if (!device_) throw Error("GmmPredictor: call prepare() before predicting on a device");
    device_->part->predict(call);
    return;
  }
  detail::check_host_call(call);
  if (!host_) {
    host_ = std::make_shared<HostState>();
    host_->tables = detail::make_gmm_tables(spec_);
    if (unconditional_) host_->unconditional = detail::make_gmm_tables(*unconditional_);
  }
  const std::int64_t dim = call.shape.dim;
  for (std::int64_t row = 0; row < (call.class_labels ? call.shape.batch : 0); ++row) {
    if (detail::unconditional_row(call, row) && !unconditional_) {
      throw Error("row " + std::to_string(row) +
                  " asks for the unconditional mixture, but this GMM predictor has none");
    }
  }
  // With one step for the batch, the per-component constants are computed once.
  const bool uniform = call.steps == nullptr;
  const detail::PredictorStep step = detail::predictor_step_for(call, 0);
  if (uniform) {
    fill_step(host_->tables, dim, step, host_->step);
    if (unconditional_) fill_step(host_->unconditional, dim, step, host_->unconditional_step);
  }
  float* output = detail::output_of(call);
  // Rows are independent; chunks of rows go to all hardware threads.
  constexpr std::int64_t kRowsPerChunk = 4096;
  const std::int64_t chunks = (call.shape.batch + kRowsPerChunk - 1) / kRowsPerChunk;
  cpu::parallel_for(chunks, 0, [&](std::int64_t chunk) {
    std::vector<double> cache(std::max(host_->tables.log_weights.size(),
                                       host_->unconditional.log_weights.size()));
    const std::int64_t end = std::min(call.shape.batch, (chunk + 1) * kRowsPerChunk);
    for (std::int64_t row = chunk * kRowsPerChunk; row < end; ++row) {
      const bool unconditional = detail::unconditional_row(call, row);
      const detail::GmmTables& tables = unconditional ? host_->unconditional : host_->tables;
      const detail::PredictorStep p = uniform ? step : detail::predictor_step_for(call, row);
      const kernels::GmmComponentStep* constants =
          uniform ? (unconditional ? host_->unconditional_step.data() : host_->step.data()) : nullptr;
      kernels::gmm_row_output(call.x_t + row * dim, output + row * dim, tables.params(dim), constants,
                              p.a, p.b, p.weights, cache.data());
    }
  });
}

}  // namespace ddpm
