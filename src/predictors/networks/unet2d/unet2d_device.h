#pragma once
// The device half of UNet2DPredictor (unet2d_device.cpp, compiled in CUDA
// builds only). prepare() makes it: it uploads the weights once (in the
// storage type of the precision), plans every convolution with cuDNN for
// the largest batch, and allocates one arena for the activations (its
// layout found by running the forward pass once without launching
// anything), the cuDNN and cuBLAS workspaces and the labels. predict() then
// only launches on the call's stream: no allocation, no synchronisation,
// capturable into a CUDA Graph.
#include <cstdint>
#include <memory>
#include <vector>

#include "ddpm/predictor.h"
#include "ddpm/types.h"
#include "unet2d_network.h"

namespace ddpm::detail {

struct UNet2DDeviceSettings {
  std::int64_t max_batch = 0;
  std::int64_t height = 0, width = 0;
  Precision precision = Precision::fp32;
};

class UNet2DDevicePart {
 public:
  virtual ~UNet2DDevicePart() = default;
  // Whether this part serves the current device for these settings (a batch up to its own).
  virtual bool fits(const UNet2DDeviceSettings& settings) const = 0;
  // Copies per-row labels (at most max_batch) to the device, ordered on `stream`.
  virtual void upload_labels(const std::vector<std::int32_t>& labels, void* stream) = 0;
  virtual const std::int32_t* uploaded_labels() const = 0;
  // The network on call.x_t into the call's output (device memory, call.shape.batch
  // rows); labels: a device array per row, else `label` for every row (conditional
  // models only). `time`: the call's fractional time, used when call.steps is null.
  virtual void predict(const PredictorCall& call, float time, const std::int32_t* labels, std::int32_t label) = 0;
};

// Uploads on `stream` (a cudaStream_t) of the current device.
std::unique_ptr<UNet2DDevicePart> make_unet2d_device_part(const UNet2DNetwork& net,
                                                          const UNet2DDeviceSettings& settings, void* stream);

}  // namespace ddpm::detail
