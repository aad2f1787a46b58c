#include <string>
#include <utility>

#include "ddpm/error.h"
#include "gpu_common.h"

namespace ddpm::bench {

void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line) {
  throw CudaError(std::string(file) + ":" + std::to_string(line) + ": " + call +
                  " failed: " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error));
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes > 0) BENCH_CUDA_CHECK(cudaMalloc(&data_, bytes));
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Stream::Stream() { BENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
Stream::~Stream() { cudaStreamDestroy(stream_); }
void Stream::synchronize() const { BENCH_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

namespace {

__device__ __forceinline__ std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Box-Muller on two 32-bit halves of one hash; u1 in (0, 1] so log is finite.
__global__ void fill_normal_kernel(float* p, std::size_t n, std::uint64_t seed, float mean,
                                   float scale) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const std::uint64_t h = splitmix64(seed * 0x2545F4914F6CDD1Dull + i);
    const float u1 = (static_cast<std::uint32_t>(h) + 1.0f) * 2.3283064e-10f;
    const float u2 = static_cast<std::uint32_t>(h >> 32) * 2.3283064e-10f;
    const float normal = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    p[i] = mean + scale * normal;
  }
}

}  // namespace

void fill_normal(float* p, std::size_t n, std::uint64_t seed, float mean, float scale,
                 cudaStream_t stream) {
  if (n == 0) return;
  const int block = 256;
  const std::size_t blocks_needed = (n + block - 1) / block;
  const int grid = static_cast<int>(blocks_needed < 65536 ? blocks_needed : 65536);
  fill_normal_kernel<<<grid, block, 0, stream>>>(p, n, seed, mean, scale);
  BENCH_CUDA_CHECK_LAUNCH();
}

std::size_t free_device_bytes() {
  std::size_t free_bytes = 0, total_bytes = 0;
  BENCH_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

}  // namespace ddpm::bench
