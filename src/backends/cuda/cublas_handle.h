#pragma once
// A cuBLAS handle owned by the device part of a network (created on the
// current device, destroyed with it), and the workspace size ddpm hands
// cuBLAS so that it never allocates while a graph is being captured.
#include <cstddef>

#include <cublas_v2.h>

#include "kernels/cublas_check.h"

namespace ddpm::detail::cuda {

// cuBLAS's recommendation for Hopper (32 MiB; 4 MiB suffices for earlier GPUs).
inline constexpr std::size_t kCublasWorkspaceBytes = 32u << 20;

class CublasHandle {
 public:
  CublasHandle() { DDPM_CUBLAS_CHECK(cublasCreate(&handle_)); }
  ~CublasHandle() {
    if (handle_) cublasDestroy(handle_);
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace ddpm::detail::cuda
