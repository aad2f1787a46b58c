#pragma once
// The engine's facade: forward noising and the reverse (denoising) loop on
// the CPU or on a CUDA device, with reproducible noise (see
// kernels/noise_counter.cuh). Its vocabulary is in sampler_options.h (how
// samples are drawn), plan.h (the rule's steps) and requests.h (the calls'
// arrays).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ddpm/backend.h"
#include "ddpm/plan.h"
#include "ddpm/predictor.h"
#include "ddpm/requests.h"
#include "ddpm/sampler_options.h"
#include "ddpm/schedule.h"
#include "ddpm/types.h"

namespace ddpm {

class Sampler {
 public:
  // Throws ddpm::Error for invalid options (an unknown combination, inference
  // steps out of range, a bad timestep list, ...) and for Backend::cuda when
  // no CUDA device is usable.
  explicit Sampler(Schedule schedule, SamplerOptions options = {});
  ~Sampler();
  Sampler(Sampler&&) noexcept;
  Sampler& operator=(Sampler&&) noexcept;

  Backend backend() const;  // the backend in use (never automatic)
  const Schedule& schedule() const;  // rescaled when options().rescale_betas_zero_snr
  const SamplerOptions& options() const;
  // The rule's timesteps, in the order the loop runs them (decreasing).
  std::vector<int> timesteps() const;
  // Everything the loop uses, one entry per timestep, in loop order.
  const std::vector<PlannedStep>& plan() const;
  // A drawn x_T is this times N(0, I) (diffusers' init_noise_sigma, in the
  // loop's variance-preserving terms: below 1 for Euler's linspace spacing).
  double initial_noise_scale() const;
  // The floats of a loop's history for a batch of this shape
  // (SampleRequest::history, ReverseStepRequest::history): slots of [batch,
  // dim] each, the x0_hat of the last k steps (k = 1 for dpmpp_2m, 2 for
  // dpmpp_3m, up to 3 for unipc, 1 for heun) and, for unipc and heun, the
  // previous step's sample; 0 for the rules that keep none.
  std::int64_t history_size(Shape shape) const;

  void forward(const ForwardRequest& request);
  void forward_one_step(const ForwardOneStepRequest& request);
  void reverse_step(const ReverseStepRequest& request);
  void sample(const SampleRequest& request, NoisePredictor& predictor);
  // Waits for the work queued on a request's stream (CUDA backend); no-op on the CPU.
  void synchronize(void* stream = nullptr);

  struct Impl;  // the backend in use

 private:
  void validate_history_read(std::span<const float> history, Shape shape, int position) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpm
