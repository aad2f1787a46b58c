#pragma once
// The device half of MlpPredictor (mlp_device.cpp, compiled in CUDA builds
// only). Made by prepare(): it uploads the weights and the condition tables
// once and allocates every buffer a forward pass of up to max_batch rows
// needs, the cuBLAS workspace included; predict() only launches on the
// call's stream: no allocation, no synchronisation, capturable.
#include <cstdint>
#include <memory>
#include <vector>

#include "ddpm/predictor.h"
#include "mlp_network.h"

namespace ddpm::detail {

struct MlpDeviceSettings {
  std::int64_t max_batch = 0;
  bool allow_tf32 = false;
};

// Where the rows' labels come from on the device: a device array (the
// uploaded labels, or one the caller owns), else `label` for every row.
struct MlpDeviceLabels {
  const std::int32_t* rows = nullptr;
  std::int32_t label = 0;
};

class MlpDevicePart {
 public:
  virtual ~MlpDevicePart() = default;
  // Whether this part serves the current device with at least `batch` rows and these settings.
  virtual bool fits(std::int64_t batch, bool allow_tf32) const = 0;
  // Copies per-row labels (at most max_batch) to the device, ordered on `stream`.
  virtual void upload_labels(const std::vector<std::int32_t>& labels, void* stream) = 0;
  virtual const std::int32_t* uploaded_labels() const = 0;
  virtual void predict(const MlpNetwork& net, const PredictorCall& call, MlpDeviceLabels labels) = 0;
};

// Uploads on `stream` (a cudaStream_t) of the current device.
std::unique_ptr<MlpDevicePart> make_mlp_device_part(const MlpNetwork& net, const MlpDeviceSettings& settings,
                                                    void* stream);

}  // namespace ddpm::detail
