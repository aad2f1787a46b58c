#pragma once
// The checker for cuBLAS calls, beside DDPM_CUDA_CHECK (cuda_check.h): a
// failing status throws ddpm::CudaError naming the file, the line, the call
// and cuBLAS's status name.
#include <cublas_v2.h>

namespace ddpm::kernels {

[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}

}  // namespace ddpm::kernels

#define DDPM_CUBLAS_CHECK(call) ::ddpm::kernels::check_cublas((call), #call, __FILE__, __LINE__)
