// Device kernels of the built-in predictors (used through
// src/predictors/device_predictors.cpp): the element-wise Gaussian prior, when it is
// not fused into the reverse step, and the Gaussian mixture. Both answer in
// the prediction type asked for (step_rule.cuh: output_weights).
#include <algorithm>
#include <cstdint>

#include "cuda_check.h"
#include "element_group.cuh"
#include "gmm_math.cuh"
#include "grid.cuh"
#include "group_sum.cuh"
#include "launch.h"
#include "step_math.cuh"

namespace ddpm::kernels {
namespace {

// Field by field, so that neither parameter struct has its address taken
// (which would put both on a stack frame).
__device__ inline PriorView select(bool first, const PriorView& a, const PriorView& b) {
  return {first ? a.mean : b.mean, first ? a.var : b.var, first ? a.means : b.means,
          first ? a.vars : b.vars};
}
__device__ inline GmmParams select(bool first, const GmmParams& a, const GmmParams& b) {
  return {first ? a.dim : b.dim, first ? a.components : b.components,
          first ? a.log_weights : b.log_weights, first ? a.means : b.means,
          first ? a.vars : b.vars};
}

// 8 bytes per element (x in, model output out).
template <bool Vec, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) gaussian_output_kernel(GaussianOutputArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    const StepAB ab = a.steps != nullptr ? a.table[a.steps[e.row]] : a.step;
    const OutputWeights w = output_weights(a.prediction_type, ab.a, ab.b);
    const float4 x = load_group<Vec>(a.x_t + e.base, e.count);
    // A value, not a reference: a reference into either kernel parameter
    // would copy both parameter structs to a stack frame.
    const PriorView prior =
        select(a.labels != nullptr && a.labels[e.row] == -1, a.unconditional_prior, a.prior);
    float4 mean = make_float4(prior.mean, prior.mean, prior.mean, prior.mean);
    float4 var = make_float4(prior.var, prior.var, prior.var, prior.var);
    if (prior.means != nullptr) {
      mean = load_group<Vec>(prior.means + 4 * e.group, e.count);
      var = load_group<Vec>(prior.vars + 4 * e.group, e.count);
    }
    store_group<Vec>(
        a.output + e.base, e.count,
        map4([&](float xv, float m, float v) { return gaussian_model_output(xv, m, v, ab.a, ab.b, w); },
             x, mean, var));
  }
}

// The K per-component constants of the batch's step (gmm_math.cuh).
__global__ void gmm_step_constants_kernel(GmmOutputArgs a) {
  const OutputWeights w = output_weights(a.prediction_type, a.step.a, a.step.b);
  for (int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); k < a.params.components;
       k += static_cast<int>(gridDim.x * blockDim.x)) {
    a.step_constants[k] = gmm_component_step(a.params, k, a.step.a, a.step.b, w);
  }
  if (a.unconditional_constants == nullptr) return;
  for (int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); k < a.unconditional.components;
       k += static_cast<int>(gridDim.x * blockDim.x)) {
    a.unconditional_constants[k] = gmm_component_step(a.unconditional, k, a.step.a, a.step.b, w);
  }
}

// One row per group of G lanes of a warp (G a power of two up to 32): small
// rows take one thread each, long rows a whole warp. All lanes of a group
// share the row, so they take the same branches and reach every shuffle.
template <int G>
__global__ void __launch_bounds__(kMaxBlockSize) gmm_output_kernel(GmmOutputArgs a) {
  const int lane = static_cast<int>(threadIdx.x) & (G - 1);
  const unsigned mask = group_mask<G>();
  const std::int64_t first = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x / G;
  for (std::int64_t row = first; row < a.batch; row += stride) {
    const bool own_step = a.steps != nullptr;
    const StepAB ab = own_step ? a.table[a.steps[row]] : a.step;
    const OutputWeights w = output_weights(a.prediction_type, ab.a, ab.b);
    const bool unconditional = a.labels != nullptr && a.labels[row] == -1;
    gmm_row_output(a.x_t + row * a.dim, a.output + row * a.dim,
                   select(unconditional, a.unconditional, a.params),
                   own_step ? nullptr : (unconditional ? a.unconditional_constants : a.step_constants),
                   ab.a, ab.b, w, lane, G, GroupSum<G>{mask}, nullptr);
  }
}

}  // namespace

void launch_gaussian_output(const GaussianOutputArgs& args, const LaunchConfig& config,
                            cudaStream_t stream) {
  const unsigned blocks = grid_blocks(args.batch * groups_per_row(args.dim), config);
  const bool vec = config.vectorize && args.dim % 4 == 0 && aligned16(args.x_t) &&
                   aligned16(args.output) && aligned16(args.prior.means) &&
                   aligned16(args.prior.vars);
  dispatch_bool(vec, [&](auto v) {
    dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
      gaussian_output_kernel<decltype(v)::value, typename decltype(index)::type>
          <<<blocks, config.block_size, 0, stream>>>(args);
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("gaussian_output_kernel");
}

void launch_gmm_output(const GmmOutputArgs& args, const LaunchConfig& config, cudaStream_t stream) {
  if (args.steps == nullptr) {
    const int components = std::max(args.params.components, args.unconditional.components);
    gmm_step_constants_kernel<<<(components + 127) / 128, 128, 0, stream>>>(args);
    DDPM_CUDA_CHECK_LAUNCH("gmm_step_constants_kernel");
  }
  // About four elements per lane: D <= 4 one lane, D <= 8 two, ..., D > 64 a warp.
  const int lanes = lanes_per_row(args.dim);
  const unsigned blocks = grid_blocks(args.batch * lanes, config);
  dispatch_lanes(lanes, [&](auto g) {
    gmm_output_kernel<decltype(g)::value><<<blocks, config.block_size, 0, stream>>>(args);
  });
  DDPM_CUDA_CHECK_LAUNCH("gmm_output_kernel");
}

}  // namespace ddpm::kernels
