#pragma once
// The constant-memory arena that holds the per-step records (step_records.cuh)
// of every live CUDA engine on a device, and the loads the kernels use.
//
// Without relocatable device code a __constant__ array is visible only to the
// kernels of its own translation unit, so this header defines the arena and
// must be included by exactly one .cu: kernels/sampling_kernels.cu, which holds
// every kernel that reads a schedule. Regions are handed out on the host by
// src/cuda/constant_arena.cpp; a kernel gets its engine's region as a float
// offset (ScheduleView::constant_offset) or, when the engine has none, reads
// the same records from global memory.
//
// Capacity (README): the arena holds 15360 floats (60 KiB of the 64 KiB
// constant bank; the compiler's own constants use the rest). A region is
// T x 5 floats without x0 clipping, T x 7 with it, rounded up to 256 bytes.
// One engine fits for T <= 3072 (no clipping) or T <= 2194 (clipping); at the
// usual T = 1000 three unclipped or two clipped engines per device hold
// regions at once (T <= 1024: the same counts). Any other engine, or one
// constructed while the arena is full, reads the same records from global
// memory (L1/L2-cached broadcasts), with bit-identical results.
//
// Reads with a step t that is uniform across the warp (reverse, fused,
// forward with one t) are broadcasts from the constant cache. Per-sample t
// would serialise a warp's constant reads, so that path reads the global copy.
#include <cstdint>

#include "launch.h"
#include "step_records.cuh"

namespace ddpm::kernels {

// 60 KiB of the 64 KiB a module may hold; the rest stays free for the compiler.
inline constexpr int kConstantArenaFloats = 15 * 1024;

__constant__ float c_schedule_arena[kConstantArenaFloats];

// The reverse-step coefficients of step t (uniform across the grid).
template <bool Clipped>
__device__ __forceinline__ StepCoefficients reverse_coefficients(const ScheduleView& s, int t) {
  constexpr int kWidth = record_width(Clipped);
  float r[kWidth];
  if (s.constant_offset >= 0) {
    const int at = s.constant_offset + t * kWidth;
#pragma unroll
    for (int k = 0; k < kWidth; ++k) r[k] = c_schedule_arena[at + k];
  } else {
    const float* p = s.records + static_cast<std::int64_t>(t) * kWidth;
#pragma unroll
    for (int k = 0; k < kWidth; ++k) r[k] = __ldg(p + k);
  }
  return unpack_step_record<Clipped>(r);
}

// sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t): the first two fields of either
// layout. `uniform` says t is the same for the whole grid (constant path allowed).
__device__ __forceinline__ StepCoefficients forward_coefficients(const ScheduleView& s, int t,
                                                                 bool uniform) {
  StepCoefficients c{};
  if (uniform && s.constant_offset >= 0) {
    const int at = s.constant_offset + t * s.width;
    c.sqrt_alpha_bar = c_schedule_arena[at];
    c.sqrt_one_minus_alpha_bar = c_schedule_arena[at + 1];
  } else {
    const float* p = s.records + static_cast<std::int64_t>(t) * s.width;
    c.sqrt_alpha_bar = __ldg(p);
    c.sqrt_one_minus_alpha_bar = __ldg(p + 1);
  }
  return c;
}

}  // namespace ddpm::kernels
