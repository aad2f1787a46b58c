// The MLP denoiser on a CUDA device (src/mlp_device.h): the GEMMs in cuBLAS,
// the element-wise passes in kernels/mlp_kernels.cu, the same decomposition
// as the host forward pass (src/predictors/networks/mlp/mlp_network.h).
//
// Everything predict() touches is allocated in prepare(): weights, condition
// tables, activations for max_batch rows, the labels, and the cuBLAS
// workspace, which is handed to cuBLAS with cublasSetWorkspace after every
// cublasSetStream (which resets it), so that cuBLAS never allocates while a
// graph is being captured.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "mlp_launch.h"
#include "backends/cuda/check.h"
#include "backends/cuda/cublas_handle.h"
#include "predictors/predictor_steps.h"
#include "kernels/cublas_check.h"
#include "ddpm/error.h"
#include "backends/cuda/device_buffer.h"
#include "mlp_device.h"
#include "backends/cuda/tuning.h"

namespace ddpm::detail {
namespace {

using cuda::CublasHandle;
using cuda::kCublasWorkspaceBytes;

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }


}  // namespace

// Offsets of each weight in the one device buffer that holds them all.
struct MlpDeviceBlock {
  std::size_t norm_weight, norm_bias, linear_1_weight, linear_2_weight, linear_2_bias;
};

struct MlpDeviceState {
  int device = 0;
  std::int64_t max_batch = 0;
  bool allow_tf32 = false;
  CublasHandle cublas;
  cuda::DeviceBuffer<float> weights;
  std::size_t input_weight = 0, input_bias = 0, norm_out_weight = 0, norm_out_bias = 0,
              output_weight = 0, output_bias = 0;
  std::vector<MlpDeviceBlock> blocks;
  // The time MLP and every block's cond_proj (stacked), for fractional times.
  std::size_t time_linear_1_weight = 0, time_linear_1_bias = 0, time_linear_2_weight = 0,
              time_linear_2_bias = 0, cond_proj_stacked = 0, linear_1_bias_stacked = 0;
  cuda::DeviceBuffer<float> time_condition;   // blocks x T x H
  // A fractional time's embedding (E), time MLP hidden and output (H each)
  // and its row of time_condition (blocks x H), one after another.
  cuda::DeviceBuffer<float> time_scratch;
  cuda::DeviceBuffer<float> class_condition;  // blocks x labels x H
  cuda::DeviceBuffer<float> h, a, u;          // max_batch x H each
  cuda::DeviceBuffer<std::int32_t> labels;    // max_batch
  cuda::DeviceBuffer<std::byte> cublas_workspace;

  const float* w(std::size_t offset) const { return weights.data() + offset; }
};

namespace {

// Packs host vectors one after another; returns each one's offset.
class WeightPacker {
 public:
  std::size_t add(const std::vector<float>& values) {
    const std::size_t offset = packed_.size();
    packed_.insert(packed_.end(), values.begin(), values.end());
    // 16-byte alignment of every weight (cuBLAS prefers it).
    while (packed_.size() % 4 != 0) packed_.push_back(0.0f);
    return offset;
  }
  const std::vector<float>& packed() const { return packed_; }

 private:
  std::vector<float> packed_;
};

template <typename T>
void upload(cuda::DeviceBuffer<T>& buffer, const T* values, std::size_t count, const std::string& what,
            cudaStream_t stream) {
  buffer.allocate(count, what);
  // Pageable source: the copy is staged before cudaMemcpyAsync returns.
  DDPM_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), values, count * sizeof(T), cudaMemcpyHostToDevice,
                                  stream));
}

// y[rows, out] = x[rows, in] w[out, in]^T + beta y, all row-major: in
// cuBLAS's column-major terms y^T = w x^T, i.e. op(A) = w^T of a column-major
// in x out matrix.
void gemm_xwt(cublasHandle_t handle, const float* x, const float* w, float* y, std::int64_t rows,
              std::int64_t in, std::int64_t out, float beta) {
  const float alpha = 1.0f;
  DDPM_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out),
                                static_cast<int>(rows), static_cast<int>(in), &alpha, w,
                                static_cast<int>(in), x, static_cast<int>(in), &beta, y,
                                static_cast<int>(out)));
}

