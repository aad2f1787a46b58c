#pragma once
// A trained network as the noise predictor: the time-conditioned MLP denoiser
// ("mlp_denoiser", docs/model-format.md) read from a safetensors file whose
// metadata holds a JSON model card. On the CPU its GEMMs run in OpenBLAS, on
// a CUDA device in cuBLAS; predict() writes the network's raw output (eps,
// x0 or v, see prediction_type()) into PredictorCall::eps.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ddpm/model.h"
#include "ddpm/predictor.h"
#include "ddpm/schedule.h"
#include "ddpm/scheduler_config.h"
#include "ddpm/types.h"

namespace ddpm {

// Sinusoidal timestep embedding, diffusers' get_timestep_embedding.
struct TimeEmbeddingSpec {
  int dim = 128;
  bool flip_sin_to_cos = true;
  double downscale_freq_shift = 0.0;
  double scale = 1.0;
  double max_period = 10000.0;
};

// The JSON model card in the safetensors metadata under "ddpm_model_card".
struct MlpModelCard {
  std::string architecture;  // "mlp_denoiser"
  int version = 0;
  std::int64_t data_dim = 0;
  std::vector<std::int64_t> data_shape;  // e.g. {8, 8}; its product is data_dim
  std::int64_t hidden_dim = 0;
  int num_blocks = 0;
  TimeEmbeddingSpec time_embedding;
  int num_classes = 0;  // 0: unconditional
  int null_label = -1;  // num_classes for a class-conditional model: "no label" (guidance)
  std::vector<std::string> class_names;
  std::string activation = "silu";
  double layer_norm_eps = 1e-5;
  PredictionType prediction_type = PredictionType::epsilon;
  // The diffusers scheduler config the model was trained with (the card's
  // "scheduler" object, read as SchedulerConfig::from_json reads a
  // scheduler_config.json): its schedule and the matching sampler options.
  SchedulerConfig scheduler;
  DataNormalization normalization;
  RecommendedSampler sampler;
  std::string json;  // the card as stored

  // Parses and checks the card (required keys, types, ranges); throws ddpm::Error.
  static MlpModelCard from_json(const std::string& text);
  // The settings the model was checked with: the training scheduler config
  // with the recommended sampler on top (its name, inference steps, spacing,
  // eta and clipping; guidance is the caller's: sampler.guidance_scale).
  // What `ddpm sample --model` and Python's Sampler.for_model start from.
  // Throws ddpm::Error for a sampler name or spacing ddpm does not have.
  SchedulerConfig recommended_config() const;
  // The architecture-neutral part (ddpm::ModelCard).
  ModelCard model_card() const;
};

inline constexpr const char* kModelCardKey = "ddpm_model_card";
inline constexpr const char* kMlpArchitecture = "mlp_denoiser";

struct MlpPredictorOptions {
  // CPU: threads of OpenBLAS and of the element-wise passes (0 = all hardware
  // threads). Give the sampler's thread count: the CPU engine calls predict()
  // from one thread between its own parallel passes, so the two never overlap.
  int threads = 0;
  // CUDA: let cuBLAS use TF32 tensor cores (faster; ~1e-3 relative instead of
  // float32's ~1e-6). Off by default.
  bool allow_tf32 = false;
};

// The rows the host network computes together (MlpPredictor::split_alignment).
inline constexpr std::int64_t kMlpRowBlock = 64;

class MlpPredictor : public NetworkPredictor {
 public:
  // Loads and validates the model (card, tensor names, shapes, dtypes,
  // finite values); throws ddpm::Error with a one-line message naming the file.
  explicit MlpPredictor(const std::string& path, MlpPredictorOptions options = {});
  ~MlpPredictor() override;
  MlpPredictor(MlpPredictor&&) noexcept;
  MlpPredictor& operator=(MlpPredictor&&) noexcept;

  const MlpModelCard& card() const;
  const ModelCard& model_card() const override;
  PredictionType prediction_type() const { return card().prediction_type; }
  const SchedulerConfig& scheduler_config() const { return card().scheduler; }
  const DataNormalization& normalization() const { return card().normalization; }
  std::int64_t data_dim() const { return card().data_dim; }
  int num_classes() const { return card().num_classes; }
  int null_label() const { return card().null_label; }  // -1 for an unconditional model
  const MlpPredictorOptions& options() const;

  // The class label of each row of the next predict() calls: row i of a call
  // uses labels[i] (a host array, copied; 0 <= label < num_classes, or
  // null_label()). A call must have no more rows than labels were given.
  void set_class_labels(std::span<const std::int32_t> labels) override;
  // One label for every row (the default: null_label(), i.e. unconditional).
  void set_class_label(std::int32_t label) override;

  // Host: sizes the workspace for shape.batch (predict() grows it if needed).
  // Device: uploads the weights and tables once, allocates the workspace and
  // the cuBLAS workspace for shape.batch rows on the current device, and
  // uploads the labels; predict() then allocates nothing, never
  // synchronises and can be captured into a CUDA Graph. Throws ddpm::Error
  // when shape.dim differs from the model's or the schedule's T from the
  // model's num_train_timesteps.
  void prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) override;
  // The network at the call's step(s) and the labels: output into call.eps.
  // A call with one step for the batch whose `timestep` is fractional (it
  // rounds to `step`: Euler's steps with Karras sigmas) is conditioned on
  // that time, as diffusers passes it to a network; otherwise on `step`.
  // Device calls need prepare() first, with at least call.shape.batch rows.
  void predict(const PredictorCall& call) override;
  bool supports(Memory) const override { return true; }
  bool capturable() const override { return true; }
  // null_label() for a class-conditional model; none for an unconditional one.
  std::optional<std::int32_t> unconditional_label() const override;
  // 64 (kMlpRowBlock): on the host the network runs each block of 64 global
  // samples (first_sample + row, aligned to multiples of 64) as one set of
  // single-threaded BLAS products, because a BLAS rounds a row differently
  // in products of different sizes. So a row's bits depend on its block
  // only: not on the batch, the split at multiples of 64, or the thread
  // count. (On the GPU cuBLAS picks its kernels by batch size: there, parts
  // agree with one call to about 1e-6, not bit for bit.)
  std::int64_t split_alignment() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpm
