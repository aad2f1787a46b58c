// The UNet2DModel forward pass on the CPU (unet2d_host.h): OpenBLAS products
// and fused element-wise passes, each cut into work units by shape alone.
#include "unet2d_host.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <cblas.h>

#include "backends/cpu/parallel_for.h"
#include "predictors/networks/mlp/mlp_math.cuh"     // silu
#include "predictors/networks/mlp/mlp_network.h"    // timestep_embedding

namespace ddpm::detail {
namespace {

constexpr int kQueryBlock = 64;

// Uninitialised floats (every buffer here is written before it is read).
// They come from malloc, which keeps freed blocks of up to 32 MiB for reuse,
// so a sampling loop soon stops asking the system for pages, and the memory
// in use is what is alive, not the most ever held.
using Floats = std::unique_ptr<float[]>;
Floats floats(std::int64_t n) { return Floats(new float[static_cast<std::size_t>(std::max<std::int64_t>(n, 1))]); }

// One activation: [batch][channels][height x width].
struct Activation {
  std::int64_t batch = 0;
  int channels = 0;
  std::int64_t height = 0, width = 0;
  Floats storage;

  Activation() = default;
  Activation(std::int64_t b, int c, std::int64_t h, std::int64_t w)
      : batch(b), channels(c), height(h), width(w), storage(floats(b * c * h * w)) {}
  std::int64_t pixels() const { return height * width; }
  std::int64_t sample_size() const { return channels * pixels(); }
  std::int64_t size() const { return batch * sample_size(); }
  float* data() { return storage.get(); }
  const float* data() const { return storage.get(); }
  float* sample(std::int64_t b) { return data() + b * sample_size(); }
  const float* sample(std::int64_t b) const { return data() + b * sample_size(); }
};

std::int64_t blocks_of(std::int64_t n, std::int64_t block) { return (n + block - 1) / block; }

// How one sample's product y[rows][columns] = W[rows][inner] x[inner][columns]
// is cut into single-threaded BLAS calls: blocks of 512 columns, and at small
// sizes (256 columns or fewer) the rows in halves, so that a batch of one
// still keeps two threads busy. The cut depends on the layer's shape alone:
// BLAS rounds a product differently when it is cut differently (OpenBLAS's
// own threads do), so a sample's bits would otherwise depend on its batch.
struct ProductCut {
  int row_block = 0;
  std::int64_t column_block = 0;
  int row_blocks = 0;
  std::int64_t column_blocks = 0;
};

ProductCut cut_of(int rows, std::int64_t columns) {
  ProductCut cut;
  cut.column_block = std::min<std::int64_t>(columns, 512);
  cut.row_block = columns > 256 || rows < 32 ? rows : (rows + 31) / 32 * 16;
  cut.row_blocks = static_cast<int>(blocks_of(rows, cut.row_block));
  cut.column_blocks = blocks_of(columns, cut.column_block);
  return cut;
}

class HostForward {
 public:
  HostForward(const UNet2DNetwork& net, int threads) : net_(net), threads_(threads) {}

