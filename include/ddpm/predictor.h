#pragma once
// Noise predictors: the model of eps(x_t, t). Users plug in their network by
// implementing NoisePredictor; two analytic predictors are built in.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ddpm/schedule.h"
#include "ddpm/types.h"

namespace ddpm {
namespace detail {
struct GaussianDeviceState;  // device copies of a predictor's tables (src/cuda/)
struct GmmDeviceState;
struct GmmTables;
}  // namespace detail

// One call of the predictor: read x_t, write eps, both [shape.batch, shape.dim]
// in `memory`. With Memory::device the pointers are CUDA device pointers and
// the work must be ordered on `stream` (a cudaStream_t) without synchronising.
struct PredictorCall {
  const float* x_t = nullptr;
  float* eps = nullptr;
  Shape shape;
  int step = 0;                                 // the step of the whole batch...
  const std::int32_t* steps = nullptr;          // ...or one per sample (same memory), if set
  std::int64_t first_sample = 0;                // global index of row 0
  const Schedule* schedule = nullptr;
  Memory memory = Memory::host;
  void* stream = nullptr;
};

// x0 ~ N(mean, std^2) element-wise: scalar, or per element (size dim).
struct GaussianPrior {
  float mean = 0.0f;
  float std = 1.0f;
  std::vector<float> means;  // per-element means, or empty
  std::vector<float> stds;   // per-element stds, or empty
  // Throws ddpm::Error for a negative or non-finite std, or NaN in a mean.
  void validate() const;
};

// An isotropic Gaussian mixture in D dimensions.
struct GmmSpec {
  std::vector<double> weights;             // K, summing to 1
  std::vector<std::vector<double>> means;  // K x D
  std::vector<double> stds;                // K, >= 0
  int dim() const { return means.empty() ? 0 : static_cast<int>(means.front().size()); }
  int components() const { return static_cast<int>(weights.size()); }
  // Throws ddpm::Error for weights not summing to 1, a negative std, ragged means.
  void validate() const;
  // {"weights": [...], "means": [[...], ...], "stds": [...]}; throws ddpm::Error.
  static GmmSpec from_json(const std::string& text);
  static GmmSpec load(const std::string& path);
};

class NoisePredictor {
 public:
  virtual ~NoisePredictor() = default;
  // Called once before a sampling loop (and before any graph capture) with
  // the loop's shape: the place to allocate or upload what predict() needs.
  virtual void prepare(const Schedule& /*schedule*/, Memory /*memory*/, Shape /*shape*/,
                       void* /*stream*/) {}
  virtual void predict(const PredictorCall& call) = 0;
  // Whether predict() accepts arrays in `memory`.
  virtual bool supports(Memory memory) const = 0;
  // True when predict() on a device is safe to capture into a CUDA Graph
  // (no host synchronisation, no allocation, same work every call).
  virtual bool capturable() const { return false; }
  // An element-wise Gaussian prior lets a backend fuse the predictor into the
  // reverse step, so that a step reads and writes x once.
  virtual const GaussianPrior* fusable_gaussian_prior() const { return nullptr; }
};

// E[eps | x_t] for x0 ~ N(mean, std^2) element-wise. With std = 0 and mean =
// a known x0 it is the oracle: the reverse process returns x0.
class GaussianPredictor : public NoisePredictor {
 public:
  explicit GaussianPredictor(GaussianPrior prior);
  ~GaussianPredictor() override;
  void prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) override;
  void predict(const PredictorCall& call) override;
  bool supports(Memory) const override { return true; }
  bool capturable() const override { return true; }
  const GaussianPrior* fusable_gaussian_prior() const override { return &prior_; }
  const GaussianPrior& prior() const { return prior_; }

 private:
  GaussianPrior prior_;
  std::shared_ptr<detail::GaussianDeviceState> device_;  // set by prepare() for device memory
};

// E[eps | x_t] for an isotropic Gaussian mixture (exact, via responsibilities).
class GmmPredictor : public NoisePredictor {
 public:
  explicit GmmPredictor(GmmSpec spec);
  ~GmmPredictor() override;
  void prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) override;
  void predict(const PredictorCall& call) override;
  bool supports(Memory) const override { return true; }
  bool capturable() const override { return true; }
  const GmmSpec& spec() const { return spec_; }

 private:
  GmmSpec spec_;
  std::shared_ptr<detail::GmmTables> host_tables_;  // float tables, built on first host use
  std::shared_ptr<detail::GmmDeviceState> device_;
};

}  // namespace ddpm
