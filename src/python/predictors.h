#pragma once
// Predictors in Python: the built-in ones bound as classes, and any Python
// callable f(x_t, t[, labels]) -> model_output wrapped as a NoisePredictor.
#include <cstdint>
#include <vector>

#include <nanobind/nanobind.h>

#include "arrays.h"
#include "ddpm/predictor.h"

namespace ddpm::python {

namespace nb = nanobind;

// Calls `bridge(x_t, t, model_output, labels)` (ddpm/_predictors.py) with the
// GIL held: x_t and model_output are views of the engine's own buffers in
// `framework` on `place` (no copies), shaped like the caller's samples
// (`extents`, first axis the batch); labels is an int32 view or None. A
// Python exception raised there propagates out of Sampler::sample unchanged.
class CallablePredictor final : public NoisePredictor {
 public:
  CallablePredictor(nb::object bridge, Framework framework, Place place,
                    std::vector<std::int64_t> extents);
  ~CallablePredictor() override;
  void predict(const PredictorCall& call) override;
  // Only the memory the caller's arrays are in: a NumPy or CPU-tensor model
  // is never handed device buffers, nor a CUDA model host ones.
  bool supports(Memory memory) const override { return memory == place_.memory; }
  bool capturable() const override { return false; }  // Python cannot run inside a CUDA Graph

 private:
  nb::object bridge_;
  Framework framework_;
  Place place_;
  std::vector<std::int64_t> extents_;
};

}  // namespace ddpm::python
