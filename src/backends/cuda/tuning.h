#pragma once
// Internal knobs of the CUDA backend for tests and benchmarks (not part of
// the public API). Every setting gives the same bits as the defaults; tests
// use them to prove it (launch shapes, graphs on and off, the constant arena
// bypassed). Settings are process-wide and read when an engine is built
// (use_constant_schedule) or when a request is enqueued (the rest).
#include <cuda_runtime_api.h>

#include "kernels/launch.h"

namespace ddpm::detail::cuda {

struct Tuning {
  int block_size = 256;               // threads per block: a multiple of 32 in [32, 512]
  int max_blocks = 0;                 // grid cap; 0: one full wave of the device
  bool vectorize = true;              // float4 path where rows are 16-byte aligned
  bool use_graphs = true;             // capture the sampling loop into a CUDA Graph
  bool use_constant_schedule = true;  // engines take a region of the constant arena
  int progress_updates = 50;          // at most this many progress calls per sample()
};

Tuning tuning();
// Throws ddpm::Error for an invalid block size.
void set_tuning(const Tuning& tuning);

// Sets a tuning for a scope (tests).
class ScopedTuning {
 public:
  explicit ScopedTuning(const Tuning& tuning) : saved_(cuda::tuning()) { set_tuning(tuning); }
  ~ScopedTuning() { set_tuning(saved_); }
  ScopedTuning(const ScopedTuning&) = delete;
  ScopedTuning& operator=(const ScopedTuning&) = delete;

 private:
  Tuning saved_;
};

// The launch configuration of the element-wise kernels on `device` under the
// current tuning.
kernels::LaunchConfig launch_config(int device);

// Streaming multiprocessors of `device` (cached).
int multiprocessor_count(int device);

}  // namespace ddpm::detail::cuda
