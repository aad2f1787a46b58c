#include "sample_figure.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "ddpm/error.h"
#include "ddpm/unet2d.h"
#include "png_grid.h"

namespace ddpm::cli {
namespace {

constexpr int kTargetTilePixels = 40;  // small pictures are drawn about this large

// How a sample is a picture: [H, W] grey or [H, W, 3] RGB (ddpm's cards), or
// channels first, [1, H, W] or [3, H, W] (diffusers' UNet2DModel).
struct Picture {
  int height = 0, width = 0, channels = 0;
  bool channels_first = false;
};

std::optional<Picture> picture_of(const ModelCard& card) {
  const std::vector<std::int64_t>& s = card.sample_shape;
  if (card.architecture == kUNet2DArchitecture) {
    if (s.size() == 3 && (s[0] == 1 || s[0] == 3)) {
      return Picture{static_cast<int>(s[1]), static_cast<int>(s[2]), static_cast<int>(s[0]), true};
    }
    return std::nullopt;
  }
  if (s.size() == 2) return Picture{static_cast<int>(s[0]), static_cast<int>(s[1]), 1, false};
  if (s.size() == 3 && s[2] == 3) return Picture{static_cast<int>(s[0]), static_cast<int>(s[1]), 3, false};
  return std::nullopt;
}

}  // namespace

void check_figure_model(const ModelCard& card, const std::string& model_path) {
  if (!picture_of(card)) {
    std::string shape;
    for (std::size_t i = 0; i < card.sample_shape.size(); ++i) {
      shape += (i ? ", " : "") + std::to_string(card.sample_shape[i]);
    }
    throw Error("--png: the model " + model_path + " has samples of shape [" + shape +
                "], not a picture ([H, W] or [H, W, 3]; a UNet2DModel's [1, H, W] or [3, H, W])");
  }
}

std::string sample_figure_png(const ModelCard& card, std::span<const float> samples, Shape shape,
                              const SampleFigure& figure) {
  const Picture picture = *picture_of(card);
  const int height = picture.height, width = picture.width;
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
  // pixel_min white, pixel_max black (ink on paper), like scikit-learn's digits
  // shown with gray_r; a diffusers image model's as its pipelines show them,
  // -1 black and 1 white.
  const float white = picture.channels_first ? n.model_max : n.from_pixel(n.pixel_min);
  const float black = picture.channels_first ? n.model_min : n.from_pixel(n.pixel_max);
  std::vector<float> interleaved;  // a channels-first RGB sample as [H, W, 3]
  for (std::int64_t i = 0; i < shown; ++i) {
    const int r = static_cast<int>(i / columns), c = static_cast<int>(i % columns);
    const auto sample = samples.subspan(static_cast<std::size_t>(i * shape.dim),
                                        static_cast<std::size_t>(shape.dim));
    if (picture.channels == 3 && picture.channels_first) {
      const std::size_t pixels = static_cast<std::size_t>(height) * width;
      interleaved.resize(3 * pixels);
      for (std::size_t p = 0; p < pixels; ++p) {
        for (std::size_t k = 0; k < 3; ++k) interleaved[3 * p + k] = sample[k * pixels + p];
      }
      grid.place_rgb(r, c, interleaved);
    } else if (picture.channels == 3) {
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
