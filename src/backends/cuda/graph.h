#pragma once
// CUDA Graph capture and replay. CapturedGraph::capture records what a
// function enqueues on a capture stream and keeps one instantiated graph:
// when the new capture has the same topology as the last one (the common
// case: same shape, same start step, same predictor) the instantiated graph
// is updated in place with the new kernel arguments (cudaGraphExecUpdate),
// which is much cheaper than instantiating it again.
#include <exception>
#include <utility>

#include <cuda_runtime_api.h>

#include "check.h"

namespace ddpm::detail::cuda {

class Graph {
 public:
  Graph() = default;
  explicit Graph(cudaGraph_t graph) : graph_(graph) {}
  ~Graph() {
    if (graph_) cudaGraphDestroy(graph_);
  }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&& other) noexcept : graph_(std::exchange(other.graph_, nullptr)) {}
  Graph& operator=(Graph&& other) noexcept {
    std::swap(graph_, other.graph_);
    return *this;
  }
  cudaGraph_t get() const { return graph_; }

 private:
  cudaGraph_t graph_ = nullptr;
};

class CapturedGraph {
 public:
  CapturedGraph() = default;
  ~CapturedGraph() { reset(); }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  // Runs enqueue(capture_stream) under stream capture (thread-local mode, so
  // other threads' CUDA calls are unaffected) and makes the result the graph
  // that launch() replays. capture_stream must not be the legacy default
  // stream. If enqueue throws, the capture is ended and the exception passes on.
  template <typename Enqueue>
  void capture(cudaStream_t capture_stream, Enqueue&& enqueue) {
    DDPM_CUDA_CHECK(cudaStreamBeginCapture(capture_stream, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue(capture_stream);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(capture_stream, &broken);
      if (broken) cudaGraphDestroy(broken);
      cudaGetLastError();
      throw;
    }
    cudaGraph_t raw = nullptr;
    DDPM_CUDA_CHECK(cudaStreamEndCapture(capture_stream, &raw));
    Graph graph(raw);
    if (exec_) {
      cudaGraphExecUpdateResultInfo info{};
      if (cudaGraphExecUpdate(exec_, graph.get(), &info) == cudaSuccess) {
        ++updates_;
        return;
      }
      cudaGetLastError();  // cudaErrorGraphExecUpdateFailure: not sticky
      reset();
    }
    DDPM_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph.get(), 0));
    ++instantiations_;
  }

  void launch(cudaStream_t stream) const { DDPM_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

  void reset() noexcept {
    if (exec_) cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
  }

  // How often a capture was instantiated afresh or updated in place.
  long instantiations() const { return instantiations_; }
  long updates() const { return updates_; }

 private:
  cudaGraphExec_t exec_ = nullptr;
  long instantiations_ = 0;
  long updates_ = 0;
};

}  // namespace ddpm::detail::cuda
