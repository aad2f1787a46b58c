#pragma once
// The mlp_denoiser network (docs/model-format.md) as the predictor runs it.
//
// Loading validates the file and precomputes what depends only on the step
// or only on the label. In the model a block adds cond_proj(cond) with
// cond = time_mlp(temb(t)) + class_embedding[y]; cond_proj is linear, so
//   linear_1.bias + cond_proj(cond) = time_condition[b][t] + class_condition[b][y]
// with time_condition[b][t]  = cond_proj_b(time_mlp(temb(t))) + linear_1_b.bias
// and  class_condition[b][y] = cond_proj_b(class_embedding[y]).
// Both tables are computed once, in float32 with the same BLAS as the
// forward pass, so a forward pass spends no GEMM on the condition. A call at
// a fractional time t (Euler's steps with Karras sigmas, which diffusers
// passes to the network's embedding as they are) is not in the table: its
// row, time_condition[b](t) for every block, is computed for the call from
// the same weights (time_condition_at_time), then used like a table row:
//
//   h = x W_in^T                                  (GEMM; b_in joins in the next pass)
//   for each block b:
//     h += pending bias; a = LayerNorm_b(h)        (pending: b_in, then linear_2_{b-1}.bias)
//     u = a W1_b^T                                 (GEMM)
//     u = silu(u + time_condition[b][t] + class_condition[b][y])
//     h = u W2_b^T + h                             (GEMM, beta = 1: the residual)
//   h += pending bias; a = silu(LayerNorm_out(h))
//   out = a W_out^T + b_out                        (GEMM, then the bias)
//
// The CPU runs it with cblas_sgemm, the CUDA backend with cuBLAS; the
// element-wise passes share src/predictors/networks/mlp/mlp_math.cuh.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ddpm/mlp_predictor.h"

namespace ddpm::detail {

struct MlpBlockWeights {
  std::vector<float> norm_weight, norm_bias;      // H
  std::vector<float> linear_1_weight;              // H x H, [out, in]
  std::vector<float> linear_2_weight, linear_2_bias;
};

struct MlpNetwork {
  MlpModelCard card;
  std::int64_t dim = 0;     // D
  std::int64_t hidden = 0;  // H
  int steps = 0;            // T, the number of timesteps the tables cover
  int labels = 1;           // rows of class_condition: num_classes + 1, or 1 without classes
  std::vector<float> input_weight, input_bias;     // H x D, H
  std::vector<MlpBlockWeights> blocks;
  std::vector<float> norm_out_weight, norm_out_bias;
  std::vector<float> output_weight, output_bias;   // D x H, D
  // [blocks][T][H] and [blocks][labels][H], as above.
  std::vector<float> time_condition;
  std::vector<float> class_condition;
  // What time_condition is made of, for times between its rows.
  std::vector<float> time_linear_1_weight, time_linear_1_bias;  // H x E, H
  std::vector<float> time_linear_2_weight, time_linear_2_bias;  // H x H, H
  std::vector<float> cond_proj_stacked;      // [blocks x H] x H: every block's cond_proj
  std::vector<float> linear_1_bias_stacked;  // [blocks x H]

  // The row of class_condition for a label: the label itself, or 0 for an
  // unconditional model (whose only label is -1 and whose only row is zeros).
  int label_row(std::int32_t label) const { return card.num_classes > 0 ? label : 0; }
  bool valid_label(std::int32_t label) const {
    return card.num_classes > 0 ? label >= 0 && label <= card.null_label : label == -1;
  }
  const float* time_condition_at(int block, int t) const {
    return time_condition.data() + (static_cast<std::size_t>(block) * steps + t) * hidden;
  }
  const float* class_condition_at(int block, int row) const {
    return class_condition.data() + (static_cast<std::size_t>(block) * labels + row) * hidden;
  }
};

// Reads and validates a model file; throws ddpm::Error naming the file.
MlpNetwork load_mlp_network(const std::string& path);

// The sinusoidal embedding of timestep t (diffusers' get_timestep_embedding,
// in float32 as diffusers computes it), `spec.dim` floats.
void timestep_embedding(const TimeEmbeddingSpec& spec, float t, float* out);

// Per-call buffers of the host forward pass, grown on demand.
struct MlpHostWorkspace {
  std::vector<float> h, a, u;
  std::vector<float> temb, time_hidden, time_mlp, time_row;  // a fractional time's condition
  void reserve(std::int64_t batch, std::int64_t hidden);
};

// The time a forward pass conditions its rows on: a step per row, one step
// for the batch (a row of the table), or one fractional time for the batch.
struct MlpTime {
  const std::int32_t* steps = nullptr;  // per row, or null...
  int step = 0;                         // ...then this step,
  bool fractional = false;              // or, when set, this time (not in the table)
  float time = 0.0f;
};

// The time of a PredictorCall: call.timestep when the call has one step for
// the batch and a timestep that differs from it but rounds to it, as the
// engine's fractional steps do; otherwise call.step (or call.steps). A direct
// call that sets only `step` (timestep left at 0) gets its step.
MlpTime mlp_time_of(const PredictorCall& call);

// time_condition[b](t) for every block b at time t: [blocks][H] into
// workspace.time_row, from the weights (one row of the table's equations).
void time_condition_at_time(const MlpNetwork& net, float t, MlpHostWorkspace& workspace);

// Which global sample each row of a call is (first_sample + row, or
// first_sample + row - sample_rows in the repeated half of a guided call),
// and the size of the aligned blocks of samples computed together.
struct MlpRowBlocks {
  std::int64_t first_sample = 0;
  std::int64_t sample_rows = 0;  // 0: every row is a distinct sample
  std::int64_t block = 64;
};

// The call's rows cut where a block of global samples ends (and where a
// guided call's repeated half begins), as [begin, end) row pairs.
std::vector<std::pair<std::int64_t, std::int64_t>> mlp_row_blocks(std::int64_t batch,
                                                                  const MlpRowBlocks& blocks);

// The forward pass on the host for `batch` rows: the rows' steps in [0, T)
// and labels[i] valid for row i (checked by the caller), out = batch x D.
// Each block of rows is one single-threaded BLAS product per layer (the
// blocks run on `threads` threads), so a row's bits depend on its block
// only, never on the batch size, the thread count or how a job was split.
void mlp_forward_host(const MlpNetwork& net, const float* x, std::int64_t batch, MlpTime time,
                      const std::int32_t* labels, std::int32_t label, float* out, int threads,
                      const MlpRowBlocks& blocks, MlpHostWorkspace& workspace);

}  // namespace ddpm::detail
