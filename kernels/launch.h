#pragma once
// Host-side entry points of the CUDA kernels, callable from plain C++ (the
// kernels themselves are in kernels/*.cu). Pointers are device pointers; each
// launcher enqueues on `stream`, never synchronises, and checks its launch
// (ddpm::CudaError on failure).
#include <cstdint>

#include <cuda_runtime_api.h>

#include "step_coefficients.cuh"
#include "step_views.h"
#include "step_rule.cuh"
#include "gmm_math.cuh"

namespace ddpm::kernels {

// Threads per block and the grid cap of the grid-stride kernels. Any values
// give the same bits: every element's result depends only on its indices.
struct LaunchConfig {
  int block_size = 256;  // a multiple of 32, at most kMaxBlockSize
  int max_blocks = 1;    // grid cap (the engine fills the device once)
  bool vectorize = true; // float4 path when dim % 4 == 0 and pointers are 16-byte aligned
};
inline constexpr int kMaxBlockSize = 512;

// Where the reverse-step records of one engine live (step_rule.cuh): one
// record per plan position, always in global memory and, when the engine got
// a region of the constant arena, also at float offset constant_offset there.
struct StepView {
  int constant_offset = -1;        // -1: read the global copy
  const float* records = nullptr;  // positions x width floats, global
  int width = kRecordWidthPlain;   // record_width(full)
};

// x = scale * N(0, I) from NoiseStream::initial at step 0 (x_T of the
// reverse loop; scale is the rule's initial noise scale).
void launch_initial_noise(float* x, std::int64_t batch, std::int64_t dim, NoiseParams noise,
                          float scale, const LaunchConfig& config, cudaStream_t stream);

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
  const ForwardCoefficients* table = nullptr;  // by timestep, global
};
void launch_forward(const ForwardArgs& args, const LaunchConfig& config, cudaStream_t stream);

struct ForwardOneStepArgs {
  const float* x_prev = nullptr;
  const float* eps = nullptr;  // null: draw from NoiseStream::forward_one_step
  int step = 0;
  float* x_t = nullptr;
  float* eps_out = nullptr;    // optional
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  NoiseParams noise;
  const ForwardCoefficients* table = nullptr;
};
void launch_forward_one_step(const ForwardOneStepArgs& args, const LaunchConfig& config,
                             cudaStream_t stream);

// One reverse step of the rule at plan position `position` (timestep
// `timestep` keys the noise). x_prev may be x_t (in place; the fused path);
// other overlaps are not allowed.
struct ReverseArgs {
  const float* x_t = nullptr;
  float* x_prev = nullptr;
  ModelView model;
  const float* variance_noise = nullptr;  // given z, or null: drawn where sigma != 0
  float* x0_out = nullptr;                // optional: x0_hat after processing (needs full records)
  // Multistep history: the previous step's x0_hat, read where the record has
  // that term, and this step's, written (may be the same array; with a
  // model-output buffer writing needs full records).
  const float* history_in = nullptr;
  float* history_out = nullptr;
  int position = 0;
  int timestep = 0;  // keys the noise (the step's noise_step)
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  NoiseParams noise;
  StepView steps;  // full records when x0.mode != none or x0_out is set
  X0View x0;
};
void launch_reverse(const ReverseArgs& args, const LaunchConfig& config, cudaStream_t stream);

// One step of a rule with a deeper history (dpmpp_3m, unipc, heun; see
// step_rule.cuh DeepRecord) from a model-output buffer, element by element
// (kernels::deep_step_element, shared with the CPU backend). x_prev may be
// x_t. `history` holds x0_slots slots of [batch, dim] and then, with
// last_sample, the previous sample; it is read where the record has those
// terms and shifted in place. Where the record's sigma != 0 (DPM-Solver++(3M)
// SDE) the step adds sigma z: the given variance noise, or the draw of
// NoiseStream::reverse at `timestep` (the step's noise_step).
struct DeepStepArgs {
  const float* x_t = nullptr;
  float* x_prev = nullptr;
  ModelView model;  // a buffer (output != null), guided or not
  const float* variance_noise = nullptr;
  int timestep = 0;
  NoiseParams noise;
  float* x0_out = nullptr;  // optional
  float* history = nullptr;
  int x0_slots = 0;
  bool last_sample = false;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  StepRecord record;  // the step's float record (x0_hat's conversion)
  DeepRecord deep;
  X0View x0;
};
void launch_deep_step(const DeepStepArgs& args, const LaunchConfig& config, cudaStream_t stream);

// Dynamic thresholding's s for every row (one block per row, radix selection
// of the quantile of |x0_hat|; see src/core/threshold.h): row_scale[row] for the
// step at `position`, from x_t and the model.
struct ThresholdArgs {
  const float* x_t = nullptr;
  ModelView model;
  int position = 0;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  StepView steps;  // full records
  std::int64_t lower = 0;  // the quantile's lower order statistic (0-based)
  float weight = 0.0f;     // the weight of the next one
  float max_value = 1.0f;  // s is clamped to [1, max_value]
  float* row_scale = nullptr;
};
void launch_threshold_scales(const ThresholdArgs& args, cudaStream_t stream);

// guidance_rescale's factor of every row (one block per row):
// rescale * std(c) / std(u + w (c - u)) + (1 - rescale), 1 where the guided
// output is constant (src/core/guidance.h).
struct GuidanceFactorArgs {
  const float* output = nullptr;  // 2 x batch rows: conditional, then unconditional
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  float guidance_scale = 1.0f;
  float rescale = 0.0f;
  float* row_factor = nullptr;
};
void launch_guidance_factors(const GuidanceFactorArgs& args, cudaStream_t stream);

// The constant arena (kernels/constant_schedule.cuh): its size in floats, and
// an upload of `count` floats to float offset `offset` of the current
// device's arena, ordered on `stream` (`records` may be freed on return).
int constant_arena_floats();
void upload_constant_records(int offset, const float* records, int count, cudaStream_t stream);

// Whether this build holds code that the current device can run (checked once
// by cuda_device_usable): cudaSuccess or the error of looking a kernel up.
cudaError_t probe_kernel_image();

// ---- predictors (kernels/predictor_kernels.cu) ----

// sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) of one timestep.
struct StepAB {
  float a = 0.0f;
  float b = 0.0f;
};

struct GaussianOutputArgs {
  const float* x_t = nullptr;
  float* output = nullptr;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  int prediction_type = 0;
  StepAB step;                          // used when steps is null
  const std::int32_t* steps = nullptr;  // per-sample timesteps...
  const StepAB* table = nullptr;        // ...looked up here (by timestep)
  PriorView prior;
  // Rows labelled kUnconditionalLabel (-1) take this prior instead.
  const std::int32_t* labels = nullptr;
  PriorView unconditional_prior;
};
void launch_gaussian_output(const GaussianOutputArgs& args, const LaunchConfig& config,
                            cudaStream_t stream);

struct GmmOutputArgs {
  const float* x_t = nullptr;
  float* output = nullptr;
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  GmmParams params;                     // device tables
  int prediction_type = 0;
  StepAB step;
  GmmComponentStep* step_constants = nullptr;  // K, device scratch for the uniform step
  const std::int32_t* steps = nullptr;
  const StepAB* table = nullptr;
  // Rows labelled kUnconditionalLabel (-1) take this mixture instead.
  const std::int32_t* labels = nullptr;
  GmmParams unconditional;
  GmmComponentStep* unconditional_constants = nullptr;
};
void launch_gmm_output(const GmmOutputArgs& args, const LaunchConfig& config, cudaStream_t stream);

}  // namespace ddpm::kernels
