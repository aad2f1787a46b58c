// Picks the CPU kernel set once, from what the processor supports.
#include <cstdlib>
#include <cstring>

#include "cpu_kernels.h"

namespace ddpm::cpu {

const CpuKernels& cpu_kernels() {
  static const CpuKernels& chosen = []() -> const CpuKernels& {
    const char* forced = std::getenv("DDPM_CPU_KERNELS");
    if (forced && std::strcmp(forced, "generic") == 0) return generic_kernels();
#if defined(DDPM_HAVE_AVX2_KERNELS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return avx2_kernels();
#endif
    return generic_kernels();
  }();
  return chosen;
}

}  // namespace ddpm::cpu
