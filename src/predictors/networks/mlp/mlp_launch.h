#pragma once
// Host-side entry points of the MLP denoiser's element-wise kernels
// (kernels/mlp_kernels.cu), used by src/cuda/mlp_device.cpp between its
// cuBLAS GEMMs. Pointers are device pointers; each launcher enqueues on
// `stream`, never synchronises, and checks its launch.
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/launch.h"

namespace ddpm::kernels {

// Per row: h += bias; a = LayerNorm(h) gamma + beta, then silu(a) when `silu`.
struct BiasLayerNormArgs {
  float* h = nullptr;            // batch x dim, updated in place
  const float* bias = nullptr;   // dim
  float* a = nullptr;            // batch x dim
  const float* gamma = nullptr;  // dim
  const float* beta = nullptr;   // dim
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  float eps = 1e-5f;
  bool silu = false;
};
void launch_bias_layer_norm(const BiasLayerNormArgs& args, const LaunchConfig& config,
                            cudaStream_t stream);

// u = silu(u + time_condition[step(row)] + class_condition[label_row(row)]).
// A row whose step is outside [0, steps) or whose label is not valid gets NaN.
struct ConditionedSiluArgs {
  float* u = nullptr;                      // batch x hidden
  const float* time_condition = nullptr;   // steps x hidden (one block's table)
  const float* class_condition = nullptr;  // label_rows x hidden
  std::int64_t batch = 0;
  std::int64_t hidden = 0;
  const std::int32_t* steps = nullptr;     // per row, or null: `step`
  int step = 0;
  int step_count = 0;
  const std::int32_t* labels = nullptr;    // per row, or null: `label`
  std::int32_t label = 0;
  int num_classes = 0;                     // 0: unconditional, label must be -1 (row 0)
};
void launch_conditioned_silu(const ConditionedSiluArgs& args, const LaunchConfig& config,
                             cudaStream_t stream);

// y[row] += bias for every row of batch x dim.
void launch_add_bias(float* y, const float* bias, std::int64_t batch, std::int64_t dim,
                     const LaunchConfig& config, cudaStream_t stream);

// y = silu(y + bias), n elements.
void launch_bias_silu(float* y, const float* bias, std::int64_t n, const LaunchConfig& config,
                      cudaStream_t stream);

// The timestep embedding of one (fractional) time t: 2 half floats into `out`
// (timestep_embedding_pair in mlp_math.cuh has the arguments).
struct TimestepEmbeddingArgs {
  float* out = nullptr;
  float t = 0.0f;
  int half = 0;
  float minus_log_period = 0.0f;
  float divisor = 1.0f;
  float scale = 1.0f;
  bool flip_sin_to_cos = true;
};
void launch_timestep_embedding(const TimestepEmbeddingArgs& args, const LaunchConfig& config,
                               cudaStream_t stream);

}  // namespace ddpm::kernels
