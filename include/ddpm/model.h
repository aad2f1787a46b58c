#pragma once
// Trained networks as predictors, whatever their architecture: the card every
// model file carries (docs/model-format.md) as the front ends read it, the
// interface of a network predictor, and ddpm::load_model, which reads a
// model file's card and creates the network its "architecture" names. The CLI's
// --model and Python's loader go through it; a new architecture is one more
// case there.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ddpm/predictor.h"
#include "ddpm/scheduler_config.h"
#include "ddpm/types.h"

namespace ddpm {

// Model space <-> data units: pixel = (x + pixel_offset) * pixel_scale.
struct DataNormalization {
  float model_min = -1.0f;
  float model_max = 1.0f;
  float pixel_min = 0.0f;
  float pixel_max = 16.0f;
  float pixel_scale = 8.0f;
  float pixel_offset = 1.0f;
  float to_pixel(float x) const { return (x + pixel_offset) * pixel_scale; }
  float from_pixel(float pixel) const { return pixel / pixel_scale - pixel_offset; }
};

// The sampler the model was checked with (the card's "sampler").
struct RecommendedSampler {
  std::string name = "ddim";
  int num_inference_steps = 50;
  std::string timestep_spacing = "trailing";
  double eta = 0.0;
  bool clip_sample = true;
  double guidance_scale = 1.0;
};


// What a model card says that does not depend on the architecture.
struct ModelCard {
  std::string architecture;                  // e.g. "mlp_denoiser"
  PredictionType prediction_type = PredictionType::epsilon;
  SchedulerConfig scheduler;                 // the training scheduler config
  DataNormalization normalization;
  RecommendedSampler sampler;
  int num_classes = 0;                       // 0: unconditional
  int null_label = -1;                       // the "no label" class (guidance), or -1
  std::vector<std::string> class_names;
  std::vector<std::int64_t> sample_shape;    // one sample, e.g. {8, 8}; its product is dim()
  std::string json;                          // the card as stored

  std::int64_t dim() const;
  // The training scheduler config with the recommended sampler on top (its
  // name, inference steps, spacing, eta and clipping): what `ddpm sample
  // --model` and Python's Sampler.for_model start from. Throws ddpm::Error
  // for a sampler name or spacing ddpm does not have.
  SchedulerConfig recommended_config() const;
};

// A trained network used as the noise predictor.
class NetworkPredictor : public NoisePredictor {
 public:
  virtual const ModelCard& model_card() const = 0;
  // The class label of each row of the next predict() calls (host array,
  // copied), or one label for every row; see MlpPredictor.
  virtual void set_class_labels(std::span<const std::int32_t> labels) = 0;
  virtual void set_class_label(std::int32_t label) = 0;
};

struct ModelOptions {
  int threads = 0;          // CPU threads of the network (0 = all hardware threads)
  bool allow_tf32 = false;  // CUDA: TF32 tensor cores for the products
  // A diffusers folder's weights variant: "fp16" reads
  // diffusion_pytorch_model.fp16.safetensors ("" the plain file).
  std::string variant{};
  Precision precision = Precision::fp32;  // the forward pass's arithmetic (UNet2DModel)
};

// The architectures load_model knows, comma-separated.
std::string known_architectures();

// Reads the model file's card (a regular .safetensors file with the card in
// its metadata) and creates the network its architecture names, or, for a
// folder, the diffusers UNet2DModel (or pipeline) it holds (ddpm/unet2d.h);
// throws ddpm::Error naming the file for a missing card or an unknown
// architecture, and whatever the network's own loader refuses.
std::unique_ptr<NetworkPredictor> load_model(const std::string& path, ModelOptions options = {});

}  // namespace ddpm
