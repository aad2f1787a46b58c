// The sampling kernels: initial noise, forward q(x_t | x0), one-step forward
// q(x_t | x_{t-1}), the reverse step, and the reverse step fused with the
// element-wise Gaussian predictor. They are in one translation unit because
// they share the constant-memory schedule arena (constant_schedule.cuh).
//
// Every kernel is a grid-stride loop over element groups (element_group.cuh):
// one thread, one group of up to 4 elements of one sample, one curand_normal4
// call when noise is drawn. A group's result depends only on its indices, so
// any grid and block size gives the same bits.
//
// Bytes per element (float32): initial noise 4 (write); forward 8 with drawn
// noise (x0 in, x_t out), +4 per optional output, +4 with given noise;
// reverse 12 (x_t, eps in, x_{t-1} out); fused 8 (x in and out).
#include <cstdint>

#include "constant_schedule.cuh"
#include "cuda/check.h"
#include "element_group.cuh"
#include "grid.cuh"
#include "launch.h"
#include "noise.cuh"
#include "step_math.cuh"

namespace ddpm::kernels {
namespace {

template <bool Vec, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize)
    initial_noise_kernel(float* x, std::int64_t batch, std::int64_t dim_, NoiseParams noise) {
  const Index dim = static_cast<Index>(dim_);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(batch) * gpr;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    const float4 z = normal4(noise.seed, static_cast<std::uint64_t>(noise.first_sample) + e.row,
                             NoiseStream::initial, 0u, e.group);
    store_group<Vec>(x + e.base, e.count, z);
  }
}

template <bool Vec, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) forward_kernel(ForwardArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  const bool per_sample = a.steps != nullptr;
  const StepCoefficients uniform_c =
      per_sample ? StepCoefficients{} : forward_coefficients(a.schedule, a.step, true);
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    int t = a.step;
    StepCoefficients c = uniform_c;
    if (per_sample) {
      t = a.steps[e.row];
      c = forward_coefficients(a.schedule, t, false);
    }
    const float4 x0 = load_group<Vec>(a.x0 + e.base, e.count);
    const float4 eps =
        a.eps != nullptr
            ? load_group<Vec>(a.eps + e.base, e.count)
            : normal4(a.noise.seed, static_cast<std::uint64_t>(a.noise.first_sample) + e.row,
                      NoiseStream::forward, static_cast<std::uint32_t>(t), e.group);
    store_group<Vec>(a.x_t + e.base, e.count,
                     map4([&](float x, float n) { return forward_noise(x, n, c); }, x0, eps));
    if (a.eps_out != nullptr) store_group<Vec>(a.eps_out + e.base, e.count, eps);
    if (a.velocity_out != nullptr) {
      store_group<Vec>(a.velocity_out + e.base, e.count,
                       map4([&](float x, float n) { return velocity_target(x, n, c); }, x0, eps));
    }
  }
}

template <bool Vec, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) forward_one_step_kernel(ForwardOneStepArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  StepCoefficients c{};
  c.sqrt_alpha = __ldg(&a.schedule.table[a.step].sqrt_alpha);
  c.sqrt_beta = __ldg(&a.schedule.table[a.step].sqrt_beta);
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    const float4 x_prev = load_group<Vec>(a.x_prev + e.base, e.count);
    const float4 eps =
        a.eps != nullptr
            ? load_group<Vec>(a.eps + e.base, e.count)
            : normal4(a.noise.seed, static_cast<std::uint64_t>(a.noise.first_sample) + e.row,
                      NoiseStream::forward_one_step, static_cast<std::uint32_t>(a.step), e.group);
    store_group<Vec>(a.x_t + e.base, e.count,
                     map4([&](float x, float n) { return forward_one_step(x, n, c); }, x_prev, eps));
  }
}

// x_{t-1} for one group: draws z for (sample, group, step) unless `draw` is
// false (t = 0) and stores reverse_step(x, eps, z) at out + e.base.
template <bool Vec, typename Index>
__device__ __forceinline__ void store_reverse_step(float* out, const ElementGroup<Index>& e,
                                                   float4 x, float4 eps, const StepCoefficients& c,
                                                   const ClipSettings& clip, bool draw,
                                                   NoiseParams noise, int step) {
  float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (draw) {
    z = normal4(noise.seed, static_cast<std::uint64_t>(noise.first_sample) + e.row,
                NoiseStream::reverse, static_cast<std::uint32_t>(step), e.group);
  }
  store_group<Vec>(
      out + e.base, e.count,
      map4([&](float xv, float ev, float zv) { return reverse_step(xv, ev, zv, c, clip); }, x, eps,
           z));
}

template <bool Vec, bool Clipped, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) reverse_kernel(ReverseArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  const StepCoefficients c = reverse_coefficients<Clipped>(a.schedule, a.step);
  ClipSettings clip = a.clip;
  clip.enabled = Clipped;
  const bool draw = c.sigma != 0.0f;  // false at t = 0: no z, no RNG
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    const float4 x = load_group<Vec>(a.x_t + e.base, e.count);
    const float4 eps = load_group<Vec>(a.eps + e.base, e.count);
    store_reverse_step<Vec>(a.x_prev, e, x, eps, c, clip, draw, a.noise, a.step);
  }
}

