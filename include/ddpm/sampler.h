#pragma once
// The engine: forward noising and the reverse (denoising) loop on the CPU or
// on a CUDA device, with reproducible noise (see kernels/noise_counter.cuh).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "ddpm/predictor.h"
#include "ddpm/schedule.h"
#include "ddpm/types.h"

namespace ddpm {

struct SamplerOptions {
  VarianceKind variance = VarianceKind::beta;
  std::optional<ClipRange> clip_x0;  // e.g. {-1, 1} for images
  Backend backend = Backend::automatic;
  int threads = 0;  // CPU backend worker threads; 0 = all hardware threads
};

// q(x_t | x0) for a batch. Arrays are [shape.batch, shape.dim] in `memory`.
struct ForwardRequest {
  std::span<const float> x0;
  Shape shape;
  int step = -1;                            // one step for the batch...
  std::span<const std::int32_t> steps;      // ...or one per sample (in `memory`)
  std::span<const float> eps;               // given noise; empty: draw it from `noise`
  NoiseKey noise;
  std::span<float> x_t;                     // output
  std::span<float> eps_out;                 // optional: the noise used (the training target)
  std::span<float> velocity_out;            // optional: sqrt(ab) eps - sqrt(1 - ab) x0
  Memory memory = Memory::host;
  void* stream = nullptr;                   // cudaStream_t for Memory::device
};

// q(x_t | x_{t-1}) at one step for the batch; eps given or drawn.
struct ForwardOneStepRequest {
  std::span<const float> x_prev;
  Shape shape;
  int step = 0;
  std::span<const float> eps;
  NoiseKey noise;
  std::span<float> x_t;
  Memory memory = Memory::host;
  void* stream = nullptr;
};

// One reverse update x_t -> x_{t-1} from an externally predicted eps.
// x_prev may alias x_t (in place).
struct ReverseStepRequest {
  std::span<const float> x_t;
  std::span<const float> eps;
  Shape shape;
  int step = 0;
  NoiseKey noise;
  std::span<float> x_prev;
  Memory memory = Memory::host;
  void* stream = nullptr;
};

// The reverse loop t = start_step ... end_step (by default the whole loop,
// T-1 ... 0). `x` holds the result, x_{end_step - 1}; it is also the input
// x_{start_step} when initial_noise_given, otherwise that is drawn as x_T.
// The noise of step t does not depend on where a run starts or stops, so a
// loop run in pieces (each piece's output given as the next one's input)
// equals the whole loop bit for bit: snapshots, checkpoints, SDEdit.
struct SampleRequest {
  std::span<float> x;
  Shape shape;
  NoiseKey noise;
  bool initial_noise_given = false;
  int start_step = -1;  // -1: T - 1
  int end_step = 0;     // the last step run, 0 <= end_step <= start_step
  Memory memory = Memory::host;
  void* stream = nullptr;
  // Called with (steps done, steps total) from the calling thread; may be
  // called less often than every step.
  std::function<void(int, int)> progress;
};

class Sampler {
 public:
  // Throws ddpm::Error for Backend::cuda when no CUDA device is usable.
  explicit Sampler(Schedule schedule, SamplerOptions options = {});
  ~Sampler();
  Sampler(Sampler&&) noexcept;
  Sampler& operator=(Sampler&&) noexcept;

  Backend backend() const;  // the backend in use (never automatic)
  const Schedule& schedule() const;
  const SamplerOptions& options() const;

  void forward(const ForwardRequest& request);
  void forward_one_step(const ForwardOneStepRequest& request);
  void reverse_step(const ReverseStepRequest& request);
  void sample(const SampleRequest& request, NoisePredictor& predictor);
  // Waits for the work queued on a request's stream (CUDA backend); no-op on the CPU.
  void synchronize(void* stream = nullptr);

  class Engine;  // backend implementation (src/)

 private:
  std::unique_ptr<Engine> engine_;
};

// True when the CUDA backend is compiled in and a device is usable.
bool cuda_available();
// Why cuda_available() is false, in one line (empty when it is true).
std::string cuda_unavailable_reason();
std::string to_string(Backend backend);
Backend parse_backend(const std::string& name);  // "auto" | "cpu" | "cuda"

}  // namespace ddpm
