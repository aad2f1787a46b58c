// Loading, validating and running the mlp_denoiser on the host (see mlp_network.h).
#include "mlp_network.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <cblas.h>

#include "backends/cpu/parallel_for.h"
#include "ddpm/error.h"
#include "io/safetensors.h"
#include "mlp_math.cuh"

namespace ddpm::detail {
namespace {

// The condition tables hold blocks x T x H floats; a card asking for more
// than this is refused before anything is allocated.
constexpr std::int64_t kMaxTableFloats = std::int64_t{1} << 28;  // 1 GiB

// y[rows, out] = x[rows, in] w[out, in]^T + beta y, row-major, in OpenBLAS.
// One row is a matrix-vector product: sgemv reads w in place, where sgemm
// would first pack all of it (a 256 KB copy per layer at batch 1).
void gemm_xwt(const float* x, const float* w, float* y, std::int64_t rows, std::int64_t in,
              std::int64_t out, float beta) {
  if (rows == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(out), static_cast<blasint>(in),
                1.0f, w, static_cast<blasint>(in), x, 1, beta, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
              static_cast<blasint>(out), static_cast<blasint>(in), 1.0f, x,
              static_cast<blasint>(in), w, static_cast<blasint>(in), beta, y,
              static_cast<blasint>(out));
}

// OpenBLAS's thread count is process-wide; set it only when it changes.
void use_blas_threads(int threads) {
  if (openblas_get_num_threads() != threads) openblas_set_num_threads(threads);
}

void fill_rows(float* y, const float* row, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) std::memcpy(y + r * cols, row, cols * sizeof(float));
}

// The tensors of the architecture and their shapes, from the card.
std::map<std::string, std::vector<std::int64_t>> expected_tensors(const MlpModelCard& c) {
  const std::int64_t h = c.hidden_dim;
  const std::int64_t d = c.data_dim;
  std::map<std::string, std::vector<std::int64_t>> t;
  t["time_embedding.linear_1.weight"] = {h, c.time_embedding.dim};
  t["time_embedding.linear_1.bias"] = {h};
  t["time_embedding.linear_2.weight"] = {h, h};
  t["time_embedding.linear_2.bias"] = {h};
  if (c.num_classes > 0) t["class_embedding.weight"] = {c.num_classes + 1, h};
  t["input_proj.weight"] = {h, d};
  t["input_proj.bias"] = {h};
  for (int b = 0; b < c.num_blocks; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".";
    t[p + "norm.weight"] = {h};
    t[p + "norm.bias"] = {h};
    t[p + "linear_1.weight"] = {h, h};
    t[p + "linear_1.bias"] = {h};
    t[p + "cond_proj.weight"] = {h, h};
    t[p + "linear_2.weight"] = {h, h};
    t[p + "linear_2.bias"] = {h};
  }
  t["norm_out.weight"] = {h};
  t["norm_out.bias"] = {h};
  t["output_proj.weight"] = {d, h};
  t["output_proj.bias"] = {d};
  return t;
}

class WeightReader {
 public:
  WeightReader(const SafetensorsFile& file, const MlpModelCard& card)
      : file_(file), expected_(expected_tensors(card)) {
    for (const SafetensorsTensor& t : file.tensors()) {
      if (!expected_.contains(t.name)) {
        throw Error(file.name() + ": unexpected tensor '" + t.name + "' for an " +
                    kMlpArchitecture + " with " + std::to_string(card.num_blocks) + " blocks and " +
                    std::to_string(card.num_classes) + " classes (docs/model-format.md)");
      }
    }
  }

  std::vector<float> read(const std::string& name) const {
    const SafetensorsTensor* t = file_.find(name);
    if (t == nullptr) throw Error(file_.name() + ": no tensor '" + name + "' (docs/model-format.md)");
    const std::vector<std::int64_t>& shape = expected_.at(name);
    if (t->shape != shape) {
      throw Error(file_.name() + ": tensor '" + name + "' has shape " + t->shape_text() +
                  " but the model card implies " + shape_text(shape));
    }
    std::vector<float> values = t->to_floats();
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        throw Error(file_.name() + ": tensor '" + name + "' has a non-finite value at index " +
                    std::to_string(i));
      }
    }
    return values;
  }

 private:
  const SafetensorsFile& file_;
  std::map<std::string, std::vector<std::int64_t>> expected_;
};

