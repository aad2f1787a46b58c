// Whether the CUDA backend can run here, asked once per process.
#include <string>
#include <utility>

#include <cuda_runtime_api.h>

#include "kernels/launch.h"
#include "core/engine.h"

#ifndef DDPM_CUDA_ARCHITECTURES
#define DDPM_CUDA_ARCHITECTURES "unknown"
#endif

namespace ddpm::detail {
namespace {

std::pair<bool, std::string> probe() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return {false, std::string("CUDA driver/runtime unavailable: ") + cudaGetErrorString(error) +
                       " (" + cudaGetErrorName(error) + ", error " +
                       std::to_string(static_cast<int>(error)) + ")"};
  }
  if (count == 0) return {false, "no CUDA device found"};
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    const cudaError_t last = cudaGetLastError();
    return {false, std::string("CUDA device query failed: ") + cudaGetErrorString(last)};
  }
  const cudaError_t image = kernels::probe_kernel_image();
  if (image != cudaSuccess) {
    return {false, std::string("no usable kernel image for ") + prop.name +
                       " (compute capability " + std::to_string(prop.major) + "." +
                       std::to_string(prop.minor) + "): built for CUDA architectures " +
                       DDPM_CUDA_ARCHITECTURES + " (" + cudaGetErrorString(image) + ")"};
  }
  return {true, std::string()};
}

}  // namespace

bool cuda_device_usable(std::string* reason) {
  static const std::pair<bool, std::string> answer = probe();
  if (reason) *reason = answer.second;
  return answer.first;
}

int select_cuda_device(int local_rank) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) {
    cudaGetLastError();
    return -1;
  }
  const int device = local_rank % count;
  if (cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return device;
}

std::uint64_t cuda_free_memory_bytes() {
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return free_bytes;
}

}  // namespace ddpm::detail
