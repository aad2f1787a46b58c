// The element-wise kernels of UNet2DModel on a CUDA device (unet2d_launch.h).
// Storage is float, half or bfloat16; every kernel computes in float.
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda_check.h"
#include "predictors/networks/mlp/mlp_math.cuh"  // silu, timestep_embedding_pair
#include "unet2d_launch.h"

namespace ddpm::kernels {
namespace {

constexpr int kThreads = 256;
constexpr std::int64_t kMaxGrid = 65535;

__device__ inline float load(const float* p, std::int64_t i) { return p[i]; }
__device__ inline float load(const __half* p, std::int64_t i) { return __half2float(p[i]); }
__device__ inline float load(const __nv_bfloat16* p, std::int64_t i) { return __bfloat162float(p[i]); }
__device__ inline void store(float* p, std::int64_t i, float v) { p[i] = v; }
__device__ inline void store(__half* p, std::int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ inline void store(__nv_bfloat16* p, std::int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

unsigned grid_for(std::int64_t count) {
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>((count + kThreads - 1) / kThreads, kMaxGrid)));
}

#define DDPM_GRID_STRIDE(i, count)                                                          \
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; \
       i < (count); i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

// Calls body(T{}) with T the storage type (the body takes its type from the argument).
template <typename Body>
void dispatch(UNetStorage storage, Body&& body) {
  switch (storage) {
    case UNetStorage::f32: body(float{}); break;
    case UNetStorage::f16: body(__half{}); break;
    case UNetStorage::bf16: body(__nv_bfloat16{}); break;
  }
}

template <typename T>
__global__ void input_kernel(const float* x, T* out, std::int64_t count, bool center) {
  DDPM_GRID_STRIDE(i, count) store(out, i, center ? 2.0f * x[i] - 1.0f : x[i]);
}

template <typename T>
__global__ void output_kernel(const T* in, float* out, std::int64_t count) {
  DDPM_GRID_STRIDE(i, count) out[i] = load(in, i);
}

__global__ void time_proj_kernel(const std::int32_t* steps, float time, std::int64_t batch, int dim,
                                 float minus_log_period, float divisor, float scale, bool flip, float* temb) {
  const int half = dim / 2;
  DDPM_GRID_STRIDE(i, batch * half) {
    const std::int64_t b = i / half;
    const int k = static_cast<int>(i % half);
    const float t = steps != nullptr ? static_cast<float>(steps[b]) : time;
    timestep_embedding_pair(t, k, half, minus_log_period, divisor, scale, flip, temb + b * dim);
    if (k == 0 && dim % 2 == 1) temb[b * dim + dim - 1] = 0.0f;
  }
}

__global__ void row_bias_kernel(float* v, const float* bias, std::int64_t batch, int width, bool apply_silu) {
  DDPM_GRID_STRIDE(i, batch * width) {
    const float x = v[i] + bias[i % width];
    v[i] = apply_silu ? silu(x) : x;
  }
}

__global__ void embedding_kernel(float* emb, const float* bias, const float* table, const std::int32_t* labels,
                                 std::int32_t label, std::int64_t batch, int width, float* semb) {
  DDPM_GRID_STRIDE(i, batch * width) {
    const std::int64_t b = i / width;
    const int k = static_cast<int>(i % width);
    float x = emb[i] + bias[k];
    if (table != nullptr) x += table[static_cast<std::int64_t>(labels != nullptr ? labels[b] : label) * width + k];
    emb[i] = x;
    semb[i] = silu(x);
  }
}

template <typename T>
__global__ void channel_bias_kernel(T* y, const float* bias, std::int64_t count, int channels, std::int64_t pixels) {
  DDPM_GRID_STRIDE(i, count) store(y, i, load(y, i) + bias[(i / pixels) % channels]);
}

// Block sum of `value` over the block (kThreads threads).
__device__ float block_sum(float value, float* shared) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  const int warp = static_cast<int>(threadIdx.x) / 32;
  if (threadIdx.x % 32 == 0) shared[warp] = value;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) total += shared[w];
  __syncthreads();
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) group_norm_kernel(UNetGroupNormArgs p) {
  __shared__ float shared[kThreads / 32];
  const std::int64_t b = blockIdx.x / p.groups;
  const int g = static_cast<int>(blockIdx.x % p.groups);
  const int per_group = p.channels / p.groups;
  const std::int64_t count = per_group * p.pixels;
  const std::int64_t first = (b * p.channels + static_cast<std::int64_t>(g) * per_group) * p.pixels;
  const T* x = static_cast<const T*>(p.x) + first;
  T* y = static_cast<T*>(p.y) + first;
  const float* rows = p.rows != nullptr ? p.rows + b * p.row_stride : nullptr;
  const float* add = rows != nullptr && !p.scale_shift ? rows : nullptr;
  auto value = [&](std::int64_t i) {
    const float v = load(x, i);
    return add != nullptr ? v + add[g * per_group + i / p.pixels] : v;
  };
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < count; i += kThreads) sum += value(i);
  const float mean = block_sum(sum, shared) / static_cast<float>(count);
  float squares = 0.0f;
  for (std::int64_t i = threadIdx.x; i < count; i += kThreads) {
    const float d = value(i) - mean;
    squares += d * d;
  }
  const float inv_std = rsqrtf(block_sum(squares, shared) / static_cast<float>(count) + p.eps);
  for (std::int64_t i = threadIdx.x; i < count; i += kThreads) {
    const int channel = g * per_group + static_cast<int>(i / p.pixels);
    float v = (value(i) - mean) * inv_std * p.weight[channel] + p.bias[channel];
    if (p.scale_shift) v = v * (1.0f + rows[channel]) + rows[p.channels + channel];
    store(y, i, p.silu ? silu(v) : v);
  }
}