// time_condition and class_condition (see mlp_network.h).
void build_condition_tables(MlpNetwork& net, const std::vector<float>& time_w1,
                            const std::vector<float>& time_b1, const std::vector<float>& time_w2,
                            const std::vector<float>& time_b2, const std::vector<float>& classes,
                            const std::vector<std::vector<float>>& cond_proj,
                            const std::vector<std::vector<float>>& linear_1_bias) {
  const std::int64_t h = net.hidden;
  const std::int64_t t_count = net.steps;
  const int e = net.card.time_embedding.dim;
  // One thread: OpenBLAS's pool splits a product by rows, and its rounding
  // with them, so the tables (and every sample) would depend on the thread
  // count (an MPI rank bound to one core, OPENBLAS_NUM_THREADS).
  use_blas_threads(1);
  std::vector<float> temb(static_cast<std::size_t>(t_count * e));
  for (std::int64_t t = 0; t < t_count; ++t) {
    timestep_embedding(net.card.time_embedding, static_cast<float>(t), temb.data() + t * e);
  }
  // time_mlp(temb) = linear_2(silu(linear_1(temb))) for every t.
  std::vector<float> hidden(static_cast<std::size_t>(t_count * h));
  fill_rows(hidden.data(), time_b1.data(), t_count, h);
  gemm_xwt(temb.data(), time_w1.data(), hidden.data(), t_count, e, h, 1.0f);
  for (float& v : hidden) v = kernels::silu(v);
  std::vector<float> time_mlp(static_cast<std::size_t>(t_count * h));
  fill_rows(time_mlp.data(), time_b2.data(), t_count, h);
  gemm_xwt(hidden.data(), time_w2.data(), time_mlp.data(), t_count, h, h, 1.0f);

  const int blocks = static_cast<int>(net.blocks.size());
  net.time_condition.assign(static_cast<std::size_t>(blocks * t_count * h), 0.0f);
  net.class_condition.assign(static_cast<std::size_t>(blocks * net.labels * h), 0.0f);
  for (int b = 0; b < blocks; ++b) {
    float* tc = net.time_condition.data() + static_cast<std::size_t>(b) * t_count * h;
    fill_rows(tc, linear_1_bias[b].data(), t_count, h);
    gemm_xwt(time_mlp.data(), cond_proj[b].data(), tc, t_count, h, h, 1.0f);
    if (net.card.num_classes > 0) {
      float* cc = net.class_condition.data() + static_cast<std::size_t>(b) * net.labels * h;
      gemm_xwt(classes.data(), cond_proj[b].data(), cc, net.labels, h, h, 0.0f);
    }
  }
}

}  // namespace

void timestep_embedding(const TimeEmbeddingSpec& spec, float t, float* out) {
  const int half = spec.dim / 2;
  const auto minus_log_period = static_cast<float>(-std::log(spec.max_period));
  const auto divisor = static_cast<float>(half - spec.downscale_freq_shift);
  for (int k = 0; k < half; ++k) {
    kernels::timestep_embedding_pair(t, k, half, minus_log_period, divisor,
                                     static_cast<float>(spec.scale), spec.flip_sin_to_cos, out);
  }
}

