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
#include "cuda_check.h"
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

// A prior's mean and variance of one group's elements.
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

// The model output of one group from the buffer: c, or guided
// factor (u + w (c - u)).
template <bool Vec, typename Index>
__device__ __forceinline__ float4 output_group(const ModelView& m, const ElementGroup<Index>& e) {
  const float4 c = load_group<Vec>(m.output + e.base, e.count);
  if (!m.guided) return c;
  const float4 u = load_group<Vec>(m.output + m.unconditional_offset + e.base, e.count);
  const float factor = m.row_factor != nullptr ? m.row_factor[e.row] : 1.0f;
  return map4([&](float cv, float uv) { return guided_output(cv, uv, m.guidance_scale, factor); }, c, u);
}

// The prior's posterior means at one element (the conditional prior's, or
// guided u + w (c - u) of both).
template <Source From>
__device__ __forceinline__ Posterior prior_posterior(const ModelView& m, float x, float mean,
                                                     float var, float u_mean, float u_var,
                                                     const StepRecord& r) {
  const Posterior c = gaussian_posterior(x, mean, var, r.sqrt_alpha_bar, r.sqrt_one_minus_alpha_bar);
  if (!m.guided) return c;
  const Posterior u = gaussian_posterior(x, u_mean, u_var, r.sqrt_alpha_bar, r.sqrt_one_minus_alpha_bar);
  return {guided_output(c.x0, u.x0, m.guidance_scale, 1.0f),
          guided_output(c.eps, u.eps, m.guidance_scale, 1.0f)};
}

// x0_hat of one element of a row, before processing (the thresholding kernel).
template <Source From>
__device__ __forceinline__ float x0_element(const ModelView& m, std::int64_t row, std::int64_t dim,
                                            std::int64_t i, float x, const StepRecord& r) {
  if constexpr (From == Source::buffer) {
    const float* c = m.output + row * dim;
    float out = c[i];
    if (m.guided) {
      const float factor = m.row_factor != nullptr ? m.row_factor[row] : 1.0f;
      out = guided_output(out, c[i + m.unconditional_offset], m.guidance_scale, factor);
    }
    return predicted_x0(x, out, r);
  } else {
    const bool per_element = From == Source::gaussian_per_element;
    const PriorView& p = m.prior;
    const PriorView& u = m.unconditional_prior;
    return prior_posterior<From>(m, x, per_element ? __ldg(p.means + i) : p.mean,
                                 per_element ? __ldg(p.vars + i) : p.var,
                                 per_element && m.guided ? __ldg(u.means + i) : u.mean,
                                 per_element && m.guided ? __ldg(u.vars + i) : u.var, r)
        .x0;
  }
}

template <bool Vec, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize)
    initial_noise_kernel(float* x, std::int64_t batch, std::int64_t dim_, NoiseParams noise, float scale) {
  const Index dim = static_cast<Index>(dim_);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(batch) * gpr;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const ElementGroup<Index> e = element_group<Vec>(i, gpr, dim);
    float4 z = normal4(noise.seed, static_cast<std::uint64_t>(noise.first_sample) + e.row,
                       NoiseStream::initial, 0u, e.group);
    if (scale != 1.0f) z = make_float4(z.x * scale, z.y * scale, z.z * scale, z.w * scale);
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
    if (a.eps_out != nullptr) store_group<Vec>(a.eps_out + e.base, e.count, eps);
  }
}

