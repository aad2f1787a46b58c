#include "noise_probe.h"

#include <curand_kernel.h>

#include <stdexcept>
#include <string>

namespace ddpm::gpu_test {
namespace {

// One thread per (sample, element group): curand_init(seed, sample,
// 4 * counter) and curand_normal4 give elements 4g .. 4g+3.
__global__ void probe_kernel(float* out, std::uint64_t seed, std::int64_t first_sample,
                             kernels::NoiseStream stream, std::uint32_t step, std::int64_t batch,
                             std::int64_t dim) {
  const std::int64_t groups_per_row = (dim + 3) / 4;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= batch * groups_per_row) return;
  const std::int64_t row = i / groups_per_row;
  const std::int64_t group = i % groups_per_row;
  curandStatePhilox4_32_10_t state;
  curand_init(seed, static_cast<unsigned long long>(first_sample + row),
              kernels::noise_offset(stream, step, static_cast<std::uint64_t>(group)), &state);
  const float4 z = curand_normal4(&state);
  const float values[4] = {z.x, z.y, z.z, z.w};
  for (int j = 0; j < 4 && 4 * group + j < dim; ++j) out[row * dim + 4 * group + j] = values[j];
}

void ok(cudaError_t error, const char* what) {
  if (error != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(error));
}

}  // namespace

std::vector<float> draw_normals_on_device(std::uint64_t seed, std::int64_t first_sample,
                                          kernels::NoiseStream stream, std::uint32_t step,
                                          std::int64_t batch, std::int64_t dim) {
  const std::size_t n = static_cast<std::size_t>(batch * dim);
  float* d = nullptr;
  ok(cudaMalloc(&d, n * sizeof(float)), "cudaMalloc");
  const std::int64_t groups = batch * ((dim + 3) / 4);
  probe_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128>>>(d, seed, first_sample, stream,
                                                                     step, batch, dim);
  ok(cudaGetLastError(), "probe_kernel launch");
  std::vector<float> out(n);
  const cudaError_t copied = cudaMemcpy(out.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d);
  ok(copied, "cudaMemcpy");
  return out;
}

}  // namespace ddpm::gpu_test
