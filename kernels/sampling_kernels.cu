// The sampling kernels: initial noise, forward q(x_t | x0), one-step forward
// q(x_t | x_{t-1}), the reverse step of every step rule (with the model
// output read from a buffer or, fused, the analytic Gaussian prior evaluated
// in place), and dynamic thresholding's per-row scales. They are in one
// translation unit because they share the constant-memory arena of the
// step records (constant_schedule.cuh).
//
// The element-wise kernels are grid-stride loops over element groups
// (element_group.cuh): one thread, one group of up to 4 elements of one
// sample, one curand_normal4 call when noise is drawn. A group's result
// depends only on its indices, so any grid and block size gives the same bits.
//
// Bytes per element (float32): initial noise 4 (write); forward 8 with drawn
// noise (x0 in, x_t out), +4 per optional output, +4 with given noise;
// reverse 12 (x_t, model output in, x_prev out), +4 with given noise or an
// x0 output; fused (Gaussian prior in place) 8 (x in and out).
#include <cstdint>

#include <cub/block/block_reduce.cuh>

#include "constant_schedule.cuh"
#include "cuda/check.h"
#include "element_group.cuh"
#include "grid.cuh"
#include "launch.h"
#include "noise.cuh"
#include "step_math.cuh"

namespace ddpm::kernels {
namespace {

// Where the model output comes from (ModelView): compile-time, so that the
// fused path keeps the prior in registers.
enum class Source { buffer, gaussian, gaussian_per_element };

__device__ __forceinline__ float4 splat(float v) { return make_float4(v, v, v, v); }

// The prior's mean and variance of one group's elements.
template <bool Vec, Source From, typename Index>
__device__ __forceinline__ void prior_group(const PriorView& prior, const ElementGroup<Index>& e,
                                            float4& mean, float4& var) {
  if constexpr (From == Source::gaussian_per_element) {
    mean = load_group<Vec>(prior.means + 4 * e.group, e.count);
    var = load_group<Vec>(prior.vars + 4 * e.group, e.count);
  } else {
    mean = splat(prior.mean);
    var = splat(prior.var);
  }
}

// x0_hat of one element of a row, before processing (the thresholding kernel).
template <Source From>
__device__ __forceinline__ float x0_element(const ModelView& m, const float* out_row, std::int64_t i,
                                            float x, const StepRecord& r) {
  if constexpr (From == Source::buffer) {
    return predicted_x0(x, out_row[i], r);
  } else {
    const bool per_element = From == Source::gaussian_per_element;
    return gaussian_posterior(x, per_element ? __ldg(m.prior.means + i) : m.prior.mean,
                              per_element ? __ldg(m.prior.vars + i) : m.prior.var,
                              r.sqrt_alpha_bar, r.sqrt_one_minus_alpha_bar)
        .x0;
  }
}

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

__device__ __forceinline__ ForwardCoefficients forward_coefficients(const ForwardCoefficients* table,
                                                                    int t) {
  const float4 c = __ldg(reinterpret_cast<const float4*>(table) + t);
  return {c.x, c.y, c.z, c.w};
}

template <bool Vec, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) forward_kernel(ForwardArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  const bool per_sample = a.steps != nullptr;
  const ForwardCoefficients uniform_c =
      per_sample ? ForwardCoefficients{} : forward_coefficients(a.table, a.step);
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    int t = a.step;
    ForwardCoefficients c = uniform_c;
    if (per_sample) {
      t = a.steps[e.row];
      c = forward_coefficients(a.table, t);
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
  const ForwardCoefficients c = forward_coefficients(a.table, a.step);
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

// One reverse step of the rule. With a model-output buffer: the folded
// update, or (Full records) x0_hat formed, processed and optionally written
// out. With the Gaussian prior fused in: its posterior means x0_hat and
// eps_hat directly (well conditioned whatever the prediction type).
template <bool Vec, bool Full, X0Mode Mode, Source From, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) reverse_kernel(ReverseArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  const StepRecord r = step_record<Full>(a.steps, a.position);
  const bool noisy = r.sigma != 0.0f;  // false at the last step: no z, no RNG
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    const float4 x = load_group<Vec>(a.x_t + e.base, e.count);
    float4 z = splat(0.0f);
    if (noisy) {
      z = a.variance_noise != nullptr
              ? load_group<Vec>(a.variance_noise + e.base, e.count)
              : normal4(a.noise.seed, static_cast<std::uint64_t>(a.noise.first_sample) + e.row,
                        NoiseStream::reverse, static_cast<std::uint32_t>(a.timestep), e.group);
    }
    const float scale = Mode == X0Mode::threshold ? a.x0.row_scale[e.row] : 1.0f;
    const auto process = [&](float x0) { return process_x0<Mode>(x0, a.x0.lo, a.x0.hi, scale); };
    float4 out;
    if constexpr (From == Source::buffer) {
      const float4 m = load_group<Vec>(a.model.output + e.base, e.count);
      if constexpr (!Full) {
        out = map4([&](float xv, float mv, float zv) { return step_folded(xv, mv, zv, r); }, x, m, z);
      } else {
        const float4 x0 = map4([&](float xv, float mv) { return process(predicted_x0(xv, mv, r)); }, x, m);
        if (a.x0_out != nullptr) store_group<Vec>(a.x0_out + e.base, e.count, x0);
        out = map4([&](float xv, float mv, float x0v, float zv) { return step_from_x0(xv, mv, x0v, zv, r); },
                   x, m, x0, z);
      }
    } else {
      float4 mean, var;
      prior_group<Vec, From>(a.model.prior, e, mean, var);
      out = map4(
          [&](float xv, float mv, float vv, float zv) {
            const Posterior p = gaussian_posterior(xv, mv, vv, r.sqrt_alpha_bar, r.sqrt_one_minus_alpha_bar);
            return step_from_posterior(xv, process(p.x0), p.eps, zv, r);
          },
          x, mean, var, z);
    }
    store_group<Vec>(a.x_prev + e.base, e.count, out);
  }
}

constexpr int kThresholdBlock = 256;

// Dynamic thresholding's s for each row: the `lower`-th smallest |x0_hat|
// by radix selection on its float bits (non-negative floats order as their
// bit patterns), 8 bits a pass with a shared histogram, then the next order
// statistic, interpolated and clamped as torch.quantile and diffusers do.
template <Source From>
__global__ void __launch_bounds__(kThresholdBlock) threshold_scale_kernel(ThresholdArgs a) {
  using Reduce = cub::BlockReduce<unsigned long long, kThresholdBlock>;
  __shared__ typename Reduce::TempStorage reduce_storage;
  __shared__ unsigned long long histogram[256];
  __shared__ unsigned shared_digit;
  __shared__ unsigned long long shared_remaining;
  __shared__ unsigned long long shared_count;
  const StepRecord r = step_record<true>(a.steps, a.position);
  const int tid = static_cast<int>(threadIdx.x);
  for (std::int64_t row = blockIdx.x; row < a.batch; row += gridDim.x) {
    const float* x = a.x_t + row * a.dim;
    const float* out_row = From == Source::buffer ? a.model.output + row * a.dim : nullptr;
    const auto key = [&](std::int64_t i) {
      return __float_as_uint(fabsf(x0_element<From>(a.model, out_row, i, x[i], r)));
    };
    unsigned prefix = 0, mask = 0;
    unsigned long long remaining = static_cast<unsigned long long>(a.lower);
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int d = tid; d < 256; d += kThresholdBlock) histogram[d] = 0;
      __syncthreads();
      for (std::int64_t i = tid; i < a.dim; i += kThresholdBlock) {
        const unsigned k = key(i);
        if ((k & mask) == prefix) atomicAdd(&histogram[(k >> shift) & 255u], 1ull);
      }
      __syncthreads();
      if (tid == 0) {
        unsigned long long below = 0;
        unsigned digit = 255;
        for (unsigned d = 0; d < 256; ++d) {
          if (below + histogram[d] > remaining) {
            digit = d;
            break;
          }
          below += histogram[d];
        }
        shared_digit = digit;
        shared_remaining = remaining - below;
      }
      __syncthreads();
      prefix |= shared_digit << shift;
      mask |= 255u << shift;
      remaining = shared_remaining;
      __syncthreads();
    }
    // The next order statistic: the same value when it repeats, else the
    // smallest key above it.
    unsigned long long at_most = 0, above = ~0ull;
    for (std::int64_t i = tid; i < a.dim; i += kThresholdBlock) {
      const unsigned k = key(i);
      if (k <= prefix) {
        ++at_most;
      } else if (k < above) {
        above = k;
      }
    }
    const unsigned long long count = Reduce(reduce_storage).Sum(at_most);
    if (tid == 0) shared_count = count;
    __syncthreads();
    const unsigned long long smallest_above =
        Reduce(reduce_storage).Reduce(above, [](unsigned long long p, unsigned long long q) {
          return p < q ? p : q;
        });
    if (tid == 0) {
      const float lower = __uint_as_float(prefix);
      const bool repeats = shared_count > static_cast<unsigned long long>(a.lower) + 1;
      const float upper = repeats || smallest_above == ~0ull
                              ? lower
                              : __uint_as_float(static_cast<unsigned>(smallest_above));
      const float s = lower + a.weight * (upper - lower);
      a.row_scale[row] = fminf(fmaxf(s, 1.0f), a.max_value);
    }
    __syncthreads();
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

Source source_of(const ModelView& m) {
  if (m.output != nullptr) return Source::buffer;
  return m.prior.means != nullptr ? Source::gaussian_per_element : Source::gaussian;
}

// Calls f with the Source as a compile-time constant.
template <typename F>
void dispatch_source(Source s, F&& f) {
  switch (s) {
    case Source::buffer: f(std::integral_constant<Source, Source::buffer>{}); break;
    case Source::gaussian: f(std::integral_constant<Source, Source::gaussian>{}); break;
    case Source::gaussian_per_element:
      f(std::integral_constant<Source, Source::gaussian_per_element>{});
      break;
  }
}

template <bool Full, X0Mode Mode>
void launch_reverse_as(const ReverseArgs& args, const LaunchConfig& config, cudaStream_t stream) {
  const unsigned blocks = grid_blocks(args.batch * groups_per_row(args.dim), config);
  const bool vec =
      use_vector_path(config, args.dim,
                      {args.x_t, args.x_prev, args.model.output, args.model.prior.means,
                       args.model.prior.vars, args.variance_noise, args.x0_out});
  dispatch_source(source_of(args.model), [&](auto from) {
    dispatch_bool(vec, [&](auto v) {
      dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
        reverse_kernel<decltype(v)::value, Full, Mode, decltype(from)::value,
                       typename decltype(index)::type>
            <<<blocks, config.block_size, 0, stream>>>(args);
      });
    });
  });
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
  const bool full = args.x0.mode != X0Mode::none || args.x0_out != nullptr;
  if (full != (args.steps.width == kRecordWidthFull)) {
    ddpm::detail::cuda::check(cudaErrorInvalidValue, "launch_reverse (record layout)", __FILE__,
                              __LINE__);
  }
  switch (args.x0.mode) {
    case X0Mode::none:
      if (full) {
        launch_reverse_as<true, X0Mode::none>(args, config, stream);
      } else {
        launch_reverse_as<false, X0Mode::none>(args, config, stream);
      }
      break;
    case X0Mode::clip: launch_reverse_as<true, X0Mode::clip>(args, config, stream); break;
    case X0Mode::threshold: launch_reverse_as<true, X0Mode::threshold>(args, config, stream); break;
  }
  DDPM_CUDA_CHECK_LAUNCH("reverse_kernel");
}

void launch_threshold_scales(const ThresholdArgs& args, cudaStream_t stream) {
  if (args.steps.width != kRecordWidthFull) {
    ddpm::detail::cuda::check(cudaErrorInvalidValue, "launch_threshold_scales (record layout)",
                              __FILE__, __LINE__);
  }
  const unsigned blocks =
      static_cast<unsigned>(args.batch < 65535 ? args.batch : 65535);
  dispatch_source(source_of(args.model), [&](auto from) {
    threshold_scale_kernel<decltype(from)::value><<<blocks, kThresholdBlock, 0, stream>>>(args);
  });
  DDPM_CUDA_CHECK_LAUNCH("threshold_scale_kernel");
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
  const cudaError_t error = cudaFuncGetAttributes(
      &attributes, reverse_kernel<false, false, X0Mode::none, Source::buffer, std::uint32_t>);
  if (error != cudaSuccess) cudaGetLastError();
  return error;
}

}  // namespace ddpm::kernels
