#pragma once
// Predictors in Python: the built-in ones bound as classes, and any Python
// callable f(x_t, t[, labels]) -> model_output wrapped as a NoisePredictor.
#include <cstdint>
#include <optional>
#include <vector>

#include <nanobind/nanobind.h>

#include "arrays.h"
#include "ddpm/predictor.h"
#include "ddpm/sampler.h"

namespace ddpm::python {

namespace nb = nanobind;

// Calls `bridge(x_t, t, model_output, labels)` (ddpm/_predictors.py) with the
// GIL held: x_t and model_output are views of the engine's own buffers in
// `framework` on `place` (no copies), shaped like the caller's samples
// (`extents`, first axis the batch; 2 x batch rows with classifier-free
// guidance); labels is an int32 view or None. t is the step's model time
// (model_time below). A Python exception raised there propagates out of
// Sampler::sample unchanged.
class CallablePredictor final : public NoisePredictor {
 public:
  // `unconditional_label`: the callable's null label (its
  // unconditional_label attribute), which guidance needs. `fractional_time`:
  // whether the loop's model times are floats (fractional_model_times).
  CallablePredictor(nb::object bridge, Framework framework, Place place,
                    std::vector<std::int64_t> extents,
                    std::optional<std::int32_t> unconditional_label, bool fractional_time);
  ~CallablePredictor() override;
  void predict(const PredictorCall& call) override;
  // Only the memory the caller's arrays are in: a NumPy or CPU-tensor model
  // is never handed device buffers, nor a CUDA model host ones.
  bool supports(Memory memory) const override { return memory == place_.memory; }
  bool capturable() const override { return false; }  // Python cannot run inside a CUDA Graph
  std::optional<std::int32_t> unconditional_label() const override { return unconditional_label_; }

 private:
  nb::object bridge_;
  Framework framework_;
  Place place_;
  std::vector<std::int64_t> extents_;
  std::optional<std::int32_t> unconditional_label_;
  bool fractional_time_;
};

// Whether Python predictors get the model time as a float: for euler,
// euler_ancestral and heun (diffusers' Euler and Heun schedulers keep float32 timesteps,
// interpolated and so fractional in general) and for any loop with a
// fractional time (Karras sigmas on a cosine schedule). Otherwise an int,
// the timestep (diffusers' int64 timesteps of DDPM, DDIM and DPM-Solver++).
bool fractional_model_times(const Sampler& sampler);
// A step's time as a Python predictor receives it: a float (float32 value,
// as diffusers' float32 timesteps) when `fractional`, else the int timestep.
nb::object model_time(const PlannedStep& step, bool fractional);

}  // namespace ddpm::python
