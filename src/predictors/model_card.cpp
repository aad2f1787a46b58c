// The JSON model card of an MLP denoiser (docs/model-format.md) and the
// diffusers names it uses.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "io/strict_json.h"

namespace ddpm {

namespace {

using Json = nlohmann::json;

// Reads card fields with one-line errors naming the key ("scheduler.beta_end").
class CardReader {
 public:
  CardReader(const Json& object, std::string prefix) : j_(object), prefix_(std::move(prefix)) {
    if (!j_.is_object()) fail(prefix_.empty() ? "is not a JSON object" : "is not an object");
  }

  bool has(const char* key) const { return j_.contains(key); }

  const Json& required(const char* key) const {
    if (!j_.contains(key)) throw Error("model card has no \"" + path(key) + "\"");
    return j_[key];
  }

  std::int64_t integer(const char* key, std::int64_t lo, std::int64_t hi) const {
    const Json& v = required(key);
    if (!v.is_number_integer()) fail_key(key, "must be an integer");
    const auto n = v.get<std::int64_t>();
    if (n < lo || n > hi) {
      fail_key(key, "is " + std::to_string(n) + ", outside [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "]");
    }
    return n;
  }
  std::int64_t integer_or(const char* key, std::int64_t fallback, std::int64_t lo,
                          std::int64_t hi) const {
    return has(key) ? integer(key, lo, hi) : fallback;
  }

