#pragma once
// Sums of per-lane partials over groups of G lanes of a warp, for the row
// functions (gmm_math.cuh, mlp_math.cuh) run with G lanes per row.
#include "host_device.cuh"

namespace ddpm::kernels {

// Sums a lane's partial over its group of G lanes (xor butterfly: every lane
// gets the same bits, since each level adds the same two partial sums).
template <int G>
struct GroupSum {
  unsigned mask;
  template <typename T>  // float or double
  __device__ __forceinline__ T operator()(T s) const {
    if constexpr (G > 1) {
#pragma unroll
      for (int offset = G / 2; offset > 0; offset /= 2) s += __shfl_xor_sync(mask, s, offset, G);
    }
    return s;
  }
};

// The shuffle mask of this thread's group of G lanes (G a power of two up to 32).
template <int G>
__device__ __forceinline__ unsigned group_mask() {
  return G == 32 ? 0xffffffffu : ((1u << G) - 1u) << ((threadIdx.x & 31u) & ~(G - 1u));
}

}  // namespace ddpm::kernels
