// The CUDA entry points in a build without a CUDA toolkit: the backend is
// reported unavailable and every device path throws.
#include "ddpm/error.h"
#include "core/engine.h"

namespace ddpm::detail {
namespace {
constexpr const char* kNotBuilt = "this ddpm was built without CUDA (no nvcc at configure time)";
}

bool cuda_device_usable(std::string* reason) {
  if (reason) *reason = kNotBuilt;
  return false;
}

int select_cuda_device(int) { return -1; }
std::uint64_t cuda_free_memory_bytes() { return 0; }

std::unique_ptr<Engine> make_cuda_engine(EngineSetup) { throw Error(kNotBuilt); }

}  // namespace ddpm::detail
