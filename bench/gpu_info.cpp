// What the JSON and the table say about the GPU and the CUDA versions.
#include <cuda_runtime.h>

#include "ddpm/sampler.h"
#include "gpu_bench.h"
#include "gpu_common.h"

namespace ddpm::bench {

GpuInfo query_gpu_info() {
  GpuInfo info;
  info.compiled = true;
  info.toolkit_version = CUDART_VERSION;
  // Both answer without a device: the runtime is linked in, the driver may be absent (0).
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_cuda_version) != cudaSuccess) info.driver_cuda_version = 0;

  info.unavailable_reason = cuda_unavailable_reason();
  info.usable = info.unavailable_reason.empty();
  if (!info.usable) {
    cudaGetLastError();  // clear the sticky "no device" error of the probes above
    return info;
  }
  int device = 0;
  BENCH_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  BENCH_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.memory_bytes = static_cast<std::int64_t>(prop.totalGlobalMem);
  info.l2_bytes = prop.l2CacheSize;
  return info;
}

}  // namespace ddpm::bench