// One reverse step of the rule. With a model-output buffer (guided or not):
// the folded update, or (Full records) x0_hat formed, processed and
// optionally written out or kept as history. With the Gaussian prior fused
// in: its posterior means x0_hat and eps_hat directly (well conditioned
// whatever the prediction type).
template <bool Vec, bool Full, X0Mode Mode, Source From, typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) reverse_kernel(ReverseArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index gpr = (dim + 3) / 4;
  const Index groups = static_cast<Index>(a.batch) * gpr;
  const StepRecord r = step_record<Full>(a.steps, a.position);
  const bool noisy = r.sigma != 0.0f;  // false at the last step: no z, no RNG
  const bool reads_history = r.prev_from_x0_prev != 0.0f && a.history_in != nullptr;
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
    const float4 x0_prev = reads_history ? load_group<Vec>(a.history_in + e.base, e.count) : splat(0.0f);
    const float scale = Mode == X0Mode::threshold ? a.x0.row_scale[e.row] : 1.0f;
    const auto process = [&](float x0) { return process_x0<Mode>(x0, a.x0.lo, a.x0.hi, scale); };
    // Lane by lane: x0_hat, eps_hat, then the update.
    const float xs[4] = {x.x, x.y, x.z, x.w}, zs[4] = {z.x, z.y, z.z, z.w},
                ps[4] = {x0_prev.x, x0_prev.y, x0_prev.z, x0_prev.w};
    float outs[4], x0s[4];
    if constexpr (From == Source::buffer) {
      const float4 m = output_group<Vec>(a.model, e);
      const float ms[4] = {m.x, m.y, m.z, m.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if constexpr (!Full) {
          outs[k] = step_folded(xs[k], ms[k], ps[k], zs[k], r);
        } else {
          x0s[k] = process(predicted_x0(xs[k], ms[k], r));
          outs[k] = step_from_x0(xs[k], ms[k], x0s[k], ps[k], zs[k], r);
        }
      }
      if constexpr (Full) {
        if (a.x0_out != nullptr) store_group<Vec>(a.x0_out + e.base, e.count, make_float4(x0s[0], x0s[1], x0s[2], x0s[3]));
      }
    } else {
      float4 mean, var, u_mean = splat(0.0f), u_var = splat(1.0f);
      prior_group<Vec, From>(a.model.prior, e, mean, var);
      if (a.model.guided) prior_group<Vec, From>(a.model.unconditional_prior, e, u_mean, u_var);
      const float ms[4] = {mean.x, mean.y, mean.z, mean.w}, vs[4] = {var.x, var.y, var.z, var.w},
                  ums[4] = {u_mean.x, u_mean.y, u_mean.z, u_mean.w}, uvs[4] = {u_var.x, u_var.y, u_var.z, u_var.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const Posterior p = prior_posterior<From>(a.model, xs[k], ms[k], vs[k], ums[k], uvs[k], r);
        x0s[k] = process(p.x0);
        outs[k] = step_from_posterior(xs[k], x0s[k], p.eps, ps[k], zs[k], r);
      }
    }
    if constexpr (From != Source::buffer || Full) {
      if (a.history_out != nullptr) {
        store_group<Vec>(a.history_out + e.base, e.count, make_float4(x0s[0], x0s[1], x0s[2], x0s[3]));
      }
    }
    const float4 out = make_float4(outs[0], outs[1], outs[2], outs[3]);
    store_group<Vec>(a.x_prev + e.base, e.count, out);
  }
}

