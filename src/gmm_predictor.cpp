// The Gaussian-mixture predictor and its JSON specification.
#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "device_predictors.h"
#include "file_input.h"
#include "cpu/parallel_for.h"
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
    if (!std::isfinite(stds[i]) || stds[i] < 0.0) {
      throw Error("GMM std " + std::to_string(i) + " is " + std::to_string(stds[i]) +
                  ": must be finite and >= 0");
    }
    if (means[i].size() != d) {
      throw Error("GMM mean " + std::to_string(i) + " has dimension " +
                  std::to_string(means[i].size()) + ", expected " + std::to_string(d));
    }
    for (double m : means[i]) {
      if (!std::isfinite(m)) throw Error("GMM mean " + std::to_string(i) + " is not finite");
    }
  }
  if (std::abs(total - 1.0) > 1e-6) {
    throw Error("GMM weights sum to " + std::to_string(total) + ", not 1");
  }
}

GmmSpec GmmSpec::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("GMM spec is not valid JSON: ") + e.what());
  }
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
    t.log_weights.push_back(static_cast<float>(std::log(spec.weights[k])));
    t.variances.push_back(static_cast<float>(spec.stds[k] * spec.stds[k]));
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

GmmPredictor::GmmPredictor(GmmSpec spec) : spec_(std::move(spec)) { spec_.validate(); }

GmmPredictor::~GmmPredictor() = default;

namespace {
void check_gmm_dim(const GmmSpec& spec, std::int64_t dim) {
  if (dim != spec.dim()) {
    throw Error("GMM has dimension " + std::to_string(spec.dim()) + " but samples have dim " +
                std::to_string(dim));
  }
}
}  // namespace

void GmmPredictor::prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) {
  check_gmm_dim(spec_, shape.dim);
  if (memory == Memory::device) device_ = detail::prepare_gmm_device(spec_, schedule, shape, stream);
}

void GmmPredictor::predict(const PredictorCall& call) {
  check_gmm_dim(spec_, call.shape.dim);
  if (call.memory == Memory::device) {
    if (!device_) throw Error("GmmPredictor: call prepare() before predicting on a device");
    detail::predict_gmm_device(*device_, call);
    return;
  }
  detail::check_host_call(call);
  if (!host_tables_) host_tables_ = std::make_shared<detail::GmmTables>(detail::make_gmm_tables(spec_));
  const kernels::GmmParams params = host_tables_->params(spec_.dim());
  const std::int64_t dim = call.shape.dim;
  // Rows are independent; chunks of rows go to all hardware threads.
  constexpr std::int64_t kRowsPerChunk = 4096;
  const std::int64_t chunks = (call.shape.batch + kRowsPerChunk - 1) / kRowsPerChunk;
  cpu::parallel_for(chunks, 0, [&](std::int64_t chunk) {
    const std::int64_t end = std::min(call.shape.batch, (chunk + 1) * kRowsPerChunk);
    for (std::int64_t row = chunk * kRowsPerChunk; row < end; ++row) {
      const kernels::StepCoefficients c =
          detail::forward_coefficients(*call.schedule, detail::row_step(call, row));
      kernels::gmm_row_eps(call.x_t + row * dim, call.eps + row * dim, params, c.sqrt_alpha_bar,
                           c.sqrt_one_minus_alpha_bar);
    }
  });
}

}  // namespace ddpm
