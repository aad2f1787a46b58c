#pragma once
// The float coefficients of the forward process at one timestep, built on the
// host from the double-precision ddpm::Schedule. (The reverse step's
// coefficients depend on the step rule: see step_rule.cuh.)
#include <cstdint>

namespace ddpm::kernels {

struct ForwardCoefficients {
  float sqrt_alpha_bar;            // q(x_t | x0): weight of x0
  float sqrt_one_minus_alpha_bar;  // q(x_t | x0): weight of eps
  float sqrt_alpha;                // q(x_t | x_{t-1}): weight of x_{t-1}
  float sqrt_beta;                 // q(x_t | x_{t-1}): weight of eps
};
static_assert(sizeof(ForwardCoefficients) == 16, "one step is 16 bytes");

}  // namespace ddpm::kernels
