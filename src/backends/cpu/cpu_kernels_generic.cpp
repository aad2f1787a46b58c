// The portable build of the CPU kernels (baseline x86-64 or any other target).
#define DDPM_CPU_KERNELS_NAMESPACE ddpm::cpu::generic
#include "cpu_kernels_impl.h"

namespace ddpm::cpu {

const CpuKernels& generic_kernels() {
  static const CpuKernels kernels{"generic", generic::normals, generic::forward, generic::reverse,
                                  generic::fused};
  return kernels;
}

}  // namespace ddpm::cpu
