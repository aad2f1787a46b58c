#pragma once
// The constant-memory arena that holds the reverse-step records
// (step_rule.cuh) of every live CUDA engine on a device, and the loads the
// kernels use.
//
// Without relocatable device code a __constant__ array is visible only to the
// kernels of its own translation unit, so this header defines the arena and
// must be included by exactly one .cu: kernels/sampling_kernels.cu, which holds
// every kernel that reads the records. Regions are handed out on the host by
// src/backends/cuda/constant_arena.cpp; a kernel gets its engine's region as a float
// offset (StepView::constant_offset) or, when the engine has none, reads the
// same records from global memory.
//
// Capacity (README): the arena holds 15360 floats (60 KiB of the 64 KiB
// constant bank; the compiler's own constants use the rest). A region is one
// record per timestep of the sampler's plan, 9 floats without x0 processing
// and 13 with it (step_rule.cuh), rounded up to 256 bytes. One engine fits
// for up to 1706 timesteps (plain) or 1181 (full); at T = 1000 with every
// step one engine holds a region (two plain ones at T <= 850), and
// respaced samplers (50 steps: 450 or 650 floats) fit by the dozen. Any other engine, or one constructed
// while the arena is full, reads the same records from global memory
// (L1/L2-cached broadcasts), with bit-identical results.
//
// Every read is at a plan position uniform across the grid, so it is a
// broadcast from the constant cache.
#include <cstdint>

#include "launch.h"
#include "step_rule.cuh"

namespace ddpm::kernels {

// 60 KiB of the 64 KiB a module may hold; the rest stays free for the compiler.
inline constexpr int kConstantArenaFloats = 15 * 1024;

__constant__ float c_schedule_arena[kConstantArenaFloats];

// The record of plan position `position` (uniform across the grid).
template <bool Full>
__device__ __forceinline__ StepRecord step_record(const StepView& s, int position) {
  constexpr int kWidth = record_width(Full);
  float r[kWidth];
  if (s.constant_offset >= 0) {
    const int at = s.constant_offset + position * kWidth;
#pragma unroll
    for (int k = 0; k < kWidth; ++k) r[k] = c_schedule_arena[at + k];
  } else {
    const float* p = s.records + static_cast<std::int64_t>(position) * kWidth;
#pragma unroll
    for (int k = 0; k < kWidth; ++k) r[k] = __ldg(p + k);
  }
  return unpack_step_record<Full>(r);
}

}  // namespace ddpm::kernels
