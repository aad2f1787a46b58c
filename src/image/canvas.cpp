#include "canvas.h"

#include <algorithm>
#include <cmath>

#include "bitmap_font.h"
#include "ddpm/error.h"

// The one translation unit that compiles stb_image_write's implementation.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace ddpm::image {
namespace {

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<std::size_t>(size));
}

}  // namespace

Canvas::Canvas(int width, int height, Color background)
    : width_(width), height_(height), rgb_(static_cast<std::size_t>(width) * height * 3) {
  fill_rect(0, 0, width, height, background);
}

void Canvas::pixel(int x, int y, Color color) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  std::uint8_t* p = &rgb_[(static_cast<std::size_t>(y) * width_ + x) * 3];
  p[0] = color.r;
  p[1] = color.g;
  p[2] = color.b;
}

void Canvas::fill_rect(int x, int y, int w, int h, Color color) {
  for (int j = y; j < y + h; ++j) {
    for (int i = x; i < x + w; ++i) pixel(i, j, color);
  }
}

void Canvas::line(double x0, double y0, double x1, double y1, Color color, int thickness,
                  int dash) {
  const double length = std::hypot(x1 - x0, y1 - y0);
  const int steps = std::max(1, static_cast<int>(std::ceil(length * 2)));
  const int half = thickness / 2;
  for (int s = 0; s <= steps; ++s) {
    const double along = length * s / steps;
    if (dash > 0 && static_cast<int>(along / dash) % 2 == 1) continue;
    const double t = static_cast<double>(s) / steps;
    const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t));
    const int y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
    fill_rect(x - half, y - half, thickness, thickness, color);
  }
}

int Canvas::text(int x, int y, const std::string& text, Color color, int scale) {
  int cursor = x;
  for (unsigned char c : text) {
    if (c < 0x20 || c > 0x7E) c = '?';
    const std::uint8_t* glyph = kFont5x7[c - 0x20];
    for (int col = 0; col < kGlyphWidth; ++col) {
      for (int row = 0; row < kGlyphHeight; ++row) {
        if ((glyph[col] >> row) & 1)
          fill_rect(cursor + col * scale, y + row * scale, scale, scale, color);
      }
    }
    cursor += (kGlyphWidth + 1) * scale;
  }
  return cursor - x;
}

int Canvas::text_width(const std::string& text, int scale) {
  return static_cast<int>(text.size()) * (kGlyphWidth + 1) * scale;
}

int Canvas::text_height(int scale) { return kGlyphHeight * scale; }

std::string Canvas::encode_png() const {
  std::string png;
  if (!stbi_write_png_to_func(append_bytes, &png, width_, height_, 3, rgb_.data(), width_ * 3)) {
    throw Error("PNG encoding failed");
  }
  return png;
}

void Canvas::write_png(const std::string& path) const {
  if (stbi_write_png(path.c_str(), width_, height_, 3, rgb_.data(), width_ * 3) == 0) {
    throw Error("cannot write the plot '" + path + "'");
  }
}

}  // namespace ddpm::image
