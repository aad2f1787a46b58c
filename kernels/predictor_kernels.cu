// Device kernels of the built-in noise predictors (used through
// src/cuda/device_predictors.cpp): the element-wise Gaussian prior, when it is
// not fused into the reverse step, and the Gaussian mixture.
#include <cstdint>

#include "cuda/check.h"
#include "element_group.cuh"
#include "gmm_math.cuh"
#include "grid.cuh"
#include "group_sum.cuh"
#include "launch.h"
#include "step_math.cuh"

namespace ddpm::kernels {
namespace {

// eps = gaussian_prior_eps(x_t, mean, var): 8 bytes per element (x in, eps out).
template <bool Vec, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) gaussian_eps_kernel(GaussianEpsArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    const StepAB ab = a.steps != nullptr ? a.table[a.steps[e.row]] : a.step;
    StepCoefficients c{};
    c.sqrt_alpha_bar = ab.a;
    c.sqrt_one_minus_alpha_bar = ab.b;
    const float4 x = load_group<Vec>(a.x_t + e.base, e.count);
    float4 mean = make_float4(a.prior.mean, a.prior.mean, a.prior.mean, a.prior.mean);
    float4 var = make_float4(a.prior.var, a.prior.var, a.prior.var, a.prior.var);
    if (a.prior.means != nullptr) {
      mean = load_group<Vec>(a.prior.means + 4 * e.group, e.count);
      var = load_group<Vec>(a.prior.vars + 4 * e.group, e.count);
    }
    store_group<Vec>(
        a.eps + e.base, e.count,
        map4([&](float xv, float m, float v) { return gaussian_prior_eps(xv, m, v, c); }, x, mean,
             var));
  }
}

// One row per group of G lanes of a warp (G a power of two up to 32): small
// rows take one thread each, long rows a whole warp. All lanes of a group
// share the row, so they take the same branches and reach every shuffle.
template <int G>
__global__ void __launch_bounds__(kMaxBlockSize) gmm_eps_kernel(GmmEpsArgs a) {
  const int lane = static_cast<int>(threadIdx.x) & (G - 1);
  const unsigned mask = group_mask<G>();
  const GmmParams params{a.dim, a.components, a.log_weights, a.means, a.vars};
  const std::int64_t first = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x / G;
  for (std::int64_t row = first; row < a.batch; row += stride) {
    const StepAB ab = a.steps != nullptr ? a.table[a.steps[row]] : a.step;
    gmm_row_eps(a.x_t + row * a.dim, a.eps + row * a.dim, params, ab.a, ab.b, lane, G,
                GroupSum<G>{mask});
  }
}

}  // namespace

void launch_gaussian_eps(const GaussianEpsArgs& args, const LaunchConfig& config,
                         cudaStream_t stream) {
  const unsigned blocks = grid_blocks(args.batch * groups_per_row(args.dim), config);
  const bool vec = config.vectorize && args.dim % 4 == 0 && aligned16(args.x_t) &&
                   aligned16(args.eps) && aligned16(args.prior.means) &&
                   aligned16(args.prior.vars);
  dispatch_bool(vec, [&](auto v) {
    dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
      gaussian_eps_kernel<decltype(v)::value, typename decltype(index)::type>
          <<<blocks, config.block_size, 0, stream>>>(args);
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("gaussian_eps_kernel");
}

void launch_gmm_eps(const GmmEpsArgs& args, const LaunchConfig& config, cudaStream_t stream) {
  // About four elements per lane: D <= 4 one lane, D <= 8 two, ..., D > 64 a warp.
  const int lanes = lanes_per_row(args.dim);
  const unsigned blocks = grid_blocks(args.batch * lanes, config);
  dispatch_lanes(lanes, [&](auto g) {
    gmm_eps_kernel<decltype(g)::value><<<blocks, config.block_size, 0, stream>>>(args);
  });
  DDPM_CUDA_CHECK_LAUNCH("gmm_eps_kernel");
}

}  // namespace ddpm::kernels
