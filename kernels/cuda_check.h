#pragma once
// The one checker for CUDA calls and launches, kernels/' own (the backends
// and the networks use it too): every runtime call goes through
// DDPM_CUDA_CHECK, every launch is followed by DDPM_CUDA_CHECK_LAUNCH(). A
// failure throws ddpm::CudaError naming the file, the line, the call and
// CUDA's own message.
#include <cuda_runtime_api.h>

namespace ddpm::kernels {

[[noreturn]] void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line);

// A path as the build passes it (absolute), from the project's top folders
// on ("src/backends/cuda/cuda_engine.cpp"), for error messages.
const char* short_path(const char* file);

inline void check_cuda(cudaError_t error, const char* call, const char* file, int line) {
  if (error != cudaSuccess) throw_cuda_error(error, call, file, line);
}

}  // namespace ddpm::kernels

#define DDPM_CUDA_CHECK(call) ::ddpm::kernels::check_cuda((call), #call, __FILE__, __LINE__)
// After every <<<>>> launch: launch-configuration errors surface here.
#define DDPM_CUDA_CHECK_LAUNCH(kernel) \
  ::ddpm::kernels::check_cuda(cudaGetLastError(), "launch of " kernel, __FILE__, __LINE__)
