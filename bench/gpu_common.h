#pragma once
// What every GPU file of the bench shares: the CUDA error check, an owning
// device buffer, a stream, and random fill.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ddpm::bench {

// Throws ddpm::CudaError naming the call, file, line and CUDA's message.
[[noreturn]] void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line);

#define BENCH_CUDA_CHECK(call)                                                  \
  do {                                                                          \
    const cudaError_t bench_error_ = (call);                                    \
    if (bench_error_ != cudaSuccess)                                            \
      ::ddpm::bench::throw_cuda_error(bench_error_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: launch-configuration errors surface here.
#define BENCH_CUDA_CHECK_LAUNCH() BENCH_CUDA_CHECK(cudaGetLastError())

// cudaMalloc'd bytes, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  float* floats() const { return static_cast<float*>(data_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// A non-blocking stream, destroyed on destruction.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

// p[i] = mean + scale * N(0, 1), from a hash of (seed, i): random inputs,
// never zeros, without a host round trip.
void fill_normal(float* p, std::size_t n, std::uint64_t seed, float mean, float scale,
                 cudaStream_t stream);

// Bytes the device has free now (cudaMemGetInfo).
std::size_t free_device_bytes();

// Buffers are carved out of one allocation at this alignment (bytes), which
// keeps every array 16-byte aligned for vector loads.
inline constexpr std::size_t kCarveAlignment = 256;
inline std::size_t aligned_bytes(std::size_t bytes) {
  return (bytes + kCarveAlignment - 1) / kCarveAlignment * kCarveAlignment;
}

}  // namespace ddpm::bench
