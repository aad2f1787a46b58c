// The errors of cuda_check.h and cublas_check.h.
#include "cuda_check.h"
#include "cublas_check.h"

#include <cstring>
#include <string>

#include "ddpm/error.h"

namespace ddpm::kernels {

const char* short_path(const char* file) {
  for (const char* marker : {"/src/", "/kernels/", "/tests/", "/bench/"}) {
    if (const char* at = std::strstr(file, marker)) return at + 1;
  }
  return file;
}

void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line) {
  if (error == cudaErrorMemoryAllocation) {
    // Not sticky: clear it so that later calls on this thread are not affected.
    cudaGetLastError();
  }
  throw CudaError(std::string("CUDA error at ") + short_path(file) + ":" + std::to_string(line) +
                  " in " + call + ": " + cudaGetErrorString(error) + " (" +
                  cudaGetErrorName(error) + ")");
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw CudaError(std::string("cuBLAS error at ") + short_path(file) + ":" + std::to_string(line) +
                  " in " + call + ": " + cublasGetStatusName(status) + " (" +
                  cublasGetStatusString(status) + ")");
}

}  // namespace ddpm::kernels
