// load_unet2d_network: the layers a UNet2DModel config implies, as diffusers'
// constructor builds them (unet_2d.py, unet_2d_blocks.py), each filled from
// the weights file by its diffusers name and checked.
#include "unet2d_network.h"

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "ddpm/error.h"
#include "io/safetensors.h"

namespace ddpm::detail {
namespace {

// The weights file's tensors, taken by name; what is left untaken at the end
// is a tensor the config has no place for.
class TensorSource {
 public:
  explicit TensorSource(const std::string& path) : path_(path), file_(SafetensorsFile::open(path)) {}

  std::vector<float> take(const std::string& name, const std::vector<std::int64_t>& shape) {
    const SafetensorsTensor* t = file_.find(name);
    std::string found = name;
    if (t == nullptr) {
      found = legacy_name(name);
      if (!found.empty()) t = file_.find(found);
    }
    if (t == nullptr) {
      throw Error(path_ + ": missing tensor '" + name + "' of shape " + shape_text(shape) +
                  " (the config's layers need it)");
    }
    if (t->shape != shape) {
      throw Error(path_ + ": tensor '" + found + "' has shape " + t->shape_text() + "; the config implies " +
                  shape_text(shape));
    }
    taken_.insert(found);
    std::vector<float> values = t->to_floats();
    file_.release(*t);  // the copy is all that stays in memory
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        throw Error(path_ + ": tensor '" + found + "' has a non-finite value (" + std::to_string(values[i]) +
                    ") at element " + std::to_string(i));
      }
    }
    parameters_ += static_cast<std::int64_t>(values.size());
    return values;
  }

  void refuse_untaken() const {
    for (const SafetensorsTensor& t : file_.tensors()) {
      if (taken_.count(t.name) == 0) {
        throw Error(path_ + ": tensor '" + t.name + "' " + t.shape_text() +
                    " has no place in the config's layers (an extra tensor: is config.json the model's own?)");
      }
    }
  }
  std::int64_t parameters() const { return parameters_; }

 private:
  // diffusers < 0.14 named an attention's projections query, key, value and
  // proj_attn; diffusers renames them on load.
  static std::string legacy_name(const std::string& name) {
    static const std::pair<const char*, const char*> kRenames[] = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    for (const auto& [now, then] : kRenames) {
      const auto at = name.find(now);
      if (at != std::string::npos && name.find(".attentions.") != std::string::npos) {
        return name.substr(0, at) + then + name.substr(at + std::string(now).size());
      }
    }
    return {};
  }

  std::string path_;
  SafetensorsFile file_;
  std::set<std::string> taken_;
  std::int64_t parameters_ = 0;
};

class Builder {
 public:
  Builder(const UNet2DConfig& c, TensorSource& source) : c_(c), source_(source) {}

  Conv2d conv(const std::string& name, int in, int out, int kernel, int stride = 1, int pad_begin = -1,
              int pad_end = -1) {
    Conv2d conv;
    conv.in = in;
    conv.out = out;
    conv.kernel = kernel;
    conv.stride = stride;
    conv.pad_begin = pad_begin >= 0 ? pad_begin : kernel / 2;
    conv.pad_end = pad_end >= 0 ? pad_end : kernel / 2;
    conv.weight = source_.take(name + ".weight", {out, in, kernel, kernel});
    conv.bias = source_.take(name + ".bias", {out});
    return conv;
  }

  Linear linear(const std::string& name, int in, int out) {
    Linear l;
    l.in = in;
    l.out = out;
    l.weight = source_.take(name + ".weight", {out, in});
    l.bias = source_.take(name + ".bias", {out});
    return l;
  }

  GroupNorm norm(const std::string& name, int channels, int groups, const char* groups_key) {
    if (channels % groups != 0) {
      throw Error("config.json \"" + std::string(groups_key) + "\" is " + std::to_string(groups) + ": " + name +
                  " normalises " + std::to_string(channels) + " channels, not a multiple of it");
    }
    GroupNorm n;
    n.channels = channels;
    n.groups = groups;
    n.eps = static_cast<float>(c_.norm_eps);
    n.weight = source_.take(name + ".weight", {channels});
    n.bias = source_.take(name + ".bias", {channels});
    return n;
  }

  ResnetBlock resnet(const std::string& name, int in, int out, float output_scale) {
    ResnetBlock r;
    r.norm1 = norm(name + ".norm1", in, c_.norm_num_groups, "norm_num_groups");
    r.conv1 = conv(name + ".conv1", in, out, 3);
    r.time_emb_proj = linear(name + ".time_emb_proj", time_embed_dim(), c_.scale_shift ? 2 * out : out);
    r.norm2 = norm(name + ".norm2", out, c_.norm_num_groups, "norm_num_groups");
    r.conv2 = conv(name + ".conv2", out, out, 3);
    if (in != out) r.conv_shortcut = conv(name + ".conv_shortcut", in, out, 1);
    r.scale_shift = c_.scale_shift;
    r.output_scale = output_scale;
    return r;
  }

