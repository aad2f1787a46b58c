// UNet2DModel on a CUDA device (unet2d_device.h): convolutions in cuDNN, the
// attention's and projections' products in cuBLAS, GroupNorm (with SiLU and
// the time embedding fused), resampling and the rest in unet2d_kernels.cu.
// The layers run as on the CPU (unet2d_host.cpp); activations are stored in
// float, half or bfloat16 by the precision, and every product and
// normalisation accumulates in float. The time embedding and its per-block
// projections stay in float at every precision.
//
// Everything predict() touches is allocated in prepare(). The forward pass
// is written once, over an arena whose offsets a first pass finds without
// launching anything (Arena below): the same sequence of sizes then gives
// the same offsets on every call.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "backends/cuda/check.h"
#include "backends/cuda/cublas_handle.h"
#include "backends/cuda/device_buffer.h"
#include "ddpm/error.h"
#include "kernels/cublas_check.h"
#include "kernels/cudnn_check.h"
#include "unet2d_device.h"
#include "unet2d_launch.h"

namespace ddpm::detail {
namespace {

using cuda::CublasHandle;
using cuda::kCublasWorkspaceBytes;

using kernels::UNetStorage;

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

constexpr std::size_t kAlignment = 256;

UNetStorage storage_of(Precision p) {
  return p == Precision::fp16 ? UNetStorage::f16 : p == Precision::bf16 ? UNetStorage::bf16 : UNetStorage::f32;
}
std::size_t bytes_of(UNetStorage s) { return s == UNetStorage::f32 ? 4 : 2; }
cudnnDataType_t cudnn_type(UNetStorage s) {
  return s == UNetStorage::f16 ? CUDNN_DATA_HALF : s == UNetStorage::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}
cudaDataType_t cuda_type(UNetStorage s) {
  return s == UNetStorage::f16 ? CUDA_R_16F : s == UNetStorage::bf16 ? CUDA_R_16BF : CUDA_R_32F;
}

// Host floats in the storage type's bytes.
std::vector<std::byte> stored(const std::vector<float>& values, UNetStorage s) {
  std::vector<std::byte> out(values.size() * bytes_of(s));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (s == UNetStorage::f32) {
      std::memcpy(out.data() + 4 * i, &values[i], 4);
    } else if (s == UNetStorage::f16) {
      const __half h = __float2half_rn(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    } else {
      const __nv_bfloat16 h = __float2bfloat16_rn(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

template <typename Handle, cudnnStatus_t (*Destroy)(Handle)>
struct CudnnObject {
  Handle handle = nullptr;
  CudnnObject() = default;
  CudnnObject(const CudnnObject&) = delete;
  CudnnObject& operator=(const CudnnObject&) = delete;
  ~CudnnObject() {
    if (handle) Destroy(handle);
  }
};
using TensorDescriptor = CudnnObject<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDescriptor = CudnnObject<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor = CudnnObject<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;

struct CudnnHandle : CudnnObject<cudnnHandle_t, cudnnDestroy> {
  CudnnHandle() { DDPM_CUDNN_CHECK(cudnnCreate(&handle)); }
  cudnnHandle_t get() const { return handle; }
};

// Offsets in one device buffer, first fit, freed blocks merged. Run once
// without a buffer to find the peak, then with the buffer: the same
// requests give the same offsets.
class Arena {
 public:
  std::size_t take(std::size_t bytes) {
    bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= bytes) {
        const std::size_t at = it->first;
        const std::size_t left = it->second - bytes;
        free_.erase(it);
        if (left > 0) free_.emplace(at + bytes, left);
        used_.emplace(at, bytes);
        return at;
      }
    }
    const std::size_t at = end_;
    end_ += bytes;
    peak_ = std::max(peak_, end_);
    used_.emplace(at, bytes);
    return at;
  }
  void give(std::size_t at) {
    const auto it = used_.find(at);
    std::size_t start = at, size = it->second;
    used_.erase(it);
    const auto after = free_.lower_bound(start);
    if (after != free_.begin()) {  // merge with the free block before
      const auto before = std::prev(after);
      if (before->first + before->second == start) {
        start = before->first;
        size += before->second;
        free_.erase(before);
      }
    }
    if (const auto next = free_.find(start + size); next != free_.end()) {  // and the one after
      size += next->second;
      free_.erase(next);
    }
    if (start + size == end_) {
      end_ = start;  // the top of the arena shrinks back
    } else {
      free_.emplace(start, size);
    }
  }
  std::size_t peak() const { return peak_; }
  void reset() {
    free_.clear();
    used_.clear();
    end_ = 0;
  }

 private:
  std::map<std::size_t, std::size_t> free_, used_;  // offset -> bytes
  std::size_t end_ = 0, peak_ = 0;
};

struct DeviceConv {
  const Conv2d* host = nullptr;
  cuda::DeviceBuffer<std::byte> weight;  // storage type
  cuda::DeviceBuffer<float> bias;
  FilterDescriptor filter;
  ConvolutionDescriptor convolution;
  cudnnConvolutionFwdAlgo_t algorithm = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  bool planned = false;
};

struct DeviceNorm {
  cuda::DeviceBuffer<float> weight, bias;
  int channels = 0, groups = 1;
  float eps = 1e-5f;
};

struct DeviceLinear {
  cuda::DeviceBuffer<std::byte> weight;  // storage type, or float for the time embedding's
  cuda::DeviceBuffer<float> bias;
  int in = 0, out = 0;
};

// One activation in the arena: [batch][channels][height x width].
struct Tensor {
  std::size_t offset = 0;
  int channels = 0;
  std::int64_t height = 0, width = 0;
  std::int64_t pixels() const { return height * width; }
};

class UNet2DDevice final : public UNet2DDevicePart {
 public:
  UNet2DDevice(const UNet2DNetwork& net, const UNet2DDeviceSettings& settings, cudaStream_t stream)
      : net_(net), settings_(settings), storage_(storage_of(settings.precision)) {
    DDPM_CUDA_CHECK(cudaGetDevice(&device_));
    upload(stream);
    // The first pass plans every convolution and finds the arena's size.
    Call dry;
    dry.batch = settings.max_batch;
    forward(dry);
    arena_buffer_.allocate(std::max<std::size_t>(arena_.peak(), 1), "UNet2DModel activations");
    cudnn_workspace_.allocate(std::max<std::size_t>(cudnn_workspace_bytes_, 1), "the cuDNN workspace");
    cublas_workspace_.allocate(kCublasWorkspaceBytes, "the cuBLAS workspace");
    labels_.allocate(static_cast<std::size_t>(settings.max_batch), "UNet2DModel labels");
    rows_.allocate(static_cast<std::size_t>(settings.max_batch) * row_floats(), "UNet2DModel time embedding");
    DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));  // the uploads are done: the host copies can go
    staging_.clear();
  }

  bool fits(const UNet2DDeviceSettings& s) const override {
    int device = 0;
    DDPM_CUDA_CHECK(cudaGetDevice(&device));
    return device == device_ && s.max_batch <= settings_.max_batch && s.height == settings_.height &&
           s.width == settings_.width && s.precision == settings_.precision;
  }

  void upload_labels(const std::vector<std::int32_t>& labels, void* stream) override {
    if (labels.size() > labels_.count()) throw Error("UNet2DModel: more labels than prepared rows");
    DDPM_CUDA_CHECK(cudaMemcpyAsync(labels_.data(), labels.data(), labels.size() * sizeof(std::int32_t),
                                    cudaMemcpyHostToDevice, as_stream(stream)));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));  // `labels` may go after the call
  }
  const std::int32_t* uploaded_labels() const override { return labels_.data(); }

