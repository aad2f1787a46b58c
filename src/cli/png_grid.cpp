#include "png_grid.h"

#include <algorithm>
#include <cmath>

#include "ddpm/error.h"

// The one translation unit that compiles stb_image_write's implementation.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO  // we only encode to memory; writing is write_file_atomically's job
#include <stb_image_write.h>

namespace ddpm::cli {
namespace {

constexpr int kGap = 4;
constexpr std::uint8_t kBackground = 32;  // dark grey between tiles

std::uint8_t to_byte(float value) {
  const float scaled = (std::clamp(value, -1.0f, 1.0f) + 1.0f) * 127.5f;
  return static_cast<std::uint8_t>(std::lround(scaled));
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<std::size_t>(size));
}

}  // namespace

ImageGrid::ImageGrid(int rows, int columns, int tile, int scale)
    : tile_(tile),
      scale_(scale),
      gap_(kGap),
      width_(columns * tile * scale + (columns + 1) * kGap),
      height_(rows * tile * scale + (rows + 1) * kGap),
      pixels_(static_cast<std::size_t>(width_) * height_ * 3, kBackground) {}

void ImageGrid::place(int row, int column, std::span<const float> image) {
  if (static_cast<std::int64_t>(image.size()) != std::int64_t{3} * tile_ * tile_) {
    throw Error("demo: a grid tile needs " + std::to_string(3 * tile_ * tile_) + " values");
  }
  // The demo's backstop: a non-finite value never becomes a pixel.
  for (std::size_t i = 0; i < image.size(); ++i) {
    if (!std::isfinite(image[i])) {
      throw Error("demo: the picture for row " + std::to_string(row) + ", column " +
                  std::to_string(column) + " has a non-finite value at index " +
                  std::to_string(i) + " (float32 overflowed); no figure was written");
    }
  }
  const int left = gap_ + column * (tile_ * scale_ + gap_);
  const int top = gap_ + row * (tile_ * scale_ + gap_);
  for (int y = 0; y < tile_ * scale_; ++y) {
    for (int x = 0; x < tile_ * scale_; ++x) {
      const std::size_t source = (static_cast<std::size_t>(y / scale_) * tile_ + x / scale_) * 3;
      const std::size_t target = (static_cast<std::size_t>(top + y) * width_ + left + x) * 3;
      for (int c = 0; c < 3; ++c) pixels_[target + c] = to_byte(image[source + c]);
    }
  }
}

std::string ImageGrid::encode_png() const {
  std::string png;
  if (!stbi_write_png_to_func(append_bytes, &png, width_, height_, 3, pixels_.data(), width_ * 3)) {
    throw Error("demo: PNG encoding failed");
  }
  return png;
}

}  // namespace ddpm::cli