  // heads = channels / head_dim (floor), each head_dim wide: diffusers' Attention.
  AttentionBlock attention(const std::string& name, int channels, int norm_groups, float rescale) {
    AttentionBlock a;
    a.head_dim = c_.attention_head_dim > 0 ? c_.attention_head_dim : channels;
    a.heads = channels / a.head_dim;
    const int inner = a.heads * a.head_dim;
    if (norm_groups > 0) {
      a.group_norm = norm(name + ".group_norm", channels, norm_groups,
                          norm_groups == c_.norm_num_groups ? "norm_num_groups" : "attn_norm_num_groups");
    }
    a.to_q = linear(name + ".to_q", channels, inner);
    a.to_k = linear(name + ".to_k", channels, inner);
    a.to_v = linear(name + ".to_v", channels, inner);
    a.to_out = linear(name + ".to_out.0", inner, channels);
    a.rescale = rescale;
    return a;
  }

  int time_embed_dim() const { return c_.time_embed_dim(); }

 private:
  const UNet2DConfig& c_;
  TensorSource& source_;
};

}  // namespace

UNet2DNetwork load_unet2d_network(const UNet2DConfig& c, const std::string& weights_path) {
  TensorSource source(weights_path);
  Builder b(c, source);
  UNet2DNetwork net;
  net.config = c;
  const std::vector<int>& channels = c.block_out_channels;
  const int levels = static_cast<int>(channels.size());
  net.time_proj.dim = channels[0];
  net.time_proj.flip_sin_to_cos = c.flip_sin_to_cos;
  net.time_proj.downscale_freq_shift = c.freq_shift;
  if (channels[0] / 2 - c.freq_shift == 0.0) {
    throw Error("config.json \"freq_shift\" is " + std::to_string(c.freq_shift) +
                ": it makes the timestep embedding's frequency divisor (block_out_channels[0] / 2 - freq_shift) zero");
  }
  net.time_embed_dim = c.time_embed_dim();

  net.conv_in = b.conv("conv_in", c.in_channels, channels[0], 3);
  net.time_linear_1 = b.linear("time_embedding.linear_1", channels[0], net.time_embed_dim);
  net.time_linear_2 = b.linear("time_embedding.linear_2", net.time_embed_dim, net.time_embed_dim);
  if (c.num_class_embeds > 0) {
    net.class_embedding = source.take("class_embedding.weight", {c.num_class_embeds, net.time_embed_dim});
  }

  int out = channels[0];
  for (int i = 0; i < levels; ++i) {
    const std::string name = "down_blocks." + std::to_string(i);
    const int in = out;
    out = channels[i];
    const bool attention = c.down_block_types[i] == "AttnDownBlock2D";
    UNetLevel level;
    for (int j = 0; j < c.layers_per_block; ++j) {
      level.resnets.push_back(b.resnet(name + ".resnets." + std::to_string(j), j == 0 ? in : out, out, 1.0f));
      if (attention) {
        level.attentions.push_back(
            b.attention(name + ".attentions." + std::to_string(j), out, c.norm_num_groups, 1.0f));
      }
    }
    if (i != levels - 1) {
      const int pad = c.downsample_padding;
      level.resample = b.conv(name + ".downsamplers.0.conv", out, out, 3, 2, pad, pad == 0 ? 1 : pad);
    }
    net.down.push_back(std::move(level));
  }

  if (c.mid_block) {
    const int mid = channels.back();
    const auto scale = static_cast<float>(c.mid_block_scale_factor);
    // diffusers: attn_groups = attn_norm_num_groups, or norm_num_groups with
    // the default time shift, or none (no GroupNorm) with scale_shift.
    const int attn_groups = c.attn_norm_num_groups > 0 ? c.attn_norm_num_groups
                            : c.scale_shift            ? 0
                                                       : c.norm_num_groups;
    UNetLevel level;
    level.resnets.push_back(b.resnet("mid_block.resnets.0", mid, mid, scale));
    if (c.add_attention) level.attentions.push_back(b.attention("mid_block.attentions.0", mid, attn_groups, scale));
    level.resnets.push_back(b.resnet("mid_block.resnets.1", mid, mid, scale));
    net.mid = std::move(level);
  }

  out = channels.back();
  for (int i = 0; i < levels; ++i) {
    const std::string name = "up_blocks." + std::to_string(i);
    const int previous = out;
    out = channels[levels - 1 - i];
    const int in = channels[std::max(levels - 2 - i, 0)];
    const bool attention = c.up_block_types[i] == "AttnUpBlock2D";
    UNetLevel level;
    const int layers = c.layers_per_block + 1;
    for (int j = 0; j < layers; ++j) {
      const int skip = j == layers - 1 ? in : out;
      const int resnet_in = j == 0 ? previous : out;
      level.resnets.push_back(b.resnet(name + ".resnets." + std::to_string(j), resnet_in + skip, out, 1.0f));
      if (attention) {
        level.attentions.push_back(
            b.attention(name + ".attentions." + std::to_string(j), out, c.norm_num_groups, 1.0f));
      }
    }
    if (i != levels - 1) level.resample = b.conv(name + ".upsamplers.0.conv", out, out, 3);
    net.up.push_back(std::move(level));
  }

  net.conv_norm_out = b.norm("conv_norm_out", channels[0], c.norm_num_groups, "norm_num_groups");
  net.conv_out = b.conv("conv_out", channels[0], c.out_channels, 3);
  source.refuse_untaken();
  net.parameters = source.parameters();
  return net;
}

}  // namespace ddpm::detail
