// ddpm::Sampler: validates each request and hands it to the chosen backend.
#include "ddpm/sampler.h"

#include "ddpm/error.h"
#include "engine.h"
#include "guidance.h"
#include "rules/step_rule.h"
#include "step_plan.h"
#include "validate.h"

namespace ddpm {
namespace {

std::unique_ptr<detail::Engine> make_engine(detail::EngineSetup setup) {
  switch (setup.options.backend) {
    case Backend::cpu:
      return detail::make_cpu_engine(std::move(setup));
    case Backend::cuda: {
      std::string reason;
      if (!detail::cuda_device_usable(&reason)) {
        throw Error("the CUDA backend was requested but is unavailable: " + reason);
      }
      return detail::make_cuda_engine(std::move(setup));
    }
    case Backend::automatic:
      if (detail::cuda_device_usable(nullptr)) return detail::make_cuda_engine(std::move(setup));
      return detail::make_cpu_engine(std::move(setup));
  }
  throw Error("unknown backend");
}

}  // namespace

struct Sampler::Impl {
  std::unique_ptr<detail::Engine> engine;
};

Sampler::Sampler(Schedule schedule, SamplerOptions options) {
  detail::validate_options(options);
  options.timestep_spacing = detail::spacing_of(options);  // options() tells what runs
  if (options.rescale_betas_zero_snr) schedule = schedule.rescaled_zero_terminal_snr();
  detail::Plan plan = detail::make_plan(schedule, options);
  impl_ = std::make_unique<Impl>();
  impl_->engine = make_engine({std::move(schedule), std::move(options), std::move(plan.steps),
                         plan.initial_noise_scale, plan.history});
}

TimestepSpacing default_timestep_spacing(SamplerKind sampler) {
  return detail::spacing_of(SamplerOptions{.sampler = sampler});
}

Sampler::~Sampler() = default;
Sampler::Sampler(Sampler&&) noexcept = default;
Sampler& Sampler::operator=(Sampler&&) noexcept = default;

Backend Sampler::backend() const { return impl_->engine->backend(); }
const Schedule& Sampler::schedule() const { return impl_->engine->schedule(); }
const SamplerOptions& Sampler::options() const { return impl_->engine->options(); }
const std::vector<PlannedStep>& Sampler::plan() const { return impl_->engine->plan(); }
double Sampler::initial_noise_scale() const { return impl_->engine->initial_noise_scale(); }

std::int64_t Sampler::history_size(Shape shape) const {
  return impl_->engine->history_layout().slots() * shape.size();
}

std::vector<int> Sampler::timesteps() const {
  std::vector<int> out;
  out.reserve(plan().size());
  for (const PlannedStep& s : plan()) out.push_back(s.timestep);
  return out;
}

void Sampler::forward(const ForwardRequest& request) {
  detail::validate(request, schedule());
  impl_->engine->forward(request);
}

void Sampler::forward_one_step(const ForwardOneStepRequest& request) {
  detail::validate(request, schedule());
  impl_->engine->forward_one_step(request);
}

void Sampler::reverse_step(const ReverseStepRequest& request) {
  detail::validate(request, schedule());
  if (!request.history.empty()) {
    if (!impl_->engine->history_layout().deep()) {
      throw Error("ReverseStepRequest::history is for the " + to_string(options().sampler) +
                  " sampler's kind of history, which it has not: use previous_x0");
    }
    detail::validate_history_size(request.history.size(), request.shape, impl_->engine->history_layout().slots(),
                                  "history");
  }
  const int position = request.step_index >= 0
                           ? detail::plan_index(plan(), request.step_index, "reverse step index")
                           : detail::plan_position(plan(), request.step, "reverse step");
  detail::check_plan_range(plan(), position, position);
  if (impl_->engine->history_layout().deep()) {
    detail::require_history(plan(), options(), position, !request.history.empty(), "ReverseStepRequest::history");
    if (request.memory == Memory::host) validate_history_read(request.history, request.shape, position);
  }
  impl_->engine->reverse_step(request, position);
}

void Sampler::sample(const SampleRequest& request, NoisePredictor& predictor) {
  detail::validate(request, schedule());
  const detail::HistoryLayout& history = impl_->engine->history_layout();
  if (!request.history.empty()) {
    detail::validate_history_size(request.history.size(), request.shape, history.slots(), "history");
  }
  const detail::LoopRange range = detail::resolve_loop_range(request, plan());
  detail::check_plan_range(plan(), range.first, range.last);
  // The history is read only where a step of the range combines earlier outputs.
  if (history.deep()) {
    detail::require_history(plan(), options(), range.first, request.history_given,
                            "SampleRequest::history with history_given");
    if (request.history_given && request.memory == Memory::host) {
      validate_history_read(request.history, request.shape, range.first);
    }
  } else if (request.history_given && request.memory == Memory::host &&
             detail::multistep(plan(), range.first, range.last)) {
    detail::validate_finite(request.history, "history");
  }
  detail::check_guidance(request, predictor);
  if (!predictor.supports(request.memory) &&
      !(impl_->engine->backend() == Backend::cuda && predictor.supports(Memory::device))) {
    throw Error("the noise predictor does not support " +
                std::string(request.memory == Memory::host ? "host" : "device") + " memory");
  }
  impl_->engine->sample(request, predictor, range.first, range.last);
}

void Sampler::synchronize(void* stream) { impl_->engine->synchronize(stream); }

// The slots of a deep rule's history that the step at `position` reads must
// be finite; the others may hold anything (a loop's first steps write them).
void Sampler::validate_history_read(std::span<const float> history, Shape shape, int position) const {
  const detail::HistoryLayout& layout = impl_->engine->history_layout();
  const auto n = static_cast<std::size_t>(shape.size());
  for (int slot : detail::history_slots_read(plan()[static_cast<std::size_t>(position)], layout)) {
    detail::validate_finite(history.subspan(static_cast<std::size_t>(slot) * n, n), "history");
  }
}

}  // namespace ddpm