  double number(const char* key) const {
    const Json& v = required(key);
    if (!v.is_number()) fail_key(key, "must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail_key(key, "must be finite");
    return x;
  }
  double number_or(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }
  // A number the engine keeps as float32: finite there too (1e308 is not).
  float float32_or(const char* key, float fallback) const {
    if (!has(key)) return fallback;
    const double x = number(key);
    if (std::abs(x) > std::numeric_limits<float>::max()) {
      fail_key(key, "is " + required(key).dump() + "; expected a number of magnitude <= 3.4e38 "
                    "(float32, which the engine computes in)");
    }
    return static_cast<float>(x);
  }

  bool boolean(const char* key) const {
    const Json& v = required(key);
    if (!v.is_boolean()) fail_key(key, "must be true or false");
    return v.get<bool>();
  }
  bool boolean_or(const char* key, bool fallback) const { return has(key) ? boolean(key) : fallback; }

  std::string string(const char* key) const {
    const Json& v = required(key);
    if (!v.is_string()) fail_key(key, "must be a string");
    return v.get<std::string>();
  }
  std::string string_or(const char* key, std::string fallback) const {
    return has(key) ? string(key) : std::move(fallback);
  }

  CardReader object(const char* key) const { return CardReader(required(key), path(key)); }

  [[noreturn]] void fail_key(const char* key, const std::string& what) const {
    throw Error("model card \"" + path(key) + "\" " + what);
  }

 private:
  std::string path(const char* key) const { return prefix_.empty() ? key : prefix_ + "." + key; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("model card" + (prefix_.empty() ? std::string() : " \"" + prefix_ + "\"") + " " + what);
  }

  const Json& j_;
  std::string prefix_;
};

constexpr std::int64_t kMaxDim = 1 << 20;

std::string format_float(float value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", static_cast<double>(value));
  return text;
}

// The card's "scheduler" object is a diffusers scheduler config.
SchedulerConfig read_scheduler(const CardReader& r, const Json& object) {
  // diffusers fills missing keys with defaults; a model card states its schedule.
  const CardReader scheduler = r.object("scheduler");
  for (const char* key : {"num_train_timesteps", "beta_schedule", "beta_start", "beta_end"}) {
    scheduler.required(key);
  }
  SchedulerConfig s;
  try {
    s = SchedulerConfig::from_json(object.dump());
  } catch (const Error& e) {
    r.fail_key("scheduler", std::string("is not a usable scheduler config: ") + e.what());
  }
  if (s.schedule.steps < 1 || s.schedule.steps > kMaxSteps) {
    r.fail_key("scheduler", "has num_train_timesteps outside [1, " + std::to_string(kMaxSteps) + "]");
  }
  return s;
}

}  // namespace

MlpModelCard MlpModelCard::from_json(const std::string& text) {
  const Json j = detail::parse_json(text, "model card");
  const CardReader r(j, "");
  MlpModelCard card;
  card.json = text;
  card.architecture = r.string("architecture");
  if (card.architecture != kMlpArchitecture) {
    r.fail_key("architecture", "is '" + card.architecture + "'; this reader knows '" +
                                   kMlpArchitecture + "'");
  }
  card.version = static_cast<int>(r.integer("version", 1, 1));
  card.data_dim = r.integer("data_dim", 1, kMaxDim);
  card.hidden_dim = r.integer("hidden_dim", 1, kMaxDim);
  card.num_blocks = static_cast<int>(r.integer("num_blocks", 0, 1024));

  const CardReader te = r.object("time_embedding");
  card.time_embedding.dim = static_cast<int>(te.integer("dim", 2, kMaxDim));
  if (card.time_embedding.dim % 2 != 0) te.fail_key("dim", "must be even");
  card.time_embedding.flip_sin_to_cos = te.boolean("flip_sin_to_cos");
  card.time_embedding.downscale_freq_shift = te.number("downscale_freq_shift");
  card.time_embedding.scale = te.number_or("scale", 1.0);
  card.time_embedding.max_period = te.number("max_period");
  if (card.time_embedding.max_period <= 0.0) te.fail_key("max_period", "must be positive");
  if (card.time_embedding.dim / 2 - card.time_embedding.downscale_freq_shift == 0.0) {
    te.fail_key("downscale_freq_shift", "makes the frequency divisor zero");
  }

  card.num_classes = static_cast<int>(r.integer("num_classes", 0, 1 << 20));
  card.null_label = static_cast<int>(r.integer("null_label", -1, 1 << 20));
  if (card.num_classes > 0 && card.null_label != card.num_classes) {
    r.fail_key("null_label", "must equal num_classes (" + std::to_string(card.num_classes) +
                                 "): the class embedding's last row");
  }
  if (card.num_classes == 0 && card.null_label != -1) {
    r.fail_key("null_label", "must be -1 for an unconditional model");
  }
  if (r.has("class_names")) {
    const Json& names = r.required("class_names");
    if (!names.is_array() || names.size() != static_cast<std::size_t>(card.num_classes)) {
      r.fail_key("class_names", "must list num_classes strings");
    }
    for (const Json& n : names) {
      if (!n.is_string()) r.fail_key("class_names", "must list num_classes strings");
      card.class_names.push_back(n.get<std::string>());
    }
  }
  card.activation = r.string("activation");
  if (card.activation != "silu") r.fail_key("activation", "is '" + card.activation + "'; only silu is known");
  card.layer_norm_eps = r.number("layer_norm_eps");
  if (!(card.layer_norm_eps > 0.0)) r.fail_key("layer_norm_eps", "must be positive");

  card.prediction_type = parse_prediction_type(r.string("prediction_type"));
  r.object("scheduler");  // must be an object
  card.scheduler = read_scheduler(r, r.required("scheduler"));
  if (!r.required("scheduler").contains("prediction_type")) {
    card.scheduler.options.prediction_type = card.prediction_type;
  } else if (card.scheduler.options.prediction_type != card.prediction_type) {
    r.fail_key("prediction_type", "differs from scheduler.prediction_type");
  }

  if (r.has("data_shape")) {
    const Json& shape = r.required("data_shape");
    std::int64_t product = 1;
    if (!shape.is_array() || shape.empty()) r.fail_key("data_shape", "must be a list of sizes");
    for (const Json& d : shape) {
      if (!d.is_number_integer() || d.get<std::int64_t>() <= 0 || d.get<std::int64_t>() > kMaxDim) {
        r.fail_key("data_shape", "must be a list of positive sizes");
      }
      card.data_shape.push_back(d.get<std::int64_t>());
      product *= card.data_shape.back();
      if (product > kMaxDim) r.fail_key("data_shape", "is too large");
    }
    if (product != card.data_dim) r.fail_key("data_shape", "does not multiply to data_dim");
  } else {
    card.data_shape = {card.data_dim};
  }
  if (r.has("normalization")) {
    const CardReader n = r.object("normalization");
    DataNormalization& d = card.normalization;
    d.model_min = n.float32_or("model_min", d.model_min);
    d.model_max = n.float32_or("model_max", d.model_max);
    d.pixel_min = n.float32_or("pixel_min", d.pixel_min);
    d.pixel_max = n.float32_or("pixel_max", d.pixel_max);
    d.pixel_scale = n.float32_or("pixel_scale", d.pixel_scale);
    d.pixel_offset = n.float32_or("pixel_offset", d.pixel_offset);
    // Pictures map pixel_min and pixel_max to two distinct, finite model values.
    const float low = d.from_pixel(d.pixel_min), high = d.from_pixel(d.pixel_max);
    if (d.pixel_scale == 0.0f || !std::isfinite(low) || !std::isfinite(high) || low == high) {
      r.fail_key("normalization", "maps pixel_min " + format_float(d.pixel_min) + " and pixel_max " +
                                      format_float(d.pixel_max) + " to model values " +
                                      format_float(low) + " and " + format_float(high) +
                                      "; expected two different finite values (pixel = (x + "
                                      "pixel_offset) * pixel_scale, pixel_scale not 0)");
    }
  }
  if (r.has("sampler")) {
    const CardReader s = r.object("sampler");
    RecommendedSampler& m = card.sampler;
    m.name = s.string_or("name", m.name);
    m.num_inference_steps = static_cast<int>(
        s.integer_or("num_inference_steps", m.num_inference_steps, 1, card.scheduler.schedule.steps));
    m.timestep_spacing = s.string_or("timestep_spacing", m.timestep_spacing);
    m.eta = s.number_or("eta", m.eta);
    m.clip_sample = s.boolean_or("clip_sample", m.clip_sample);
    m.guidance_scale = s.number_or("guidance_scale", m.guidance_scale);
  }
  return card;
}

SchedulerConfig MlpModelCard::recommended_config() const { return model_card().recommended_config(); }

ModelCard MlpModelCard::model_card() const {
  ModelCard c;
  c.architecture = architecture;
  c.prediction_type = prediction_type;
  c.scheduler = scheduler;
  c.normalization = normalization;
  c.sampler = sampler;
  c.num_classes = num_classes;
  c.null_label = null_label;
  c.class_names = class_names;
  c.sample_shape = data_shape;
  c.json = json;
  return c;
}

}  // namespace ddpm
