#pragma once
// RAII wrappers for a CUDA stream and a CUDA event.
#include <utility>

#include <cuda_runtime_api.h>

#include "check.h"

namespace ddpm::detail::cuda {

// A non-blocking stream: it never synchronises implicitly with the legacy
// default stream, which also makes it legal to capture into a graph.
class Stream {
 public:
  Stream() { DDPM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Stream& operator=(Stream&& other) noexcept {
    std::swap(stream_, other.stream_);
    return *this;
  }
  cudaStream_t get() const { return stream_; }
  void synchronize() const { DDPM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

// An event without timing (cheapest to record and wait on).
class Event {
 public:
  explicit Event(unsigned flags = cudaEventDisableTiming) {
    DDPM_CUDA_CHECK(cudaEventCreateWithFlags(&event_, flags));
  }
  ~Event() {
    if (event_) cudaEventDestroy(event_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event& operator=(Event&& other) noexcept {
    std::swap(event_, other.event_);
    return *this;
  }
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream) { DDPM_CUDA_CHECK(cudaEventRecord(event_, stream)); }
  // Makes `stream` wait for the work captured by the last record() (none: no wait).
  void wait_on(cudaStream_t stream) const {
    DDPM_CUDA_CHECK(cudaStreamWaitEvent(stream, event_, 0));
  }
  void synchronize() const { DDPM_CUDA_CHECK(cudaEventSynchronize(event_)); }

 private:
  cudaEvent_t event_ = nullptr;
};

// Makes `device` current for a scope and restores the previous device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    DDPM_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) DDPM_CUDA_CHECK(cudaSetDevice(device));
    changed_ = previous_ != device;
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace ddpm::detail::cuda
