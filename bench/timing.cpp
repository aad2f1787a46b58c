#include "timing.h"

namespace ddpm::bench {

EventTimer::EventTimer() {
  BENCH_CUDA_CHECK(cudaEventCreate(&start_));
  BENCH_CUDA_CHECK(cudaEventCreate(&stop_));
}

EventTimer::~EventTimer() {
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
}

void EventTimer::start(cudaStream_t stream) { BENCH_CUDA_CHECK(cudaEventRecord(start_, stream)); }
void EventTimer::stop(cudaStream_t stream) { BENCH_CUDA_CHECK(cudaEventRecord(stop_, stream)); }

double EventTimer::elapsed_seconds() {
  BENCH_CUDA_CHECK(cudaEventSynchronize(stop_));
  float ms = 0.0f;
  BENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
  return static_cast<double>(ms) * 1e-3;
}

L2Flusher::L2Flusher(std::size_t l2_bytes) : buffer_(2 * (l2_bytes > 0 ? l2_bytes : (64u << 20))) {}

void L2Flusher::flush(cudaStream_t stream) {
  BENCH_CUDA_CHECK(cudaMemsetAsync(buffer_.data(), 0x5A, buffer_.bytes(), stream));
}

std::vector<double> time_calls(cudaStream_t stream, L2Flusher& flusher, const TimingPlan& plan,
                               const std::function<void(int call)>& call) {
  EventTimer timer;
  std::vector<double> per_call;
  per_call.reserve(static_cast<std::size_t>(plan.repetitions));
  for (int rep = 0; rep < plan.warmup + plan.repetitions; ++rep) {
    flusher.flush(stream);
    timer.start(stream);
    for (int c = 0; c < plan.calls; ++c) call(c);
    timer.stop(stream);
    const double seconds = timer.elapsed_seconds();
    if (rep >= plan.warmup) per_call.push_back(seconds / plan.calls);
  }
  BENCH_CUDA_CHECK(cudaGetLastError());
  return per_call;
}

}  // namespace ddpm::bench
