// The UNet2DModel forward pass on the CPU (unet2d_host.h): OpenBLAS products
// and fused element-wise passes, each cut into work units by shape alone.
#include "unet2d_host.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <cblas.h>

#include "backends/cpu/parallel_for.h"
#include "predictors/networks/mlp/mlp_math.cuh"     // silu
#include "predictors/networks/mlp/mlp_network.h"    // timestep_embedding

namespace ddpm::detail {
namespace {

// Output channels and columns one product computes: fixed, so the cut
// depends on the layer's shape only.
constexpr int kRowBlock = 32;
constexpr int kColumnBlock = 1024;
constexpr int kQueryBlock = 64;

// One activation: [batch][channels][height x width].
struct Activation {
  std::int64_t batch = 0;
  int channels = 0;
  std::int64_t height = 0, width = 0;
  std::vector<float> data;

  Activation() = default;
  Activation(std::int64_t b, int c, std::int64_t h, std::int64_t w)
      : batch(b), channels(c), height(h), width(w), data(static_cast<std::size_t>(b * c * h * w)) {}
  std::int64_t pixels() const { return height * width; }
  std::int64_t sample_size() const { return channels * pixels(); }
  float* sample(std::int64_t b) { return data.data() + b * sample_size(); }
  const float* sample(std::int64_t b) const { return data.data() + b * sample_size(); }
};

std::int64_t blocks_of(std::int64_t n, std::int64_t block) { return (n + block - 1) / block; }

class HostForward {
 public:
  HostForward(const UNet2DNetwork& net, int threads) : net_(net), threads_(threads) {}

  void run(const UNet2DInput& in, float* out) {
    const UNet2DConfig& c = net_.config;
    embed_time(in);
    Activation x(in.batch, c.in_channels, in.height, in.width);
    const std::int64_t n = static_cast<std::int64_t>(x.data.size());
    for (std::int64_t i = 0; i < n; ++i) x.data[i] = c.center_input_sample ? 2.0f * in.x[i] - 1.0f : in.x[i];

    Activation h = conv(net_.conv_in, x, false);
    std::vector<Activation> skips;
    skips.push_back(h);
    for (const UNetLevel& level : net_.down) {
      for (std::size_t j = 0; j < level.resnets.size(); ++j) {
        h = resnet(level.resnets[j], h);
        if (!level.attentions.empty()) h = attention(level.attentions[j], h);
        skips.push_back(h);
      }
      if (level.resample) {
        h = conv(*level.resample, h, false);
        skips.push_back(h);
      }
    }
    if (net_.mid) {
      h = resnet(net_.mid->resnets[0], h);
      if (!net_.mid->attentions.empty()) h = attention(net_.mid->attentions[0], h);
      h = resnet(net_.mid->resnets[1], h);
    }
    for (const UNetLevel& level : net_.up) {
      for (std::size_t j = 0; j < level.resnets.size(); ++j) {
        h = concat(h, skips.back());
        skips.pop_back();
        h = resnet(level.resnets[j], h);
        if (!level.attentions.empty()) h = attention(level.attentions[j], h);
      }
      if (level.resample) h = conv(*level.resample, h, true);
    }
    h = group_norm(net_.conv_norm_out, h, nullptr, false, true);
    const Activation y = conv(net_.conv_out, h, false);
    std::memcpy(out, y.data.data(), y.data.size() * sizeof(float));
  }

 private:
  void parallel(std::int64_t count, const std::function<void(std::int64_t)>& body) const {
    cpu::parallel_for(count, threads_, body);
  }

  // emb = time_embedding(sinusoid(t)) + class_embedding[label] per row, and
  // silu(emb), which every resnet's projection reads.
  void embed_time(const UNet2DInput& in) {
    const int e = net_.time_embed_dim;
    const int c0 = net_.time_proj.dim;
    silu_emb_.assign(static_cast<std::size_t>(in.batch * e), 0.0f);
    parallel(in.batch, [&](std::int64_t b) {
      std::vector<float> sinusoid(static_cast<std::size_t>(c0)), hidden(net_.time_linear_1.bias),
          emb(net_.time_linear_2.bias);
      unet2d_time_proj(net_.time_proj, in.times[b], sinusoid.data());
      cblas_sgemv(CblasRowMajor, CblasNoTrans, e, c0, 1.0f, net_.time_linear_1.weight.data(), c0,
                  sinusoid.data(), 1, 1.0f, hidden.data(), 1);
      for (float& v : hidden) v = kernels::silu(v);
      cblas_sgemv(CblasRowMajor, CblasNoTrans, e, e, 1.0f, net_.time_linear_2.weight.data(), e, hidden.data(),
                  1, 1.0f, emb.data(), 1);
      if (!net_.class_embedding.empty()) {
        const float* row = net_.class_embedding.data() + static_cast<std::int64_t>(in.labels[b]) * e;
        for (int k = 0; k < e; ++k) emb[k] += row[k];
      }
      float* out = silu_emb_.data() + b * e;
      for (int k = 0; k < e; ++k) out[k] = kernels::silu(emb[k]);
    });
  }

