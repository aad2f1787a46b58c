// The CPU kernels compiled for x86-64-v3 (AVX2 + FMA); see src/CMakeLists.txt.
#define DDPM_CPU_KERNELS_NAMESPACE ddpm::cpu::avx2
#include "cpu_kernels_impl.h"

namespace ddpm::cpu {

const CpuKernels& avx2_kernels() {
  static const CpuKernels kernels{"avx2", avx2::normals, avx2::forward, avx2::reverse,
                                  avx2::fused};
  return kernels;
}

}  // namespace ddpm::cpu
