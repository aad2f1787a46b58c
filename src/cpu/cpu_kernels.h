#pragma once
// The CPU backend's hot loops, one row segment at a time. Compiled twice
// (portable and x86-64-v3) from cpu_kernels_impl.h; cpu_kernels() picks the
// best one this processor runs. A segment [begin, end) of a row starts on a
// multiple of kBlock, so that the noise groups of 4 elements line up, and is
// at most kSegment long.
#include <cstdint>

#include "../../kernels/noise_counter.cuh"
#include "../../kernels/step_coefficients.cuh"

namespace ddpm::cpu {

inline constexpr std::int64_t kBlock = 256;     // elements per inner block (64 noise groups)
inline constexpr std::int64_t kSegment = 4096;  // the longest segment a kernel takes (16 KiB)

// The Philox key and subsequence of one sample.
struct NoiseRow {
  std::uint64_t seed = 0;
  std::uint64_t sample = 0;  // global sample index
};

struct Segment {
  std::int64_t begin = 0;  // multiple of kBlock
  std::int64_t end = 0;
};

struct ForwardSegment {
  const float* x0 = nullptr;   // row pointers (element 0 of the row)
  const float* eps = nullptr;  // given noise, or null to draw it
  float* x_t = nullptr;
  float* eps_out = nullptr;    // optional
  float* velocity_out = nullptr;  // optional
  kernels::StepCoefficients coefficients;
  kernels::NoiseStream stream = kernels::NoiseStream::forward;
  std::uint32_t step = 0;
  bool one_step = false;       // q(x_t | x_{t-1}) instead of q(x_t | x0)
};

struct ReverseSegment {
  const float* x_t = nullptr;
  const float* eps = nullptr;
  float* x_prev = nullptr;  // may alias x_t
  kernels::StepCoefficients coefficients;
  kernels::ClipSettings clip;
  std::uint32_t step = 0;
};

// Runs the steps start .. 0 on one segment with the analytic Gaussian
// predictor fused in: the segment stays in cache for the whole loop.
struct FusedGaussianSegment {
  float* x = nullptr;
  const float* means = nullptr;  // per element, or null for `mean`
  const float* stds = nullptr;   // per element, or null for `std`
  float mean = 0.0f;
  float std = 1.0f;
  const kernels::StepCoefficients* table = nullptr;
  int start_step = 0;
  kernels::ClipSettings clip;
};

struct CpuKernels {
  const char* name;
  void (*normals)(NoiseRow row, kernels::NoiseStream stream, std::uint32_t step, Segment seg,
                  float* out);
  void (*forward)(NoiseRow row, Segment seg, const ForwardSegment& args);
  void (*reverse)(NoiseRow row, Segment seg, const ReverseSegment& args);
  void (*fused_gaussian)(NoiseRow row, Segment seg, const FusedGaussianSegment& args);
};

const CpuKernels& generic_kernels();
const CpuKernels& avx2_kernels();  // only in builds with DDPM_HAVE_AVX2_KERNELS
// The fastest set this processor supports (or DDPM_CPU_KERNELS=generic to force the portable one).
const CpuKernels& cpu_kernels();

}  // namespace ddpm::cpu
