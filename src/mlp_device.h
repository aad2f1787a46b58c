#pragma once
// The CUDA side of MlpPredictor (src/cuda/mlp_device.cpp; src/cuda_stub.cpp
// throws in a build without CUDA). prepare uploads the weights and the
// condition tables once and allocates every buffer a forward pass of up to
// max_batch rows needs, the cuBLAS workspace included; predict only launches
// on the call's stream: no allocation, no synchronisation, capturable.
#include <cstdint>
#include <memory>
#include <vector>

#include "ddpm/predictor.h"
#include "mlp_network.h"

namespace ddpm::detail {

struct MlpDeviceState;

struct MlpDeviceSettings {
  std::int64_t max_batch = 0;
  bool allow_tf32 = false;
};

// Uploads on `stream` (a cudaStream_t) of the current device.
std::shared_ptr<MlpDeviceState> prepare_mlp_device(const MlpNetwork& net,
                                                   const MlpDeviceSettings& settings, void* stream);
// Whether `state` serves the current device with at least `batch` rows and these settings.
bool mlp_device_fits(const MlpDeviceState& state, std::int64_t batch, bool allow_tf32);
// Copies per-row labels (at most max_batch) into the state's label buffer, ordered on `stream`.
void upload_mlp_labels(MlpDeviceState& state, const std::vector<std::int32_t>& labels, void* stream);

// Where the rows' labels come from on the device: a device array (the
// state's uploaded labels, or one the caller owns), else `label` for every row.
struct MlpDeviceLabels {
  const std::int32_t* rows = nullptr;
  std::int32_t label = 0;
};
const std::int32_t* uploaded_mlp_labels(const MlpDeviceState& state);

void predict_mlp_device(MlpDeviceState& state, const MlpNetwork& net, const PredictorCall& call,
                        MlpDeviceLabels labels);

}  // namespace ddpm::detail
