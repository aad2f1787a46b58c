#pragma once
// The backend interface behind ddpm::Sampler. Requests reach an engine
// already validated (validate.h): sizes match, steps are in range and host
// inputs are finite.
#include <memory>
#include <string>

#include "ddpm/sampler.h"

namespace ddpm {

class Sampler::Engine {
 public:
  Engine(const Schedule& schedule, const SamplerOptions& options)
      : schedule_(schedule), options_(options) {}
  virtual ~Engine() = default;
  const Schedule& schedule() const { return schedule_; }
  const SamplerOptions& options() const { return options_; }
  virtual Backend backend() const = 0;
  virtual void forward(const ForwardRequest& request) = 0;
  virtual void forward_one_step(const ForwardOneStepRequest& request) = 0;
  virtual void reverse_step(const ReverseStepRequest& request) = 0;
  virtual void sample(const SampleRequest& request, NoisePredictor& predictor) = 0;
  virtual void synchronize(void* /*stream*/) {}

 private:
  Schedule schedule_;
  SamplerOptions options_;
};

namespace detail {

std::unique_ptr<Sampler::Engine> make_cpu_engine(const Schedule& schedule,
                                                 const SamplerOptions& options);
// Defined in the CUDA sources; in a build without CUDA, a stub that throws.
std::unique_ptr<Sampler::Engine> make_cuda_engine(const Schedule& schedule,
                                                  const SamplerOptions& options);
bool cuda_device_usable(std::string* reason);

}  // namespace detail
}  // namespace ddpm
