#pragma once
// The checker for cuDNN calls, beside DDPM_CUDA_CHECK (cuda_check.h): a
// failing status throws ddpm::CudaError naming the file, the line, the call
// and cuDNN's own message.
#include <cudnn.h>

namespace ddpm::kernels {

[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line);

inline void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status != CUDNN_STATUS_SUCCESS) throw_cudnn_error(status, call, file, line);
}

}  // namespace ddpm::kernels

#define DDPM_CUDNN_CHECK(call) ::ddpm::kernels::check_cudnn((call), #call, __FILE__, __LINE__)