MlpNetwork load_mlp_network(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  const auto card_text = file.metadata().find(kModelCardKey);
  if (card_text == file.metadata().end()) {
    throw Error(path + ": no model card: the safetensors metadata has no \"" +
                std::string(kModelCardKey) + "\" (docs/model-format.md)");
  }
  MlpNetwork net;
  try {
    net.card = MlpModelCard::from_json(card_text->second);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  const MlpModelCard& card = net.card;
  net.dim = card.data_dim;
  net.hidden = card.hidden_dim;
  net.steps = card.scheduler.schedule.steps;
  net.labels = card.num_classes > 0 ? card.num_classes + 1 : 1;
  const std::int64_t table_floats =
      std::int64_t{card.num_blocks} * (net.steps + net.labels) * net.hidden;
  if (table_floats > kMaxTableFloats) {
    throw Error(path + ": the model card's sizes (" + std::to_string(card.num_blocks) +
                " blocks, T = " + std::to_string(net.steps) + ", hidden " +
                std::to_string(net.hidden) + ") need condition tables over 1 GiB");
  }

  const WeightReader weights(file, card);
  const std::vector<float> time_w1 = weights.read("time_embedding.linear_1.weight");
  const std::vector<float> time_b1 = weights.read("time_embedding.linear_1.bias");
  const std::vector<float> time_w2 = weights.read("time_embedding.linear_2.weight");
  const std::vector<float> time_b2 = weights.read("time_embedding.linear_2.bias");
  const std::vector<float> classes =
      card.num_classes > 0 ? weights.read("class_embedding.weight") : std::vector<float>();
  net.input_weight = weights.read("input_proj.weight");
  net.input_bias = weights.read("input_proj.bias");
  std::vector<std::vector<float>> cond_proj;
  std::vector<std::vector<float>> linear_1_bias;
  for (int b = 0; b < card.num_blocks; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".";
    MlpBlockWeights block;
    block.norm_weight = weights.read(p + "norm.weight");
    block.norm_bias = weights.read(p + "norm.bias");
    block.linear_1_weight = weights.read(p + "linear_1.weight");
    linear_1_bias.push_back(weights.read(p + "linear_1.bias"));
    cond_proj.push_back(weights.read(p + "cond_proj.weight"));
    block.linear_2_weight = weights.read(p + "linear_2.weight");
    block.linear_2_bias = weights.read(p + "linear_2.bias");
    net.blocks.push_back(std::move(block));
  }
  net.norm_out_weight = weights.read("norm_out.weight");
  net.norm_out_bias = weights.read("norm_out.bias");
  net.output_weight = weights.read("output_proj.weight");
  net.output_bias = weights.read("output_proj.bias");
  build_condition_tables(net, time_w1, time_b1, time_w2, time_b2, classes, cond_proj,
                         linear_1_bias);
  net.time_linear_1_weight = time_w1;
  net.time_linear_1_bias = time_b1;
  net.time_linear_2_weight = time_w2;
  net.time_linear_2_bias = time_b2;
  for (int b = 0; b < card.num_blocks; ++b) {
    net.cond_proj_stacked.insert(net.cond_proj_stacked.end(), cond_proj[b].begin(), cond_proj[b].end());
    net.linear_1_bias_stacked.insert(net.linear_1_bias_stacked.end(), linear_1_bias[b].begin(),
                                     linear_1_bias[b].end());
  }
  return net;
}

void MlpHostWorkspace::reserve(std::int64_t batch, std::int64_t hidden) {
  const auto n = static_cast<std::size_t>(batch * hidden);
  if (h.size() < n) {
    h.resize(n);
    a.resize(n);
    u.resize(n);
  }
}

MlpTime mlp_time_of(const PredictorCall& call) {
  MlpTime time{call.steps, call.step};
  if (call.steps == nullptr && call.timestep != static_cast<float>(call.step) &&
      std::abs(call.timestep - static_cast<float>(call.step)) <= 0.5f) {
    time.fractional = true;
    time.time = call.timestep;
  }
  return time;
}

void time_condition_at_time(const MlpNetwork& net, float t, MlpHostWorkspace& workspace) {
  // The table's equations for one row: time_mlp = linear_2(silu(linear_1(temb(t)))), then
  // every block's cond_proj(time_mlp) + linear_1.bias at once (the stacked weights).
  const std::int64_t h = net.hidden;
  const int e = net.card.time_embedding.dim;
  const std::int64_t rows = static_cast<std::int64_t>(net.blocks.size()) * h;
  workspace.temb.resize(static_cast<std::size_t>(e));
  workspace.time_hidden.assign(net.time_linear_1_bias.begin(), net.time_linear_1_bias.end());
  workspace.time_mlp.assign(net.time_linear_2_bias.begin(), net.time_linear_2_bias.end());
  workspace.time_row.assign(net.linear_1_bias_stacked.begin(), net.linear_1_bias_stacked.end());
  timestep_embedding(net.card.time_embedding, t, workspace.temb.data());
  gemm_xwt(workspace.temb.data(), net.time_linear_1_weight.data(), workspace.time_hidden.data(), 1,
           e, h, 1.0f);
  for (float& v : workspace.time_hidden) v = kernels::silu(v);
  gemm_xwt(workspace.time_hidden.data(), net.time_linear_2_weight.data(), workspace.time_mlp.data(),
           1, h, h, 1.0f);
  if (rows > 0) {
    gemm_xwt(workspace.time_mlp.data(), net.cond_proj_stacked.data(), workspace.time_row.data(), 1,
             h, rows, 1.0f);
  }
}

std::vector<std::pair<std::int64_t, std::int64_t>> mlp_row_blocks(std::int64_t batch,
                                                                  const MlpRowBlocks& blocks) {
  const std::int64_t samples =
      blocks.sample_rows > 0 && batch % blocks.sample_rows == 0 ? blocks.sample_rows : batch;
  std::vector<std::pair<std::int64_t, std::int64_t>> result;
  for (std::int64_t copy = 0; copy < batch; copy += samples) {
    for (std::int64_t r = 0; r < samples;) {
      const std::int64_t sample = blocks.first_sample + r;
      const std::int64_t into_block = ((sample % blocks.block) + blocks.block) % blocks.block;
      const std::int64_t end = std::min(samples, r + blocks.block - into_block);
      result.emplace_back(copy + r, copy + end);
      r = end;
    }
  }
  return result;
}

void mlp_forward_host(const MlpNetwork& net, const float* x, std::int64_t batch, MlpTime time,
                      const std::int32_t* labels, std::int32_t label, float* out, int threads,
                      const MlpRowBlocks& row_blocks, MlpHostWorkspace& workspace) {
  if (batch <= 0) return;
  const std::int64_t d = net.dim;
  const std::int64_t hd = net.hidden;
  const float eps = static_cast<float>(net.card.layer_norm_eps);
  workspace.reserve(batch, hd);
  // The blocks run on this function's threads; each product on one thread
  // (OpenBLAS's pool would split a product by rows, and its rounding with them).
  use_blas_threads(1);
  if (time.fractional) time_condition_at_time(net, time.time, workspace);

  // Rows [begin, end) through the whole network; blocks use disjoint rows of
  // the workspace, so they run concurrently.
  auto forward = [&](std::int64_t begin, std::int64_t end) {
    const std::int64_t n = end - begin;
    float* h = workspace.h.data() + begin * hd;
    float* a = workspace.a.data() + begin * hd;
    float* u = workspace.u.data() + begin * hd;
    float* y = out + begin * d;
    gemm_xwt(x + begin * d, net.input_weight.data(), h, n, d, hd, 0.0f);
    const float* pending_bias = net.input_bias.data();
    for (int b = 0; b < static_cast<int>(net.blocks.size()); ++b) {
      const MlpBlockWeights& block = net.blocks[b];
      for (std::int64_t r = 0; r < n; ++r) {
        kernels::bias_layer_norm_row<false>(h + r * hd, pending_bias, a + r * hd,
                                            block.norm_weight.data(), block.norm_bias.data(), hd,
                                            eps);
      }
      gemm_xwt(a, block.linear_1_weight.data(), u, n, hd, hd, 0.0f);
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int64_t row = begin + r;
        const float* tc = time.fractional
                              ? workspace.time_row.data() + static_cast<std::size_t>(b) * hd
                              : net.time_condition_at(b, time.steps ? time.steps[row] : time.step);
        const float* cc = net.class_condition_at(b, net.label_row(labels ? labels[row] : label));
        float* ur = u + r * hd;
        for (std::int64_t k = 0; k < hd; ++k) ur[k] = kernels::conditioned_silu(ur[k], tc[k], cc[k]);
      }
      gemm_xwt(u, block.linear_2_weight.data(), h, n, hd, hd, 1.0f);
      pending_bias = block.linear_2_bias.data();
    }
    for (std::int64_t r = 0; r < n; ++r) {
      kernels::bias_layer_norm_row<true>(h + r * hd, pending_bias, a + r * hd,
                                         net.norm_out_weight.data(), net.norm_out_bias.data(), hd,
                                         eps);
      std::memcpy(y + r * d, net.output_bias.data(), d * sizeof(float));
    }
    gemm_xwt(a, net.output_weight.data(), y, n, hd, d, 1.0f);
  };
  const auto blocks = mlp_row_blocks(batch, row_blocks);
  cpu::parallel_for(static_cast<std::int64_t>(blocks.size()), threads, [&](std::int64_t i) {
    forward(blocks[static_cast<std::size_t>(i)].first, blocks[static_cast<std::size_t>(i)].second);
  });
}

}  // namespace ddpm::detail
