#pragma once
// The body of the CPU kernels; included once per instruction set, inside a
// namespace of its own, by cpu_kernels_generic.cpp and cpu_kernels_avx2.cpp.
// Loops run over fixed-size blocks on local arrays so that GCC vectorises the
// Philox rounds, the Box-Muller transform and the update. No standard-library
// templates here: their out-of-line copies would be shared between the
// instruction sets (see kernels/host_device.cuh).
#include <cmath>

#include "../../kernels/philox.cuh"
#include "../../kernels/step_math.cuh"
#include "cpu_kernels.h"
#include "fast_math.h"

namespace DDPM_CPU_KERNELS_NAMESPACE {

using ddpm::cpu::kBlock;
using ddpm::cpu::kSegment;
using ddpm::cpu::NoiseRow;
using ddpm::cpu::Segment;
namespace k = ddpm::kernels;

constexpr int kGroups = kBlock / 4;

// The 256 normals of block [first_group, first_group + 64) groups of a row,
// exactly as curand_init(seed, sample, 4 * counter) + curand_normal4 draws
// them (up to float rounding in log/sin/cos).
[[gnu::always_inline]] inline void normals_block(NoiseRow row, std::uint32_t tag, std::uint32_t first_group,
                          float* __restrict z) {
  const auto k0 = static_cast<std::uint32_t>(row.seed);
  const auto k1 = static_cast<std::uint32_t>(row.seed >> 32);
  const auto s0 = static_cast<std::uint32_t>(row.sample);
  const auto s1 = static_cast<std::uint32_t>(row.sample >> 32);
  alignas(64) std::uint32_t r0[kGroups], r1[kGroups], r2[kGroups], r3[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    const k::Philox4 r = k::philox4x32_10(first_group + static_cast<std::uint32_t>(g), tag, s0, s1,
                                          k0, k1);
    r0[g] = r.v[0];
    r1[g] = r.v[1];
    r2[g] = r.v[2];
    r3[g] = r.v[3];
  }
  alignas(64) float a_sin[kGroups], a_cos[kGroups], b_sin[kGroups], b_cos[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    const float radius_a = __builtin_sqrtf(-2.0f * ddpm::cpu::fast_log(k::philox_uniform(r0[g])));
    const float radius_b = __builtin_sqrtf(-2.0f * ddpm::cpu::fast_log(k::philox_uniform(r2[g])));
    float sa, ca, sb, cb;
    ddpm::cpu::fast_sincos(k::philox_angle(r1[g]), sa, ca);
    ddpm::cpu::fast_sincos(k::philox_angle(r3[g]), sb, cb);
    a_sin[g] = sa * radius_a;
    a_cos[g] = ca * radius_a;
    b_sin[g] = sb * radius_b;
    b_cos[g] = cb * radius_b;
  }
  for (int g = 0; g < kGroups; ++g) {
    z[4 * g + 0] = a_sin[g];
    z[4 * g + 1] = a_cos[g];
    z[4 * g + 2] = b_sin[g];
    z[4 * g + 3] = b_cos[g];
  }
}

[[gnu::always_inline]] inline std::uint32_t noise_tag(k::NoiseStream stream, std::uint32_t step) {
  return static_cast<std::uint32_t>(k::noise_counter(stream, step, 0) >> 32);
}

[[gnu::always_inline]] inline std::uint32_t first_group_of(std::int64_t element) {
  return static_cast<std::uint32_t>(element / 4);
}

[[gnu::always_inline]] inline std::int64_t block_length(std::int64_t b, Segment seg) {
  return seg.end - b < kBlock ? seg.end - b : kBlock;
}

[[gnu::always_inline]] inline void fill_zero(float* z) {
  for (std::int64_t i = 0; i < kBlock; ++i) z[i] = 0.0f;
}

void normals(NoiseRow row, k::NoiseStream stream, std::uint32_t step, Segment seg, float* out) {
  const std::uint32_t tag = noise_tag(stream, step);
  alignas(64) float z[kBlock];
  for (std::int64_t b = seg.begin; b < seg.end; b += kBlock) {
    const std::int64_t n = block_length(b, seg);
    normals_block(row, tag, first_group_of(b), z);
    for (std::int64_t i = 0; i < n; ++i) out[b + i] = z[i];
  }
}

void forward(NoiseRow row, Segment seg, const ddpm::cpu::ForwardSegment& a) {
  const std::uint32_t tag = noise_tag(a.stream, a.step);
  const k::StepCoefficients c = a.coefficients;
  alignas(64) float z[kBlock];
  for (std::int64_t b = seg.begin; b < seg.end; b += kBlock) {
    const std::int64_t n = block_length(b, seg);
    const float* eps = a.eps ? a.eps + b : z;
    if (!a.eps) normals_block(row, tag, first_group_of(b), z);
    const float* x0 = a.x0 + b;
    float* x_t = a.x_t + b;
    if (a.one_step) {
      for (std::int64_t i = 0; i < n; ++i) x_t[i] = k::forward_one_step(x0[i], eps[i], c);
    } else {
      for (std::int64_t i = 0; i < n; ++i) x_t[i] = k::forward_noise(x0[i], eps[i], c);
    }
    if (a.eps_out) {
      for (std::int64_t i = 0; i < n; ++i) a.eps_out[b + i] = eps[i];
    }
    if (a.velocity_out) {
      float* v = a.velocity_out + b;
      for (std::int64_t i = 0; i < n; ++i) v[i] = k::velocity_target(x0[i], eps[i], c);
    }
  }
}

void reverse(NoiseRow row, Segment seg, const ddpm::cpu::ReverseSegment& a) {
  const std::uint32_t tag = noise_tag(k::NoiseStream::reverse, a.step);
  const k::StepCoefficients c = a.coefficients;
  const k::ClipSettings clip = a.clip;
  alignas(64) float z[kBlock];
  const bool draw = c.sigma != 0.0f;
  if (!draw) fill_zero(z);
  for (std::int64_t b = seg.begin; b < seg.end; b += kBlock) {
    const std::int64_t n = block_length(b, seg);
    if (draw) normals_block(row, tag, first_group_of(b), z);
    const float* x_t = a.x_t + b;
    const float* eps = a.eps + b;
    float* x_prev = a.x_prev + b;
    for (std::int64_t i = 0; i < n; ++i) x_prev[i] = k::reverse_step(x_t[i], eps[i], z[i], c, clip);
  }
}

template <bool kClip>
void fused_gaussian_loop(NoiseRow row, Segment seg, const ddpm::cpu::FusedGaussianSegment& a) {
  // Per-element prior tables for this segment, so that one loop serves the
  // scalar and the per-element prior.
  const std::int64_t length = seg.end - seg.begin;
  alignas(64) float means[kSegment];
  alignas(64) float vars[kSegment];
  for (std::int64_t i = 0; i < length; ++i) {
    means[i] = a.means ? a.means[seg.begin + i] : a.mean;
    const float s = a.stds ? a.stds[seg.begin + i] : a.std;
    vars[i] = s * s;
  }
  k::ClipSettings clip = a.clip;
  clip.enabled = kClip;
  alignas(64) float z[kBlock];
  for (int t = a.start_step; t >= 0; --t) {
    const k::StepCoefficients c = a.table[t];
    const std::uint32_t tag = noise_tag(k::NoiseStream::reverse, static_cast<std::uint32_t>(t));
    const bool draw = c.sigma != 0.0f;
    if (!draw) fill_zero(z);
    for (std::int64_t b = seg.begin; b < seg.end; b += kBlock) {
      const std::int64_t n = block_length(b, seg);
      if (draw) normals_block(row, tag, first_group_of(b), z);
      float* __restrict x = a.x + b;
      const float* __restrict mean = means + (b - seg.begin);
      const float* __restrict var = vars + (b - seg.begin);
      for (std::int64_t i = 0; i < n; ++i) {
        const float eps = k::gaussian_prior_eps(x[i], mean[i], var[i], c);
        x[i] = k::reverse_step(x[i], eps, z[i], c, clip);
      }
    }
  }
}

void fused_gaussian(NoiseRow row, Segment seg, const ddpm::cpu::FusedGaussianSegment& a) {
  if (a.clip.enabled) {
    fused_gaussian_loop<true>(row, seg, a);
  } else {
    fused_gaussian_loop<false>(row, seg, a);
  }
}

}  // namespace DDPM_CPU_KERNELS_NAMESPACE
