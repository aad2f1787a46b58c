#pragma once
// Noise predictors: the model of the reverse process. Users plug in their
// network by implementing NoisePredictor; two analytic predictors are built
// in, and make_predictor() builds one from a JSON description.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/schedule.h"
#include "ddpm/types.h"

namespace ddpm {

// One call of the predictor: read x_t, write the model output, both
// [shape.batch, shape.dim] in `memory`. With Memory::device the pointers are
// CUDA device pointers and the work must be ordered on `stream` (a
// cudaStream_t) without synchronising.
struct PredictorCall {
  const float* x_t = nullptr;
  // The output: eps, x0 or v, as prediction_type says. A network writes what
  // it was trained to predict (and the sampler must be configured with that
  // prediction type); the built-in predictors answer in whichever type is asked.
  float* model_output = nullptr;
  // The same buffer as model_output, under the name that predictors written
  // for eps-only sampling use.
  float* eps = nullptr;
  PredictionType prediction_type = PredictionType::epsilon;
  Shape shape;
  int step = 0;                                 // the timestep t of the whole batch...
  const std::int32_t* steps = nullptr;          // ...or one per sample (same memory), if set
  // The time the model is given (fractional for Euler's interpolated and
  // Karras timesteps; equal to `step` otherwise), and alpha_bar of x_t at
  // this step (what an analytic predictor needs: it differs from the
  // schedule's alpha_bar at `step` where the solver's sigma does). alpha_bar
  // < 0: take schedule->alpha_bar()[step] (direct calls, per-sample steps).
  float timestep = 0.0f;
  double alpha_bar = -1.0;
  std::int64_t first_sample = 0;                // global index of row 0
  // The rows that hold distinct samples: shape.batch, or the first half in a
  // call for classifier-free guidance, whose second half repeats them (row
  // sample_rows + i is sample first_sample + i too). 0: shape.batch.
  std::int64_t sample_rows = 0;
  const Schedule* schedule = nullptr;
  // Per-row class labels for class-conditional models (same memory), or null.
  // With classifier-free guidance the call has 2 x batch rows: the
  // conditional rows with their labels, then the same x_t with the
  // predictor's unconditional_label().
  const std::int32_t* class_labels = nullptr;
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
  // The class label that asks for the unconditional output, which
  // classifier-free guidance needs; none: the predictor has no
  // unconditional model and guidance is refused.
  virtual std::optional<std::int32_t> unconditional_label() const { return std::nullopt; }
  // Where a batch may be split and give the same bits: parts that begin at
  // global samples that are multiples of this compute every row exactly as
  // one call over all rows does (see shard.h). 1: any split, as for a
  // predictor whose output for a row never depends on the other rows of
  // its call.
  virtual std::int64_t split_alignment() const { return 1; }
};

// The label the built-in analytic predictors read as "unconditional" (their
// unconditional prior); any other label, or none, is conditional.
inline constexpr std::int32_t kUnconditionalLabel = -1;

// The exact E[eps | x_t] (or E[x0 | x_t], or the v they imply) for
// x0 ~ N(mean, std^2) element-wise. With std = 0 and mean = a known x0 it is
// the oracle: the reverse process returns x0. The backends fuse it into the
// reverse step, so that a step reads and writes x once.
class GaussianPredictor : public NoisePredictor {
 public:
  // `unconditional`: the prior of rows labelled kUnconditionalLabel, for
  // classifier-free guidance (the conditional prior is `prior`).
  explicit GaussianPredictor(GaussianPrior prior,
                             std::optional<GaussianPrior> unconditional = std::nullopt);
  ~GaussianPredictor() override;
  void prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) override;
  void predict(const PredictorCall& call) override;
  bool supports(Memory) const override { return true; }
  bool capturable() const override { return true; }
  const GaussianPrior& prior() const { return prior_; }
  const std::optional<GaussianPrior>& unconditional_prior() const { return unconditional_; }
  std::optional<std::int32_t> unconditional_label() const override;

 private:
  GaussianPrior prior_;
  std::optional<GaussianPrior> unconditional_;
  struct DeviceState;  // the device half, made by prepare() for device memory
  std::shared_ptr<DeviceState> device_;
};

// The exact posterior expectations for an isotropic Gaussian mixture (via
// responsibilities), in whichever prediction type is asked.
class GmmPredictor : public NoisePredictor {
 public:
  // `unconditional`: the mixture of rows labelled kUnconditionalLabel.
  explicit GmmPredictor(GmmSpec spec, std::optional<GmmSpec> unconditional = std::nullopt);
  ~GmmPredictor() override;
  void prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) override;
  void predict(const PredictorCall& call) override;
  bool supports(Memory) const override { return true; }
  bool capturable() const override { return true; }
  const GmmSpec& spec() const { return spec_; }
  const std::optional<GmmSpec>& unconditional_spec() const { return unconditional_; }
  std::optional<std::int32_t> unconditional_label() const override;

 private:
  struct HostState;  // the tables of the host path
  GmmSpec spec_;
  std::optional<GmmSpec> unconditional_;
  std::shared_ptr<HostState> host_;
  struct DeviceState;  // the device half, made by prepare() for device memory
  std::shared_ptr<DeviceState> device_;
};

// Builds a predictor from a JSON description, the form the CLI and
// configuration files use:
//   {"type": "gaussian", "mean": 0.5, "std": 0.3}  (or "means"/"stds": [per element])
//   {"type": "gmm", "weights": [...], "means": [[...]], "stds": [...]}
//   {"type": "gmm", "path": "spec.json"}
//   {"type": "mlp", "path": "model.safetensors", "threads": 0, "allow_tf32": false}
// gaussian and gmm take an optional "unconditional": {a prior or mixture of
// the same form} for classifier-free guidance (SampleRequest::guidance_scale).
// Throws ddpm::Error naming the problem.
std::unique_ptr<NoisePredictor> make_predictor(const std::string& json_description);

}  // namespace ddpm
