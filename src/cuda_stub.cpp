// The CUDA entry points in a build without a CUDA toolkit: the backend is
// reported unavailable and every device path throws.
#include "ddpm/error.h"
#include "device_predictors.h"
#include "engine.h"
#include "mlp_device.h"

namespace ddpm::detail {
namespace {
constexpr const char* kNotBuilt = "this ddpm was built without CUDA (no nvcc at configure time)";
}

bool cuda_device_usable(std::string* reason) {
  if (reason) *reason = kNotBuilt;
  return false;
}

int select_cuda_device(int) { return -1; }
std::uint64_t cuda_free_memory_bytes() { return 0; }

std::unique_ptr<Sampler::Engine> make_cuda_engine(EngineSetup) { throw Error(kNotBuilt); }

std::shared_ptr<void> prepare_gaussian_device(const GaussianPrior&, const std::optional<GaussianPrior>&,
                                              Shape, void*) {
  throw Error(kNotBuilt);
}
void predict_gaussian_device(const void*, const PredictorCall&) { throw Error(kNotBuilt); }
std::shared_ptr<void> prepare_gmm_device(const GmmSpec&, const std::optional<GmmSpec>&, Shape, void*) {
  throw Error(kNotBuilt);
}
void predict_gmm_device(const void*, const PredictorCall&) { throw Error(kNotBuilt); }

std::shared_ptr<MlpDeviceState> prepare_mlp_device(const MlpNetwork&, const MlpDeviceSettings&,
                                                   void*) {
  throw Error(kNotBuilt);
}
bool mlp_device_fits(const MlpDeviceState&, std::int64_t, bool) { throw Error(kNotBuilt); }
void upload_mlp_labels(MlpDeviceState&, const std::vector<std::int32_t>&, void*) {
  throw Error(kNotBuilt);
}
const std::int32_t* uploaded_mlp_labels(const MlpDeviceState&) { throw Error(kNotBuilt); }
void predict_mlp_device(MlpDeviceState&, const MlpNetwork&, const PredictorCall&, MlpDeviceLabels) {
  throw Error(kNotBuilt);
}

}  // namespace ddpm::detail
