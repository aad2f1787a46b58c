#pragma once
// The checker for cuBLAS calls, beside DDPM_CUDA_CHECK: a failing status
// throws ddpm::CudaError naming the file, the line, the call and cuBLAS's
// status name.
#include <cublas_v2.h>

namespace ddpm::detail::cuda {

[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}

}  // namespace ddpm::detail::cuda

#define DDPM_CUBLAS_CHECK(call) \
  ::ddpm::detail::cuda::check_cublas((call), #call, __FILE__, __LINE__)
