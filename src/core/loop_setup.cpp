#include "loop_setup.h"

#include "guidance.h"
#include "step_plan.h"

namespace ddpm::detail {

LoopSetup loop_setup(const Engine& engine, const SampleRequest& r, const NoisePredictor& predictor, int first,
                     int last) {
  LoopSetup s;
  s.guided = guided(r);
  s.deep = engine.history_layout().deep();
  const auto* gaussian = dynamic_cast<const GaussianPredictor*>(&predictor);
  if (gaussian != nullptr && r.guidance_rescale == 0.0 && !s.deep) s.fused_prior = gaussian;
  s.multistep = s.deep || multistep(engine.plan(), first, last);
  if (s.multistep) {
    s.history_floats = s.deep ? engine.history_layout().slots() * r.shape.size() : r.shape.size();
  }
  s.own_history = s.multistep && r.history.empty();
  return s;
}

}  // namespace ddpm::detail
