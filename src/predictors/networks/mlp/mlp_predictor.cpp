// MlpPredictor: the mlp_denoiser network as a NoisePredictor, on the host
// (OpenBLAS) or a CUDA device (cuBLAS, mlp_device.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/parallel_for.h"
#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "mlp_device.h"
#include "predictors/predictor_device.h"
#include "mlp_network.h"
#include "predictors/predictor_steps.h"

namespace ddpm {

struct MlpPredictor::Impl {
  detail::MlpNetwork net;
  ModelCard card;  // the architecture-neutral view of net.card
  MlpPredictorOptions options;
  detail::MlpHostWorkspace host;
  std::vector<std::int32_t> labels;  // one per row, or empty...
  std::int32_t label = -1;           // ...then this one for every row
  std::unique_ptr<detail::MlpDevicePart> device;
  void* device_stream = nullptr;     // the stream of the last device prepare()

  std::string describe_label(std::int32_t l) const {
    return net.card.num_classes > 0
               ? "class label " + std::to_string(l) + " is outside 0.." +
                     std::to_string(net.card.num_classes - 1) + " and the null label " +
                     std::to_string(net.card.null_label)
               : "the model is unconditional: its only label is -1, not " + std::to_string(l);
  }
  void check_label(std::int32_t l) const {
    if (!net.valid_label(l)) throw Error("MlpPredictor: " + describe_label(l));
  }
};

namespace {

// The labels a call carries for its rows (in call.memory), or null.
const std::int32_t* call_labels(const PredictorCall& call) { return call.class_labels; }

}  // namespace

MlpPredictor::MlpPredictor(const std::string& path, MlpPredictorOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (options.threads < 0) throw Error("MlpPredictor: threads must be >= 0");
  impl_->net = detail::load_mlp_network(path);
  impl_->card = impl_->net.card.model_card();
  impl_->options = options;
  impl_->options.threads = cpu::resolve_threads(options.threads);
  impl_->label = impl_->net.card.null_label;
}

MlpPredictor::~MlpPredictor() = default;
MlpPredictor::MlpPredictor(MlpPredictor&&) noexcept = default;
MlpPredictor& MlpPredictor::operator=(MlpPredictor&&) noexcept = default;

const MlpModelCard& MlpPredictor::card() const { return impl_->net.card; }
const ModelCard& MlpPredictor::model_card() const { return impl_->card; }
const MlpPredictorOptions& MlpPredictor::options() const { return impl_->options; }

void MlpPredictor::set_class_labels(std::span<const std::int32_t> labels) {
  Impl& m = *impl_;
  for (std::int32_t l : labels) m.check_label(l);
  m.labels.assign(labels.begin(), labels.end());
  if (m.device && !m.labels.empty()) m.device->upload_labels(m.labels, m.device_stream);
}

void MlpPredictor::set_class_label(std::int32_t label) {
  impl_->check_label(label);
  impl_->labels.clear();
  impl_->label = label;
}

void MlpPredictor::prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) {
  Impl& m = *impl_;
  if (shape.dim != m.net.dim) {
    throw Error("the model has data dim " + std::to_string(m.net.dim) + " but samples have dim " +
                std::to_string(shape.dim));
  }
  if (schedule.steps() != m.net.steps) {
    throw Error("the model was trained with " + std::to_string(m.net.steps) +
                " timesteps but the schedule has " + std::to_string(schedule.steps()));
  }
  if (memory == Memory::host) {
    m.host.reserve(shape.batch, m.net.hidden);
    return;
  }
#if DDPM_HAVE_CUDA
  if (!m.device || !m.device->fits(shape.batch, m.options.allow_tf32)) {
    m.device.reset();  // frees the old buffers before the new ones are allocated
    m.device = detail::make_mlp_device_part(m.net, {shape.batch, m.options.allow_tf32}, stream);
  }
  m.device_stream = stream;
  if (!m.labels.empty()) m.device->upload_labels(m.labels, stream);
#else
  (void)stream;
  detail::throw_without_cuda("MlpPredictor");
#endif
}

std::int64_t MlpPredictor::split_alignment() const { return kMlpRowBlock; }

std::optional<std::int32_t> MlpPredictor::unconditional_label() const {
  if (num_classes() == 0) return std::nullopt;
  return null_label();
}

void MlpPredictor::predict(const PredictorCall& call) {
  Impl& m = *impl_;
  if (call.shape.dim != m.net.dim) {
    throw Error("the model has data dim " + std::to_string(m.net.dim) + " but is called with dim " +
                std::to_string(call.shape.dim));
  }
  if (call.shape.batch < 0) throw Error("MlpPredictor: negative batch");
  // A network answers in the type it was trained for; a sampler that reads
  // its output as another would sample garbage without a word.
  if (call.prediction_type != m.net.card.prediction_type) {
    throw Error("the model predicts " + to_string(m.net.card.prediction_type) +
                " but the sampler reads its output as " + to_string(call.prediction_type) +
                "; set the sampler's prediction type to " + to_string(m.net.card.prediction_type));
  }
  if (detail::output_of(call) == nullptr || call.x_t == nullptr) {
    throw Error("MlpPredictor: call without an input or an output buffer");
  }
  if (call.steps == nullptr && (call.step < 0 || call.step >= m.net.steps)) {
    throw Error("MlpPredictor: step " + std::to_string(call.step) + " is outside the model's 0.." +
                std::to_string(m.net.steps - 1));
  }
  const std::int32_t* given_labels = call_labels(call);
  if (given_labels == nullptr && !m.labels.empty() &&
      call.shape.batch > static_cast<std::int64_t>(m.labels.size())) {
    throw Error("MlpPredictor: " + std::to_string(call.shape.batch) + " rows but " +
                std::to_string(m.labels.size()) + " class labels were set");
  }
  if (call.memory == Memory::device) {
    if (!m.device) {
      throw Error("MlpPredictor: call prepare() with Memory::device before predicting on a device");
    }
    // Rows outside the model's steps or labels come out as NaN on the device.
    detail::MlpDeviceLabels labels{given_labels, m.label};
    if (given_labels == nullptr && !m.labels.empty()) labels.rows = m.device->uploaded_labels();
    m.device->predict(m.net, call, labels);
    return;
  }
  const std::int32_t* rows = given_labels ? given_labels : (m.labels.empty() ? nullptr : m.labels.data());
  for (std::int64_t r = 0; r < call.shape.batch; ++r) {
    const int t = detail::row_step(call, r);
    if (t < 0 || t >= m.net.steps) {
      throw Error("MlpPredictor: row " + std::to_string(r) + " has step " + std::to_string(t) +
                  ", outside the model's 0.." + std::to_string(m.net.steps - 1));
    }
    if (given_labels) m.check_label(given_labels[r]);
    if (call.steps == nullptr && given_labels == nullptr) break;  // nothing per row to check
  }
  const detail::MlpRowBlocks blocks{call.first_sample, call.sample_rows, kMlpRowBlock};
  detail::mlp_forward_host(m.net, call.x_t, call.shape.batch, detail::mlp_time_of(call), rows,
                           m.label, detail::output_of(call), m.options.threads, blocks, m.host);
}

}  // namespace ddpm
