#pragma once
// Host-side launch helpers shared by the kernel files: the grid of a
// grid-stride kernel, the alignment test of the float4 path, and the
// run-time to compile-time dispatch of kernel template parameters.
#include <cstdint>
#include <type_traits>

#include "launch.h"

namespace ddpm::kernels {

inline std::int64_t groups_per_row(std::int64_t dim) { return (dim + 3) / 4; }

// Blocks for `work` items, one per thread, capped at config.max_blocks.
inline unsigned grid_blocks(std::int64_t work, const LaunchConfig& config) {
  const std::int64_t needed = (work + config.block_size - 1) / config.block_size;
  const std::int64_t cap = config.max_blocks > 0 ? config.max_blocks : 1;
  return static_cast<unsigned>(needed < 1 ? 1 : (needed < cap ? needed : cap));
}

inline bool aligned16(const void* p) {
  return p == nullptr || reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// 32-bit indexing is used when every index of the array and of the grid-stride
// loop stays below 2^31.
inline bool fits_32bit(std::int64_t batch, std::int64_t dim) {
  return batch * groups_per_row(dim) * 4 < (std::int64_t{1} << 31) - (std::int64_t{1} << 28);
}

template <typename F>
void dispatch_bool(bool value, F&& f) {
  if (value) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// Lanes per row for row functions run by groups of lanes (gmm_math.cuh,
// mlp_math.cuh): about four elements per lane, a power of two up to a warp.
inline int lanes_per_row(std::int64_t dim) {
  int lanes = 1;
  while (lanes < 32 && 4 * lanes < dim) lanes *= 2;
  return lanes;
}

// Calls f(std::integral_constant<int, G>{}) with G = lanes (1, 2, ..., 32).
template <typename F>
void dispatch_lanes(int lanes, F&& f) {
  switch (lanes) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 16: f(std::integral_constant<int, 16>{}); break;
    default: f(std::integral_constant<int, 32>{}); break;
  }
}

template <typename T>
struct TypeTag {
  using type = T;
};

template <typename F>
void dispatch_index(bool small, F&& f) {
  if (small) {
    f(TypeTag<std::uint32_t>{});
  } else {
    f(TypeTag<std::uint64_t>{});
  }
}

}  // namespace ddpm::kernels