  // y = W x + bias for every sample, x and y [channels][pixels]: the product
  // of a 1x1 convolution and of an attention's projections.
  void channel_product(const float* weight, const float* bias, int out_channels, int in_channels,
                       const float* x, std::int64_t x_stride, float* y, std::int64_t y_stride,
                       std::int64_t batch, std::int64_t columns) const {
    const std::int64_t row_blocks = blocks_of(out_channels, kRowBlock);
    const std::int64_t column_blocks = blocks_of(columns, kColumnBlock);
    parallel(batch * row_blocks * column_blocks, [&](std::int64_t unit) {
      const std::int64_t b = unit / (row_blocks * column_blocks);
      const std::int64_t r0 = (unit / column_blocks) % row_blocks * kRowBlock;
      const std::int64_t n0 = unit % column_blocks * kColumnBlock;
      const std::int64_t rows = std::min<std::int64_t>(kRowBlock, out_channels - r0);
      const std::int64_t cols = std::min<std::int64_t>(kColumnBlock, columns - n0);
      float* yb = y + b * y_stride + r0 * columns + n0;
      for (std::int64_t r = 0; r < rows; ++r) std::fill_n(yb + r * columns, cols, bias[r0 + r]);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows),
                  static_cast<blasint>(cols), in_channels, 1.0f, weight + r0 * in_channels, in_channels,
                  x + b * x_stride + n0, static_cast<blasint>(columns), 1.0f, yb, static_cast<blasint>(columns));
    });
  }

  // A convolution; `upsample` reads x at twice its size (nearest), as
  // diffusers' Upsample2D interpolates before its convolution.
  Activation conv(const Conv2d& cv, const Activation& x, bool upsample) {
    const std::int64_t in_h = upsample ? 2 * x.height : x.height;
    const std::int64_t in_w = upsample ? 2 * x.width : x.width;
    const std::int64_t out_h = (in_h + cv.pad_begin + cv.pad_end - cv.kernel) / cv.stride + 1;
    const std::int64_t out_w = (in_w + cv.pad_begin + cv.pad_end - cv.kernel) / cv.stride + 1;
    Activation y(x.batch, cv.out, out_h, out_w);
    const std::int64_t columns = out_h * out_w;
    if (cv.kernel == 1 && cv.stride == 1 && !upsample) {
      channel_product(cv.weight.data(), cv.bias.data(), cv.out, cv.in, x.data.data(), x.sample_size(),
                      y.data.data(), y.sample_size(), x.batch, columns);
      return y;
    }
    const int k = cv.kernel;
    const std::int64_t rows = static_cast<std::int64_t>(cv.in) * k * k;
    columns_.resize(static_cast<std::size_t>(x.batch * rows * columns));
    parallel(x.batch * cv.in, [&](std::int64_t unit) {
      const std::int64_t b = unit / cv.in;
      const int ci = static_cast<int>(unit % cv.in);
      const float* src = x.sample(b) + ci * x.pixels();
      float* dst = columns_.data() + (b * rows + static_cast<std::int64_t>(ci) * k * k) * columns;
      for (int ky = 0; ky < k; ++ky) {
        for (int kx = 0; kx < k; ++kx, dst += columns) {
          for (std::int64_t oy = 0; oy < out_h; ++oy) {
            const std::int64_t iy = oy * cv.stride + ky - cv.pad_begin;
            float* row = dst + oy * out_w;
            if (iy < 0 || iy >= in_h) {
              std::fill_n(row, out_w, 0.0f);
              continue;
            }
            const float* src_row = src + (upsample ? iy / 2 : iy) * x.width;
            for (std::int64_t ox = 0; ox < out_w; ++ox) {
              const std::int64_t ix = ox * cv.stride + kx - cv.pad_begin;
              row[ox] = ix < 0 || ix >= in_w ? 0.0f : src_row[upsample ? ix / 2 : ix];
            }
          }
        }
      }
    });
    channel_product(cv.weight.data(), cv.bias.data(), cv.out, static_cast<int>(rows), columns_.data(),
                    rows * columns, y.data.data(), y.sample_size(), x.batch, columns);
    return y;
  }

