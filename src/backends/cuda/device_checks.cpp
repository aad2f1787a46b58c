#include "device_checks.h"

#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "check.h"
#include "ddpm/error.h"

namespace ddpm::detail::cuda {

void check_device_pointer(const void* p, int device, const char* what) {
  if (p == nullptr) return;
  cudaPointerAttributes attributes{};
  DDPM_CUDA_CHECK(cudaPointerGetAttributes(&attributes, p));
  switch (attributes.type) {
    case cudaMemoryTypeDevice:
      if (attributes.device != device) {
        throw Error(std::string(what) + " is on CUDA device " + std::to_string(attributes.device) +
                    " but the sampler runs on device " + std::to_string(device));
      }
      return;
    case cudaMemoryTypeManaged:
      return;
    case cudaMemoryTypeHost:
      if (attributes.devicePointer == p) return;  // pinned and mapped at the same address
      break;
    default:
      break;
  }
  throw Error(std::string(what) +
              " is not CUDA device memory (a Memory::device request needs device pointers)");
}

namespace {
bool overlap(const void* a, const void* b, std::size_t count) {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  const std::uintptr_t bytes = count * sizeof(float);
  return x < y + bytes && y < x + bytes;
}
}  // namespace

void check_overlap(const void* out, const void* in, std::size_t count, const char* out_name,
                   const char* in_name) {
  if (out == nullptr || in == nullptr || out == in) return;
  if (overlap(out, in, count)) {
    throw Error(std::string(out_name) + " partly overlaps " + in_name +
                " (they must be the same array or disjoint)");
  }
}

void check_disjoint(std::initializer_list<const float*> outputs, std::size_t count) {
  std::vector<const float*> set;
  for (const float* p : outputs) {
    if (p != nullptr) set.push_back(p);
  }
  for (std::size_t i = 0; i < set.size(); ++i) {
    for (std::size_t j = i + 1; j < set.size(); ++j) {
      if (overlap(set[i], set[j], count)) {
        throw Error("the outputs of a request must not overlap each other");
      }
    }
  }
}

}  // namespace ddpm::detail::cuda