template <typename T>
__global__ void add_scaled_kernel(T* y, const T* s, std::int64_t count, float scale) {
  DDPM_GRID_STRIDE(i, count) store(y, i, (load(y, i) + load(s, i)) / scale);
}

template <typename T>
__global__ void upsample_kernel(const T* x, T* y, std::int64_t planes, std::int64_t height, std::int64_t width) {
  const std::int64_t out_w = 2 * width, out_plane = 4 * height * width;
  DDPM_GRID_STRIDE(i, planes * out_plane) {
    const std::int64_t plane = i / out_plane, at = i % out_plane;
    const std::int64_t oy = at / out_w, ox = at % out_w;
    y[i] = x[plane * height * width + (oy / 2) * width + ox / 2];
  }
}

template <typename T>
__global__ void pad_end_kernel(const T* x, T* y, std::int64_t planes, std::int64_t height, std::int64_t width) {
  const std::int64_t out_w = width + 1, out_plane = (height + 1) * (width + 1);
  DDPM_GRID_STRIDE(i, planes * out_plane) {
    const std::int64_t plane = i / out_plane, at = i % out_plane;
    const std::int64_t oy = at / out_w, ox = at % out_w;
    const bool inside = oy < height && ox < width;
    store(y, i, inside ? load(x, plane * height * width + oy * width + ox) : 0.0f);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) softmax_kernel(const float* scores, T* out, std::int64_t width) {
  __shared__ float shared[kThreads / 32];
  const float* row = scores + static_cast<std::int64_t>(blockIdx.x) * width;
  T* dst = out + static_cast<std::int64_t>(blockIdx.x) * width;
  float top = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < width; j += kThreads) top = fmaxf(top, row[j]);
  for (int offset = 16; offset > 0; offset /= 2) top = fmaxf(top, __shfl_down_sync(0xffffffffu, top, offset));
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = top;
  __syncthreads();
  top = shared[0];
  for (int w = 1; w < kThreads / 32; ++w) top = fmaxf(top, shared[w]);
  __syncthreads();
  float total = 0.0f;
  for (std::int64_t j = threadIdx.x; j < width; j += kThreads) total += expf(row[j] - top);
  const float inv = 1.0f / block_sum(total, shared);
  for (std::int64_t j = threadIdx.x; j < width; j += kThreads) store(dst, j, expf(row[j] - top) * inv);
}

}  // namespace