template <bool Vec, bool Clipped, bool PerElement, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) fused_gaussian_reverse_kernel(FusedGaussianArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  const StepCoefficients c = reverse_coefficients<Clipped>(a.schedule, a.step);
  ClipSettings clip = a.clip;
  clip.enabled = Clipped;
  const bool draw = c.sigma != 0.0f;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    const float4 x = load_group<Vec>(a.x + e.base, e.count);
    float4 mean = make_float4(a.prior.mean, a.prior.mean, a.prior.mean, a.prior.mean);
    float4 var = make_float4(a.prior.var, a.prior.var, a.prior.var, a.prior.var);
    if constexpr (PerElement) {
      mean = load_group<Vec>(a.prior.means + 4 * e.group, e.count);
      var = load_group<Vec>(a.prior.vars + 4 * e.group, e.count);
    }
    const float4 eps = map4(
        [&](float xv, float m, float v) { return gaussian_prior_eps(xv, m, v, c); }, x, mean, var);
    store_reverse_step<Vec>(a.x, e, x, eps, c, clip, draw, a.noise, a.step);
  }
}

bool use_vector_path(const LaunchConfig& config, std::int64_t dim,
                     std::initializer_list<const void*> pointers) {
  if (!config.vectorize || dim % 4 != 0) return false;
  for (const void* p : pointers) {
    if (!aligned16(p)) return false;
  }
  return true;
}

}  // namespace

void launch_initial_noise(float* x, std::int64_t batch, std::int64_t dim, NoiseParams noise,
                          const LaunchConfig& config, cudaStream_t stream) {
  const unsigned blocks = grid_blocks(batch * groups_per_row(dim), config);
  dispatch_bool(use_vector_path(config, dim, {x}), [&](auto vec) {
    dispatch_index(fits_32bit(batch, dim), [&](auto index) {
      initial_noise_kernel<decltype(vec)::value, typename decltype(index)::type>
          <<<blocks, config.block_size, 0, stream>>>(x, batch, dim, noise);
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("initial_noise_kernel");
}

void launch_forward(const ForwardArgs& args, const LaunchConfig& config, cudaStream_t stream) {
  const unsigned blocks = grid_blocks(args.batch * groups_per_row(args.dim), config);
  const bool vec = use_vector_path(config, args.dim,
                                   {args.x0, args.eps, args.x_t, args.eps_out, args.velocity_out});
  dispatch_bool(vec, [&](auto v) {
    dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
      forward_kernel<decltype(v)::value, typename decltype(index)::type>
          <<<blocks, config.block_size, 0, stream>>>(args);
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("forward_kernel");
}

void launch_forward_one_step(const ForwardOneStepArgs& args, const LaunchConfig& config,
                             cudaStream_t stream) {
  const unsigned blocks = grid_blocks(args.batch * groups_per_row(args.dim), config);
  const bool vec = use_vector_path(config, args.dim, {args.x_prev, args.eps, args.x_t});
  dispatch_bool(vec, [&](auto v) {
    dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
      forward_one_step_kernel<decltype(v)::value, typename decltype(index)::type>
          <<<blocks, config.block_size, 0, stream>>>(args);
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("forward_one_step_kernel");
}

void launch_reverse(const ReverseArgs& args, const LaunchConfig& config, cudaStream_t stream) {
  const unsigned blocks = grid_blocks(args.batch * groups_per_row(args.dim), config);
  const bool vec = use_vector_path(config, args.dim, {args.x_t, args.eps, args.x_prev});
  dispatch_bool(vec, [&](auto v) {
    dispatch_bool(args.clip.enabled, [&](auto clipped) {
      dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
        reverse_kernel<decltype(v)::value, decltype(clipped)::value,
                       typename decltype(index)::type>
            <<<blocks, config.block_size, 0, stream>>>(args);
      });
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("reverse_kernel");
}

void launch_fused_gaussian_reverse(const FusedGaussianArgs& args, const LaunchConfig& config,
                                   cudaStream_t stream) {
  const unsigned blocks = grid_blocks(args.batch * groups_per_row(args.dim), config);
  const bool vec = use_vector_path(config, args.dim, {args.x, args.prior.means, args.prior.vars});
  dispatch_bool(vec, [&](auto v) {
    dispatch_bool(args.clip.enabled, [&](auto clipped) {
      dispatch_bool(args.prior.means != nullptr, [&](auto per_element) {
        dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
          fused_gaussian_reverse_kernel<decltype(v)::value, decltype(clipped)::value,
                                        decltype(per_element)::value,
                                        typename decltype(index)::type>
              <<<blocks, config.block_size, 0, stream>>>(args);
        });
      });
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("fused_gaussian_reverse_kernel");
}

int constant_arena_floats() { return kConstantArenaFloats; }

void upload_constant_records(int offset, const float* records, int count, cudaStream_t stream) {
  if (offset < 0 || count < 0 || offset + count > kConstantArenaFloats) {
    ddpm::detail::cuda::check(cudaErrorInvalidValue, "upload_constant_records (range)", __FILE__,
                              __LINE__);
  }
  DDPM_CUDA_CHECK(cudaMemcpyToSymbolAsync(c_schedule_arena, records, sizeof(float) * count,
                                          sizeof(float) * offset, cudaMemcpyHostToDevice, stream));
}

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attributes{};
  const cudaError_t error =
      cudaFuncGetAttributes(&attributes, reverse_kernel<false, false, std::uint32_t>);
  if (error != cudaSuccess) cudaGetLastError();
  return error;
}

}  // namespace ddpm::kernels