// One step of a deep rule, one element per thread (a rule that runs a
// multistep history is not bandwidth-bound on its update alone, and its
// slots make the float4 path's register count climb).
template <typename Index>
__global__ void __launch_bounds__(kMaxBlockSize) deep_step_kernel(DeepStepArgs a) {
  const Index dim = static_cast<Index>(a.dim);
  const Index n = static_cast<Index>(a.batch) * dim;
  const std::int64_t slot = a.batch * a.dim;  // 64-bit: the slots together may pass 2^31 elements
  float* const h1 = a.x0_slots > 0 ? a.history : nullptr;
  float* const h2 = a.x0_slots > 1 ? a.history + slot : nullptr;
  float* const h3 = a.x0_slots > 2 ? a.history + 2 * slot : nullptr;
  float* const last = a.last_sample ? a.history + a.x0_slots * slot : nullptr;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index row = i / dim;
    float m = a.model.output[i];
    if (a.model.guided) {
      const float factor = a.model.row_factor != nullptr ? a.model.row_factor[row] : 1.0f;
      m = guided_output(m, a.model.output[i + a.model.unconditional_offset], a.model.guidance_scale, factor);
    }
    const float scale = a.x0.mode == X0Mode::threshold ? a.x0.row_scale[row] : 1.0f;
    const DeepSlots slots{h1 ? h1 + i : nullptr, h2 ? h2 + i : nullptr, h3 ? h3 + i : nullptr,
                          last ? last + i : nullptr};
    float z = 0.0f;
    if (a.deep.sigma != 0.0f) {
      if (a.variance_noise != nullptr) {
        z = a.variance_noise[i];
      } else {
        // Element col of the row is lane col % 4 of its noise group, as every kernel draws it.
        const Index col = i - row * dim;
        const float4 g = normal4(a.noise.seed, static_cast<std::uint64_t>(a.noise.first_sample) + row,
                                 NoiseStream::reverse, static_cast<std::uint32_t>(a.timestep),
                                 static_cast<std::uint64_t>(col / 4));
        const int lane = static_cast<int>(col % 4);
        z = lane == 0 ? g.x : lane == 1 ? g.y : lane == 2 ? g.z : g.w;
      }
    }
    a.x_prev[i] = deep_step_element(a.x_t[i], m, z, a.record, a.deep, a.x0.mode, a.x0.lo, a.x0.hi, scale,
                                    a.x0_out != nullptr ? a.x0_out + i : nullptr, slots);
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
    const auto key = [&](std::int64_t i) {
      return __float_as_uint(fabsf(x0_element<From>(a.model, row, a.dim, i, x[i], r)));
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

// Sums over a row for guidance_rescale's two standard deviations.
struct GuidanceSums {
  double c = 0, cc = 0, g = 0, gg = 0;
  __device__ GuidanceSums operator+(const GuidanceSums& o) const {
    return {c + o.c, cc + o.cc, g + o.g, gg + o.gg};
  }
};

__global__ void __launch_bounds__(kThresholdBlock) guidance_factor_kernel(GuidanceFactorArgs a) {
  using Reduce = cub::BlockReduce<GuidanceSums, kThresholdBlock>;
  __shared__ typename Reduce::TempStorage storage;
  const std::int64_t unconditional = a.batch * a.dim;
  for (std::int64_t row = blockIdx.x; row < a.batch; row += gridDim.x) {
    const float* c = a.output + row * a.dim;
    GuidanceSums sums;
    for (std::int64_t i = threadIdx.x; i < a.dim; i += kThresholdBlock) {
      const double cv = c[i], uv = c[i + unconditional];
      const double g = uv + a.guidance_scale * (cv - uv);
      sums = sums + GuidanceSums{cv, cv * cv, g, g * g};
    }
    const GuidanceSums total = Reduce(storage).Reduce(sums, [](const GuidanceSums& p, const GuidanceSums& q) {
      return p + q;
    });
    if (threadIdx.x == 0) {
      const double n = static_cast<double>(a.dim);
      const double var_c = fmax(0.0, total.cc - total.c * total.c / n);
      const double var_g = fmax(0.0, total.gg - total.g * total.g / n);
      a.row_factor[row] =
          var_g == 0.0 ? 1.0f : static_cast<float>(a.rescale * sqrt(var_c / var_g) + (1.0 - a.rescale));
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
  const bool vec = use_vector_path(
      config, args.dim,
      {args.x_t, args.x_prev, args.model.output, args.model.prior.means, args.model.prior.vars,
       args.model.unconditional_prior.means, args.model.unconditional_prior.vars, args.variance_noise,
       args.x0_out, args.history_in, args.history_out,
       args.model.guided && args.model.output ? args.model.output + args.model.unconditional_offset : nullptr});
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
                          float scale, const LaunchConfig& config, cudaStream_t stream) {
  const unsigned blocks = grid_blocks(batch * groups_per_row(dim), config);
  dispatch_bool(use_vector_path(config, dim, {x}), [&](auto vec) {
    dispatch_index(fits_32bit(batch, dim), [&](auto index) {
      initial_noise_kernel<decltype(vec)::value, typename decltype(index)::type>
          <<<blocks, config.block_size, 0, stream>>>(x, batch, dim, noise, scale);
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
  const bool vec = use_vector_path(config, args.dim, {args.x_prev, args.eps, args.x_t, args.eps_out});
  dispatch_bool(vec, [&](auto v) {
    dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
      forward_one_step_kernel<decltype(v)::value, typename decltype(index)::type>
          <<<blocks, config.block_size, 0, stream>>>(args);
    });
  });
  DDPM_CUDA_CHECK_LAUNCH("forward_one_step_kernel");
}

void launch_reverse(const ReverseArgs& args, const LaunchConfig& config, cudaStream_t stream) {
  // The layout comes with the records. Processing x0_hat needs the full one,
  // and so does forming it from a model-output buffer (to write it out or
  // keep it as history); the fused prior forms it itself.
  const bool full = args.steps.width == kRecordWidthFull;
  const bool buffer_forms_x0 =
      args.model.output != nullptr && (args.x0_out != nullptr || args.history_out != nullptr);
  if (!full && (args.x0.mode != X0Mode::none || buffer_forms_x0)) {
    ddpm::kernels::check_cuda(cudaErrorInvalidValue, "launch_reverse (record layout)", __FILE__,
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

void launch_deep_step(const DeepStepArgs& args, const LaunchConfig& config, cudaStream_t stream) {
  if (args.model.output == nullptr || args.history == nullptr) {
    ddpm::kernels::check_cuda(cudaErrorInvalidValue, "launch_deep_step (model output and history)", __FILE__,
                              __LINE__);
  }
  const unsigned blocks = grid_blocks(args.batch * args.dim, config);
  dispatch_index(fits_32bit(args.batch, args.dim), [&](auto index) {
    deep_step_kernel<typename decltype(index)::type><<<blocks, config.block_size, 0, stream>>>(args);
  });
  DDPM_CUDA_CHECK_LAUNCH("deep_step_kernel");
}

void launch_threshold_scales(const ThresholdArgs& args, cudaStream_t stream) {
  if (args.steps.width != kRecordWidthFull) {
    ddpm::kernels::check_cuda(cudaErrorInvalidValue, "launch_threshold_scales (record layout)",
                              __FILE__, __LINE__);
  }
  const unsigned blocks =
      static_cast<unsigned>(args.batch < 65535 ? args.batch : 65535);
  dispatch_source(source_of(args.model), [&](auto from) {
    threshold_scale_kernel<decltype(from)::value><<<blocks, kThresholdBlock, 0, stream>>>(args);
  });
  DDPM_CUDA_CHECK_LAUNCH("threshold_scale_kernel");
}

void launch_guidance_factors(const GuidanceFactorArgs& args, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(args.batch < 65535 ? args.batch : 65535);
  guidance_factor_kernel<<<blocks, kThresholdBlock, 0, stream>>>(args);
  DDPM_CUDA_CHECK_LAUNCH("guidance_factor_kernel");
}

int constant_arena_floats() { return kConstantArenaFloats; }

void upload_constant_records(int offset, const float* records, int count, cudaStream_t stream) {
  if (offset < 0 || count < 0 || offset + count > kConstantArenaFloats) {
    ddpm::kernels::check_cuda(cudaErrorInvalidValue, "upload_constant_records (range)", __FILE__,
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