void launch_unet_input(const float* x, void* out, std::int64_t count, bool center, UNetStorage storage,
                       cudaStream_t stream) {
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    input_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(x, static_cast<T*>(out), count, center);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet input_kernel");
}

void launch_unet_output(const void* in, float* out, std::int64_t count, UNetStorage storage, cudaStream_t stream) {
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    output_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(static_cast<const T*>(in), out, count);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet output_kernel");
}

void launch_unet_time_proj(const std::int32_t* steps, float time, std::int64_t batch, const UNetTimeProj& spec,
                           float* temb, cudaStream_t stream) {
  const int half = spec.dim / 2;
  const auto minus_log_period = static_cast<float>(-std::log(spec.max_period));
  const auto divisor = static_cast<float>(half - spec.downscale_freq_shift);
  time_proj_kernel<<<grid_for(batch * half), kThreads, 0, stream>>>(
      steps, time, batch, spec.dim, minus_log_period, divisor, static_cast<float>(spec.scale), spec.flip_sin_to_cos,
      temb);
  DDPM_CUDA_CHECK_LAUNCH("unet time_proj_kernel");
}

void launch_unet_row_bias(float* v, const float* bias, std::int64_t batch, int width, bool silu,
                          cudaStream_t stream) {
  row_bias_kernel<<<grid_for(batch * width), kThreads, 0, stream>>>(v, bias, batch, width, silu);
  DDPM_CUDA_CHECK_LAUNCH("unet row_bias_kernel");
}

void launch_unet_embedding(float* emb, const float* bias, const float* class_embedding,
                           const std::int32_t* labels, std::int32_t label, std::int64_t batch, int width,
                           float* semb, cudaStream_t stream) {
  embedding_kernel<<<grid_for(batch * width), kThreads, 0, stream>>>(emb, bias, class_embedding, labels, label,
                                                                     batch, width, semb);
  DDPM_CUDA_CHECK_LAUNCH("unet embedding_kernel");
}

void launch_unet_channel_bias(void* y, const float* bias, std::int64_t batch, int channels, std::int64_t pixels,
                              UNetStorage storage, cudaStream_t stream) {
  const std::int64_t count = batch * channels * pixels;
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    channel_bias_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(static_cast<T*>(y), bias, count, channels,
                                                                      pixels);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet channel_bias_kernel");
}

void launch_unet_group_norm(const UNetGroupNormArgs& args, UNetStorage storage, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(args.batch * args.groups);
  if (blocks == 0) return;
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    group_norm_kernel<T><<<blocks, kThreads, 0, stream>>>(args);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet group_norm_kernel");
}

void launch_unet_add_scaled(void* y, const void* s, std::int64_t count, float scale, UNetStorage storage,
                            cudaStream_t stream) {
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    add_scaled_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(static_cast<T*>(y), static_cast<const T*>(s),
                                                                    count, scale);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet add_scaled_kernel");
}

void launch_unet_upsample(const void* x, void* y, std::int64_t planes, std::int64_t height, std::int64_t width,
                          UNetStorage storage, cudaStream_t stream) {
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    upsample_kernel<T><<<grid_for(planes * 4 * height * width), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), planes, height, width);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet upsample_kernel");
}

void launch_unet_pad_end(const void* x, void* y, std::int64_t planes, std::int64_t height, std::int64_t width,
                         UNetStorage storage, cudaStream_t stream) {
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    pad_end_kernel<T><<<grid_for(planes * (height + 1) * (width + 1)), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), planes, height, width);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet pad_end_kernel");
}

void launch_unet_softmax(const float* scores, void* probabilities, std::int64_t rows, std::int64_t width,
                         UNetStorage storage, cudaStream_t stream) {
  if (rows == 0) return;
  dispatch(storage, [&](auto t) {
    using T = decltype(t);
    softmax_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(scores, static_cast<T*>(probabilities),
                                                                            width);
  });
  DDPM_CUDA_CHECK_LAUNCH("unet softmax_kernel");
}

}  // namespace ddpm::kernels
