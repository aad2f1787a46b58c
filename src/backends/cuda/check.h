#pragma once
// The CUDA backend's memory checks, on top of kernels/' call checker
// (DDPM_CUDA_CHECK, DDPM_CUDA_CHECK_LAUNCH: kernels/cuda_check.h).
#include <cstddef>
#include <string>

#include "kernels/cuda_check.h"

namespace ddpm::detail::cuda {

// "out of device memory: need N MiB for <what>, M MiB free" as a CudaError.
[[noreturn]] void throw_out_of_memory(std::size_t needed_bytes, const std::string& what);

// Throws the out-of-memory error above, before anything is allocated, when
// `bytes` exceeds the free device memory (cudaMemGetInfo).
void require_free_memory(std::size_t bytes, const std::string& what);

// Bytes as "12.5 MiB".
std::string format_mib(std::size_t bytes);

}  // namespace ddpm::detail::cuda