  // GroupNorm of x (+ add[b][channel] first), then * (1 + scale) + shift
  // from shift_rows[b] = [scale (C), shift (C)], then SiLU: one pass per group.
  Activation group_norm(const GroupNorm& gn, const Activation& x, const float* add_rows, bool scale_shift,
                        bool silu, std::int64_t row_stride = 0) {
    Activation y(x.batch, x.channels, x.height, x.width);
    const int per_group = gn.channels / gn.groups;
    const std::int64_t pixels = x.pixels();
    parallel(x.batch * gn.groups, [&](std::int64_t unit) {
      const std::int64_t b = unit / gn.groups;
      const int g = static_cast<int>(unit % gn.groups);
      const float* add = add_rows && !scale_shift ? add_rows + b * row_stride : nullptr;
      const float* src = x.sample(b) + static_cast<std::int64_t>(g) * per_group * pixels;
      float* dst = y.sample(b) + static_cast<std::int64_t>(g) * per_group * pixels;
      double sum = 0.0, squares = 0.0;
      for (int c = 0; c < per_group; ++c) {
        const float shift = add ? add[g * per_group + c] : 0.0f;
        for (std::int64_t p = 0; p < pixels; ++p) {
          const double v = src[c * pixels + p] + shift;
          sum += v;
          squares += v * v;
        }
      }
      const double count = static_cast<double>(per_group) * static_cast<double>(pixels);
      const double mean = sum / count;
      const double variance = std::max(squares / count - mean * mean, 0.0);
      const auto inv_std = static_cast<float>(1.0 / std::sqrt(variance + gn.eps));
      const auto mean_f = static_cast<float>(mean);
      for (int c = 0; c < per_group; ++c) {
        const int channel = g * per_group + c;
        const float added = add ? add[channel] : 0.0f;
        float gain = gn.weight[channel] * inv_std;
        float offset = gn.bias[channel];
        if (scale_shift) {
          const float scale = add_rows[b * row_stride + channel];
          const float shift = add_rows[b * row_stride + gn.channels + channel];
          gain *= 1.0f + scale;
          offset = offset * (1.0f + scale) + shift;
        }
        for (std::int64_t p = 0; p < pixels; ++p) {
          const float v = ((src[c * pixels + p] + added) - mean_f) * gain + offset;
          dst[c * pixels + p] = silu ? kernels::silu(v) : v;
        }
      }
    });
    return y;
  }

  Activation resnet(const ResnetBlock& r, const Activation& x) {
    const Activation a = group_norm(r.norm1, x, nullptr, false, true);
    const Activation h = conv(r.conv1, a, false);
    // The time embedding's projection per sample: out (default) or [scale, shift].
    const int e = net_.time_embed_dim;
    const int proj = r.time_emb_proj.out;
    std::vector<float> time_rows(static_cast<std::size_t>(x.batch * proj));
    parallel(x.batch, [&](std::int64_t b) {
      float* row = time_rows.data() + b * proj;
      std::copy(r.time_emb_proj.bias.begin(), r.time_emb_proj.bias.end(), row);
      cblas_sgemv(CblasRowMajor, CblasNoTrans, proj, e, 1.0f, r.time_emb_proj.weight.data(), e,
                  silu_emb_.data() + b * e, 1, 1.0f, row, 1);
    });
    const Activation a2 = group_norm(r.norm2, h, time_rows.data(), r.scale_shift, true, proj);
    Activation y = conv(r.conv2, a2, false);
    const Activation shortcut = r.conv_shortcut ? conv(*r.conv_shortcut, x, false) : Activation();
    const Activation& s = r.conv_shortcut ? shortcut : x;
    add_scaled(y, s, r.output_scale);
    return y;
  }

  // y = (y + s) / scale.
  void add_scaled(Activation& y, const Activation& s, float scale) const {
    const std::int64_t size = y.sample_size();
    parallel(y.batch, [&](std::int64_t b) {
      float* dst = y.sample(b);
      const float* src = s.sample(b);
      if (scale == 1.0f) {
        for (std::int64_t i = 0; i < size; ++i) dst[i] = src[i] + dst[i];
      } else {
        for (std::int64_t i = 0; i < size; ++i) dst[i] = (src[i] + dst[i]) / scale;
      }
    });
  }

