#pragma once
// The backend interface behind ddpm::Sampler (Sampler::Impl holds one). Requests reach an engine
// already validated (validate.h): sizes match, steps are in range and are
// timesteps of the plan, the planned steps can run, and host inputs are finite.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ddpm/plan.h"
#include "ddpm/predictor.h"
#include "ddpm/requests.h"
#include "ddpm/sampler_options.h"
#include "ddpm/schedule.h"
#include "history_layout.h"

namespace ddpm::detail {

// What every engine is built from: the (possibly rescaled) schedule, the
// options and the plan of the step rule (step_plan.h).
struct EngineSetup {
  Schedule schedule;
  SamplerOptions options;
  std::vector<PlannedStep> plan;
  double initial_noise_scale = 1.0;
  detail::HistoryLayout history;
};

class Engine {
 public:
  explicit Engine(EngineSetup setup) : setup_(std::move(setup)) {}
  virtual ~Engine() = default;
  const Schedule& schedule() const { return setup_.schedule; }
  const SamplerOptions& options() const { return setup_.options; }
  const std::vector<PlannedStep>& plan() const { return setup_.plan; }
  double initial_noise_scale() const { return setup_.initial_noise_scale; }
  const detail::HistoryLayout& history_layout() const { return setup_.history; }
  virtual Backend backend() const = 0;
  virtual void forward(const ForwardRequest& request) = 0;
  virtual void forward_one_step(const ForwardOneStepRequest& request) = 0;
  // The step at plan position `position` (request.step is its timestep).
  virtual void reverse_step(const ReverseStepRequest& request, int position) = 0;
  // The loop over plan positions first ... last.
  virtual void sample(const SampleRequest& request, NoisePredictor& predictor, int first,
                      int last) = 0;
  virtual void synchronize(void* /*stream*/) {}

 private:
  EngineSetup setup_;
};

std::unique_ptr<Engine> make_cpu_engine(EngineSetup setup);
// Defined in the CUDA sources; in a build without CUDA, a stub that throws.
std::unique_ptr<Engine> make_cuda_engine(EngineSetup setup);
bool cuda_device_usable(std::string* reason);
// Makes device local_rank % (the number of devices) this thread's current
// device, so that each rank of a distributed run on a machine takes its own
// GPU (round robin), before any engine is built; returns the device, or -1
// (and changes nothing) when no device can be counted.
int select_cuda_device(int local_rank);
// Free memory of the current CUDA device in bytes; 0 when there is none.
std::uint64_t cuda_free_memory_bytes();

}  // namespace ddpm::detail
