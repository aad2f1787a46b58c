#pragma once
// Host-side entry points of UNet2DModel's element-wise CUDA kernels
// (unet2d_kernels.cu), used by unet2d_device.cpp between its cuDNN
// convolutions and cuBLAS products. Activations are [batch][channels][pixels]
// in the storage type (float, half or bfloat16; arithmetic in float);
// per-row vectors (time embedding, projections) are float. Every launcher
// enqueues on `stream`, never synchronises, and checks its launch.
#include <cstdint>

#include <cuda_runtime_api.h>

namespace ddpm::kernels {

enum class UNetStorage { f32, f16, bf16 };

// x -> the storage type (2x - 1 first with center_input_sample), and back.
void launch_unet_input(const float* x, void* out, std::int64_t count, bool center, UNetStorage storage,
                       cudaStream_t stream);
void launch_unet_output(const void* in, float* out, std::int64_t count, UNetStorage storage, cudaStream_t stream);

// diffusers' get_timestep_embedding of `dim` values (an odd dim ends with a zero).
struct UNetTimeProj {
  int dim = 0;
  bool flip_sin_to_cos = true;
  double downscale_freq_shift = 0.0;
  double scale = 1.0;
  double max_period = 10000.0;
};
// temb[b] = sinusoid(time of row b): steps[b] when steps is set, else `time`.
void launch_unet_time_proj(const std::int32_t* steps, float time, std::int64_t batch, const UNetTimeProj& spec,
                           float* temb, cudaStream_t stream);

// v = v + bias in place over rows of `width` (bias per column), then silu when `silu`.
void launch_unet_row_bias(float* v, const float* bias, std::int64_t batch, int width, bool silu,
                          cudaStream_t stream);

// emb[b] += bias + class_embedding[label of b] (labels per row, else `label`;
// no table: only the bias); semb = silu(emb).
void launch_unet_embedding(float* emb, const float* bias, const float* class_embedding,
                           const std::int32_t* labels, std::int32_t label, std::int64_t batch, int width,
                           float* semb, cudaStream_t stream);

// y[b][c][p] += bias[c].
void launch_unet_channel_bias(void* y, const float* bias, std::int64_t batch, int channels, std::int64_t pixels,
                              UNetStorage storage, cudaStream_t stream);

struct UNetGroupNormArgs {
  const void* x = nullptr;
  void* y = nullptr;
  std::int64_t batch = 0;
  int channels = 0, groups = 1;
  std::int64_t pixels = 0;
  const float* weight = nullptr;
  const float* bias = nullptr;
  float eps = 1e-5f;
  // Optional rows of `row_stride` floats per sample: added per channel
  // before the statistics (add), or [scale (C), shift (C)] after the
  // normalisation (scale_shift).
  const float* rows = nullptr;
  std::int64_t row_stride = 0;
  bool scale_shift = false;
  bool silu = false;
};
// One block per (sample, group): mean and variance in float over the group,
// then y = (x - mean) / sqrt(var + eps) * weight + bias [* (1 + scale) + shift] [silu].
void launch_unet_group_norm(const UNetGroupNormArgs& args, UNetStorage storage, cudaStream_t stream);

// y = (y + s) / scale.
void launch_unet_add_scaled(void* y, const void* s, std::int64_t count, float scale, UNetStorage storage,
                            cudaStream_t stream);

// y[b][c][2h x 2w] = x[b][c][h x w] repeated (nearest).
void launch_unet_upsample(const void* x, void* y, std::int64_t planes, std::int64_t height, std::int64_t width,
                          UNetStorage storage, cudaStream_t stream);

// y[planes][(h + 1) x (w + 1)]: x with a zero row and column at the end.
void launch_unet_pad_end(const void* x, void* y, std::int64_t planes, std::int64_t height, std::int64_t width,
                         UNetStorage storage, cudaStream_t stream);

// probabilities[r] = softmax(scores[r]) over rows of `width` floats.
void launch_unet_softmax(const float* scores, void* probabilities, std::int64_t rows, std::int64_t width,
                         UNetStorage storage, cudaStream_t stream);

}  // namespace ddpm::kernels
