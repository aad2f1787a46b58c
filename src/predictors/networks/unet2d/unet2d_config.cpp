// UNet2DConfig::from_json: a diffusers UNet2DModel config.json, field by
// field. save_pretrained writes every field the class has, so each is named
// here: read, accepted because it does not change inference (dropout, the
// bookkeeping keys), or refused with its value when ddpm does not run it.
#include <cmath>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/unet2d.h"
#include "io/file_input.h"
#include "io/strict_json.h"
#include "unet2d_config.h"

namespace ddpm {
namespace {

using Json = nlohmann::json;

constexpr int kMaxChannels = 1 << 16;
constexpr std::int64_t kMaxSampleSize = 1 << 16;

[[noreturn]] void refuse(const std::string& key, const Json& value, const std::string& why) {
  throw Error("config.json \"" + key + "\" is " + value.dump() + ": " + why);
}

// Reads the fields of one config object; every key read is recorded, so that
// the keys left over can be refused.
class ConfigReader {
 public:
  explicit ConfigReader(const Json& j) : j_(j) {}

  const Json* find(const char* key) {
    seen_.insert(key);
    const auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  bool is_null_or_absent(const char* key) {
    const Json* v = find(key);
    return v == nullptr || v->is_null();
  }
  int integer(const char* key, int fallback, int lo, int hi) {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number_integer()) refuse(key, *v, "expected an integer");
    const auto n = v->get<std::int64_t>();
    if (n < lo || n > hi) {
      refuse(key, *v, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return static_cast<int>(n);
  }
  int integer_or_null(const char* key, int fallback, int lo, int hi) {
    const Json* v = find(key);
    if (v != nullptr && v->is_null()) return 0;
    return integer(key, fallback, lo, hi);
  }
  double number(const char* key, double fallback) {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number() || !std::isfinite(v->get<double>())) refuse(key, *v, "expected a finite number");
    return v->get<double>();
  }
  bool boolean(const char* key, bool fallback) {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) refuse(key, *v, "expected true or false");
    return v->get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_string()) refuse(key, *v, "expected a string");
    return v->get<std::string>();
  }
  // The keys of the object that no read asked for (bookkeeping keys, which
  // start with "_", aside).
  void refuse_unknown_keys() const {
    for (const auto& [key, value] : j_.items()) {
      if (!key.empty() && key[0] == '_') continue;
      if (seen_.count(key) == 0) {
        throw Error("config.json has an unknown field \"" + key +
                    "\": it is not a UNet2DModel field ddpm knows (docs/model-format.md)");
      }
    }
  }

 private:
  const Json& j_;
  std::set<std::string> seen_;
};

// diffusers' get_down_block/get_up_block strip a "UNetRes" prefix.
std::string block_name(std::string name) {
  if (name.rfind("UNetRes", 0) == 0) name = name.substr(7);
  return name;
}

std::vector<std::string> block_types(ConfigReader& r, const char* key, std::vector<std::string> fallback,
                                     const char* plain, const char* attention) {
  const Json* v = r.find(key);
  if (v == nullptr) return fallback;
  if (!v->is_array() || v->empty()) refuse(key, *v, "expected a list of block type names");
  std::vector<std::string> types;
  for (const Json& name : *v) {
    if (!name.is_string()) refuse(key, *v, "expected a list of block type names");
    const std::string type = block_name(name.get<std::string>());
    if (type != plain && type != attention) {
      refuse(key, *v,
             "ddpm runs " + std::string(plain) + " and " + attention + ", not \"" + name.get<std::string>() + "\"");
    }
    types.push_back(type);
  }
  return types;
}

}  // namespace

