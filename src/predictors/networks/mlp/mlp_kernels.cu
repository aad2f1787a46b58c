// The element-wise kernels of the MLP denoiser (kernels/mlp_launch.h); the
// per-element math is src/predictors/networks/mlp/mlp_math.cuh, which the CPU forward pass runs too.
#include <cmath>
#include <cstdint>

#include "kernels/cuda_check.h"
#include "kernels/grid.cuh"
#include "kernels/group_sum.cuh"
#include "mlp_launch.h"
#include "mlp_math.cuh"

namespace ddpm::kernels {
namespace {

// One row per group of G lanes (see gmm_eps_kernel): all lanes of a group
// share the row and reach every shuffle of its reductions.
template <int G, bool Silu>
__global__ void __launch_bounds__(kMaxBlockSize) bias_layer_norm_kernel(BiasLayerNormArgs p) {
  const int lane = static_cast<int>(threadIdx.x) & (G - 1);
  const GroupSum<G> reduce{group_mask<G>()};
  const std::int64_t first = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x / G;
  for (std::int64_t row = first; row < p.batch; row += stride) {
    bias_layer_norm_row<Silu>(p.h + row * p.dim, p.bias, p.a + row * p.dim, p.gamma, p.beta, p.dim,
                              p.eps, lane, G, reduce);
  }
}

__global__ void __launch_bounds__(kMaxBlockSize) conditioned_silu_kernel(ConditionedSiluArgs p) {
  const std::int64_t total = p.batch * p.hidden;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t row = i / p.hidden;
    const std::int64_t k = i - row * p.hidden;
    const int t = p.steps != nullptr ? p.steps[row] : p.step;
    const std::int32_t label = p.labels != nullptr ? p.labels[row] : p.label;
    const bool valid_label = p.num_classes > 0 ? label >= 0 && label <= p.num_classes : label == -1;
    if (t < 0 || t >= p.step_count || !valid_label) {
      p.u[i] = NAN;
      continue;
    }
    const std::int64_t label_row = p.num_classes > 0 ? label : 0;
    p.u[i] = conditioned_silu(p.u[i], p.time_condition[t * p.hidden + k],
                              p.class_condition[label_row * p.hidden + k]);
  }
}

__global__ void __launch_bounds__(kMaxBlockSize) add_bias_kernel(float* y, const float* bias,
                                                                 std::int64_t batch, std::int64_t dim) {
  const std::int64_t total = batch * dim;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    y[i] += bias[i % dim];
  }
}

__global__ void __launch_bounds__(kMaxBlockSize) bias_silu_kernel(float* y, const float* bias,
                                                                  std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    y[i] = silu(y[i] + bias[i]);
  }
}

// One launch of half (64) threads per call at a fractional time. Exactness
// against the host's correctly rounded embedding matters more here than speed:
// the sines are in double (sin_cos_below_2_30 keeps them off the stack).
__global__ void __launch_bounds__(kMaxBlockSize) timestep_embedding_kernel(TimestepEmbeddingArgs p) {
  for (int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); k < p.half;
       k += static_cast<int>(gridDim.x * blockDim.x)) {
    timestep_embedding_pair(p.t, k, p.half, p.minus_log_period, p.divisor, p.scale,
                            p.flip_sin_to_cos, p.out);
  }
}

}  // namespace

void launch_bias_layer_norm(const BiasLayerNormArgs& args, const LaunchConfig& config,
                            cudaStream_t stream) {
  const int lanes = lanes_per_row(args.dim);
  const unsigned blocks = grid_blocks(args.batch * lanes, config);
  dispatch_lanes(lanes, [&](auto g) {
    dispatch_bool(args.silu, [&](auto silu) {
      bias_layer_norm_kernel<decltype(g)::value, decltype(silu)::value>
          <<<blocks, config.block_size, 0, stream>>>(args);
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("bias_layer_norm_kernel");
}

void launch_conditioned_silu(const ConditionedSiluArgs& args, const LaunchConfig& config,
                             cudaStream_t stream) {
  conditioned_silu_kernel<<<grid_blocks(args.batch * args.hidden, config), config.block_size, 0,
                            stream>>>(args);
  DDPM_CUDA_CHECK_LAUNCH("conditioned_silu_kernel");
}

void launch_add_bias(float* y, const float* bias, std::int64_t batch, std::int64_t dim,
                     const LaunchConfig& config, cudaStream_t stream) {
  add_bias_kernel<<<grid_blocks(batch * dim, config), config.block_size, 0, stream>>>(y, bias, batch,
                                                                                      dim);
  DDPM_CUDA_CHECK_LAUNCH("add_bias_kernel");
}

void launch_bias_silu(float* y, const float* bias, std::int64_t n, const LaunchConfig& config,
                      cudaStream_t stream) {
  bias_silu_kernel<<<grid_blocks(n, config), config.block_size, 0, stream>>>(y, bias, n);
  DDPM_CUDA_CHECK_LAUNCH("bias_silu_kernel");
}

void launch_timestep_embedding(const TimestepEmbeddingArgs& args, const LaunchConfig& config,
                               cudaStream_t stream) {
  timestep_embedding_kernel<<<grid_blocks(args.half, config), config.block_size, 0, stream>>>(args);
  DDPM_CUDA_CHECK_LAUNCH("timestep_embedding_kernel");
}

}  // namespace ddpm::kernels
