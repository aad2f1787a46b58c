#pragma once
// Host-side entry points of the CUDA kernels, callable from plain C++ (the
// kernels themselves are in kernels/*.cu). Pointers are device pointers; each
// launcher enqueues on `stream`, never synchronises, and checks its launch
// (ddpm::CudaError on failure).
#include <cstdint>

#include <cuda_runtime_api.h>

#include "step_coefficients.cuh"

namespace ddpm::kernels {

// Threads per block and the grid cap of the grid-stride kernels. Any values
// give the same bits: every element's result depends only on its indices.
struct LaunchConfig {
  int block_size = 256;  // a multiple of 32, at most kMaxBlockSize
  int max_blocks = 1;    // grid cap (the engine fills the device once)
  bool vectorize = true; // float4 path when dim % 4 == 0 and pointers are 16-byte aligned
};
inline constexpr int kMaxBlockSize = 512;

// Where the per-step coefficients of one engine live. The compact records
// (step_records.cuh) are always in global memory and, when the engine got a
// region of the constant arena, also at float offset constant_offset there.
struct ScheduleView {
  int constant_offset = -1;                  // -1: read the global copy
  const float* records = nullptr;            // steps x width floats, global
  const StepCoefficients* table = nullptr;   // the full table, global (forward_one_step)
  int width = 5;                             // record_width(clipped)
  int steps = 0;
};

struct NoiseParams {
  std::uint64_t seed = 0;
  std::int64_t first_sample = 0;
};

// Element-wise Gaussian prior of x0: per-element tables (dim floats each) or scalars.
struct PriorView {
  float mean = 0.0f;
  float var = 1.0f;
  const float* means = nullptr;  // both set, or both null
  const float* vars = nullptr;
};

// x = N(0, I) from NoiseStream::initial at step 0 (x_T of the reverse loop).
void launch_initial_noise(float* x, std::int64_t batch, std::int64_t dim, NoiseParams noise,
                          const LaunchConfig& config, cudaStream_t stream);

struct ForwardArgs {
  const float* x0 = nullptr;
  const float* eps = nullptr;         // null: draw from NoiseStream::forward at the sample's step
  const std::int32_t* steps = nullptr;  // null: `step` for every sample
  int step = 0;
  float* x_t = nullptr;
  float* eps_out = nullptr;           // optional
  float* velocity_out = nullptr;      // optional
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  NoiseParams noise;
  ScheduleView schedule;
};
void launch_forward(const ForwardArgs& args, const LaunchConfig& config, cudaStream_t stream);

struct ForwardOneStepArgs {
  const float* x_prev = nullptr;
  const float* eps = nullptr;  // null: draw from NoiseStream::forward_one_step
  int step = 0;
  float* x_t = nullptr;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  NoiseParams noise;
  ScheduleView schedule;
};
void launch_forward_one_step(const ForwardOneStepArgs& args, const LaunchConfig& config,
                             cudaStream_t stream);

// x_prev may be x_t (in place); other overlaps are not allowed.
struct ReverseArgs {
  const float* x_t = nullptr;
  const float* eps = nullptr;
  float* x_prev = nullptr;
  int step = 0;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  NoiseParams noise;
  ScheduleView schedule;
  ClipSettings clip;  // must match the record layout of `schedule`
};
void launch_reverse(const ReverseArgs& args, const LaunchConfig& config, cudaStream_t stream);

// One fused step: eps = gaussian_prior_eps(x, prior) and the reverse step, in place.
struct FusedGaussianArgs {
  float* x = nullptr;
  int step = 0;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  NoiseParams noise;
  ScheduleView schedule;
  ClipSettings clip;
  PriorView prior;
};
void launch_fused_gaussian_reverse(const FusedGaussianArgs& args, const LaunchConfig& config,
                                   cudaStream_t stream);

// The constant arena (kernels/constant_schedule.cuh): its size in floats, and
// an upload of `count` floats to float offset `offset` of the current
// device's arena, ordered on `stream` (`records` may be freed on return).
int constant_arena_floats();
void upload_constant_records(int offset, const float* records, int count, cudaStream_t stream);

// Whether this build holds code that the current device can run (checked once
// by cuda_device_usable): cudaSuccess or the error of looking a kernel up.
cudaError_t probe_kernel_image();

// ---- predictors (kernels/predictor_kernels.cu) ----

// sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) of one step.
struct StepAB {
  float a = 0.0f;
  float b = 0.0f;
};

struct GaussianEpsArgs {
  const float* x_t = nullptr;
  float* eps = nullptr;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  StepAB step;                          // used when steps is null
  const std::int32_t* steps = nullptr;  // per-sample steps...
  const StepAB* table = nullptr;        // ...looked up here
  PriorView prior;
};
void launch_gaussian_eps(const GaussianEpsArgs& args, const LaunchConfig& config,
                         cudaStream_t stream);

struct GmmEpsArgs {
  const float* x_t = nullptr;
  float* eps = nullptr;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  int components = 0;
  const float* log_weights = nullptr;  // K
  const float* means = nullptr;        // K x dim
  const float* vars = nullptr;         // K: s_k^2
  StepAB step;
  const std::int32_t* steps = nullptr;
  const StepAB* table = nullptr;
};
void launch_gmm_eps(const GmmEpsArgs& args, const LaunchConfig& config, cudaStream_t stream);

}  // namespace ddpm::kernels