UNet2DConfig UNet2DConfig::from_json(const std::string& text) {
  const Json j = detail::parse_json(text, "config.json");
  if (!j.is_object()) throw Error("config.json is not a JSON object");
  ConfigReader r(j);
  UNet2DConfig c;
  c.json = text;

  const std::string class_name = r.string("_class_name", kUNet2DArchitecture);
  if (class_name != kUNet2DArchitecture) {
    refuse("_class_name", j.at("_class_name"), "ddpm loads UNet2DModel folders only");
  }

  // sample_size: a number, [height, width], or null (then the caller gives it).
  if (const Json* v = r.find("sample_size"); v != nullptr && !v->is_null()) {
    auto extent = [&](const Json& e) -> std::int64_t {
      if (!e.is_number_integer() || e.get<std::int64_t>() < 1 || e.get<std::int64_t>() > kMaxSampleSize) {
        refuse("sample_size", *v, "expected a positive integer or [height, width]");
      }
      return e.get<std::int64_t>();
    };
    if (v->is_array()) {
      if (v->size() != 2) refuse("sample_size", *v, "expected a positive integer or [height, width]");
      c.sample_height = extent((*v)[0]);
      c.sample_width = extent((*v)[1]);
    } else {
      c.sample_height = c.sample_width = extent(*v);
    }
  }
  c.in_channels = r.integer("in_channels", c.in_channels, 1, kMaxChannels);
  c.out_channels = r.integer("out_channels", c.out_channels, 1, kMaxChannels);
  c.center_input_sample = r.boolean("center_input_sample", c.center_input_sample);

  const std::string time_type = r.string("time_embedding_type", "positional");
  if (time_type != "positional") {
    refuse("time_embedding_type", j.at("time_embedding_type"),
           "ddpm runs the positional (sinusoidal) timestep embedding only");
  }
  r.find("num_train_timesteps");  // only the "learned" embedding reads it
  c.time_embedding_dim = r.integer_or_null("time_embedding_dim", 0, 1, kMaxChannels);
  c.freq_shift = r.number("freq_shift", c.freq_shift);
  c.flip_sin_to_cos = r.boolean("flip_sin_to_cos", c.flip_sin_to_cos);

  c.down_block_types = block_types(r, "down_block_types",
                                   {"DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"},
                                   "DownBlock2D", "AttnDownBlock2D");
  c.up_block_types = block_types(r, "up_block_types",
                                 {"AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"}, "UpBlock2D",
                                 "AttnUpBlock2D");
  if (const Json* v = r.find("mid_block_type"); v != nullptr) {
    if (v->is_null()) {
      c.mid_block = false;
    } else if (!v->is_string() || v->get<std::string>() != "UNetMidBlock2D") {
      refuse("mid_block_type", *v,
             "ddpm runs UNetMidBlock2D or null (diffusers' UNet2DModel builds a plain UNetMidBlock2D "
             "whatever the name; write \"UNetMidBlock2D\" if that is what the model was trained with)");
    }
  }
  c.add_attention = r.boolean("add_attention", c.add_attention);

  if (const Json* v = r.find("block_out_channels"); v != nullptr) {
    if (!v->is_array() || v->empty()) refuse("block_out_channels", *v, "expected a list of channel counts");
    for (const Json& n : *v) {
      if (!n.is_number_integer() || n.get<std::int64_t>() < 1 || n.get<std::int64_t>() > kMaxChannels) {
        refuse("block_out_channels", *v, "expected a list of positive channel counts");
      }
      c.block_out_channels.push_back(static_cast<int>(n.get<std::int64_t>()));
    }
  } else {
    c.block_out_channels = {224, 448, 672, 896};
  }
  if (c.down_block_types.size() != c.block_out_channels.size() ||
      c.up_block_types.size() != c.block_out_channels.size()) {
    throw Error("config.json lists " + std::to_string(c.block_out_channels.size()) + " block_out_channels, " +
                std::to_string(c.down_block_types.size()) + " down_block_types and " +
                std::to_string(c.up_block_types.size()) + " up_block_types; they must be as many");
  }
  c.layers_per_block = r.integer("layers_per_block", c.layers_per_block, 1, 64);
  c.mid_block_scale_factor = r.number("mid_block_scale_factor", c.mid_block_scale_factor);
  if (c.mid_block_scale_factor == 0.0) {
    refuse("mid_block_scale_factor", j.at("mid_block_scale_factor"), "the mid block divides by it");
  }
  c.downsample_padding = r.integer("downsample_padding", c.downsample_padding, 0, kMaxChannels);
  if (c.downsample_padding > 1) {
    refuse("downsample_padding", j.at("downsample_padding"),
           "ddpm runs 1 (a padded stride-2 convolution) and 0 (padded right and bottom by one)");
  }
  for (const char* key : {"downsample_type", "upsample_type"}) {
    const std::string type = r.string(key, "conv");
    if (type != "conv") refuse(key, j.at(key), "ddpm runs \"conv\" only");
  }
  r.number("dropout", 0.0);  // inference runs no dropout
  const std::string act = r.string("act_fn", "silu");
  if (act != "silu" && act != "swish") refuse("act_fn", j.at("act_fn"), "ddpm runs silu only");
  c.attention_head_dim = r.integer_or_null("attention_head_dim", c.attention_head_dim, 1, kMaxChannels);
  c.norm_num_groups = r.integer("norm_num_groups", c.norm_num_groups, 1, kMaxChannels);
  c.attn_norm_num_groups = r.integer_or_null("attn_norm_num_groups", 0, 1, kMaxChannels);
  c.norm_eps = r.number("norm_eps", c.norm_eps);
  if (!(c.norm_eps > 0.0)) refuse("norm_eps", j.at("norm_eps"), "expected a positive number");
  const std::string shift = r.string("resnet_time_scale_shift", "default");
  if (shift != "default" && shift != "scale_shift") {
    refuse("resnet_time_scale_shift", j.at("resnet_time_scale_shift"), "ddpm runs \"default\" and \"scale_shift\"");
  }
  c.scale_shift = shift == "scale_shift";
  if (!r.is_null_or_absent("class_embed_type")) {
    refuse("class_embed_type", j.at("class_embed_type"),
           "ddpm runs null (an embedding table of num_class_embeds rows) only");
  }
  c.num_class_embeds = r.integer_or_null("num_class_embeds", 0, 1, 1 << 20);
  r.refuse_unknown_keys();

  // What diffusers' constructor would fail on, said before any tensor is read.
  auto check_groups = [&](const char* key, int groups, int channels, const std::string& where) {
    if (channels % groups != 0) {
      throw Error("config.json \"" + std::string(key) + "\" is " + std::to_string(groups) + ": " + where +
                  " has " + std::to_string(channels) + " channels, not a multiple of it");
    }
  };
  for (std::size_t i = 0; i < c.block_out_channels.size(); ++i) {
    check_groups("norm_num_groups", c.norm_num_groups, c.block_out_channels[i],
                 "block " + std::to_string(i));
    const bool attention = c.down_block_types[i] == "AttnDownBlock2D" ||
                           c.up_block_types[c.block_out_channels.size() - 1 - i] == "AttnUpBlock2D";
    if (attention && c.attention_head_dim > c.block_out_channels[i]) {
      throw Error("config.json \"attention_head_dim\" is " + std::to_string(c.attention_head_dim) +
                  ": more than block " + std::to_string(i) + "'s " + std::to_string(c.block_out_channels[i]) +
                  " channels (no attention head)");
    }
  }
  if (c.mid_block && c.add_attention) {
    const int mid = c.block_out_channels.back();
    if (c.attention_head_dim > mid) {
      throw Error("config.json \"attention_head_dim\" is " + std::to_string(c.attention_head_dim) +
                  ": more than the mid block's " + std::to_string(mid) + " channels (no attention head)");
    }
    if (c.attn_norm_num_groups > 0) {
      check_groups("attn_norm_num_groups", c.attn_norm_num_groups, mid, "the mid block");
    }
  }
  return c;
}

namespace detail {

UNet2DConfig read_unet2d_config(const std::string& path) {
  const std::string text = read_file_bounded(path, kMaxJsonBytes, "config.json");
  try {
    return UNet2DConfig::from_json(text);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace detail
}  // namespace ddpm