  void predict(const PredictorCall& call, float time, const std::int32_t* labels, std::int32_t label) override {
    if (call.shape.batch > settings_.max_batch) {
      throw Error("UNet2DModel: a call of " + std::to_string(call.shape.batch) + " rows after prepare() for " +
                  std::to_string(settings_.max_batch));
    }
    Call c;
    c.launch = true;
    c.batch = call.shape.batch;
    c.stream = as_stream(call.stream);
    c.x = call.x_t;
    c.out = call.model_output != nullptr ? call.model_output : call.eps;
    c.steps = call.steps;
    c.time = time;
    c.labels = labels;
    c.label = label;
    DDPM_CUDNN_CHECK(cudnnSetStream(cudnn_.get(), c.stream));
    DDPM_CUBLAS_CHECK(cublasSetStream(cublas_.get(), c.stream));
    // cublasSetStream resets the workspace: hand it ours, so that cuBLAS never allocates.
    DDPM_CUBLAS_CHECK(cublasSetWorkspace(cublas_.get(), cublas_workspace_.data(), kCublasWorkspaceBytes));
    if (c.batch > 0) forward(c);
  }

 private:
  struct Call {
    bool launch = false;
    std::int64_t batch = 0;
    cudaStream_t stream = nullptr;
    const float* x = nullptr;
    float* out = nullptr;
    const std::int32_t* steps = nullptr;
    float time = 0.0f;
    const std::int32_t* labels = nullptr;
    std::int32_t label = 0;
  };

