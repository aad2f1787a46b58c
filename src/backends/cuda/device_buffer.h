#pragma once
// RAII device memory: DeviceBuffer<T> owns count() elements of cudaMalloc'd
// memory. Running out of memory throws the "out of device memory: need N MiB
// for <what>" CudaError rather than returning a null pointer.
#include <cstddef>
#include <string>
#include <utility>

#include <cuda_runtime_api.h>

#include "check.h"

namespace ddpm::detail::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(std::size_t count, const std::string& what) { allocate(count, what); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  // Frees what is held, then allocates `count` elements (uninitialised).
  void allocate(std::size_t count, const std::string& what) {
    release();
    if (count == 0) return;
    void* p = nullptr;
    const cudaError_t error = cudaMalloc(&p, count * sizeof(T));
    if (error == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw_out_of_memory(count * sizeof(T), what);
    }
    DDPM_CUDA_CHECK(error);
    data_ = static_cast<T*>(p);
    count_ = count;
  }

  // Keeps the allocation when it already holds `count` elements.
  void reserve(std::size_t count, const std::string& what) {
    if (count > count_) allocate(count, what);
  }

  void release() noexcept {
    if (data_) cudaFree(data_);  // no throw from a destructor; errors are sticky anyway
    data_ = nullptr;
    count_ = 0;
  }

  T* data() const { return data_; }
  std::size_t count() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace ddpm::detail::cuda