// One forward pass of max_batch rows (zeros, the null label) at the end of
// prepare(), so that whatever cuBLAS and the runtime set up on first use
// (kernel loading, algorithm choice) happens there and not inside a graph
// capture. Its rows are stream-ordered allocations, freed on the stream.
void predict_mlp_device(MlpDeviceState& st, const MlpNetwork& net, const PredictorCall& call,
                        MlpDeviceLabels labels);

void warm_up(MlpDeviceState& state, const MlpNetwork& net, cudaStream_t stream) {
  const std::size_t io = static_cast<std::size_t>(state.max_batch * net.dim);
  float* rows = nullptr;
  DDPM_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&rows), 2 * io * sizeof(float), stream));
  struct FreeOnStream {
    float* p;
    cudaStream_t s;
    ~FreeOnStream() { cudaFreeAsync(p, s); }
  } release{rows, stream};
  DDPM_CUDA_CHECK(cudaMemsetAsync(rows, 0, io * sizeof(float), stream));
  PredictorCall call;
  call.x_t = rows;
  call.model_output = rows + io;
  call.eps = call.model_output;
  call.prediction_type = net.card.prediction_type;
  call.shape = {state.max_batch, net.dim};
  call.memory = Memory::device;
  call.stream = stream;
  predict_mlp_device(state, net, call, {nullptr, net.card.null_label});
  call.timestep = 0.5f;  // a fractional time: the time condition's GEMMs and kernels
  predict_mlp_device(state, net, call, {nullptr, net.card.null_label});
}

// time_condition[b](t) for every block at a fractional time t into the
// scratch's last blocks x H floats: the host's time_condition_at_time, in
// cuBLAS and two small kernels.
const float* device_time_condition(MlpDeviceState& st, const MlpNetwork& net, float t,
                                   cublasHandle_t handle, const kernels::LaunchConfig& config,
                                   cudaStream_t stream) {
  const TimeEmbeddingSpec& spec = net.card.time_embedding;
  const std::int64_t e = spec.dim, hd = net.hidden;
  const std::int64_t rows = static_cast<std::int64_t>(net.blocks.size()) * hd;
  float* temb = st.time_scratch.data();
  float* hidden = temb + e;
  float* time_mlp = hidden + hd;
  float* row = time_mlp + hd;
  kernels::TimestepEmbeddingArgs a;
  a.out = temb;
  a.t = t;
  a.half = spec.dim / 2;
  a.minus_log_period = static_cast<float>(-std::log(spec.max_period));
  a.divisor = static_cast<float>(a.half - spec.downscale_freq_shift);
  a.scale = static_cast<float>(spec.scale);
  a.flip_sin_to_cos = spec.flip_sin_to_cos;
  kernels::launch_timestep_embedding(a, config, stream);
  gemm_xwt(handle, temb, st.w(st.time_linear_1_weight), hidden, 1, e, hd, 0.0f);
  kernels::launch_bias_silu(hidden, st.w(st.time_linear_1_bias), hd, config, stream);
  gemm_xwt(handle, hidden, st.w(st.time_linear_2_weight), time_mlp, 1, hd, hd, 0.0f);
  kernels::launch_add_bias(time_mlp, st.w(st.time_linear_2_bias), 1, hd, config, stream);
  if (rows > 0) {
    gemm_xwt(handle, time_mlp, st.w(st.cond_proj_stacked), row, 1, hd, rows, 0.0f);
    kernels::launch_add_bias(row, st.w(st.linear_1_bias_stacked), 1, rows, config, stream);
  }
  return row;
}

}  // namespace

