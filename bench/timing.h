#pragma once
// How every GPU figure is taken: CUDA events around a run of calls on one
// stream, after warm-up repetitions, with L2 flushed before each repetition.
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <vector>

#include "gpu_common.h"

namespace ddpm::bench {

// A pair of CUDA events; elapsed() waits for the stop event.
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start(cudaStream_t stream);
  void stop(cudaStream_t stream);
  double elapsed_seconds();

 private:
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

// Evicts what a previous repetition left in L2 by writing a buffer twice the
// L2's size (llm.c's dev/cuda/common.h does the same).
class L2Flusher {
 public:
  explicit L2Flusher(std::size_t l2_bytes);
  void flush(cudaStream_t stream);

 private:
  DeviceBuffer buffer_;
};

struct TimingPlan {
  int warmup = 3;        // repetitions run and discarded
  int repetitions = 25;  // repetitions timed
  int calls = 1;         // calls per repetition, between one pair of events
};

// Per repetition: flush L2, start, call(0) ... call(calls - 1), stop. Returns
// seconds per call for each timed repetition. `call` must only enqueue work
// on `stream` (it may synchronise; the time then includes that).
std::vector<double> time_calls(cudaStream_t stream, L2Flusher& flusher, const TimingPlan& plan,
                               const std::function<void(int call)>& call);

}  // namespace ddpm::bench
