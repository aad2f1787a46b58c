#pragma once
// The device half of a predictor. A predictor's prepare() for device memory
// makes it (from the CUDA sources, which only a CUDA build compiles) and
// holds it behind this interface, so that the host half never names CUDA; in
// a build without CUDA, prepare() says so instead (throw_without_cuda).
#include <string>

#include "ddpm/predictor.h"

namespace ddpm::detail {

class PredictorDevicePart {
 public:
  virtual ~PredictorDevicePart() = default;
  // The model output of `call` (device memory) into output_of(call): only
  // launches on the call's stream (no allocation, no synchronisation), so
  // it can be captured into a CUDA Graph.
  virtual void predict(const PredictorCall& call) = 0;
};

// "<predictor>: this ddpm was built without CUDA ..." as ddpm::Error.
[[noreturn]] void throw_without_cuda(const std::string& predictor);

}  // namespace ddpm::detail
