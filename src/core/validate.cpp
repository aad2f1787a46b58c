#include "validate.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "ddpm/error.h"
#include "kernels/noise_counter.cuh"
#include "step_plan.h"

namespace ddpm::detail {
namespace {

// The noise counter keeps the element group in 32 bits and the step in
// kStepBits (kernels/noise_counter.cuh): dim and T are capped so that no
// counter field overflows into the next.
constexpr std::int64_t kMaxDim = std::int64_t{4} * 0xFFFFFFFFll;
static_assert(kMaxSteps <= (std::int64_t{1} << kernels::kStepBits),
              "the step must fit in the noise counter's step bits");

bool on_host(Memory memory) { return memory == Memory::host; }

// Forward noising forms a x + b eps with a^2 + b^2 = 1, so |result| <=
// sqrt(2) max(|x|, |eps|) (the v-target too): inputs within half the float32
// maximum cannot overflow it, larger ones may.
constexpr float kMaxForwardInput = std::numeric_limits<float>::max() / 2;

void validate_forward_input(std::span<const float> values, const char* what) {
  validate_finite(values, what);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::abs(values[i]) > kMaxForwardInput) {
      char text[64];
      std::snprintf(text, sizeof text, "%g at index %zu beyond +-%g", values[i], i,
                    kMaxForwardInput);
      throw Error(std::string(what) + " has " + text +
                  " (half the float32 maximum): the noised result could overflow float32");
    }
  }
}

}  // namespace

void validate_shape(const Shape& shape) {
  if (shape.batch <= 0 || shape.dim <= 0) {
    throw Error("shape " + std::to_string(shape.batch) + "x" + std::to_string(shape.dim) +
                " is empty: batch and dim must be positive");
  }
  if (shape.dim > kMaxDim) {
    throw Error("dim " + std::to_string(shape.dim) + " exceeds the engine's limit of " +
                std::to_string(kMaxDim) + " elements per sample");
  }
  if (shape.batch > INT64_MAX / shape.dim) throw Error("shape overflows 64-bit sizes");
}

void validate_noise_key(const NoiseKey& noise, const Shape& shape) {
  // Sample i draws from subsequence first_sample + i: every index of the
  // batch must be a non-negative int64.
  if (noise.first_sample < 0) {
    throw Error("first sample " + std::to_string(noise.first_sample) + " is negative");
  }
  if (noise.first_sample > INT64_MAX - shape.batch) {
    throw Error("first sample " + std::to_string(noise.first_sample) + " + batch " +
                std::to_string(shape.batch) + " overflows the 64-bit sample index (at most " +
                std::to_string(INT64_MAX) + ")");
  }
}

void validate_size(std::size_t actual, const Shape& shape, const char* what) {
  if (static_cast<std::int64_t>(actual) != shape.size()) {
    throw Error(std::string(what) + " has " + std::to_string(actual) + " values but shape " +
                std::to_string(shape.batch) + "x" + std::to_string(shape.dim) + " needs " +
                std::to_string(shape.size()));
  }
}

void validate_history_size(std::size_t actual, const Shape& shape, int slots, const char* what) {
  if (slots <= 1) return validate_size(actual, shape, what);
  if (static_cast<std::int64_t>(actual) != slots * shape.size()) {
    throw Error(std::string(what) + " has " + std::to_string(actual) + " values but the sampler's history of " +
                std::to_string(slots) + " slots of " + std::to_string(shape.batch) + "x" +
                std::to_string(shape.dim) + " needs " + std::to_string(slots * shape.size()) +
                " (Sampler::history_size())");
  }
}

void validate_finite(std::span<const float> values, const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw Error(std::string(what) + " contains a non-finite value (" +
                  std::to_string(values[i]) + ") at index " + std::to_string(i));
    }
  }
}

void validate_options(const SamplerOptions& options) {
  if (options.clip_x0) {
    const ClipRange& c = *options.clip_x0;
    if (!std::isfinite(c.lo) || !std::isfinite(c.hi) || !(c.lo < c.hi)) {
      throw Error("x0 clip range [" + std::to_string(c.lo) + ", " + std::to_string(c.hi) +
                  "] is invalid: need finite lo < hi");
    }
  }
  if (options.threads < 0) throw Error("threads must be >= 0 (0 = all hardware threads)");
}

void validate(const ForwardRequest& r, const Schedule& schedule) {
  validate_shape(r.shape);
  validate_noise_key(r.noise, r.shape);
  validate_size(r.x0.size(), r.shape, "x0");
  validate_size(r.x_t.size(), r.shape, "x_t output");
  if (!r.eps.empty()) validate_size(r.eps.size(), r.shape, "noise");
  if (!r.eps_out.empty()) validate_size(r.eps_out.size(), r.shape, "noise output");
  if (!r.velocity_out.empty()) validate_size(r.velocity_out.size(), r.shape, "velocity output");
  if (r.steps.empty()) {
    schedule.check_step(r.step);
  } else {
    if (static_cast<std::int64_t>(r.steps.size()) != r.shape.batch) {
      throw Error("per-sample steps has " + std::to_string(r.steps.size()) +
                  " entries but the batch has " + std::to_string(r.shape.batch));
    }
    if (on_host(r.memory)) {
      for (std::int32_t t : r.steps) schedule.check_step(t);
    }
  }
  if (on_host(r.memory)) {
    validate_forward_input(r.x0, "x0");
    if (!r.eps.empty()) validate_forward_input(r.eps, "noise");
  }
}