  Activation attention(const AttentionBlock& at, const Activation& x) {
    const Activation normed = at.group_norm ? group_norm(*at.group_norm, x, nullptr, false, false) : x;
    const int inner = at.heads * at.head_dim;
    const std::int64_t pixels = x.pixels();
    const std::int64_t stride = static_cast<std::int64_t>(inner) * pixels;
    Activation q(x.batch, inner, x.height, x.width), k(x.batch, inner, x.height, x.width),
        v(x.batch, inner, x.height, x.width), o(x.batch, inner, x.height, x.width);
    for (auto [linear, dst] : {std::pair{&at.to_q, &q}, std::pair{&at.to_k, &k}, std::pair{&at.to_v, &v}}) {
      channel_product(linear->weight.data(), linear->bias.data(), inner, x.channels, normed.data.data(),
                      normed.sample_size(), dst->data.data(), stride, x.batch, pixels);
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(at.head_dim));
    const std::int64_t query_blocks = blocks_of(pixels, kQueryBlock);
    parallel(x.batch * at.heads * query_blocks, [&](std::int64_t unit) {
      const std::int64_t b = unit / (at.heads * query_blocks);
      const std::int64_t head = (unit / query_blocks) % at.heads;
      const std::int64_t q0 = unit % query_blocks * kQueryBlock;
      const std::int64_t queries = std::min<std::int64_t>(kQueryBlock, pixels - q0);
      const std::int64_t offset = b * stride + head * at.head_dim * pixels;
      thread_local std::vector<float> scores;
      scores.resize(static_cast<std::size_t>(queries * pixels));
      // scores[i][j] = scale q_i . k_j, then a softmax over j.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(queries),
                  static_cast<blasint>(pixels), at.head_dim, scale, q.data.data() + offset + q0,
                  static_cast<blasint>(pixels), k.data.data() + offset, static_cast<blasint>(pixels), 0.0f,
                  scores.data(), static_cast<blasint>(pixels));
      for (std::int64_t i = 0; i < queries; ++i) {
        float* row = scores.data() + i * pixels;
        const float top = *std::max_element(row, row + pixels);
        double total = 0.0;
        for (std::int64_t j = 0; j < pixels; ++j) {
          row[j] = std::exp(row[j] - top);
          total += row[j];
        }
        const auto inv = static_cast<float>(1.0 / total);
        for (std::int64_t j = 0; j < pixels; ++j) row[j] *= inv;
      }
      // o[d][i] = sum_j v[d][j] scores[i][j].
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, at.head_dim, static_cast<blasint>(queries),
                  static_cast<blasint>(pixels), 1.0f, v.data.data() + offset, static_cast<blasint>(pixels),
                  scores.data(), static_cast<blasint>(pixels), 0.0f, o.data.data() + offset + q0,
                  static_cast<blasint>(pixels));
    });
    Activation y(x.batch, x.channels, x.height, x.width);
    channel_product(at.to_out.weight.data(), at.to_out.bias.data(), x.channels, inner, o.data.data(), stride,
                    y.data.data(), y.sample_size(), x.batch, pixels);
    add_scaled(y, x, at.rescale);
    return y;
  }

  // cat([h, skip], channels).
  Activation concat(const Activation& h, const Activation& skip) const {
    Activation y(h.batch, h.channels + skip.channels, h.height, h.width);
    parallel(h.batch, [&](std::int64_t b) {
      std::copy_n(h.sample(b), h.sample_size(), y.sample(b));
      std::copy_n(skip.sample(b), skip.sample_size(), y.sample(b) + h.sample_size());
    });
    return y;
  }

  const UNet2DNetwork& net_;
  int threads_;
  std::vector<float> silu_emb_;  // [batch][time_embed_dim]
  std::vector<float> columns_;   // im2col of the current convolution
};

}  // namespace

void unet2d_time_proj(const TimeEmbeddingSpec& spec, float t, float* out) {
  TimeEmbeddingSpec even = spec;
  even.dim = spec.dim / 2 * 2;
  timestep_embedding(even, t, out);
  if (spec.dim % 2 == 1) out[spec.dim - 1] = 0.0f;
}

void unet2d_forward_host(const UNet2DNetwork& net, const UNet2DInput& input, float* out, int threads) {
  // Each work unit is one single-threaded product; the units run in parallel.
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  HostForward(net, threads).run(input, out);
}

}  // namespace ddpm::detail
