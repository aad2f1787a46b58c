#pragma once
// The CPU backend's hot loops, one tile of a batch at a time. Compiled twice
// (portable and x86-64-v3) from cpu_kernels_impl.h; cpu_kernels() picks the
// best one this processor runs.
#include <cstdint>

#include "kernels/noise_counter.cuh"
#include "kernels/step_coefficients.cuh"
#include "kernels/step_rule.cuh"
#include "kernels/step_views.h"

namespace ddpm::cpu {

inline constexpr std::int64_t kBlock = 256;     // elements per inner block (64 noise groups)
inline constexpr std::int64_t kSegment = 4096;  // the longest row segment in a tile (16 KiB)

// Whether rows of `dim` elements are packed several to a tile (see Tile).
inline bool packs_rows(std::int64_t dim) { return (dim + 3) / 4 <= kBlock / 8; }

// A piece of a batch that one thread runs: rows [row_begin, row_end) and, in
// each, elements [begin, end). Long rows are cut into segments of at most
// kSegment elements (one row per tile, begin a multiple of kBlock, so that
// the noise groups line up); short rows (dim <= kBlock / 2) are packed
// several to a tile, whole, so that the noise of several samples is drawn
// in one vector pass.
struct Tile {
  std::int64_t row_begin = 0;
  std::int64_t row_end = 0;
  std::int64_t begin = 0;
  std::int64_t end = 0;
};

// Batch arrays are [batch, dim], C order; element (row, i) is at row * dim + i.
struct ForwardArgs {
  std::int64_t dim = 0;
  const float* x0 = nullptr;
  const float* eps = nullptr;  // given noise, or null to draw it
  float* x_t = nullptr;
  float* eps_out = nullptr;       // optional
  float* velocity_out = nullptr;  // optional
  const kernels::ForwardCoefficients* table = nullptr;  // by timestep
  const std::int32_t* steps = nullptr;  // per row, or null for `step`
  int step = 0;
  bool one_step = false;  // q(x_t | x_{t-1}) (stream forward_one_step) instead of q(x_t | x0)
};

// The multistep solvers' history: the previous step's x0_hat is read from
// `in` (null where the step's record has no such term) and this step's
// x0_hat written to `out` (null: not kept). They may be the same array.
struct History {
  const float* in = nullptr;
  float* out = nullptr;
};

// One reverse step of the whole rule on a tile.
struct ReverseArgs {
  std::int64_t dim = 0;
  const float* x_t = nullptr;
  float* x_prev = nullptr;  // may alias x_t
  kernels::ModelView model;
  const float* variance_noise = nullptr;  // given z, or null to draw it
  float* x0_out = nullptr;                // optional: the processed x0_hat
  History history;
  kernels::StepRecord record;
  int noise_step = 0;  // keys the noise
  kernels::X0View x0;
};

// Plan positions first .. last on a tile with the analytic Gaussian prior
// fused in (x0 mode none or clip): the tile stays in cache for the whole loop.
struct FusedArgs {
  std::int64_t dim = 0;
  float* x = nullptr;
  kernels::ModelView model;  // output == null
  const kernels::StepRecord* records = nullptr;  // by plan position
  kernels::StepRecord first_record;              // the record position `first` runs with
  const int* noise_steps = nullptr;              // by plan position
  int first = 0;
  int last = 0;
  float* history = nullptr;  // [batch, dim]: multistep solvers' x0_hat, or null
  kernels::X0View x0;
};

struct CpuKernels {
  const char* name;
  // out[row * dim + i] = the normal of (stream, step) for every element of the tile.
  void (*normals)(kernels::NoiseParams noise, Tile tile, std::int64_t dim, kernels::NoiseStream stream,
                  std::uint32_t step, float* out);
  void (*forward)(kernels::NoiseParams noise, Tile tile, const ForwardArgs& args);
  void (*reverse)(kernels::NoiseParams noise, Tile tile, const ReverseArgs& args);
  void (*fused)(kernels::NoiseParams noise, Tile tile, const FusedArgs& args);
};

const CpuKernels& generic_kernels();
const CpuKernels& avx2_kernels();  // only in builds with DDPM_HAVE_AVX2_KERNELS
// The fastest set this processor supports (or DDPM_CPU_KERNELS=generic to force the portable one).
const CpuKernels& cpu_kernels();

}  // namespace ddpm::cpu
