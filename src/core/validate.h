#pragma once
// Checks every request before it reaches a backend, so that bad input gets
// one clear message whichever backend runs it. Host arrays are also scanned
// for NaN/Inf; device arrays are checked by the CUDA engine.
#include <span>
#include <string>
#include <vector>

#include "ddpm/sampler.h"

namespace ddpm::detail {

void validate_shape(const Shape& shape);
// first_sample >= 0 and first_sample + batch fits in int64 (after validate_shape).
void validate_noise_key(const NoiseKey& noise, const Shape& shape);
void validate_size(std::size_t actual, const Shape& shape, const char* what);
// A loop history of `slots` slots of [batch, dim] (Sampler::history_size();
// one slot, [batch, dim], for the rules without a deeper history).
void validate_history_size(std::size_t actual, const Shape& shape, int slots, const char* what);
void validate_finite(std::span<const float> values, const char* what);
void validate_options(const SamplerOptions& options);

void validate(const ForwardRequest& r, const Schedule& schedule);
void validate(const ForwardOneStepRequest& r, const Schedule& schedule);
void validate(const ReverseStepRequest& r, const Schedule& schedule);
void validate(const SampleRequest& r, const Schedule& schedule);

// The plan positions a SampleRequest runs, first ... last (inclusive).
struct LoopRange {
  int first = 0;
  int last = 0;
  int count() const { return last - first + 1; }
};
// Throws ddpm::Error when start_step or end_step is not a timestep of the
// plan, or end_step comes before start_step.
LoopRange resolve_loop_range(const SampleRequest& r, const std::vector<PlannedStep>& plan);

}  // namespace ddpm::detail
