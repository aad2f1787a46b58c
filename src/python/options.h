#pragma once
// Keyword options -> ddpm::SamplerOptions, with the CLI's option names and
// diffusers' config names as aliases (use_karras_sigmas is diffusers' name,
// with the CLI's karras_sigmas as its alias):
//   sampler, prediction_type, inference_steps (num_inference_steps),
//   timestep_spacing, steps_offset, timesteps, eta, set_alpha_to_one,
//   use_karras_sigmas (karras_sigmas), solver_order, lower_order_final,
//   euler_at_final, use_lu_lambdas, lambda_min_clipped, final_sigmas_type,
//   solver_type, disable_corrector, variance, clip_x0=(lo, hi),
//   thresholding=True | ratio | (ratio, max),
//   dynamic_thresholding_ratio, sample_max_value,
//   rescale_zero_snr (rescale_betas_zero_snr), backend, threads.
// Names are parsed with the library's own parse functions, so a new enum
// value needs nothing here and a new option is one entry in options.cpp.
// Which sampler takes which option is the step rules' business: their
// ddpm::Error reaches Python as it is, and nothing here names a sampler.
#include <nanobind/nanobind.h>

#include "ddpm/sampler.h"
#include "ddpm/scheduler_config.h"

namespace ddpm::python {

namespace nb = nanobind;

// A float from a Python number (not a bool, not an array of several);
// TypeError naming `key` otherwise.
double number(nb::handle value, const char* key);

// Applies `kwargs` on top of `options`. Throws TypeError for an unknown name
// (naming it), a name given twice (as itself and as its alias) or a value of
// the wrong type; ddpm::Error for a bad value.
void apply_options(const nb::dict& kwargs, SamplerOptions& options);

// The options under the keyword names apply_options takes.
nb::dict options_dict(const SamplerOptions& options);

}  // namespace ddpm::python
