#include "user_predictor_kernel.h"

#include <cuda_runtime.h>

namespace ddpm::gpu_test {
namespace {

__global__ void user_gaussian_eps(const float* x, float* eps, std::int64_t n, const float* table,
                                  int step, float mean, float var) {
  const float a = table[2 * step];
  const float b = table[2 * step + 1];
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    eps[i] = b * (x[i] - a * mean) / (a * a * var + b * b);
  }
}

}  // namespace

int launch_user_gaussian_eps(const float* x, float* eps, std::int64_t n, const float* table,
                             int step, float mean, float var, void* stream) {
  const std::int64_t blocks = (n + 255) / 256;
  user_gaussian_eps<<<static_cast<unsigned>(blocks < 1024 ? blocks : 1024), 256, 0,
                      static_cast<cudaStream_t>(stream)>>>(x, eps, n, table, step, mean, var);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace ddpm::gpu_test