void validate(const ForwardOneStepRequest& r, const Schedule& schedule) {
  validate_shape(r.shape);
  validate_noise_key(r.noise, r.shape);
  validate_size(r.x_prev.size(), r.shape, "x_{t-1}");
  validate_size(r.x_t.size(), r.shape, "x_t output");
  if (!r.eps.empty()) validate_size(r.eps.size(), r.shape, "noise");
  if (!r.eps_out.empty()) validate_size(r.eps_out.size(), r.shape, "noise output");
  schedule.check_step(r.step);
  if (on_host(r.memory)) {
    validate_forward_input(r.x_prev, "x_{t-1}");
    if (!r.eps.empty()) validate_forward_input(r.eps, "noise");
  }
}

void validate(const ReverseStepRequest& r, const Schedule& schedule) {
  validate_shape(r.shape);
  validate_noise_key(r.noise, r.shape);
  validate_size(r.x_t.size(), r.shape, "x_t");
  validate_size(r.model_output.size(), r.shape, "model output");
  validate_size(r.x_prev.size(), r.shape, "x_prev output");
  if (!r.variance_noise.empty()) validate_size(r.variance_noise.size(), r.shape, "variance noise");
  if (!r.pred_original_sample.empty()) {
    validate_size(r.pred_original_sample.size(), r.shape, "pred_original_sample output");
  }
  if (!r.previous_x0.empty()) validate_size(r.previous_x0.size(), r.shape, "previous x0");
  if (r.step_index < -1) throw Error("step index " + std::to_string(r.step_index) + " is negative");
  if (r.step_index == -1) schedule.check_step(r.step);
  if (on_host(r.memory)) {
    validate_finite(r.x_t, "x_t");
    validate_finite(r.model_output, "model output");
    if (!r.variance_noise.empty()) validate_finite(r.variance_noise, "variance noise");
    if (!r.previous_x0.empty()) validate_finite(r.previous_x0, "previous x0");
  }
}

LoopRange resolve_loop_range(const SampleRequest& r, const std::vector<PlannedStep>& plan) {
  LoopRange range{0, static_cast<int>(plan.size()) - 1};
  if (r.start_step < -1) throw Error("start step " + std::to_string(r.start_step) + " is negative");
  if (r.end_step < -1) throw Error("end step " + std::to_string(r.end_step) + " is negative");
  if (r.start_index < -1) throw Error("start index " + std::to_string(r.start_index) + " is negative");
  if (r.end_index < -1) throw Error("end index " + std::to_string(r.end_index) + " is negative");
  if (r.start_step >= 0 && r.start_index >= 0) {
    throw Error("start step and start index exclude each other: give one");
  }
  if (r.end_step >= 0 && r.end_index >= 0) throw Error("end step and end index exclude each other: give one");
  if (r.start_step >= 0) range.first = plan_position(plan, r.start_step, "start step");
  if (r.start_index >= 0) range.first = plan_index(plan, r.start_index, "start index");
  if (r.end_step >= 0) range.last = plan_position(plan, r.end_step, "end step");
  if (r.end_index >= 0) range.last = plan_index(plan, r.end_index, "end index");
  if (range.last < range.first) {
    const auto name = [&](int position, int index, const char* which) {
      return index >= 0 ? std::string(which) + " index " + std::to_string(index)
                        : std::string(which) + " step " +
                              std::to_string(plan[static_cast<std::size_t>(position)].timestep);
    };
    throw Error(name(range.last, r.end_index, "end") + " comes before " +
                name(range.first, r.start_index, "start") + " (the loop runs from start down to end)");
  }
  return range;
}

void validate(const SampleRequest& r, const Schedule& /*schedule*/) {
  validate_shape(r.shape);
  validate_noise_key(r.noise, r.shape);
  validate_size(r.x.size(), r.shape, "sample buffer");
  if (!r.class_labels.empty() && static_cast<std::int64_t>(r.class_labels.size()) != r.shape.batch) {
    throw Error("class labels has " + std::to_string(r.class_labels.size()) +
                " entries but the batch has " + std::to_string(r.shape.batch));
  }
  if (r.history_given && r.history.empty()) throw Error("history_given without a history array");
  if (r.initial_noise_given && on_host(r.memory)) validate_finite(r.x, "initial x_T");
}

}  // namespace ddpm::detail