  std::size_t row_floats() const {
    // sinusoid, hidden, emb, silu(emb), and the largest projection
    std::size_t widest = 0;
    auto visit = [&](const UNetLevel& level) {
      for (const ResnetBlock& r : level.resnets) widest = std::max<std::size_t>(widest, r.time_emb_proj.out);
    };
    for (const UNetLevel& l : net_.down) visit(l);
    if (net_.mid) visit(*net_.mid);
    for (const UNetLevel& l : net_.up) visit(l);
    return static_cast<std::size_t>(net_.time_proj.dim) + 3 * static_cast<std::size_t>(net_.time_embed_dim) + widest;
  }

  // ---------------------------------------------------------------- uploads

  template <typename T>
  static void put(cuda::DeviceBuffer<T>& buffer, const std::vector<T>& values, const std::string& what,
                  cudaStream_t stream) {
    buffer.allocate(values.size(), what);
    if (!values.empty()) {
      DDPM_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), values.data(), values.size() * sizeof(T),
                                      cudaMemcpyHostToDevice, stream));
    }
  }
  void put_stored(cuda::DeviceBuffer<std::byte>& buffer, const std::vector<float>& values, UNetStorage s,
                  const std::string& what, cudaStream_t stream) {
    staging_.push_back(stored(values, s));
    put(buffer, staging_.back(), what, stream);
  }

  void upload_conv(const Conv2d& c, cudaStream_t stream) {
    auto conv = std::make_unique<DeviceConv>();
    conv->host = &c;
    put_stored(conv->weight, c.weight, storage_, "UNet2DModel weights", stream);
    put(conv->bias, c.bias, "UNet2DModel weights", stream);
    DDPM_CUDNN_CHECK(cudnnCreateFilterDescriptor(&conv->filter.handle));
    DDPM_CUDNN_CHECK(cudnnSetFilter4dDescriptor(conv->filter.handle, cudnn_type(storage_), CUDNN_TENSOR_NCHW,
                                                c.out, c.in, c.kernel, c.kernel));
    DDPM_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv->convolution.handle));
    // Asymmetric padding (downsample_padding 0) is an explicit pad kernel first.
    const int pad = c.pad_begin == c.pad_end ? c.pad_begin : 0;
    DDPM_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv->convolution.handle, pad, pad, c.stride, c.stride, 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    const cudnnMathType_t math = settings_.precision == Precision::fp32 ? CUDNN_FMA_MATH
                                 : settings_.precision == Precision::tf32 ? CUDNN_DEFAULT_MATH
                                                                          : CUDNN_TENSOR_OP_MATH;
    DDPM_CUDNN_CHECK(cudnnSetConvolutionMathType(conv->convolution.handle, math));
    convs_.emplace(&c, std::move(conv));
  }
  void upload_norm(const GroupNorm& n, cudaStream_t stream) {
    auto norm = std::make_unique<DeviceNorm>();
    put(norm->weight, n.weight, "UNet2DModel weights", stream);
    put(norm->bias, n.bias, "UNet2DModel weights", stream);
    norm->channels = n.channels;
    norm->groups = n.groups;
    norm->eps = n.eps;
    norms_.emplace(&n, std::move(norm));
  }
  void upload_linear(const Linear& l, UNetStorage s, cudaStream_t stream) {
    auto linear = std::make_unique<DeviceLinear>();
    put_stored(linear->weight, l.weight, s, "UNet2DModel weights", stream);
    put(linear->bias, l.bias, "UNet2DModel weights", stream);
    linear->in = l.in;
    linear->out = l.out;
    linears_.emplace(&l, std::move(linear));
  }
  void upload_level(const UNetLevel& level, cudaStream_t stream) {
    for (const ResnetBlock& r : level.resnets) {
      upload_norm(r.norm1, stream);
      upload_conv(r.conv1, stream);
      upload_linear(r.time_emb_proj, UNetStorage::f32, stream);
      upload_norm(r.norm2, stream);
      upload_conv(r.conv2, stream);
      if (r.conv_shortcut) upload_conv(*r.conv_shortcut, stream);
    }
    for (const AttentionBlock& a : level.attentions) {
      if (a.group_norm) upload_norm(*a.group_norm, stream);
      for (const Linear* l : {&a.to_q, &a.to_k, &a.to_v, &a.to_out}) upload_linear(*l, storage_, stream);
    }
    if (level.resample) upload_conv(*level.resample, stream);
  }
  void upload(cudaStream_t stream) {
    upload_conv(net_.conv_in, stream);
    upload_linear(net_.time_linear_1, UNetStorage::f32, stream);
    upload_linear(net_.time_linear_2, UNetStorage::f32, stream);
    put(class_embedding_, net_.class_embedding, "UNet2DModel weights", stream);
    for (const UNetLevel& l : net_.down) upload_level(l, stream);
    if (net_.mid) upload_level(*net_.mid, stream);
    for (const UNetLevel& l : net_.up) upload_level(l, stream);
    upload_norm(net_.conv_norm_out, stream);
    upload_conv(net_.conv_out, stream);
    DDPM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc_.handle));
    DDPM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_desc_.handle));
  }

  // ---------------------------------------------------------------- the pass

  // A tensor's address (null in the planning pass, which has no buffer yet).
  void* at(const Tensor& t) const {
    return arena_buffer_.data() != nullptr ? arena_buffer_.data() + t.offset : nullptr;
  }
  std::size_t tensor_bytes(int channels, std::int64_t height, std::int64_t width) const {
    // Sized for the largest batch, so that every call lays the arena out alike.
    return static_cast<std::size_t>(settings_.max_batch * channels * height * width) * bytes_of(storage_);
  }
  Tensor make(int channels, std::int64_t height, std::int64_t width) {
    return Tensor{arena_.take(tensor_bytes(channels, height, width)), channels, height, width};
  }
  void drop(const Tensor& t) { arena_.give(t.offset); }
  std::int64_t count(const Call& c, const Tensor& t) const { return c.batch * t.channels * t.pixels(); }

  // y[b] = W x[b] (+ bias per row), every sample's [rows][columns] from [inner][columns].
  void product(const Call& c, const DeviceLinear& l, const void* x, void* y, std::int64_t columns) {
    if (!c.launch) return;
    const float one = 1.0f, zero = 0.0f;
    const auto compute = settings_.precision == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const cudaDataType_t type = cuda_type(storage_);
    DDPM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        cublas_.get(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(columns), l.out, l.in, &one, x, type,
        static_cast<int>(columns), static_cast<long long>(l.in) * columns, l.weight.data(), type, l.in, 0, &zero,
        y, type, static_cast<int>(columns), static_cast<long long>(l.out) * columns, static_cast<int>(c.batch),
        compute, CUBLAS_GEMM_DEFAULT));
    kernels::launch_unet_channel_bias(y, l.bias.data(), c.batch, l.out, columns, storage_, c.stream);
  }

  // Row-major out[batch][out] = in[batch][in] W^T in float (the time embedding's products).
  void row_product(const Call& c, const DeviceLinear& l, const float* in, float* out) {
    if (!c.launch) return;
    const float one = 1.0f, zero = 0.0f;
    DDPM_CUBLAS_CHECK(cublasSgemm(cublas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, l.out, static_cast<int>(c.batch), l.in,
                                  &one, reinterpret_cast<const float*>(l.weight.data()), l.in, in, l.in, &zero, out,
                                  l.out));
  }

  Tensor conv(const Call& c, const Conv2d& host, const Tensor& x, bool upsample) {
    DeviceConv& cv = *convs_.at(&host);
    Tensor input = x;
    std::optional<Tensor> staged;
    if (upsample) {
      staged = make(x.channels, 2 * x.height, 2 * x.width);
      if (c.launch) {
        kernels::launch_unet_upsample(at(x), at(*staged), c.batch * x.channels, x.height, x.width, storage_, c.stream);
      }
      input = *staged;
    } else if (host.pad_begin != host.pad_end) {
      staged = make(x.channels, x.height + 1, x.width + 1);
      if (c.launch) {
        kernels::launch_unet_pad_end(at(x), at(*staged), c.batch * x.channels, x.height, x.width, storage_, c.stream);
      }
      input = *staged;
    }
    const int pad = host.pad_begin == host.pad_end ? host.pad_begin : 0;
    const std::int64_t out_h = (input.height + 2 * pad - host.kernel) / host.stride + 1;
    const std::int64_t out_w = (input.width + 2 * pad - host.kernel) / host.stride + 1;
    const Tensor y = make(host.out, out_h, out_w);
    DDPM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_desc_.handle, CUDNN_TENSOR_NCHW, cudnn_type(storage_),
                                                static_cast<int>(c.batch), input.channels,
                                                static_cast<int>(input.height), static_cast<int>(input.width)));
    DDPM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_desc_.handle, CUDNN_TENSOR_NCHW, cudnn_type(storage_),
                                                static_cast<int>(c.batch), host.out, static_cast<int>(out_h),
                                                static_cast<int>(out_w)));
    if (!cv.planned) plan(cv);
    cudnnConvolutionFwdAlgo_t algorithm = cv.algorithm;
    std::size_t workspace = 0;
    DDPM_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cudnn_.get(), x_desc_.handle, cv.filter.handle,
                                                             cv.convolution.handle, y_desc_.handle, algorithm,
                                                             &workspace));
    if (!c.launch) {
      cudnn_workspace_bytes_ = std::max(cudnn_workspace_bytes_, workspace);
    } else {
      if (workspace > cudnn_workspace_bytes_) {  // a smaller batch that wants more: the algorithm without any
        algorithm = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        workspace = 0;
      }
      const float one = 1.0f, zero = 0.0f;
      DDPM_CUDNN_CHECK(cudnnConvolutionForward(cudnn_.get(), &one, x_desc_.handle, at(input), cv.filter.handle,
                                               cv.weight.data(), cv.convolution.handle, algorithm,
                                               cudnn_workspace_.data(), workspace, &zero, y_desc_.handle, at(y)));
      kernels::launch_unet_channel_bias(at(y), cv.bias.data(), c.batch, host.out, out_h * out_w, storage_, c.stream);
    }
    if (staged) drop(*staged);
    return y;
  }

  // cuDNN's heuristic choice for the largest batch (the descriptors are set for it).
  void plan(DeviceConv& cv) {
    cudnnConvolutionFwdAlgoPerf_t results[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    DDPM_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(cudnn_.get(), x_desc_.handle, cv.filter.handle,
                                                            cv.convolution.handle, y_desc_.handle,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, results));
    cv.algorithm = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    for (int i = 0; i < returned; ++i) {
      if (results[i].status == CUDNN_STATUS_SUCCESS) {
        cv.algorithm = results[i].algo;
        break;
      }
    }
    cv.planned = true;
  }

  Tensor group_norm(const Call& c, const GroupNorm& host, const Tensor& x, const float* rows, std::int64_t stride,
                    bool scale_shift, bool silu) {
    const Tensor y = make(x.channels, x.height, x.width);
    if (c.launch) {
      const DeviceNorm& n = *norms_.at(&host);
      kernels::UNetGroupNormArgs a;
      a.x = at(x);
      a.y = at(y);
      a.batch = c.batch;
      a.channels = n.channels;
      a.groups = n.groups;
      a.pixels = x.pixels();
      a.weight = n.weight.data();
      a.bias = n.bias.data();
      a.eps = n.eps;
      a.rows = rows;
      a.row_stride = stride;
      a.scale_shift = scale_shift;
      a.silu = silu;
      kernels::launch_unet_group_norm(a, storage_, c.stream);
    }
    return y;
  }

  Tensor resnet(const Call& c, const ResnetBlock& r, const Tensor& x) {
    const Tensor a = group_norm(c, r.norm1, x, nullptr, 0, false, true);
    const Tensor h = conv(c, r.conv1, a, false);
    drop(a);
    // The time embedding's projection per sample, in float.
    float* projection = rows_.data() + static_cast<std::size_t>(c.batch) * projection_offset();
    const DeviceLinear& proj = *linears_.at(&r.time_emb_proj);
    row_product(c, proj, semb(c), projection);
    if (c.launch) kernels::launch_unet_row_bias(projection, proj.bias.data(), c.batch, proj.out, false, c.stream);
    const Tensor a2 = group_norm(c, r.norm2, h, projection, proj.out, r.scale_shift, true);
    drop(h);
    Tensor y = conv(c, r.conv2, a2, false);
    drop(a2);
    if (r.conv_shortcut) {
      const Tensor s = conv(c, *r.conv_shortcut, x, false);
      if (c.launch) kernels::launch_unet_add_scaled(at(y), at(s), count(c, y), r.output_scale, storage_, c.stream);
      drop(s);
    } else if (c.launch) {
      kernels::launch_unet_add_scaled(at(y), at(x), count(c, y), r.output_scale, storage_, c.stream);
    }
    return y;
  }

  Tensor attention(const Call& c, const AttentionBlock& a, const Tensor& x) {
    const std::int64_t pixels = x.pixels();
    const int inner = a.heads * a.head_dim;
    const Tensor normed = a.group_norm ? group_norm(c, *a.group_norm, x, nullptr, 0, false, false) : x;
    const Tensor q = make(inner, x.height, x.width), k = make(inner, x.height, x.width),
                 v = make(inner, x.height, x.width);
    product(c, *linears_.at(&a.to_q), at(normed), at(q), pixels);
    product(c, *linears_.at(&a.to_k), at(normed), at(k), pixels);
    product(c, *linears_.at(&a.to_v), at(normed), at(v), pixels);
    if (a.group_norm) drop(normed);
    // scores (float) and probabilities (storage) per (sample, head): [pixels][pixels].
    const std::int64_t heads = c.batch * a.heads;
    const std::size_t scores_at =
        arena_.take(static_cast<std::size_t>(settings_.max_batch * a.heads * pixels * pixels) * sizeof(float));
    const Tensor probabilities = make(static_cast<int>(a.heads * pixels), x.height, x.width);
    const Tensor o = make(inner, x.height, x.width);
    if (c.launch) {
      const float scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim)), zero = 0.0f, one = 1.0f;
      const cudaDataType_t type = cuda_type(storage_);
      const auto compute = settings_.precision == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      const auto n = static_cast<int>(pixels);
      const long long head_stride = static_cast<long long>(a.head_dim) * pixels;
      float* scores = reinterpret_cast<float*>(arena_buffer_.data() + scores_at);
      // Column-major: scores^T = K_h^T Q_h, i.e. row-major scores[i][j] = q_i . k_j.
      DDPM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas_.get(), CUBLAS_OP_N, CUBLAS_OP_T, n, n, a.head_dim, &scale,
                                                   at(k), type, n, head_stride, at(q), type, n, head_stride, &zero,
                                                   scores, CUDA_R_32F, n, static_cast<long long>(n) * n,
                                                   static_cast<int>(heads), compute, CUBLAS_GEMM_DEFAULT));
      kernels::launch_unet_softmax(scores, at(probabilities), heads * pixels, pixels, storage_, c.stream);
      // o[d][i] = sum_j v[d][j] p[i][j]: column-major O_h (pixels x d) = P^T V_h.
      DDPM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, n, a.head_dim, n, &one,
                                                   at(probabilities), type, n, static_cast<long long>(n) * n, at(v),
                                                   type, n, head_stride, &zero, at(o), type, n, head_stride,
                                                   static_cast<int>(heads), compute, CUBLAS_GEMM_DEFAULT));
    }
    arena_.give(scores_at);
    drop(probabilities);
    drop(q);
    drop(k);
    drop(v);
    const Tensor y = make(x.channels, x.height, x.width);
    product(c, *linears_.at(&a.to_out), at(o), at(y), pixels);
    drop(o);
    if (c.launch) kernels::launch_unet_add_scaled(at(y), at(x), count(c, y), a.rescale, storage_, c.stream);
    return y;
  }

  Tensor concat(const Call& c, const Tensor& h, const Tensor& skip) {
    const Tensor y = make(h.channels + skip.channels, h.height, h.width);
    if (c.launch) {
      const std::size_t e = bytes_of(storage_);
      const std::size_t h_bytes = static_cast<std::size_t>(h.channels * h.pixels()) * e;
      const std::size_t s_bytes = static_cast<std::size_t>(skip.channels * skip.pixels()) * e;
      auto* dst = static_cast<std::byte*>(at(y));
      DDPM_CUDA_CHECK(cudaMemcpy2DAsync(dst, h_bytes + s_bytes, at(h), h_bytes, h_bytes,
                                        static_cast<std::size_t>(c.batch), cudaMemcpyDeviceToDevice, c.stream));
      DDPM_CUDA_CHECK(cudaMemcpy2DAsync(dst + h_bytes, h_bytes + s_bytes, at(skip), s_bytes, s_bytes,
                                        static_cast<std::size_t>(c.batch), cudaMemcpyDeviceToDevice, c.stream));
    }
    return y;
  }

  // rows_: [sinusoid | hidden | emb | silu(emb) | projection] blocks of batch rows each.
  std::size_t projection_offset() const {
    return static_cast<std::size_t>(net_.time_proj.dim) + 3 * static_cast<std::size_t>(net_.time_embed_dim);
  }
  float* semb(const Call& c) const {
    return rows_.data() + static_cast<std::size_t>(c.batch) *
                              (static_cast<std::size_t>(net_.time_proj.dim) + 2 * net_.time_embed_dim);
  }

  void embed_time(const Call& c) {
    if (!c.launch) return;
    const std::size_t b = static_cast<std::size_t>(c.batch);
    float* sinusoid = rows_.data();
    float* hidden = sinusoid + b * net_.time_proj.dim;
    float* emb = hidden + b * net_.time_embed_dim;
    const TimeEmbeddingSpec& t = net_.time_proj;
    kernels::launch_unet_time_proj(c.steps, c.time, c.batch,
                                   {t.dim, t.flip_sin_to_cos, t.downscale_freq_shift, t.scale, t.max_period}, sinusoid,
                                   c.stream);
    const DeviceLinear& l1 = *linears_.at(&net_.time_linear_1);
    row_product(c, l1, sinusoid, hidden);
    kernels::launch_unet_row_bias(hidden, l1.bias.data(), c.batch, l1.out, true, c.stream);
    const DeviceLinear& l2 = *linears_.at(&net_.time_linear_2);
    row_product(c, l2, hidden, emb);
    kernels::launch_unet_embedding(emb, l2.bias.data(), class_embedding_.count() ? class_embedding_.data() : nullptr,
                                   c.labels, c.label, c.batch, l2.out, semb(c), c.stream);
  }

  void forward(const Call& c) {
    arena_.reset();
    const UNet2DConfig& config = net_.config;
    embed_time(c);
    const Tensor x = make(config.in_channels, settings_.height, settings_.width);
    if (c.launch) {
      kernels::launch_unet_input(c.x, at(x), count(c, x), config.center_input_sample, storage_, c.stream);
    }
    std::vector<Tensor> skips{conv(c, net_.conv_in, x, false)};
    drop(x);
    for (const UNetLevel& level : net_.down) {
      for (std::size_t j = 0; j < level.resnets.size(); ++j) {
        Tensor h = resnet(c, level.resnets[j], skips.back());
        if (!level.attentions.empty()) {
          const Tensor a = attention(c, level.attentions[j], h);
          drop(h);
          h = a;
        }
        skips.push_back(h);
      }
      if (level.resample) skips.push_back(conv(c, *level.resample, skips.back(), false));
    }
    Tensor h;
    if (net_.mid) {
      h = resnet(c, net_.mid->resnets[0], skips.back());
      if (!net_.mid->attentions.empty()) {
        const Tensor a = attention(c, net_.mid->attentions[0], h);
        drop(h);
        h = a;
      }
      const Tensor r = resnet(c, net_.mid->resnets[1], h);
      drop(h);
      h = r;
    } else {
      h = make(skips.back().channels, skips.back().height, skips.back().width);
      if (c.launch) {
        DDPM_CUDA_CHECK(cudaMemcpyAsync(at(h), at(skips.back()), static_cast<std::size_t>(count(c, h)) * bytes_of(storage_),
                                        cudaMemcpyDeviceToDevice, c.stream));
      }
    }
    for (const UNetLevel& level : net_.up) {
      for (std::size_t j = 0; j < level.resnets.size(); ++j) {
        const Tensor joined = concat(c, h, skips.back());
        drop(h);
        drop(skips.back());
        skips.pop_back();
        h = resnet(c, level.resnets[j], joined);
        drop(joined);
        if (!level.attentions.empty()) {
          const Tensor a = attention(c, level.attentions[j], h);
          drop(h);
          h = a;
        }
      }
      if (level.resample) {
        const Tensor up = conv(c, *level.resample, h, true);
        drop(h);
        h = up;
      }
    }
    const Tensor normed = group_norm(c, net_.conv_norm_out, h, nullptr, 0, false, true);
    drop(h);
    const Tensor y = conv(c, net_.conv_out, normed, false);
    drop(normed);
    if (c.launch) kernels::launch_unet_output(at(y), c.out, count(c, y), storage_, c.stream);
    drop(y);
  }

  const UNet2DNetwork& net_;
  UNet2DDeviceSettings settings_;
  UNetStorage storage_;
  int device_ = 0;
  CudnnHandle cudnn_;
  CublasHandle cublas_;
  std::vector<std::vector<std::byte>> staging_;  // host copies, until the constructor's uploads finish
  std::map<const Conv2d*, std::unique_ptr<DeviceConv>> convs_;
  std::map<const GroupNorm*, std::unique_ptr<DeviceNorm>> norms_;
  std::map<const Linear*, std::unique_ptr<DeviceLinear>> linears_;
  cuda::DeviceBuffer<float> class_embedding_;
  TensorDescriptor x_desc_, y_desc_;
  Arena arena_;
  cuda::DeviceBuffer<std::byte> arena_buffer_;
  std::size_t cudnn_workspace_bytes_ = 0;
  cuda::DeviceBuffer<std::byte> cudnn_workspace_;
  cuda::DeviceBuffer<std::byte> cublas_workspace_;
  cuda::DeviceBuffer<std::int32_t> labels_;
  cuda::DeviceBuffer<float> rows_;
};

}  // namespace

std::unique_ptr<UNet2DDevicePart> make_unet2d_device_part(const UNet2DNetwork& net,
                                                          const UNet2DDeviceSettings& settings, void* stream) {
  return std::make_unique<UNet2DDevice>(net, settings, as_stream(stream));
}

}  // namespace ddpm::detail
