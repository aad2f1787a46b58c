// Eager, one-kernel-per-operation reverse step (see unfused_reverse.h).
// The element-wise kernels are written as a framework writes its own: 16-byte
// vector loads and stores, one float4 per thread, a scalar tail.
#include <cmath>
#include <string>

#include "ddpm/error.h"
#include "unfused_reverse.h"

namespace ddpm::bench {
namespace {

#define BENCH_CURAND_CHECK(call)                                                              \
  do {                                                                                        \
    const curandStatus_t bench_status_ = (call);                                              \
    if (bench_status_ != CURAND_STATUS_SUCCESS)                                               \
      throw CudaError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + #call + \
                      " failed with curandStatus_t " + std::to_string(bench_status_));        \
  } while (0)

constexpr int kBlock = 256;

struct MulScalar {
  float s;
  __device__ float operator()(float v) const { return s * v; }
};
struct DivScalar {
  float s;
  __device__ float operator()(float v) const { return v / s; }
};
struct SubScalar {
  float s;
  __device__ float operator()(float v) const { return v - s; }
};
struct Sub {
  __device__ float operator()(float u, float v) const { return u - v; }
};
struct Add {
  __device__ float operator()(float u, float v) const { return u + v; }
};

template <class Op>
__global__ void unary_kernel(const float* __restrict__ in, float* __restrict__ out, std::size_t n,
                             Op op) {
  const std::size_t n4 = n / 4;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::size_t i = first; i < n4; i += stride) {
    float4 v = reinterpret_cast<const float4*>(in)[i];
    v.x = op(v.x);
    v.y = op(v.y);
    v.z = op(v.z);
    v.w = op(v.w);
    reinterpret_cast<float4*>(out)[i] = v;
  }
  const std::size_t tail = 4 * n4 + first;
  if (tail < n) out[tail] = op(in[tail]);
}

template <class Op>
__global__ void binary_kernel(const float* __restrict__ lhs, const float* __restrict__ rhs,
                              float* __restrict__ out, std::size_t n, Op op) {
  const std::size_t n4 = n / 4;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::size_t i = first; i < n4; i += stride) {
    const float4 u = reinterpret_cast<const float4*>(lhs)[i];
    const float4 v = reinterpret_cast<const float4*>(rhs)[i];
    reinterpret_cast<float4*>(out)[i] =
        make_float4(op(u.x, v.x), op(u.y, v.y), op(u.z, v.z), op(u.w, v.w));
  }
  const std::size_t tail = 4 * n4 + first;
  if (tail < n) out[tail] = op(lhs[tail], rhs[tail]);
}

int grid_for(std::size_t n) {
  const std::size_t threads = n / 4 > 0 ? n / 4 : 1;  // also covers the tail (< 4 elements)
  const std::size_t blocks = (threads + kBlock - 1) / kBlock;
  return static_cast<int>(blocks < (std::size_t{1} << 30) ? blocks : (std::size_t{1} << 30));
}

template <class Op>
void launch_unary(const float* in, float* out, std::size_t n, Op op, cudaStream_t stream) {
  unary_kernel<<<grid_for(n), kBlock, 0, stream>>>(in, out, n, op);
  BENCH_CUDA_CHECK_LAUNCH();
}

template <class Op>
void launch_binary(const float* lhs, const float* rhs, float* out, std::size_t n, Op op,
                   cudaStream_t stream) {
  binary_kernel<<<grid_for(n), kBlock, 0, stream>>>(lhs, rhs, out, n, op);
  BENCH_CUDA_CHECK_LAUNCH();
}

}  // namespace

EagerStepScalars eager_step_scalars(const Schedule& schedule, int step) {
  schedule.check_step(step);
  const auto t = static_cast<std::size_t>(step);
  EagerStepScalars s;
  s.eps_coef = static_cast<float>(schedule.eps_coef()[t]);
  s.sqrt_alpha = static_cast<float>(std::sqrt(schedule.alpha()[t]));
  s.sigma = step > 0 ? static_cast<float>(std::sqrt(schedule.beta()[t])) : 0.0f;
  s.a = static_cast<float>(schedule.sqrt_alpha_bar()[t]);
  s.b = static_cast<float>(schedule.sqrt_one_minus_alpha_bar()[t]);
  return s;
}

EagerReverse::EagerReverse(std::uint64_t seed, cudaStream_t stream) : stream_(stream) {
  BENCH_CURAND_CHECK(curandCreateGenerator(&generator_, CURAND_RNG_PSEUDO_PHILOX4_32_10));
  BENCH_CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(generator_, seed));
  BENCH_CURAND_CHECK(curandSetStream(generator_, stream));
}

EagerReverse::~EagerReverse() {
  if (generator_ != nullptr) curandDestroyGenerator(generator_);
}

void EagerReverse::reverse(const EagerArrays& arrays, std::size_t n, const EagerStepScalars& s) {
  reverse_from(arrays.x, arrays.eps, arrays, n, s);
}

void EagerReverse::predict_and_reverse(const EagerArrays& arrays, std::size_t n,
                                       const EagerStepScalars& s, float mu, float var) {
  launch_unary(arrays.x, arrays.p1, n, SubScalar{s.a * mu}, stream_);
  launch_unary(arrays.p1, arrays.p2, n, MulScalar{s.b}, stream_);
  launch_unary(arrays.p2, arrays.eps_out, n, DivScalar{s.a * s.a * var + s.b * s.b}, stream_);
  reverse_from(arrays.x, arrays.eps_out, arrays, n, s);
}

void EagerReverse::reverse_from(const float* x, const float* eps, const EagerArrays& arrays,
                                std::size_t n, const EagerStepScalars& s) {
  const std::size_t n_even = n + (n % 2);
  BENCH_CURAND_CHECK(curandGenerateNormal(generator_, arrays.z, n_even, 0.0f, 1.0f));
  launch_unary(eps, arrays.t1, n, MulScalar{s.eps_coef}, stream_);
  launch_binary(x, arrays.t1, arrays.t2, n, Sub{}, stream_);
  launch_unary(arrays.t2, arrays.t3, n, DivScalar{s.sqrt_alpha}, stream_);
  launch_unary(arrays.z, arrays.t4, n, MulScalar{s.sigma}, stream_);
  launch_binary(arrays.t3, arrays.t4, arrays.out, n, Add{}, stream_);
}

}  // namespace ddpm::bench
