#pragma once
// The device copies of a CUDA engine's schedule and plan, uploaded once at
// construction: the forward coefficients of every timestep (global memory),
// and the reverse-step records of every plan position in both layouts
// (kernels/step_rule.cuh; global memory), the layout the sampling loop uses
// also in a region of the constant arena when one is free
// (kernels/constant_schedule.cuh, src/backends/cuda/constant_arena.h).
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/launch.h"
#include "constant_arena.h"
#include "ddpm/sampler.h"
#include "device_buffer.h"

namespace ddpm::detail::cuda {

class DeviceStepTables {
 public:
  // `loop_full`: the loop processes x0 (needs the full layout).
  DeviceStepTables(int device, const Schedule& schedule, const std::vector<PlannedStep>& plan,
                   bool loop_full, cudaStream_t stream);

  // The records the loop reads (in constant memory when a region was free).
  kernels::StepView loop_view() const;
  // The records in the given layout from global memory (single steps).
  kernels::StepView view(bool full) const;
  // Full records of every step taken at first order (a multistep step whose
  // history is missing), global memory.
  kernels::StepView first_order_view() const;
  const kernels::ForwardCoefficients* forward_table() const { return forward_.data(); }
  bool in_constant_memory() const { return region_.valid(); }

 private:
  bool loop_full_;
  DeviceBuffer<float> plain_, full_, first_order_;
  DeviceBuffer<kernels::ForwardCoefficients> forward_;
  ConstantRegion region_;
};

}  // namespace ddpm::detail::cuda
