#include "predictor_device.h"

#include "ddpm/error.h"

namespace ddpm::detail {

void throw_without_cuda(const std::string& predictor) {
  throw Error(predictor + ": this ddpm was built without CUDA (no nvcc at configure time)");
}

}  // namespace ddpm::detail
