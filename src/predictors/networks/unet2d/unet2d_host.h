#pragma once
// The UNet2DModel forward pass on the CPU.
//
// Activations are [batch][channels][height x width] float32. A convolution is
// an im2col followed by OpenBLAS products; every product of a sample is cut
// into single-threaded BLAS calls by the layer's shape alone (ProductCut in
// unet2d_host.cpp) and the calls of all samples run in parallel, so a
// sample's bits never depend on the batch it came in, how a batch was split
// or the thread count. GroupNorm runs with SiLU and the time embedding's add
// or scale-shift fused in one pass; attention is two products per head and
// block of queries.
#include <cstdint>

#include "unet2d_network.h"

namespace ddpm::detail {

struct UNet2DInput {
  const float* x = nullptr;          // [batch][in_channels][height][width]
  std::int64_t batch = 0;
  std::int64_t height = 0, width = 0;
  const float* times = nullptr;      // [batch]: the time each row is conditioned on
  const std::int32_t* labels = nullptr;  // [batch] rows of class_embedding, or null (unconditional)
};

// out: [batch][out_channels][height][width]. The caller has checked the
// sizes (multiples of 2^downsamplings) and the labels.
void unet2d_forward_host(const UNet2DNetwork& net, const UNet2DInput& input, float* out, int threads);

// diffusers' Timesteps: the sinusoid of time t, `spec.dim` values (an odd dim
// ends with a zero, as diffusers pads it).
void unet2d_time_proj(const TimeEmbeddingSpec& spec, float t, float* out);

}  // namespace ddpm::detail
