#pragma once
// Grid-stride kernels here work on element groups: elements 4g .. 4g+3 of one
// row (sample), the unit that one curand_normal4 call covers. A row of `dim`
// elements has ceil(dim/4) groups; the last may be partial. Rows start on a
// 16-byte boundary only when dim % 4 == 0, so the Vec path (float4 loads and
// stores) is used only then, with 16-byte aligned pointers; otherwise the
// group is moved one float at a time.
#include <cstdint>

namespace ddpm::kernels {

template <typename Index>
struct ElementGroup {
  Index row;    // sample within the batch
  Index group;  // group within the row
  Index base;   // array index of the group's first element
  int count;    // elements in the group, 1..4
};

template <bool Vec, typename Index>
__device__ __forceinline__ ElementGroup<Index> element_group(Index linear, Index groups_per_row,
                                                             Index dim) {
  ElementGroup<Index> e;
  e.row = linear / groups_per_row;
  e.group = linear - e.row * groups_per_row;
  if constexpr (Vec) {
    e.base = 4 * linear;  // dim == 4 * groups_per_row
    e.count = 4;
  } else {
    e.base = e.row * dim + 4 * e.group;
    const Index left = dim - 4 * e.group;
    e.count = left < 4 ? static_cast<int>(left) : 4;
  }
  return e;
}

// Loads the group's elements from p + base (missing lanes read as 0).
template <bool Vec>
__device__ __forceinline__ float4 load_group(const float* p, int count) {
  if constexpr (Vec) {
    return *reinterpret_cast<const float4*>(p);
  } else {
    float4 v = make_float4(p[0], 0.0f, 0.0f, 0.0f);
    if (count > 1) v.y = p[1];
    if (count > 2) v.z = p[2];
    if (count > 3) v.w = p[3];
    return v;
  }
}

template <bool Vec>
__device__ __forceinline__ void store_group(float* p, int count, float4 v) {
  if constexpr (Vec) {
    *reinterpret_cast<float4*>(p) = v;
  } else {
    p[0] = v.x;
    if (count > 1) p[1] = v.y;
    if (count > 2) p[2] = v.z;
    if (count > 3) p[3] = v.w;
  }
}

// Applies f lane by lane.
template <typename F>
__device__ __forceinline__ float4 map4(F f, float4 a, float4 b) {
  return make_float4(f(a.x, b.x), f(a.y, b.y), f(a.z, b.z), f(a.w, b.w));
}
template <typename F>
__device__ __forceinline__ float4 map4(F f, float4 a, float4 b, float4 c) {
  return make_float4(f(a.x, b.x, c.x), f(a.y, b.y, c.y), f(a.z, b.z, c.z), f(a.w, b.w, c.w));
}
template <typename F>
__device__ __forceinline__ float4 map4(F f, float4 a, float4 b, float4 c, float4 d) {
  return make_float4(f(a.x, b.x, c.x, d.x), f(a.y, b.y, c.y, d.y), f(a.z, b.z, c.z, d.z),
                     f(a.w, b.w, c.w, d.w));
}

}  // namespace ddpm::kernels