namespace {

std::shared_ptr<MlpDeviceState> prepare_mlp_device(const MlpNetwork& net,
                                                   const MlpDeviceSettings& settings, void* stream) {
  if (settings.max_batch <= 0) throw Error("MlpPredictor: prepare() needs a batch of at least 1 row");
  if (settings.max_batch * std::max(net.hidden, net.dim) > (std::int64_t{1} << 31) - 1) {
    throw Error("MlpPredictor: a batch of " + std::to_string(settings.max_batch) +
                " rows is beyond cuBLAS's 32-bit sizes for this model; split it");
  }
  const cudaStream_t s = as_stream(stream);
  auto state = std::make_shared<MlpDeviceState>();
  DDPM_CUDA_CHECK(cudaGetDevice(&state->device));
  state->max_batch = settings.max_batch;
  state->allow_tf32 = settings.allow_tf32;

  WeightPacker pack;
  state->input_weight = pack.add(net.input_weight);
  state->input_bias = pack.add(net.input_bias);
  for (const MlpBlockWeights& b : net.blocks) {
    MlpDeviceBlock d{};
    d.norm_weight = pack.add(b.norm_weight);
    d.norm_bias = pack.add(b.norm_bias);
    d.linear_1_weight = pack.add(b.linear_1_weight);
    d.linear_2_weight = pack.add(b.linear_2_weight);
    d.linear_2_bias = pack.add(b.linear_2_bias);
    state->blocks.push_back(d);
  }
  state->norm_out_weight = pack.add(net.norm_out_weight);
  state->norm_out_bias = pack.add(net.norm_out_bias);
  state->output_weight = pack.add(net.output_weight);
  state->output_bias = pack.add(net.output_bias);
  state->time_linear_1_weight = pack.add(net.time_linear_1_weight);
  state->time_linear_1_bias = pack.add(net.time_linear_1_bias);
  state->time_linear_2_weight = pack.add(net.time_linear_2_weight);
  state->time_linear_2_bias = pack.add(net.time_linear_2_bias);
  state->cond_proj_stacked = pack.add(net.cond_proj_stacked);
  state->linear_1_bias_stacked = pack.add(net.linear_1_bias_stacked);
  const auto scratch = static_cast<std::size_t>(net.card.time_embedding.dim + 2 * net.hidden +
                                                net.blocks.size() * net.hidden);

  const auto rows = static_cast<std::size_t>(settings.max_batch * net.hidden);
  const std::size_t bytes = (pack.packed().size() + net.time_condition.size() +
                             net.class_condition.size() + 3 * rows + scratch) * sizeof(float) +
                            settings.max_batch * sizeof(std::int32_t) + kCublasWorkspaceBytes;
  cuda::require_free_memory(bytes, "the MLP denoiser's weights and workspace");
  upload(state->weights, pack.packed().data(), pack.packed().size(), "the MLP denoiser's weights", s);
  upload(state->time_condition, net.time_condition.data(), net.time_condition.size(),
         "the MLP denoiser's time condition table", s);
  upload(state->class_condition, net.class_condition.data(), net.class_condition.size(),
         "the MLP denoiser's class condition table", s);
  state->h.allocate(rows, "the MLP denoiser's activations");
  state->a.allocate(rows, "the MLP denoiser's activations");
  state->u.allocate(rows, "the MLP denoiser's activations");
  state->time_scratch.allocate(scratch, "the MLP denoiser's time condition");
  state->labels.allocate(static_cast<std::size_t>(settings.max_batch), "the MLP denoiser's labels");
  state->cublas_workspace.allocate(kCublasWorkspaceBytes, "the cuBLAS workspace");

  const cublasHandle_t handle = state->cublas.get();
  DDPM_CUBLAS_CHECK(cublasSetStream(handle, s));
  DDPM_CUBLAS_CHECK(cublasSetWorkspace(handle, state->cublas_workspace.data(), kCublasWorkspaceBytes));
  // Float32 GEMMs unless TF32 is asked for: the default math mode never uses
  // TF32 for cublasSgemm.
  DDPM_CUBLAS_CHECK(cublasSetMathMode(
      handle, settings.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  DDPM_CUBLAS_CHECK(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));

  warm_up(*state, net, s);
  return state;
}

bool mlp_device_fits(const MlpDeviceState& state, std::int64_t batch, bool allow_tf32) {
  int device = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  return device == state.device && batch <= state.max_batch && allow_tf32 == state.allow_tf32;
}

void upload_mlp_labels(MlpDeviceState& state, const std::vector<std::int32_t>& labels, void* stream) {
  const std::size_t count = std::min(labels.size(), static_cast<std::size_t>(state.max_batch));
  DDPM_CUDA_CHECK(cudaMemcpyAsync(state.labels.data(), labels.data(), count * sizeof(std::int32_t),
                                  cudaMemcpyHostToDevice, as_stream(stream)));
}

const std::int32_t* uploaded_mlp_labels(const MlpDeviceState& state) { return state.labels.data(); }

void predict_mlp_device(MlpDeviceState& st, const MlpNetwork& net, const PredictorCall& call,
                        MlpDeviceLabels labels) {
  const std::int64_t batch = call.shape.batch;
  if (batch > st.max_batch) {
    throw Error("MlpPredictor: " + std::to_string(batch) + " rows but prepare() was given at most " +
                std::to_string(st.max_batch));
  }
  int device = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  if (device != st.device) {
    throw Error("MlpPredictor: prepared on device " + std::to_string(st.device) +
                " but called on device " + std::to_string(device));
  }
  if (batch == 0) return;
  const cudaStream_t stream = as_stream(call.stream);
  const cublasHandle_t handle = st.cublas.get();
  DDPM_CUBLAS_CHECK(cublasSetStream(handle, stream));
  DDPM_CUBLAS_CHECK(cublasSetWorkspace(handle, st.cublas_workspace.data(), kCublasWorkspaceBytes));
  const kernels::LaunchConfig config = cuda::launch_config(st.device);
  const std::int64_t d = net.dim;
  const std::int64_t hd = net.hidden;
  const auto eps = static_cast<float>(net.card.layer_norm_eps);
  const MlpTime time = mlp_time_of(call);
  const float* time_row =
      time.fractional ? device_time_condition(st, net, time.time, handle, config, stream) : nullptr;

  gemm_xwt(handle, call.x_t, st.w(st.input_weight), st.h.data(), batch, d, hd, 0.0f);
  const float* pending_bias = st.w(st.input_bias);
  for (std::size_t b = 0; b < st.blocks.size(); ++b) {
    const MlpDeviceBlock& block = st.blocks[b];
    kernels::launch_bias_layer_norm({st.h.data(), pending_bias, st.a.data(), st.w(block.norm_weight),
                                     st.w(block.norm_bias), batch, hd, eps, false},
                                    config, stream);
    gemm_xwt(handle, st.a.data(), st.w(block.linear_1_weight), st.u.data(), batch, hd, hd, 0.0f);
    kernels::ConditionedSiluArgs c;
    c.u = st.u.data();
    c.class_condition = st.class_condition.data() + b * static_cast<std::size_t>(net.labels * hd);
    c.batch = batch;
    c.hidden = hd;
    if (time_row != nullptr) {  // a one-row table: the fractional time's row
      c.time_condition = time_row + b * static_cast<std::size_t>(hd);
      c.step_count = 1;
    } else {
      c.time_condition = st.time_condition.data() + b * static_cast<std::size_t>(net.steps * hd);
      c.steps = call.steps;
      c.step = call.step;
      c.step_count = net.steps;
    }
    c.labels = labels.rows;
    c.label = labels.label;
    c.num_classes = net.card.num_classes;
    kernels::launch_conditioned_silu(c, config, stream);
    gemm_xwt(handle, st.u.data(), st.w(block.linear_2_weight), st.h.data(), batch, hd, hd, 1.0f);
    pending_bias = st.w(block.linear_2_bias);
  }
  kernels::launch_bias_layer_norm({st.h.data(), pending_bias, st.a.data(), st.w(st.norm_out_weight),
                                   st.w(st.norm_out_bias), batch, hd, eps, true},
                                  config, stream);
  float* output = output_of(call);
  gemm_xwt(handle, st.a.data(), st.w(st.output_weight), output, batch, hd, d, 0.0f);
  kernels::launch_add_bias(output, st.w(st.output_bias), batch, d, config, stream);
}

class CudaMlpDevicePart final : public MlpDevicePart {
 public:
  explicit CudaMlpDevicePart(std::shared_ptr<MlpDeviceState> state) : state_(std::move(state)) {}
  bool fits(std::int64_t batch, bool allow_tf32) const override {
    return mlp_device_fits(*state_, batch, allow_tf32);
  }
  void upload_labels(const std::vector<std::int32_t>& labels, void* stream) override {
    upload_mlp_labels(*state_, labels, stream);
  }
  const std::int32_t* uploaded_labels() const override { return uploaded_mlp_labels(*state_); }
  void predict(const MlpNetwork& net, const PredictorCall& call, MlpDeviceLabels labels) override {
    predict_mlp_device(*state_, net, call, labels);
  }

 private:
  std::shared_ptr<MlpDeviceState> state_;
};

}  // namespace

std::unique_ptr<MlpDevicePart> make_mlp_device_part(const MlpNetwork& net, const MlpDeviceSettings& settings,
                                                    void* stream) {
  return std::make_unique<CudaMlpDevicePart>(prepare_mlp_device(net, settings, stream));
}

}  // namespace ddpm::detail
