#include "png_grid.h"

#include <algorithm>
#include <cmath>

#include "ddpm/error.h"

namespace ddpm::cli {
namespace {

constexpr int kGap = 4;
constexpr image::Color kBackground{32, 32, 32};  // dark grey between tiles
constexpr image::Color kText{230, 230, 230};

std::uint8_t to_byte(float unit) {
  return static_cast<std::uint8_t>(std::lround(std::clamp(unit, 0.0f, 1.0f) * 255.0f));
}

}  // namespace

struct ImageGrid::Layout {
  int line_pitch = 0;    // one line of text and the space under it
  int title_height = 0;  // all title lines and a gap under them
  int row_title_height = 0;
  int caption_height = 0;
  int column_width = 0;  // a tile, or the widest caption
  int row_pitch = 0;     // row title + tile + caption + gap
  int width = 0, height = 0;
  int top = 0;  // where the first row starts
};

ImageGrid::ImageGrid(int rows, int columns, int tile_width, int tile_height, int scale,
                     int text_scale)
    : rows_(rows),
      columns_(columns),
      tile_width_(tile_width),
      tile_height_(tile_height),
      scale_(scale),
      text_scale_(text_scale),
      row_titles_(static_cast<std::size_t>(rows)),
      captions_(static_cast<std::size_t>(rows) * columns),
      tiles_(static_cast<std::size_t>(rows) * columns) {
  if (rows <= 0 || columns <= 0 || tile_width <= 0 || tile_height <= 0 || scale <= 0 ||
      text_scale <= 0) {
    throw Error("image grid: rows, columns, tile size and scales must be positive");
  }
}

void ImageGrid::add_title_line(std::string text) { title_.push_back(std::move(text)); }

void ImageGrid::set_row_title(int row, std::string text) {
  check_cell(row, 0);
  row_titles_[static_cast<std::size_t>(row)] = std::move(text);
}

void ImageGrid::set_caption(int row, int column, std::string text) {
  check_cell(row, column);
  captions_[static_cast<std::size_t>(row) * columns_ + column] = std::move(text);
}

void ImageGrid::check_cell(int row, int column) const {
  if (row < 0 || row >= rows_ || column < 0 || column >= columns_) {
    throw Error("image grid: cell (" + std::to_string(row) + ", " + std::to_string(column) +
                ") is outside the " + std::to_string(rows_) + " x " + std::to_string(columns_) +
                " grid");
  }
}

void ImageGrid::check_finite(int row, int column, std::span<const float> image) const {
  // The figures' backstop: a non-finite value never becomes a pixel.
  for (std::size_t i = 0; i < image.size(); ++i) {
    if (!std::isfinite(image[i])) {
      throw Error("the picture for row " + std::to_string(row) + ", column " +
                  std::to_string(column) + " has a non-finite value at index " + std::to_string(i) +
                  " (float32 overflowed); no figure was written");
    }
  }
}

void ImageGrid::place_rgb(int row, int column, std::span<const float> image) {
  check_cell(row, column);
  const auto pixels = static_cast<std::size_t>(tile_width_) * tile_height_;
  if (image.size() != 3 * pixels) {
    throw Error("image grid: an RGB tile needs " + std::to_string(3 * pixels) + " values, not " +
                std::to_string(image.size()));
  }
  check_finite(row, column, image);
  std::vector<image::Color>& tile = tiles_[static_cast<std::size_t>(row) * columns_ + column];
  tile.resize(pixels);
  for (std::size_t p = 0; p < pixels; ++p) {
    tile[p] = {to_byte((image[3 * p] + 1.0f) * 0.5f), to_byte((image[3 * p + 1] + 1.0f) * 0.5f),
               to_byte((image[3 * p + 2] + 1.0f) * 0.5f)};
  }
}

void ImageGrid::place_gray(int row, int column, std::span<const float> image, float white,
                           float black) {
  check_cell(row, column);
  const auto pixels = static_cast<std::size_t>(tile_width_) * tile_height_;
  if (image.size() != pixels) {
    throw Error("image grid: a grey tile needs " + std::to_string(pixels) + " values, not " +
                std::to_string(image.size()));
  }
  if (!(white != black)) throw Error("image grid: white and black must differ");
  check_finite(row, column, image);
  std::vector<image::Color>& tile = tiles_[static_cast<std::size_t>(row) * columns_ + column];
  tile.resize(pixels);
  for (std::size_t p = 0; p < pixels; ++p) {
    const std::uint8_t v = to_byte((image[p] - black) / (white - black));
    tile[p] = {v, v, v};
  }
}

ImageGrid::Layout ImageGrid::layout() const {
  const auto any = [](const std::vector<std::string>& texts) {
    return std::any_of(texts.begin(), texts.end(), [](const std::string& t) { return !t.empty(); });
  };
  const auto widest = [&](const std::vector<std::string>& texts) {
    int w = 0;
    for (const std::string& t : texts) w = std::max(w, image::Canvas::text_width(t, text_scale_));
    return w;
  };
  Layout l;
  l.line_pitch = image::Canvas::text_height(text_scale_) + 3 * text_scale_;
  l.title_height = title_.empty() ? 0 : static_cast<int>(title_.size()) * l.line_pitch + kGap;
  l.row_title_height = any(row_titles_) ? l.line_pitch : 0;
  l.caption_height = any(captions_) ? l.line_pitch : 0;
  // A caption is drawn 2 pixels below its tile; the widest one sets the column.
  l.column_width = std::max(tile_width_ * scale_, widest(captions_) + 2);
  l.row_pitch = l.row_title_height + tile_height_ * scale_ + (l.caption_height ? 2 : 0) +
                l.caption_height + kGap;
  const int grid_width = columns_ * l.column_width + (columns_ + 1) * kGap;
  l.width = std::max({grid_width, widest(title_) + 2 * kGap, widest(row_titles_) + 2 * kGap});
  l.top = kGap + l.title_height;
  l.height = l.top + rows_ * l.row_pitch;
  return l;
}

int ImageGrid::width() const { return layout().width; }
int ImageGrid::height() const { return layout().height; }

std::string ImageGrid::encode_png() const {
  const Layout l = layout();
  image::Canvas canvas(l.width, l.height, kBackground);
  for (std::size_t i = 0; i < title_.size(); ++i) {
    canvas.text(kGap, kGap + static_cast<int>(i) * l.line_pitch, title_[i], kText, text_scale_);
  }
  const int tile_w = tile_width_ * scale_, tile_h = tile_height_ * scale_;
  for (int r = 0; r < rows_; ++r) {
    const int row_top = l.top + r * l.row_pitch;
    canvas.text(kGap, row_top, row_titles_[static_cast<std::size_t>(r)], kText, text_scale_);
    const int tile_top = row_top + l.row_title_height;
    for (int c = 0; c < columns_; ++c) {
      const std::size_t cell = static_cast<std::size_t>(r) * columns_ + c;
      const int column_left = kGap + c * (l.column_width + kGap);
      const int left = column_left + (l.column_width - tile_w) / 2;
      const std::vector<image::Color>& tile = tiles_[cell];
      for (int y = 0; !tile.empty() && y < tile_h; ++y) {
        for (int x = 0; x < tile_w; ++x) {
          canvas.pixel(left + x, tile_top + y,
                       tile[static_cast<std::size_t>(y / scale_) * tile_width_ + x / scale_]);
        }
      }
      const std::string& caption = captions_[cell];
      const int caption_left =
          column_left + (l.column_width - image::Canvas::text_width(caption, text_scale_)) / 2;
      canvas.text(caption_left, tile_top + tile_h + 2, caption, kText, text_scale_);
    }
  }
  return canvas.encode_png();
}

}  // namespace ddpm::cli
