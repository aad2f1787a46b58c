// SchedulerConfig::from_json on arbitrary text: a config or ddpm::Error, and
// a config it returns builds a schedule and a CPU sampler, or is refused with
// ddpm::Error (an impossible plan), never a crash or a non-finite plan; and
// a text it accepts is refused with anything but whitespace after it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "ddpm/scheduler_config.h"
#include "whole_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ddpm::SchedulerConfig config = ddpm::SchedulerConfig::from_json(text);
    ddpm::fuzz::require_whole_text_read(text, ddpm::SchedulerConfig::from_json);
    // Keep each input cheap: long schedules are no more interesting here.
    if (config.schedule.steps > 4000 || config.schedule.betas.size() > 4000) return 0;
    config.options.backend = ddpm::Backend::cpu;
    if (!config.sampler) config.options.sampler = ddpm::SamplerKind::ddpm;
    const ddpm::Sampler sampler(ddpm::Schedule::from_spec(config.schedule), config.options);
    for (const ddpm::PlannedStep& step : sampler.plan()) {
      if (!step.error.empty()) continue;
      if (!std::isfinite(step.alpha_bar) || !std::isfinite(step.prev_from_x0) ||
          !std::isfinite(step.prev_from_sample) || !std::isfinite(step.sigma) ||
          !std::isfinite(step.prev_from_x0_prev2) || !std::isfinite(step.prev_from_last_sample) ||
          !std::isfinite(step.corrected_from_last_sample) || !std::isfinite(step.corrected_from_x0)) {
        __builtin_trap();
      }
    }
  } catch (const ddpm::Error&) {
  }
  return 0;
}
