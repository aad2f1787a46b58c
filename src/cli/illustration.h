#pragma once
// `ddpm illustrate`: the figures of the illustrated notebook ddpm grew from,
// computed on a photograph at its full size and drawn small:
//   (a) q(x_t | x0) at N levels t = i T / N: each row the mean sqrt(ab_t) x0,
//       then M samples;
//   (b) the one step q(x_t | x_{t-1}) from one sample of x_{t-1} (x0 itself
//       at t = 0): the mean sqrt(alpha_t) x_{t-1}, then M samples;
//   (c) x0, x_t and eps at one step t;
//   (d) x0 recovered from x_t and the true eps, with l1 distances;
//   (e) the posterior mean the reverse step forms from eps against the true
//       posterior mean of step t-1, mu(x_t, x0), with l1;
//   (f) the reverse process run with the true noise: the Gaussian predictor
//       with std 0 and the photograph as its mean (the oracle), shown at the
//       N levels, which must end at the photograph.
// l1 is the mean absolute difference per element. Every array is computed by
// the library's Sampler (forward, forward_one_step, reverse_step, sample);
// the true posterior mean in (e) is formed here from alpha_bar on purpose,
// as the independent value the reverse step is checked against.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ddpm/npy.h"
#include "ddpm/sampler.h"

namespace ddpm::cli {

struct IllustrationSettings {
  int rows = 5;     // N, the noise levels of (a), (b) and (f)
  int samples = 4;  // M, samples per level in (a) and (b)
  int step = 50;    // t of (c), (d) and (e)
  std::uint64_t seed = 0;
  int tile_size = 128;  // the longest side of each picture in the figure, in pixels
};

// A picture as drawn: [height, width, channels] (HWC) in model space.
struct Picture {
  std::vector<float> pixels;
  std::string caption;
};

struct PanelRow {
  std::string title;
  std::vector<Picture> pictures;
};

struct Panel {
  char letter = 'a';
  std::vector<PanelRow> rows;
  std::vector<std::string> l1_lines;  // "(d) l1(...) = ..." as printed on stdout
};

struct Illustration {
  std::vector<Panel> panels;  // (a) ... (f)
  int tile_width = 0, tile_height = 0, channels = 0;
  double seconds_a_to_e = 0.0;  // the forward panels
  double seconds_f = 0.0;       // the oracle reverse run
};

// `image` is [1, C, H, W] (C = 1 or 3) in model space; `oracle_sampler` runs
// (f) (the same as `sampler` unless the schedule needs another prediction
// type there). `progress` is told (steps done, steps total) of (f).
Illustration illustrate(const NpyArray& image, Sampler& sampler, Sampler& oracle_sampler,
                        const IllustrationSettings& settings,
                        const std::function<void(int, int)>& progress);

// The panels as one labelled PNG, under `title` lines.
std::string illustration_png(const Illustration& illustration, const std::vector<const Panel*>& panels,
                             const std::vector<std::string>& title);

}  // namespace ddpm::cli
