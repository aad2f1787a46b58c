#pragma once
// The body of the CPU kernels; included once per instruction set, inside a
// namespace of its own, by cpu_kernels_generic.cpp and cpu_kernels_avx2.cpp.
// Loops run over fixed-size blocks on local arrays so that GCC vectorises the
// Philox rounds, the Box-Muller transform and the update. No standard-library
// templates here: their out-of-line copies would be shared between the
// instruction sets (see kernels/host_device.cuh).
#include <cmath>

#include "kernels/philox.cuh"
#include "kernels/step_math.cuh"
#include "cpu_kernels.h"
#include "fast_math.h"

namespace DDPM_CPU_KERNELS_NAMESPACE {

using ddpm::cpu::kBlock;
using ddpm::kernels::NoiseParams;
using ddpm::cpu::Tile;
namespace k = ddpm::kernels;

constexpr int kGroups = kBlock / 4;  // noise groups (lanes) per block

// The noise groups of one block: lane l draws the four normals of group
// lane_group[l] of sample lane_sample[l].
struct Lanes {
  alignas(64) std::uint32_t group[kGroups];
  alignas(64) std::uint32_t sample_lo[kGroups];
  alignas(64) std::uint32_t sample_hi[kGroups];
};

// z[4 l + j] = normal j of lane l, exactly as curand_init(seed, sample,
// 4 * counter) + curand_normal4 draws it (up to float rounding in log and
// sin/cos). Every lane runs the same code, so a draw never depends on where
// in a block it falls.
[[gnu::always_inline]] inline void normals_block(std::uint64_t seed, std::uint32_t tag,
                                                 const Lanes& lanes, float* __restrict z) {
  const auto k0 = static_cast<std::uint32_t>(seed);
  const auto k1 = static_cast<std::uint32_t>(seed >> 32);
  alignas(64) std::uint32_t r0[kGroups], r1[kGroups], r2[kGroups], r3[kGroups];
  for (int l = 0; l < kGroups; ++l) {
    const k::Philox4 r =
        k::philox4x32_10(lanes.group[l], tag, lanes.sample_lo[l], lanes.sample_hi[l], k0, k1);
    r0[l] = r.v[0];
    r1[l] = r.v[1];
    r2[l] = r.v[2];
    r3[l] = r.v[3];
  }
  alignas(64) float a_sin[kGroups], a_cos[kGroups], b_sin[kGroups], b_cos[kGroups];
  for (int l = 0; l < kGroups; ++l) {
    const float radius_a = __builtin_sqrtf(-2.0f * ddpm::cpu::fast_log(k::philox_uniform(r0[l])));
    const float radius_b = __builtin_sqrtf(-2.0f * ddpm::cpu::fast_log(k::philox_uniform(r2[l])));
    float sa, ca, sb, cb;
    ddpm::cpu::fast_sincos(k::philox_angle(r1[l]), sa, ca);
    ddpm::cpu::fast_sincos(k::philox_angle(r3[l]), sb, cb);
    a_sin[l] = sa * radius_a;
    a_cos[l] = ca * radius_a;
    b_sin[l] = sb * radius_b;
    b_cos[l] = cb * radius_b;
  }
  for (int l = 0; l < kGroups; ++l) {
    z[4 * l + 0] = a_sin[l];
    z[4 * l + 1] = a_cos[l];
    z[4 * l + 2] = b_sin[l];
    z[4 * l + 3] = b_cos[l];
  }
}

[[gnu::always_inline]] inline std::uint32_t noise_tag(k::NoiseStream stream, std::uint32_t step) {
  return static_cast<std::uint32_t>(k::noise_counter(stream, step, 0) >> 32);
}

[[gnu::always_inline]] inline void set_lane(Lanes& lanes, int l, std::uint64_t sample,
                                            std::int64_t group) {
  lanes.group[l] = static_cast<std::uint32_t>(group);
  lanes.sample_lo[l] = static_cast<std::uint32_t>(sample);
  lanes.sample_hi[l] = static_cast<std::uint32_t>(sample >> 32);
}

// Calls body(row, b, n, z) for every block of the tile: elements [b, b + n)
// of `row`, with their normals in z[0 .. n) when `draw` is set (zeros
// otherwise).
template <class Body>
[[gnu::always_inline]] inline void for_each_block(NoiseParams noise, Tile tile, std::int64_t dim,
                                                  std::uint32_t tag, bool draw, Body&& body) {
  alignas(64) float z[kBlock];
  Lanes lanes;
  if (!draw) {
    for (int i = 0; i < kBlock; ++i) z[i] = 0.0f;
  }
  const std::int64_t groups_per_row = (dim + 3) / 4;
  if (!ddpm::cpu::packs_rows(dim)) {
    // One row, cut into blocks of kBlock elements.
    const std::int64_t row = tile.row_begin;
    const auto sample = static_cast<std::uint64_t>(noise.first_sample + row);
    for (std::int64_t b = tile.begin; b < tile.end; b += kBlock) {
      if (draw) {
        for (int l = 0; l < kGroups; ++l) set_lane(lanes, l, sample, b / 4 + l);
        normals_block(noise.seed, tag, lanes, z);
      }
      body(row, b, tile.end - b < kBlock ? tile.end - b : kBlock, static_cast<const float*>(z));
    }
    return;
  }
  // Whole short rows, several to a block; the spare lanes repeat the last row.
  const std::int64_t rows_per_block = kGroups / groups_per_row;
  for (std::int64_t r = tile.row_begin; r < tile.row_end; r += rows_per_block) {
    const std::int64_t rows = tile.row_end - r < rows_per_block ? tile.row_end - r : rows_per_block;
    if (draw) {
      int l = 0;
      for (std::int64_t rl = 0; rl < rows_per_block; ++rl) {
        const std::int64_t row = r + (rl < rows ? rl : rows - 1);
        for (std::int64_t g = 0; g < groups_per_row; ++g, ++l) {
          set_lane(lanes, l, static_cast<std::uint64_t>(noise.first_sample + row), g);
        }
      }
      for (; l < kGroups; ++l) set_lane(lanes, l, static_cast<std::uint64_t>(noise.first_sample + r), 0);
      normals_block(noise.seed, tag, lanes, z);
    }
    for (std::int64_t rl = 0; rl < rows; ++rl) {
      body(r + rl, std::int64_t{0}, dim, static_cast<const float*>(z) + 4 * groups_per_row * rl);
    }
  }
}

void normals(NoiseParams noise, Tile tile, std::int64_t dim, k::NoiseStream stream,
             std::uint32_t step, float* out) {
  for_each_block(noise, tile, dim, noise_tag(stream, step), true,
                 [&](std::int64_t row, std::int64_t b, std::int64_t n, const float* z) {
                   float* o = out + row * dim + b;
                   for (std::int64_t i = 0; i < n; ++i) o[i] = z[i];
                 });
}

void forward(NoiseParams noise, Tile tile, const ddpm::cpu::ForwardArgs& a) {
  const k::NoiseStream stream = a.one_step ? k::NoiseStream::forward_one_step : k::NoiseStream::forward;
  // Rows of a tile share a step unless steps are per row; then run row by row.
  for (std::int64_t row = tile.row_begin; row < tile.row_end;) {
    const int t = a.steps ? a.steps[row] : a.step;
    std::int64_t row_end = row + 1;
    while (row_end < tile.row_end && (a.steps ? a.steps[row_end] : a.step) == t) ++row_end;
    const k::ForwardCoefficients c = a.table[t];
    const Tile part{row, row_end, tile.begin, tile.end};
    const std::int64_t dim = a.dim;
    for_each_block(noise, part, dim, noise_tag(stream, static_cast<std::uint32_t>(t)), a.eps == nullptr,
                   [&](std::int64_t r, std::int64_t b, std::int64_t n, const float* z) {
                     const std::int64_t at = r * dim + b;
                     const float* __restrict x0 = a.x0 + at;
                     const float* __restrict eps = a.eps ? a.eps + at : z;
                     float* __restrict x_t = a.x_t + at;
                     if (a.one_step) {
                       for (std::int64_t i = 0; i < n; ++i) x_t[i] = k::forward_one_step(x0[i], eps[i], c);
                     } else {
                       for (std::int64_t i = 0; i < n; ++i) x_t[i] = k::forward_noise(x0[i], eps[i], c);
                     }
                     if (a.eps_out) {
                       for (std::int64_t i = 0; i < n; ++i) a.eps_out[at + i] = eps[i];
                     }
                     if (a.velocity_out) {
                       float* __restrict v = a.velocity_out + at;
                       for (std::int64_t i = 0; i < n; ++i) v[i] = k::velocity_target(x0[i], eps[i], c);
                     }
                   });
    row = row_end;
  }
}

// Where the model output of a step comes from (ddpm::kernels::ModelView), at
// compile time so that the fused loop keeps its prior in registers.
enum class Source { buffer, gaussian, gaussian_per_element };

// The Gaussian prior's posterior means of element i (of the row's elements
// from b on), conditional or, guided, u + w (c - u) of both priors.
template <Source From, bool Guided>
[[gnu::always_inline]] inline k::Posterior prior_posterior(const ddpm::kernels::ModelView& m,
                                                           std::int64_t i, float x, float a,
                                                           float s) {
  const auto at = [&](const ddpm::kernels::PriorView& p) {
    return From == Source::gaussian ? k::gaussian_posterior(x, p.mean, p.var, a, s)
                                    : k::gaussian_posterior(x, p.means[i], p.vars[i], a, s);
  };
  const k::Posterior c = at(m.prior);
  if constexpr (!Guided) {
    return c;
  } else {
    const k::Posterior u = at(m.unconditional_prior);
    return {k::guided_output(c.x0, u.x0, m.guidance_scale, 1.0f),
            k::guided_output(c.eps, u.eps, m.guidance_scale, 1.0f)};
  }
}

// The update of n elements of one row, from element b of the row on: x_prev
// from x, the model output read from a buffer (guided or not), and z; or,
// for the Gaussian prior, from its posterior means x0_hat and eps_hat
// themselves (well conditioned whatever the prediction type). Mode says
// what happens to x0_hat; a buffer's update is folded unless x0_hat is
// needed (processed, written out, or kept as history).
template <k::X0Mode Mode, Source From, bool Guided>
[[gnu::always_inline]] inline void update_block(const float* x, float* x_prev, const float* model,
                                                const ddpm::kernels::ModelView& source, std::int64_t b,
                                                std::int64_t n, const float* __restrict z,
                                                const float* x0_prev, float factor,
                                                const k::StepRecord& r, float lo, float hi, float scale,
                                                float* x0_out, float* history_out) {
  const auto output = [&](std::int64_t i) {
    if constexpr (Guided) {
      return k::guided_output(model[i], model[i + source.unconditional_offset], source.guidance_scale,
                              factor);
    } else {
      return model[i];
    }
  };
  if constexpr (From == Source::buffer) {
    if (Mode == k::X0Mode::none && x0_out == nullptr && history_out == nullptr) {
      for (std::int64_t i = 0; i < n; ++i) x_prev[i] = k::step_folded(x[i], output(i), x0_prev[i], z[i], r);
      return;
    }
    for (std::int64_t i = 0; i < n; ++i) {
      const float xv = x[i], m = output(i);
      const float x0 = k::process_x0<Mode>(k::predicted_x0(xv, m, r), lo, hi, scale);
      if (x0_out != nullptr) x0_out[i] = x0;
      // x0_prev and history_out may be one array (the loop's history, updated
      // in place): read before written, and neither is __restrict.
      const float next = k::step_from_x0(xv, m, x0, x0_prev[i], z[i], r);
      if (history_out != nullptr) history_out[i] = x0;
      x_prev[i] = next;
    }
  } else {
    const float a = r.sqrt_alpha_bar, s = r.sqrt_one_minus_alpha_bar;
    for (std::int64_t i = 0; i < n; ++i) {
      const float xv = x[i];
      const k::Posterior p = prior_posterior<From, Guided>(source, b + i, xv, a, s);
      const float x0 = k::process_x0<Mode>(p.x0, lo, hi, scale);
      const float next = k::step_from_posterior(xv, x0, p.eps, x0_prev[i], z[i], r);
      if (history_out != nullptr) history_out[i] = x0;
      x_prev[i] = next;
    }
  }
}

alignas(64) inline const float kZeros[kBlock] = {};

template <k::X0Mode Mode, Source From, bool Guided>
void reverse_with(NoiseParams noise, Tile tile, const ddpm::cpu::ReverseArgs& a) {
  const k::StepRecord r = a.record;
  const std::int64_t dim = a.dim;
  const bool draw = r.sigma != 0.0f && a.variance_noise == nullptr;
  const bool reads_history = r.prev_from_x0_prev != 0.0f && a.history.in != nullptr;
  for_each_block(noise, tile, dim, noise_tag(k::NoiseStream::reverse, static_cast<std::uint32_t>(a.noise_step)),
                 draw, [&](std::int64_t row, std::int64_t b, std::int64_t n, const float* z) {
                   const std::int64_t at = row * dim + b;
                   if (a.variance_noise != nullptr && r.sigma != 0.0f) z = a.variance_noise + at;
                   const float scale = Mode == k::X0Mode::threshold ? a.x0.row_scale[row] : 1.0f;
                   const float factor = a.model.row_factor != nullptr ? a.model.row_factor[row] : 1.0f;
                   // x_t may alias x_prev, and the history's in and out: no __restrict on them.
                   update_block<Mode, From, Guided>(
                       a.x_t + at, a.x_prev + at, a.model.output ? a.model.output + at : nullptr, a.model,
                       b, n, z, reads_history ? a.history.in + at : kZeros, factor, r, a.x0.lo, a.x0.hi,
                       scale, a.x0_out ? a.x0_out + at : nullptr,
                       a.history.out ? a.history.out + at : nullptr);
                 });
}

template <k::X0Mode Mode, bool Guided>
void reverse_mode(NoiseParams noise, Tile tile, const ddpm::cpu::ReverseArgs& a) {
  if (a.model.output != nullptr) return reverse_with<Mode, Source::buffer, Guided>(noise, tile, a);
  if (a.model.prior.means != nullptr) {
    return reverse_with<Mode, Source::gaussian_per_element, Guided>(noise, tile, a);
  }
  reverse_with<Mode, Source::gaussian, Guided>(noise, tile, a);
}

template <bool Guided>
void reverse_guided(NoiseParams noise, Tile tile, const ddpm::cpu::ReverseArgs& a) {
  switch (a.x0.mode) {
    case k::X0Mode::none: return reverse_mode<k::X0Mode::none, Guided>(noise, tile, a);
    case k::X0Mode::clip: return reverse_mode<k::X0Mode::clip, Guided>(noise, tile, a);
    case k::X0Mode::threshold: return reverse_mode<k::X0Mode::threshold, Guided>(noise, tile, a);
  }
}

void reverse(NoiseParams noise, Tile tile, const ddpm::cpu::ReverseArgs& a) {
  a.model.guided ? reverse_guided<true>(noise, tile, a) : reverse_guided<false>(noise, tile, a);
}

// The whole loop on one tile, in place, with the Gaussian prior fused in.
template <k::X0Mode Mode, Source From, bool Guided>
void fused_loop(NoiseParams noise, Tile tile, const ddpm::cpu::FusedArgs& a) {
  const std::int64_t dim = a.dim;
  for (int p = a.first; p <= a.last; ++p) {
    const k::StepRecord r = p == a.first ? a.first_record : a.records[p];
    const bool reads_history = r.prev_from_x0_prev != 0.0f && a.history != nullptr;
    for_each_block(noise, tile, dim, noise_tag(k::NoiseStream::reverse, static_cast<std::uint32_t>(a.noise_steps[p])),
                   r.sigma != 0.0f,
                   [&](std::int64_t row, std::int64_t b, std::int64_t n, const float* __restrict z) {
                     float* x = a.x + row * dim + b;
                     float* history = a.history ? a.history + row * dim + b : nullptr;
                     update_block<Mode, From, Guided>(x, x, nullptr, a.model, b, n, z,
                                                      reads_history ? history : kZeros, 1.0f, r, a.x0.lo,
                                                      a.x0.hi, 1.0f, nullptr, history);
                   });
  }
}

template <k::X0Mode Mode, bool Guided>
void fused_mode(NoiseParams noise, Tile tile, const ddpm::cpu::FusedArgs& a) {
  a.model.prior.means != nullptr ? fused_loop<Mode, Source::gaussian_per_element, Guided>(noise, tile, a)
                                 : fused_loop<Mode, Source::gaussian, Guided>(noise, tile, a);
}

template <bool Guided>
void fused_guided(NoiseParams noise, Tile tile, const ddpm::cpu::FusedArgs& a) {
  a.x0.mode == k::X0Mode::clip ? fused_mode<k::X0Mode::clip, Guided>(noise, tile, a)
                               : fused_mode<k::X0Mode::none, Guided>(noise, tile, a);
}

void fused(NoiseParams noise, Tile tile, const ddpm::cpu::FusedArgs& a) {
  a.model.guided ? fused_guided<true>(noise, tile, a) : fused_guided<false>(noise, tile, a);
}

}  // namespace DDPM_CPU_KERNELS_NAMESPACE
