#pragma once
// diffusers' UNet2DModel as the noise predictor: the U-Net of the DDPM paper,
// read from the folder diffusers' save_pretrained writes (config.json and
// diffusion_pytorch_model.safetensors) or from a pipeline folder (unet/ and
// scheduler/scheduler_config.json). docs/model-format.md lists the config
// fields ddpm runs and those it refuses. On the CPU the convolutions, linear
// layers and attention run in OpenBLAS; GroupNorm, SiLU and the time
// embedding's add are fused passes. On a CUDA device cuDNN runs the
// convolutions and cuBLAS the products, in float, TF32, half or bfloat16
// (UNet2DPredictorOptions::precision).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ddpm/model.h"
#include "ddpm/predictor.h"

namespace ddpm {

inline constexpr const char* kUNet2DArchitecture = "UNet2DModel";

// The config.json of a UNet2DModel, as far as ddpm runs it; names and
// defaults are diffusers'.
struct UNet2DConfig {
  std::int64_t sample_height = 0;  // sample_size: a number (square) or [height, width];
  std::int64_t sample_width = 0;   // 0 when the config has none
  int in_channels = 3;
  int out_channels = 3;
  bool center_input_sample = false;
  int time_embedding_dim = 0;  // 0: 4 x block_out_channels[0]
  double freq_shift = 0.0;
  bool flip_sin_to_cos = true;
  std::vector<std::string> down_block_types;  // DownBlock2D or AttnDownBlock2D
  std::vector<std::string> up_block_types;    // UpBlock2D or AttnUpBlock2D
  bool mid_block = true;                      // mid_block_type "UNetMidBlock2D" (or null: none)
  bool add_attention = true;                  // the mid block's attention
  std::vector<int> block_out_channels;
  int layers_per_block = 2;
  double mid_block_scale_factor = 1.0;
  int downsample_padding = 1;
  int attention_head_dim = 8;  // 0: null, one head over all channels
  int norm_num_groups = 32;
  int attn_norm_num_groups = 0;  // 0: null
  double norm_eps = 1e-5;
  bool scale_shift = false;  // resnet_time_scale_shift "scale_shift" (else "default")
  int num_class_embeds = 0;  // 0: unconditional
  std::string json;          // config.json as read

  int time_embed_dim() const { return time_embedding_dim > 0 ? time_embedding_dim : 4 * block_out_channels.at(0); }
  // Parses and checks config.json; a field whose value ddpm does not run is
  // refused by name (ddpm::Error "config.json \"FIELD\" is VALUE: ...").
  static UNet2DConfig from_json(const std::string& text);
};

struct UNet2DPredictorOptions {
  int threads = 0;          // CPU threads (0 = all hardware threads)
  std::string variant{};    // "fp16" reads diffusion_pytorch_model.fp16.safetensors
  Precision precision = Precision::fp32;
};

class UNet2DPredictor : public NetworkPredictor {
 public:
  // Reads a UNet2DModel folder or a pipeline folder (a folder with
  // model_index.json: its unet/ and scheduler/). Throws ddpm::Error with one
  // line naming the file and the field or tensor at fault.
  explicit UNet2DPredictor(const std::string& folder, UNet2DPredictorOptions options = {});
  ~UNet2DPredictor() override;
  UNet2DPredictor(UNet2DPredictor&&) noexcept;
  UNet2DPredictor& operator=(UNet2DPredictor&&) noexcept;

  const UNet2DConfig& config() const;
  const ModelCard& model_card() const override;
  // The scheduler_config.json the folder came with ("" for a bare model folder).
  const std::string& scheduler_config_json() const;
  std::int64_t parameter_count() const;
  const UNet2DPredictorOptions& options() const;

  // Row i of the next calls uses labels[i]; labels run 0 .. num_class_embeds - 1,
  // the last being the null label ddpm's guidance uses (docs/model-format.md).
  void set_class_labels(std::span<const std::int32_t> labels) override;
  void set_class_label(std::int32_t label) override;

  // Checks the shape ([channels, height, width] per sample, as shape.dim =
  // C x H x W with H and W from the config's sample_size, or set_sample_size).
  // On a device it uploads the weights in the precision's storage type, plans
  // the convolutions and allocates every buffer for shape.batch rows, so that
  // predict() allocates nothing and can be captured into a CUDA Graph.
  void prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) override;
  void predict(const PredictorCall& call) override;
  // The host always; a CUDA device in CUDA builds (cuDNN convolutions, cuBLAS
  // products, --precision fp32, tf32, fp16 or bf16).
  bool supports(Memory memory) const override;
  // On a device predict() allocates nothing and never synchronises.
  bool capturable() const override { return true; }
  std::optional<std::int32_t> unconditional_label() const override;
  // 1: every sample is computed on its own (single-threaded BLAS products
  // of one sample's shapes), so its bits never depend on the batch.
  std::int64_t split_alignment() const override { return 1; }

  // The network itself, as diffusers' UNet2DModel(sample, timestep,
  // class_labels).sample: x [batch, in_channels, height, width] on the host,
  // one time per row (fractional times as given), one label per row for a
  // class-conditional model (else empty); out [batch, out_channels, height,
  // width]. Throws ddpm::Error for sizes the levels cannot halve, a label
  // outside the embedding, or non-finite times.
  void evaluate(std::span<const float> x, std::int64_t batch, std::int64_t height, std::int64_t width,
                std::span<const float> times, std::span<const std::int32_t> labels, std::span<float> out) const;

  // The spatial size of the samples when it is not the config's sample_size
  // (a fully convolutional U-Net takes any size its levels halve evenly).
  void set_sample_size(std::int64_t height, std::int64_t width);
  std::int64_t sample_height() const;
  std::int64_t sample_width() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpm
