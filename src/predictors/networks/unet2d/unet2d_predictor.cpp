// UNet2DPredictor: a diffusers UNet2DModel folder as a NoisePredictor, with
// the pipeline's scheduler config as the model card's sampler defaults.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/parallel_for.h"
#include "ddpm/error.h"
#include "ddpm/sampler_options.h"
#include "ddpm/scheduler_config.h"
#include "ddpm/unet2d.h"
#include "io/file_input.h"
#include "predictors/networks/mlp/mlp_network.h"  // mlp_time_of: the call's time
#include "predictors/predictor_steps.h"
#include "unet2d_config.h"
#include "unet2d_device.h"
#include "unet2d_folder.h"
#include "unet2d_host.h"
#include "unet2d_network.h"

namespace ddpm {

struct UNet2DPredictor::Impl {
  detail::UNet2DNetwork net;
  ModelCard card;
  std::string scheduler_json;
  UNet2DPredictorOptions options;
  std::int64_t height = 0, width = 0;
  std::vector<std::int32_t> labels;  // one per row, or empty...
  std::int32_t label = -1;           // ...then this one for every row
  std::unique_ptr<detail::UNet2DDevicePart> device;
  void* device_stream = nullptr;  // the stream of the last device prepare()

  bool conditional() const { return net.config.num_class_embeds > 0; }
  void check_label(std::int32_t l) const {
    if (conditional() && (l < 0 || l >= net.config.num_class_embeds)) {
      throw Error("UNet2DModel: class label " + std::to_string(l) + " is outside 0.." +
                  std::to_string(net.config.num_class_embeds - 1) + " (num_class_embeds " +
                  std::to_string(net.config.num_class_embeds) + ", the last the null label)");
    }
    if (!conditional() && l != -1) {
      throw Error("UNet2DModel: the model is unconditional (no num_class_embeds): its only label is -1, not " +
                  std::to_string(l));
    }
  }
  std::int64_t dim() const { return net.config.in_channels * height * width; }
  // A sampler reads the output as a prediction of the sample's own shape.
  void check_output_channels() const {
    if (net.config.out_channels != net.config.in_channels) {
      throw Error("UNet2DModel: out_channels " + std::to_string(net.config.out_channels) + " differ from in_channels " +
                  std::to_string(net.config.in_channels) +
                  ": the output is not a prediction of the sample (a learned variance?), so it cannot drive a "
                  "sampler");
    }
  }
  void check_size(std::int64_t h, std::int64_t w) const {
    const std::int64_t step = std::int64_t{1} << net.downsamplings();
    if (h < 1 || w < 1 || h % step != 0 || w % step != 0) {
      throw Error("UNet2DModel: a " + std::to_string(h) + " x " + std::to_string(w) +
                  " sample does not fit the model: its " + std::to_string(net.downsamplings()) +
                  " downsamplings need height and width that are multiples of " + std::to_string(step));
    }
  }
};

namespace {

// The settings a folder's scheduler config recommends, as diffusers'
// pipelines use it: DDPMPipeline runs every training step, the others 50.
RecommendedSampler recommended_sampler(const SchedulerConfig& s) {
  RecommendedSampler r;
  const SamplerKind kind = s.sampler.value_or(SamplerKind::ddpm);
  r.name = to_string(kind);
  r.num_inference_steps = kind == SamplerKind::ddpm ? s.schedule.steps : 50;
  r.timestep_spacing = to_string(s.options.timestep_spacing.value_or(default_timestep_spacing(kind)));
  r.eta = s.options.eta;
  r.clip_sample = s.options.clip_x0.has_value();
  return r;
}

}  // namespace

UNet2DPredictor::UNet2DPredictor(const std::string& folder, UNet2DPredictorOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (options.threads < 0) throw Error("UNet2DPredictor: threads must be >= 0");
  Impl& m = *impl_;
  const detail::UNet2DFiles files = detail::find_unet2d_files(folder);
  const UNet2DConfig config = detail::read_unet2d_config(files.config);
  const std::string weights = detail::find_unet2d_weights(files, options.variant);
  try {
    m.net = detail::load_unet2d_network(config, weights);
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind("config.json", 0) == 0 ? files.config + ": " + what : what);
  }
  SchedulerConfig scheduler;
  if (!files.scheduler_config.empty()) {
    scheduler = SchedulerConfig::load(files.scheduler_config);
    m.scheduler_json =
        detail::read_file_bounded(files.scheduler_config, detail::kMaxJsonBytes, "scheduler config");
  } else {
    scheduler = SchedulerConfig::from_json(R"({"_class_name": "DDPMScheduler"})");  // diffusers' defaults
  }
  m.options = options;
  m.options.threads = cpu::resolve_threads(options.threads);
  m.height = config.sample_height;
  m.width = config.sample_width;
  m.label = config.num_class_embeds > 0 ? config.num_class_embeds - 1 : -1;

  ModelCard& card = m.card;
  card.architecture = kUNet2DArchitecture;
  card.prediction_type = scheduler.options.prediction_type;
  card.scheduler = scheduler;
  card.normalization = DataNormalization{-1.0f, 1.0f, 0.0f, 255.0f, 127.5f, 1.0f};
  card.sampler = recommended_sampler(scheduler);
  card.num_classes = config.num_class_embeds > 0 ? config.num_class_embeds - 1 : 0;
  card.null_label = m.label;
  if (config.sample_height > 0) card.sample_shape = {config.in_channels, config.sample_height, config.sample_width};
  card.json = config.json;
}

UNet2DPredictor::~UNet2DPredictor() = default;
UNet2DPredictor::UNet2DPredictor(UNet2DPredictor&&) noexcept = default;
UNet2DPredictor& UNet2DPredictor::operator=(UNet2DPredictor&&) noexcept = default;

const UNet2DConfig& UNet2DPredictor::config() const { return impl_->net.config; }
const ModelCard& UNet2DPredictor::model_card() const { return impl_->card; }
const std::string& UNet2DPredictor::scheduler_config_json() const { return impl_->scheduler_json; }
std::int64_t UNet2DPredictor::parameter_count() const { return impl_->net.parameters; }
const UNet2DPredictorOptions& UNet2DPredictor::options() const { return impl_->options; }
std::int64_t UNet2DPredictor::sample_height() const { return impl_->height; }
std::int64_t UNet2DPredictor::sample_width() const { return impl_->width; }

void UNet2DPredictor::set_sample_size(std::int64_t height, std::int64_t width) {
  impl_->check_size(height, width);
  impl_->height = height;
  impl_->width = width;
  impl_->card.sample_shape = {impl_->net.config.in_channels, height, width};
}

void UNet2DPredictor::set_class_labels(std::span<const std::int32_t> labels) {
  Impl& m = *impl_;
  for (std::int32_t l : labels) m.check_label(l);
  m.labels.assign(labels.begin(), labels.end());
  if (m.device && !m.labels.empty()) m.device->upload_labels(m.labels, m.device_stream);
}

bool UNet2DPredictor::supports(Memory memory) const {
#if DDPM_HAVE_CUDNN
  (void)memory;
  return true;
#else
  return memory == Memory::host;
#endif
}

void UNet2DPredictor::set_class_label(std::int32_t label) {
  impl_->check_label(label);
  impl_->labels.clear();
  impl_->label = label;
}

std::optional<std::int32_t> UNet2DPredictor::unconditional_label() const {
  if (!impl_->conditional()) return std::nullopt;
  return impl_->net.config.num_class_embeds - 1;
}

void UNet2DPredictor::prepare(const Schedule& /*schedule*/, Memory memory, Shape shape, void* stream) {
  Impl& m = *impl_;
  if (memory == Memory::host && m.options.precision != Precision::fp32) {
    throw Error("UNet2DModel: precision " + to_string(m.options.precision) +
                " is for the CUDA backend; the CPU computes in fp32");
  }
  m.check_output_channels();
  if (m.height == 0) {
    throw Error("UNet2DModel: config.json has no sample_size; set the sample size (--shape N,C,H,W)");
  }
  m.check_size(m.height, m.width);
  if (shape.dim != m.dim()) {
    throw Error("UNet2DModel: samples of " + std::to_string(shape.dim) + " values do not fit the model's " +
                std::to_string(m.net.config.in_channels) + " x " + std::to_string(m.height) + " x " +
                std::to_string(m.width) + " = " + std::to_string(m.dim()));
  }
  if (memory == Memory::host) return;
#if DDPM_HAVE_CUDNN
  const detail::UNet2DDeviceSettings settings{shape.batch, m.height, m.width, m.options.precision};
  if (!m.device || !m.device->fits(settings)) {
    m.device.reset();  // frees the old buffers before the new ones are allocated
    m.device = detail::make_unet2d_device_part(m.net, settings, stream);
  }
  m.device_stream = stream;
  if (!m.labels.empty()) m.device->upload_labels(m.labels, stream);
#else
  (void)stream;
  throw Error("UNet2DModel: this ddpm was built without CUDA and cuDNN, so the network runs on the host only "
              "(--backend cpu)");
#endif
}

void UNet2DPredictor::predict(const PredictorCall& call) {
  const Impl& m = *impl_;
  m.check_output_channels();
  if (m.height == 0) throw Error("UNet2DModel: config.json has no sample_size; set the sample size first");
  if (call.shape.dim != m.dim()) {
    throw Error("UNet2DModel: called with " + std::to_string(call.shape.dim) + " values per sample; the model takes " +
                std::to_string(m.dim()));
  }
  if (call.shape.batch < 0) throw Error("UNet2DModel: negative batch");
  if (detail::output_of(call) == nullptr || call.x_t == nullptr) {
    throw Error("UNet2DModel: call without an input or an output buffer");
  }
  if (call.shape.batch == 0) return;
  const auto batch = static_cast<std::size_t>(call.shape.batch);

  // The time of each row: its step, or the call's fractional time (Euler).
  const detail::MlpTime time = detail::mlp_time_of(call);
  if (m.conditional() && call.class_labels == nullptr && !m.labels.empty() && batch > m.labels.size()) {
    throw Error("UNet2DModel: " + std::to_string(batch) + " rows but " + std::to_string(m.labels.size()) +
                " class labels were set");
  }
  if (call.memory == Memory::device) {
    if (!m.device) throw Error("UNet2DModel: call prepare() with Memory::device before predicting on a device");
    // Labels on the device: the call's, the uploaded ones, or one for every row.
    const std::int32_t* labels = nullptr;
    if (m.conditional()) {
      labels = call.class_labels != nullptr ? call.class_labels
               : m.labels.empty()           ? nullptr
                                            : m.device->uploaded_labels();
    }
    m.device->predict(call, time.fractional ? time.time : static_cast<float>(call.step), labels, m.label);
    return;
  }
  std::vector<float> times(batch);
  for (std::size_t r = 0; r < batch; ++r) {
    times[r] = time.fractional ? time.time : static_cast<float>(detail::row_step(call, static_cast<std::int64_t>(r)));
  }
  std::vector<std::int32_t> labels;
  if (m.conditional()) {
    labels.resize(batch);
    for (std::size_t r = 0; r < batch; ++r) {
      labels[r] = call.class_labels ? call.class_labels[r] : m.labels.empty() ? m.label : m.labels[r];
    }
  } else if (call.class_labels != nullptr) {
    for (std::size_t r = 0; r < batch; ++r) m.check_label(call.class_labels[r]);
  }
  const std::size_t values = batch * static_cast<std::size_t>(m.dim());
  evaluate({call.x_t, values}, call.shape.batch, m.height, m.width, times, labels,
           {detail::output_of(call), values});  // checks each label
}

void UNet2DPredictor::evaluate(std::span<const float> x, std::int64_t batch, std::int64_t height,
                               std::int64_t width, std::span<const float> times,
                               std::span<const std::int32_t> labels, std::span<float> out) const {
  const Impl& m = *impl_;
  const UNet2DConfig& c = m.net.config;
  if (batch < 0) throw Error("UNet2DModel: negative batch");
  m.check_size(height, width);
  const std::int64_t pixels = height * width;
  if (static_cast<std::int64_t>(x.size()) != batch * c.in_channels * pixels ||
      static_cast<std::int64_t>(out.size()) != batch * c.out_channels * pixels) {
    throw Error("UNet2DModel: evaluate() needs " + std::to_string(batch * c.in_channels * pixels) +
                " input and " + std::to_string(batch * c.out_channels * pixels) + " output values");
  }
  if (static_cast<std::int64_t>(times.size()) != batch) throw Error("UNet2DModel: one time per row");
  for (float t : times) {
    if (!std::isfinite(t)) throw Error("UNet2DModel: a timestep is not finite");
  }
  if (m.conditional()) {
    if (static_cast<std::int64_t>(labels.size()) != batch) {
      throw Error("UNet2DModel: the model is class-conditional (num_class_embeds " +
                  std::to_string(c.num_class_embeds) + "): give one class label per row");
    }
    for (std::int32_t l : labels) m.check_label(l);
  } else if (!labels.empty()) {
    throw Error("UNet2DModel: the model is unconditional (no num_class_embeds): it takes no class labels");
  }
  if (batch == 0) return;
  detail::UNet2DInput input;
  input.x = x.data();
  input.batch = batch;
  input.height = height;
  input.width = width;
  input.times = times.data();
  input.labels = labels.empty() ? nullptr : labels.data();
  detail::unet2d_forward_host(m.net, input, out.data(), m.options.threads);
}

}  // namespace ddpm
