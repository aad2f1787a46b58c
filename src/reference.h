#pragma once
// The CPU reference: plain double-precision DDPM, written for clarity and
// independent of the backend code (it reads the double schedule tables and
// draws noise with cuRAND's own host-compiled Philox). Every backend is
// tested against it. Not part of the installed library.
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "ddpm/predictor.h"
#include "ddpm/schedule.h"
#include "ddpm/types.h"
#include "../kernels/noise_counter.cuh"

namespace ddpm::reference {

// The standard normal the engine uses for (seed, sample, stream, step, element).
double normal(std::uint64_t seed, std::uint64_t sample, kernels::NoiseStream stream,
              std::uint32_t step, std::int64_t element);
// All `dim` normals of one sample.
std::vector<double> normals(std::uint64_t seed, std::uint64_t sample, kernels::NoiseStream stream,
                            std::uint32_t step, std::int64_t dim);
// The raw Philox4x32-10 output (cuRAND's curand4 after curand_init(seed, subsequence, offset)).
std::vector<std::uint32_t> philox_raw(std::uint64_t seed, std::uint64_t subsequence,
                                      std::uint64_t offset);

// x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, with eps drawn unless given.
struct ForwardResult {
  std::vector<double> x_t, eps, velocity;
};
ForwardResult forward(const Schedule& schedule, const std::vector<double>& x0, Shape shape,
                      const std::vector<int>& step_per_row, const std::vector<double>* eps,
                      NoiseKey key);

// eps = model(x_t, t) for the whole batch.
using EpsModel = std::function<std::vector<double>(const std::vector<double>& x_t, int t)>;
EpsModel gaussian_model(const Schedule& schedule, Shape shape, const GaussianPrior& prior);
EpsModel gmm_model(const Schedule& schedule, Shape shape, const GmmSpec& spec);

struct SampleSettings {
  VarianceKind variance = VarianceKind::beta;
  std::optional<ClipRange> clip_x0;
  int start_step = -1;                    // -1: T - 1
  int end_step = 0;                       // the last step run
  const std::vector<double>* x_T = nullptr;  // given initial noise, or drawn
};

// One reverse update of the whole batch at step t.
std::vector<double> reverse_step(const Schedule& schedule, const std::vector<double>& x_t,
                                 const std::vector<double>& eps, Shape shape, int t, NoiseKey key,
                                 const SampleSettings& settings);

// The whole reverse loop t = start ... 0.
std::vector<double> sample(const Schedule& schedule, Shape shape, NoiseKey key,
                           const EpsModel& model, const SampleSettings& settings = {});

}  // namespace ddpm::reference
