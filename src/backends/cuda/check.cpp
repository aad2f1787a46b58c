#include "check.h"

#include <cstdio>

#include "ddpm/error.h"

namespace ddpm::detail::cuda {

std::string format_mib(std::size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
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
