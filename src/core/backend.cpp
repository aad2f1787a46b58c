// What ddpm/backend.h answers, from the backends.
#include "ddpm/backend.h"

#include "backends/cpu/cpu_kernels.h"
#include "ddpm/error.h"
#include "engine.h"

namespace ddpm {

bool cuda_available() { return detail::cuda_device_usable(nullptr); }

std::string cuda_unavailable_reason() {
  std::string reason;
  return detail::cuda_device_usable(&reason) ? std::string() : reason;
}

std::string to_string(Backend backend) {
  switch (backend) {
    case Backend::automatic: return "auto";
    case Backend::cpu: return "cpu";
    case Backend::cuda: return "cuda";
  }
  return "unknown";
}

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::automatic;
  if (name == "cpu") return Backend::cpu;
  if (name == "cuda") return Backend::cuda;
  throw Error("unknown backend '" + name + "' (expected auto, cpu or cuda)");
}

int select_cuda_device(int local_rank) { return detail::select_cuda_device(local_rank); }

std::uint64_t cuda_free_memory_bytes() { return detail::cuda_free_memory_bytes(); }

std::string cpu_kernels_name() { return cpu::cpu_kernels().name; }

}  // namespace ddpm
