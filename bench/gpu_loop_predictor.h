#pragma once
// A predictor that computes what another computes but hides what lets the
// engine fuse it (it is not a GaussianPredictor) and, optionally, what lets
// it capture the loop in a CUDA Graph. Used to measure the unfused and
// the ungraphed loop with the very same predictor kernel.
#include "ddpm/predictor.h"

namespace ddpm::bench {

class UnfusedPredictor : public NoisePredictor {
 public:
  UnfusedPredictor(NoisePredictor& inner, bool capturable)
      : inner_(inner), capturable_(capturable) {}
  void prepare(const Schedule& schedule, Memory memory, Shape shape, void* stream) override {
    inner_.prepare(schedule, memory, shape, stream);
  }
  void predict(const PredictorCall& call) override { inner_.predict(call); }
  bool supports(Memory memory) const override { return inner_.supports(memory); }
  bool capturable() const override { return capturable_ && inner_.capturable(); }

 private:
  NoisePredictor& inner_;
  bool capturable_;
};

}  // namespace ddpm::bench
