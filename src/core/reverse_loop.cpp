#include "reverse_loop.h"

#include "ddpm/error.h"
#include "engine.h"

namespace ddpm::detail {

void run_reverse_loop(LoopRange range, LoopBackend& backend,
                      const std::function<bool()>& cancelled) {
  for (int position = range.first; position <= range.last; ++position) {
    backend.predict(position);
    backend.step(position);
    backend.steps_done(position - range.first + 1, range.count());
    stop_if_cancelled(cancelled);
  }
}

void stop_if_cancelled(const std::function<bool()>& cancelled) {
  if (cancelled && cancelled()) throw Cancelled("sampling was cancelled");
}

PredictorCall make_predictor_call(const Engine& engine, const LoopArrays& arrays,
                                  Shape shape, std::int64_t samples, std::int64_t first_sample,
                                  int position) {
  PredictorCall call;
  call.x_t = arrays.x;
  call.model_output = arrays.model_output;
  call.eps = arrays.model_output;
  call.prediction_type = engine.options().prediction_type;
  call.shape = shape;
  const PlannedStep& step = engine.plan()[static_cast<std::size_t>(position)];
  call.step = step.timestep;
  call.timestep = static_cast<float>(step.model_timestep);
  call.alpha_bar = step.alpha_bar;
  call.first_sample = first_sample;
  call.sample_rows = samples;
  call.schedule = &engine.schedule();
  call.class_labels = arrays.class_labels;
  call.memory = arrays.memory;
  call.stream = arrays.stream;
  return call;
}

}  // namespace ddpm::detail
