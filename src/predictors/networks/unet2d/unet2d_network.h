#pragma once
// UNet2DModel as ddpm holds it: the layers diffusers builds from a config,
// with their weights in float32, in the order the forward pass runs them.
//
//   emb = time_embedding(sinusoid(t)) [+ class_embedding[label]]
//   h = conv_in(x)                                   skips = [h]
//   down block i: (resnet [attention]) x layers_per_block, each pushing h
//                 to skips; then a stride-2 conv (not in the last), pushed too
//   mid block:    resnet, (attention, resnet) [or resnet, resnet without attention]
//   up block i:   (resnet(cat(h, skips.pop())) [attention]) x (layers_per_block + 1);
//                 then nearest x2 and a conv (not in the last)
//   out = conv_out(silu(conv_norm_out(h)))
//
//   resnet(x) = (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + proj(silu(emb))))))
//               / output_scale    (scale_shift: norm2(.) * (1 + scale) + shift instead of the add)
//   attention(x) = (out(softmax(q k^T / sqrt(d)) v) + x) / rescale, q, k, v from norm(x)
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/mlp_predictor.h"  // TimeEmbeddingSpec
#include "ddpm/unet2d.h"

namespace ddpm::detail {

struct Conv2d {
  int in = 0, out = 0, kernel = 3, stride = 1;
  int pad_begin = 1, pad_end = 1;  // top/left and bottom/right (downsample_padding 0: 0 and 1)
  std::vector<float> weight;       // [out][in][k][k]
  std::vector<float> bias;         // [out]
};

struct GroupNorm {
  int channels = 0, groups = 1;
  float eps = 1e-5f;
  std::vector<float> weight, bias;
};

struct Linear {
  int in = 0, out = 0;
  std::vector<float> weight;  // [out][in]
  std::vector<float> bias;
};

struct ResnetBlock {
  GroupNorm norm1, norm2;
  Conv2d conv1, conv2;
  Linear time_emb_proj;  // out channels, or 2 x out (scale_shift)
  std::optional<Conv2d> conv_shortcut;  // 1x1, where in != out
  bool scale_shift = false;
  float output_scale = 1.0f;
};

struct AttentionBlock {
  std::optional<GroupNorm> group_norm;  // the mid block's may have none
  Linear to_q, to_k, to_v, to_out;
  int heads = 1, head_dim = 1;
  float rescale = 1.0f;
};

struct UNetLevel {
  std::vector<ResnetBlock> resnets;
  std::vector<AttentionBlock> attentions;  // none, or one after each resnet
  std::optional<Conv2d> resample;          // a down block's stride-2 conv, an up block's conv after x2
};

struct UNet2DNetwork {
  UNet2DConfig config;
  TimeEmbeddingSpec time_proj;  // sinusoid of block_out_channels[0] values
  int time_embed_dim = 0;
  Conv2d conv_in;
  Linear time_linear_1, time_linear_2;
  std::vector<float> class_embedding;  // [num_class_embeds][time_embed_dim]
  std::vector<UNetLevel> down;
  std::optional<UNetLevel> mid;  // resnets[0], then (attention j, resnet j + 1)
  std::vector<UNetLevel> up;
  GroupNorm conv_norm_out;
  Conv2d conv_out;
  std::int64_t parameters = 0;

  // How many times the levels halve a side: H and W must be multiples of 2^this.
  int downsamplings() const { return static_cast<int>(down.size()) - 1; }
};

// Builds the network of `config` with the weights of a safetensors file
// (F32, F16 or BF16, widened to float32): every tensor the config implies
// must be there with its shape and finite values, and no other. diffusers'
// attention names before 0.14 (query, key, value, proj_attn) are read as
// to_q, to_k, to_v, to_out.0, as diffusers reads them. Throws ddpm::Error
// naming `weights_path` and the tensor.
UNet2DNetwork load_unet2d_network(const UNet2DConfig& config, const std::string& weights_path);

}  // namespace ddpm::detail
