#pragma once
// A grid of equally sized pictures with labels, saved as one PNG: the demo's
// figure and `ddpm sample --png`. From the top:
//
//   title lines                       (optional)
//   row title                         (optional, above each row)
//   [tile] [tile] [tile] ...          each tile drawn `scale` times larger
//   caption caption caption ...       (optional, under each tile)
//   row title / tiles / captions of the next row ...
//
// Text is the 5x7 font of src/image, `text_scale` times larger. A column is
// as wide as its widest caption when that is wider than a tile; the picture
// is as wide as its widest title.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "image/canvas.h"

namespace ddpm::cli {

class ImageGrid {
 public:
  ImageGrid(int rows, int columns, int tile_width, int tile_height, int scale, int text_scale = 1);

  void add_title_line(std::string text);
  void set_row_title(int row, std::string text);
  void set_caption(int row, int column, std::string text);

  // An RGB tile: tile_height x tile_width x 3 values in [-1, 1] (HWC), the
  // range image diffusion models work in; values outside are clamped (noisy
  // samples overshoot).
  void place_rgb(int row, int column, std::span<const float> image);
  // A grey tile: tile_height x tile_width values drawn white at `white` and
  // black at `black`, linearly between and clamped outside (white > black
  // or white < black both work: digits are dark ink on white).
  void place_gray(int row, int column, std::span<const float> image, float white, float black);

  // The PNG bytes of the whole figure. A NaN or Inf value in any tile was
  // refused by place_*() with ddpm::Error, so no figure shows one.
  std::string encode_png() const;

  // The figure's size in pixels (what encode_png() draws).
  int width() const;
  int height() const;

 private:
  struct Layout;
  Layout layout() const;
  void check_cell(int row, int column) const;
  void check_finite(int row, int column, std::span<const float> image) const;

  int rows_, columns_, tile_width_, tile_height_, scale_, text_scale_;
  std::vector<std::string> title_;
  std::vector<std::string> row_titles_;           // rows_ entries, "" for none
  std::vector<std::string> captions_;             // rows_ x columns_, "" for none
  std::vector<std::vector<image::Color>> tiles_;  // rows_ x columns_, empty until placed
};

}  // namespace ddpm::cli
