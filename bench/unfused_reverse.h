#pragma once
// The reverse step written the way an eager framework runs it: one kernel per
// arithmetic operation, each reading its inputs from and writing its output
// to global memory, and z from cuRAND's host API (curandGenerateNormal), as
// torch.randn_like does. It exists to show what the engine's fusion saves:
//
//   z   = randn_like(x)                      write 4            (cuRAND)
//   t1  = eps_coef * eps                     read 4,  write 4
//   t2  = x - t1                             read 8,  write 4
//   t3  = t2 / sqrt_alpha                    read 4,  write 4
//   t4  = sigma * z                          read 4,  write 4
//   out = t3 + t4                            read 8,  write 4   -> 52 bytes/element
//
// and with the analytic Gaussian predictor in front of it
//
//   p1  = x - a * mu                         read 4,  write 4
//   p2  = b * p1                             read 4,  write 4
//   eps = p2 / (a * a * var + b * b)         read 4,  write 4   -> +24 = 76 bytes/element
//
// (a, b, mu, var and the step's coefficients are host scalars, as Python
// floats are in PyTorch; bench/torch_baseline.py runs the same expressions.)
#include <cuda_runtime.h>
#include <curand.h>

#include <cstddef>
#include <cstdint>

#include "ddpm/schedule.h"
#include "gpu_common.h"

namespace ddpm::bench {

inline constexpr int kEagerReverseKernels = 6;  // incl. curandGenerateNormal
inline constexpr double kEagerReverseBytesPerElement = 52.0;
inline constexpr int kEagerPredictorKernels = 3;
inline constexpr double kEagerPredictorBytesPerElement = 24.0;

// One step's scalars, rounded to float as a framework would pass them.
struct EagerStepScalars {
  float eps_coef = 0.0f;    // beta_t / sqrt(1 - alpha_bar_t)
  float sqrt_alpha = 1.0f;  // the reverse mean divides by it
  float sigma = 0.0f;       // sqrt(beta_t); 0 at t = 0
  float a = 0.0f;           // sqrt(alpha_bar_t)
  float b = 0.0f;           // sqrt(1 - alpha_bar_t)
};
EagerStepScalars eager_step_scalars(const Schedule& schedule, int step);

// Device arrays of one eager step; each holds `n` floats (z: n rounded up to
// even, which curandGenerateNormal requires).
struct EagerArrays {
  const float* x = nullptr;
  const float* eps = nullptr;  // input of reverse(); written by predict_and_reverse()
  float* out = nullptr;
  float* z = nullptr;
  float* t1 = nullptr;
  float* t2 = nullptr;
  float* t3 = nullptr;
  float* t4 = nullptr;
  float* p1 = nullptr;  // predictor temporaries
  float* p2 = nullptr;
  float* eps_out = nullptr;  // predictor output (predict_and_reverse reads it as eps)
};

class EagerReverse {
 public:
  // A cuRAND Philox4x32-10 generator, seeded and bound to `stream`.
  EagerReverse(std::uint64_t seed, cudaStream_t stream);
  ~EagerReverse();
  EagerReverse(const EagerReverse&) = delete;
  EagerReverse& operator=(const EagerReverse&) = delete;

  // out = (x - eps_coef * eps) / sqrt_alpha + sigma * z: 6 launches.
  void reverse(const EagerArrays& arrays, std::size_t n, const EagerStepScalars& s);
  // eps_out = b (x - a mu) / (a^2 var + b^2), then reverse() with it: 9 launches.
  void predict_and_reverse(const EagerArrays& arrays, std::size_t n, const EagerStepScalars& s,
                           float mu, float var);

 private:
  void reverse_from(const float* x, const float* eps, const EagerArrays& arrays, std::size_t n,
                    const EagerStepScalars& s);
  curandGenerator_t generator_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace ddpm::bench
