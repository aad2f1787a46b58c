#pragma once
// What the built-in predictors keep on the device between prepare() and
// predict(): their tables, uploaded once per sampling loop.
#include <cstdint>
#include <vector>

#include "../../kernels/launch.h"
#include "ddpm/schedule.h"
#include "device_buffer.h"

namespace ddpm::detail {

struct GaussianDeviceState {
  int device = 0;
  int steps = 0;
  std::int64_t dim = 0;
  float mean = 0.0f;  // scalar prior (when the tables are empty)
  float var = 1.0f;
  cuda::DeviceBuffer<float> means;  // per-element prior, dim floats each, or empty
  cuda::DeviceBuffer<float> vars;
  std::vector<kernels::StepAB> host_table;    // sqrt(ab_t), sqrt(1 - ab_t) per step
  cuda::DeviceBuffer<kernels::StepAB> table;  // the same, for per-sample steps
};

struct GmmDeviceState {
  int device = 0;
  int steps = 0;
  std::int64_t dim = 0;
  int components = 0;                     // with nonzero weight
  cuda::DeviceBuffer<float> log_weights;  // K
  cuda::DeviceBuffer<float> means;        // K x dim
  cuda::DeviceBuffer<float> vars;         // K: s_k^2
  std::vector<kernels::StepAB> host_table;
  cuda::DeviceBuffer<kernels::StepAB> table;
};

// sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t) of a schedule as floats (the same
// values as the per-step table of the engines).
std::vector<kernels::StepAB> make_step_ab_table(const Schedule& schedule);

}  // namespace ddpm::detail
