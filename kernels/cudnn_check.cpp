// The error of cudnn_check.h (a file of its own: only builds that link cuDNN compile it).
#include "cudnn_check.h"

#include <string>

#include "cuda_check.h"
#include "ddpm/error.h"

namespace ddpm::kernels {

void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  throw CudaError(std::string("cuDNN error at ") + short_path(file) + ":" + std::to_string(line) + " in " + call + ": " +
                  cudnnGetErrorString(status));
}

}  // namespace ddpm::kernels
