#pragma once
// The reverse loop, written once for every backend and every step rule: for
// each planned step, the model output (unless the backend computes it inside
// the step), then the rule's update, then progress. A backend provides the
// three operations; on the CPU they run at once, on a CUDA device they
// enqueue work (and a graph capture records them).
#include <functional>
#include <vector>

#include "ddpm/predictor.h"
#include "ddpm/requests.h"
#include "engine.h"
#include "validate.h"

namespace ddpm::detail {

class LoopBackend {
 public:
  virtual ~LoopBackend() = default;
  // The model output of plan position `position` (x_t is the backend's x).
  virtual void predict(int position) = 0;
  // x <- the update of plan position `position`.
  virtual void step(int position) = 0;
  // `done` of `total` steps are done (CPU) or queued (CUDA).
  virtual void steps_done(int done, int total) = 0;
};

// Runs the steps of `range`; throws ddpm::Cancelled after a step when
// `cancelled` (if set) says so.
void run_reverse_loop(LoopRange range, LoopBackend& backend,
                      const std::function<bool()>& cancelled = {});

// Throws ddpm::Cancelled when `cancelled` is set and returns true.
void stop_if_cancelled(const std::function<bool()>& cancelled);

// The predictor's view of one step of a loop.
struct LoopArrays {
  const float* x = nullptr;
  float* model_output = nullptr;
  const std::int32_t* class_labels = nullptr;
  Memory memory = Memory::host;
  void* stream = nullptr;
};
// The call for the step at `position`: `shape` has 2 x `samples` rows in a
// guided call (the samples, then the same samples again), `samples` otherwise.
PredictorCall make_predictor_call(const Engine& engine, const LoopArrays& arrays,
                                  Shape shape, std::int64_t samples, std::int64_t first_sample,
                                  int position);

}  // namespace ddpm::detail
