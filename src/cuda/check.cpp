#include "check.h"
#include "cublas_check.h"

#include <cstdio>
#include <cstring>

#include "ddpm/error.h"

namespace ddpm::detail::cuda {
namespace {

// Paths as the build passes them are absolute; keep them from the project's
// top folders on ("src/cuda/engine.cpp:42").
const char* short_path(const char* file) {
  for (const char* marker : {"/src/", "/kernels/", "/tests/"}) {
    if (const char* at = std::strstr(file, marker)) return at + 1;
  }
  return file;
}

}  // namespace

std::string format_mib(std::size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
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

void throw_out_of_memory(std::size_t needed_bytes, const std::string& what) {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  std::string free_text = "unknown";
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
    free_text = format_mib(free_bytes);
  } else {
    cudaGetLastError();
  }
  throw CudaError("out of device memory: need " + format_mib(needed_bytes) + " for " + what +
                  ", " + free_text + " free");
}

void require_free_memory(std::size_t bytes, const std::string& what) {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  DDPM_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (bytes > free_bytes) throw_out_of_memory(bytes, what);
}

}  // namespace ddpm::detail::cuda
