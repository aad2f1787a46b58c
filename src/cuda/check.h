#pragma once
// The one checker for CUDA calls and launches: every runtime call goes through
// DDPM_CUDA_CHECK, every launch is followed by DDPM_CUDA_CHECK_LAUNCH(). A
// failure throws ddpm::CudaError naming the file, the line, the call and
// CUDA's own message.
#include <cstddef>
#include <string>

#include <cuda_runtime_api.h>

namespace ddpm::detail::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t error, const char* call, const char* file,
                                   int line);

inline void check(cudaError_t error, const char* call, const char* file, int line) {
  if (error != cudaSuccess) throw_cuda_error(error, call, file, line);
}

// "out of device memory: need N MiB for <what>, M MiB free" as a CudaError.
[[noreturn]] void throw_out_of_memory(std::size_t needed_bytes, const std::string& what);

// Throws the out-of-memory error above, before anything is allocated, when
// `bytes` exceeds the free device memory (cudaMemGetInfo).
void require_free_memory(std::size_t bytes, const std::string& what);

// Bytes as "12.5 MiB".
std::string format_mib(std::size_t bytes);

}  // namespace ddpm::detail::cuda

#define DDPM_CUDA_CHECK(call) ::ddpm::detail::cuda::check((call), #call, __FILE__, __LINE__)
// After every <<<>>> launch: launch-configuration errors surface here.
#define DDPM_CUDA_CHECK_LAUNCH(kernel) \
  ::ddpm::detail::cuda::check(cudaGetLastError(), "launch of " kernel, __FILE__, __LINE__)
