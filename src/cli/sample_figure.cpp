#include "sample_figure.h"

#include <algorithm>

#include "ddpm/error.h"
#include "png_grid.h"

namespace ddpm::cli {
namespace {

constexpr int kTargetTilePixels = 40;  // small pictures are drawn about this large

bool is_rgb(const ModelCard& card) {
  return card.sample_shape.size() == 3 && card.sample_shape[2] == 3;
}

}  // namespace

void check_figure_model(const ModelCard& card, const std::string& model_path) {
  if (card.sample_shape.size() != 2 && !is_rgb(card)) {
    std::string shape;
    for (std::size_t i = 0; i < card.sample_shape.size(); ++i) {
      shape += (i ? ", " : "") + std::to_string(card.sample_shape[i]);
    }
    throw Error("--png: the model " + model_path + " has data_shape [" + shape +
                "], not a picture ([H, W] or [H, W, 3])");
  }
}

std::string sample_figure_png(const ModelCard& card, std::span<const float> samples, Shape shape,
                              const SampleFigure& figure) {
  const auto height = static_cast<int>(card.sample_shape[0]);
  const auto width = static_cast<int>(card.sample_shape[1]);
  const std::int64_t shown = std::min(shape.batch, kMaxFigureSamples);
  const int columns = static_cast<int>(std::min<std::int64_t>(figure.columns, shown));
  const int rows = static_cast<int>((shown + columns - 1) / columns);
  const int scale = std::max(1, kTargetTilePixels / std::max(height, width));
  ImageGrid grid(rows, columns, width, height, scale);
  for (const std::string& line : figure.title) grid.add_title_line(line);
  if (shown < shape.batch) {
    grid.add_title_line("the first " + std::to_string(shown) + " of " +
                        std::to_string(shape.batch) + " samples");
  }
  const DataNormalization& n = card.normalization;
  // Grey pictures in data units, as the card's normalization maps them:
  // pixel_min white, pixel_max black (ink on paper), like scikit-learn's digits shown with gray_r.
  const float white = n.from_pixel(n.pixel_min);
  const float black = n.from_pixel(n.pixel_max);
  for (std::int64_t i = 0; i < shown; ++i) {
    const int r = static_cast<int>(i / columns), c = static_cast<int>(i % columns);
    const auto sample = samples.subspan(static_cast<std::size_t>(i * shape.dim),
                                        static_cast<std::size_t>(shape.dim));
    if (is_rgb(card)) {
      grid.place_rgb(r, c, sample);
    } else {
      grid.place_gray(r, c, sample, white, black);
    }
    if (!figure.class_labels.empty()) {
      const std::int32_t label = figure.class_labels[static_cast<std::size_t>(i)];
      const bool named = label >= 0 && label < static_cast<std::int32_t>(card.class_names.size());
      grid.set_caption(
          r, c, named ? card.class_names[static_cast<std::size_t>(label)] : std::to_string(label));
    }
  }
  return grid.encode_png();
}

}  // namespace ddpm::cli
