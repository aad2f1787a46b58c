// The CUDA entry points in a build without a CUDA toolkit: the backend is
// reported unavailable and every device path throws.
#include "ddpm/error.h"
#include "device_predictors.h"
#include "engine.h"

namespace ddpm::detail {
namespace {
constexpr const char* kNotBuilt = "this ddpm was built without CUDA (no nvcc at configure time)";
}

bool cuda_device_usable(std::string* reason) {
  if (reason) *reason = kNotBuilt;
  return false;
}

std::unique_ptr<Sampler::Engine> make_cuda_engine(EngineSetup) { throw Error(kNotBuilt); }

std::shared_ptr<void> prepare_gaussian_device(const GaussianPrior&, Shape, void*) {
  throw Error(kNotBuilt);
}
void predict_gaussian_device(const void*, const PredictorCall&) { throw Error(kNotBuilt); }
std::shared_ptr<void> prepare_gmm_device(const GmmSpec&, Shape, void*) { throw Error(kNotBuilt); }
void predict_gmm_device(const void*, const PredictorCall&) { throw Error(kNotBuilt); }

}  // namespace ddpm::detail