  void run(const UNet2DInput& in, float* out) {
    const UNet2DConfig& c = net_.config;
    embed_time(in);
    Activation x = make(in.batch, c.in_channels, in.height, in.width);
    const std::int64_t n = x.size();
    for (std::int64_t i = 0; i < n; ++i) x.data()[i] = c.center_input_sample ? 2.0f * in.x[i] - 1.0f : in.x[i];

    // The skips live in a vector that never grows past its reservation, so
    // `current` (the last one) stays valid.
    std::vector<Activation> skips;
    skips.reserve(1 + net_.down.size() * (static_cast<std::size_t>(c.layers_per_block) + 1));
    skips.push_back(conv(net_.conv_in, x, false));
    for (const UNetLevel& level : net_.down) {
      for (std::size_t j = 0; j < level.resnets.size(); ++j) {
        Activation h = resnet(level.resnets[j], skips.back());
        if (!level.attentions.empty()) h = attention(level.attentions[j], h);
        skips.push_back(std::move(h));
      }
      if (level.resample) skips.push_back(conv(*level.resample, skips.back(), false));
    }
    Activation h = net_.mid ? resnet(net_.mid->resnets[0], skips.back()) : copy(skips.back());
    if (net_.mid) {
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
    std::memcpy(out, y.data(), static_cast<std::size_t>(y.size()) * sizeof(float));
  }

 private:
  static Activation make(std::int64_t b, int c, std::int64_t h, std::int64_t w) { return Activation(b, c, h, w); }
  Activation copy(const Activation& x) {
    Activation y = make(x.batch, x.channels, x.height, x.width);
    std::copy_n(x.data(), x.size(), y.data());
    return y;
  }

  void parallel(std::int64_t count, const std::function<void(std::int64_t)>& body) const {
    cpu::parallel_for(count, threads_, body);
  }

  // y_b = W x_b + bias for the samples b0 .. b0 + count - 1, x_b = x(b) and
  // y_b = y(b) both [.][columns]: every sample's blocks (cut_of) in parallel.
  void products(const float* weight, const float* bias, int rows, int inner, std::int64_t columns,
                std::int64_t b0, std::int64_t count, const std::function<const float*(std::int64_t)>& x,
                const std::function<float*(std::int64_t)>& y) const {
    const ProductCut cut = cut_of(rows, columns);
    const std::int64_t per_sample = cut.row_blocks * cut.column_blocks;
    parallel(count * per_sample, [&](std::int64_t unit) {
      const std::int64_t b = b0 + unit / per_sample;
      const std::int64_t r0 = unit % per_sample / cut.column_blocks * cut.row_block;
      const std::int64_t c0 = unit % cut.column_blocks * cut.column_block;
      const auto m = static_cast<blasint>(std::min<std::int64_t>(cut.row_block, rows - r0));
      const auto n = static_cast<blasint>(std::min<std::int64_t>(cut.column_block, columns - c0));
      float* out = y(b) + r0 * columns + c0;
      for (blasint r = 0; r < m; ++r) std::fill_n(out + r * columns, n, bias[r0 + r]);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, inner, 1.0f, weight + r0 * inner, inner,
                  x(b) + c0, static_cast<blasint>(columns), 1.0f, out, static_cast<blasint>(columns));
    });
  }
  // The same over a whole batch of activations.
  void products(const float* weight, const float* bias, int rows, int inner, const Activation& x,
                Activation& y) const {
    products(weight, bias, rows, inner, x.pixels(), 0, x.batch, [&](std::int64_t b) { return x.sample(b); },
             [&](std::int64_t b) { return y.sample(b); });
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

  // The im2col of sample x_b for `cv` (rows [ci][ky][kx], columns the output
  // pixels); `upsample` reads x at twice its size (nearest).
  static void im2col(const Conv2d& cv, const float* x, std::int64_t height, std::int64_t width, bool upsample,
                     std::int64_t out_h, std::int64_t out_w, int ci, float* col) {
    const int k = cv.kernel;
    const std::int64_t in_h = upsample ? 2 * height : height;
    const std::int64_t in_w = upsample ? 2 * width : width;
    const std::int64_t columns = out_h * out_w;
    const float* src = x + ci * height * width;
    float* dst = col + static_cast<std::int64_t>(ci) * k * k * columns;
    for (int ky = 0; ky < k; ++ky) {
      for (int kx = 0; kx < k; ++kx, dst += columns) {
        for (std::int64_t oy = 0; oy < out_h; ++oy) {
          const std::int64_t iy = oy * cv.stride + ky - cv.pad_begin;
          float* row = dst + oy * out_w;
          if (iy < 0 || iy >= in_h) {
            std::fill_n(row, out_w, 0.0f);
            continue;
          }
          const float* src_row = src + (upsample ? iy / 2 : iy) * width;
          if (cv.stride == 1 && !upsample) {
            // ix = ox + kx - pad: a shifted copy with zeros where it leaves the image.
            const std::int64_t shift = kx - cv.pad_begin;
            const std::int64_t begin = std::clamp<std::int64_t>(-shift, 0, out_w);
            const std::int64_t end = std::clamp<std::int64_t>(in_w - shift, begin, out_w);
            std::fill(row, row + begin, 0.0f);
            std::copy(src_row + begin + shift, src_row + end + shift, row + begin);
            std::fill(row + end, row + out_w, 0.0f);
            continue;
          }
          for (std::int64_t ox = 0; ox < out_w; ++ox) {
            const std::int64_t ix = ox * cv.stride + kx - cv.pad_begin;
            row[ox] = ix < 0 || ix >= in_w ? 0.0f : src_row[upsample ? ix / 2 : ix];
          }
        }
      }
    }
  }

  // A convolution; `upsample` reads x at twice its size (nearest), as
  // diffusers' Upsample2D interpolates before its convolution.
  Activation conv(const Conv2d& cv, const Activation& x, bool upsample) {
    const std::int64_t in_h = upsample ? 2 * x.height : x.height;
    const std::int64_t in_w = upsample ? 2 * x.width : x.width;
    const std::int64_t out_h = (in_h + cv.pad_begin + cv.pad_end - cv.kernel) / cv.stride + 1;
    const std::int64_t out_w = (in_w + cv.pad_begin + cv.pad_end - cv.kernel) / cv.stride + 1;
    Activation y = make(x.batch, cv.out, out_h, out_w);
    const std::int64_t columns = out_h * out_w;
    if (cv.kernel == 1 && cv.stride == 1 && !upsample) {
      products(cv.weight.data(), cv.bias.data(), cv.out, cv.in, x, y);
      return y;
    }
    // The im2col of `threads_` samples at a time, then their products.
    const std::int64_t inner = static_cast<std::int64_t>(cv.in) * cv.kernel * cv.kernel;
    const std::int64_t group = std::min<std::int64_t>(x.batch, threads_);
    const Floats col = floats(group * inner * columns);
    for (std::int64_t b0 = 0; b0 < x.batch; b0 += group) {
      const std::int64_t count = std::min(group, x.batch - b0);
      parallel(count * cv.in, [&](std::int64_t unit) {
        im2col(cv, x.sample(b0 + unit / cv.in), x.height, x.width, upsample, out_h, out_w,
               static_cast<int>(unit % cv.in), col.get() + unit / cv.in * inner * columns);
      });
      products(cv.weight.data(), cv.bias.data(), cv.out, static_cast<int>(inner), columns, b0, count,
               [&](std::int64_t b) { return col.get() + (b - b0) * inner * columns; },
               [&](std::int64_t b) { return y.sample(b); });
    }
    return y;
  }

  // GroupNorm of x (+ add[b][channel] first), then * (1 + scale) + shift
  // from shift_rows[b] = [scale (C), shift (C)], then SiLU: one pass per group.
  Activation group_norm(const GroupNorm& gn, const Activation& x, const float* add_rows, bool scale_shift,
                        bool silu, std::int64_t row_stride = 0) {
    Activation y = make(x.batch, x.channels, x.height, x.width);
    const int per_group = gn.channels / gn.groups;
    const std::int64_t pixels = x.pixels();
    parallel(x.batch * gn.groups, [&](std::int64_t unit) {
      const std::int64_t b = unit / gn.groups;
      const int g = static_cast<int>(unit % gn.groups);
      const float* add = add_rows && !scale_shift ? add_rows + b * row_stride : nullptr;
      const float* src = x.sample(b) + static_cast<std::int64_t>(g) * per_group * pixels;
      float* dst = y.sample(b) + static_cast<std::int64_t>(g) * per_group * pixels;
      // Eight running sums in double: a fixed order the compiler can vectorise.
      constexpr int kLanes = 8;
      double sums[kLanes] = {}, square_sums[kLanes] = {};
      for (int c = 0; c < per_group; ++c) {
        const float shift = add ? add[g * per_group + c] : 0.0f;
        const float* channel = src + c * pixels;
        std::int64_t p = 0;
        for (; p + kLanes <= pixels; p += kLanes) {
          for (int l = 0; l < kLanes; ++l) {
            const double v = channel[p + l] + shift;
            sums[l] += v;
            square_sums[l] += v * v;
          }
        }
        for (; p < pixels; ++p) {
          const double v = channel[p] + shift;
          sums[0] += v;
          square_sums[0] += v * v;
        }
      }
      double sum = 0.0, squares = 0.0;
      for (int l = 0; l < kLanes; ++l) {
        sum += sums[l];
        squares += square_sums[l];
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
    if (r.conv_shortcut) {
      add_scaled(y, conv(*r.conv_shortcut, x, false), r.output_scale);
    } else {
      add_scaled(y, x, r.output_scale);
    }
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
    // The projections read GroupNorm(x), or x itself where the attention has no norm.
    const Activation normalised = at.group_norm ? group_norm(*at.group_norm, x, nullptr, false, false) : Activation();
    const Activation& normed = at.group_norm ? normalised : x;
    const int inner = at.heads * at.head_dim;
    const std::int64_t pixels = x.pixels();
    Activation q = make(x.batch, inner, x.height, x.width), k = make(x.batch, inner, x.height, x.width),
               v = make(x.batch, inner, x.height, x.width), o = make(x.batch, inner, x.height, x.width);
    for (auto [linear, dst] : {std::pair{&at.to_q, &q}, std::pair{&at.to_k, &k}, std::pair{&at.to_v, &v}}) {
      products(linear->weight.data(), linear->bias.data(), inner, x.channels, normed, *dst);
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(at.head_dim));
    const std::int64_t query_blocks = blocks_of(pixels, kQueryBlock);
    parallel(x.batch * at.heads * query_blocks, [&](std::int64_t unit) {
      const std::int64_t b = unit / (at.heads * query_blocks);
      const std::int64_t head = (unit / query_blocks) % at.heads;
      const std::int64_t q0 = unit % query_blocks * kQueryBlock;
      const std::int64_t queries = std::min<std::int64_t>(kQueryBlock, pixels - q0);
      const std::int64_t offset = head * at.head_dim * pixels;
      const Floats scores = floats(kQueryBlock * pixels);
      // scores[i][j] = scale q_i . k_j, then a softmax over j.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(queries),
                  static_cast<blasint>(pixels), at.head_dim, scale, q.sample(b) + offset + q0,
                  static_cast<blasint>(pixels), k.sample(b) + offset, static_cast<blasint>(pixels), 0.0f,
                  scores.get(), static_cast<blasint>(pixels));
      for (std::int64_t i = 0; i < queries; ++i) {
        float* row = scores.get() + i * pixels;
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
                  static_cast<blasint>(pixels), 1.0f, v.sample(b) + offset, static_cast<blasint>(pixels),
                  scores.get(), static_cast<blasint>(pixels), 0.0f, o.sample(b) + offset + q0,
                  static_cast<blasint>(pixels));
    });
    Activation y = make(x.batch, x.channels, x.height, x.width);
    products(at.to_out.weight.data(), at.to_out.bias.data(), x.channels, inner, o, y);
    add_scaled(y, x, at.rescale);
    return y;
  }

  // cat([h, skip], channels).
  Activation concat(const Activation& h, const Activation& skip) {
    Activation y = make(h.batch, h.channels + skip.channels, h.height, h.width);
    parallel(h.batch, [&](std::int64_t b) {
      std::copy_n(h.sample(b), h.sample_size(), y.sample(b));
      std::copy_n(skip.sample(b), skip.sample_size(), y.sample(b) + h.sample_size());
    });
    return y;
  }

  const UNet2DNetwork& net_;
  int threads_;
  std::vector<float> silu_emb_;  // [batch][time_embed_dim]
};

}  // namespace

void unet2d_time_proj(const TimeEmbeddingSpec& spec, float t, float* out) {
  TimeEmbeddingSpec even = spec;
  even.dim = spec.dim / 2 * 2;
  timestep_embedding(even, t, out);
  if (spec.dim % 2 == 1) out[spec.dim - 1] = 0.0f;
}

void unet2d_forward_host(const UNet2DNetwork& net, const UNet2DInput& input, float* out, int threads) {
  // Every product is one single-threaded BLAS call; the calls run in parallel.
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  HostForward(net, std::max(threads, 1)).run(input, out);
}

}  // namespace ddpm::detail
