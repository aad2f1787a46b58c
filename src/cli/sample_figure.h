#pragma once
// `ddpm sample --png`: a --model run's samples as a labelled grid of
// pictures, in the card's data units (digits: pixel = (x + 1) * 8 in 0..16,
// dark ink on white), under title lines that say how they were drawn, with
// each picture's class under it.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ddpm/model.h"
#include "ddpm/types.h"

namespace ddpm::cli {

// At most this many samples are drawn (the first ones; the title says so).
inline constexpr std::int64_t kMaxFigureSamples = 400;

struct SampleFigure {
  std::vector<std::string> title;          // lines
  std::vector<std::int32_t> class_labels;  // one per sample, or empty (unconditional)
  int columns = 10;                        // pictures per row
};

// Throws ddpm::Error unless the card's data_shape is a picture: [H, W]
// (grey) or [H, W, 3] (RGB, model space [-1, 1]), or a UNet2DModel's
// channels-first [1, H, W] or [3, H, W]. Called before any work.
void check_figure_model(const ModelCard& card, const std::string& model_path);

// The PNG bytes of the grid of `samples` ([shape.batch, shape.dim], model space).
std::string sample_figure_png(const ModelCard& card, std::span<const float> samples, Shape shape,
                              const SampleFigure& figure);

}  // namespace ddpm::cli
