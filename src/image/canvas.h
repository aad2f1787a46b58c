#pragma once
// An RGB image with the few primitives that figures need (pixels, rectangles,
// lines, 5x7 text) and PNG output: ddpm-bench's plot and the CLI's labelled
// image grids draw on it.
#include <cstdint>
#include <string>
#include <vector>

namespace ddpm::image {

struct Color {
  std::uint8_t r, g, b;
};

class Canvas {
 public:
  Canvas(int width, int height, Color background);
  int width() const { return width_; }
  int height() const { return height_; }

  void pixel(int x, int y, Color color);  // clipped
  void fill_rect(int x, int y, int w, int h, Color color);
  // A line `thickness` pixels wide; dash > 0 draws dash pixels on, dash off.
  void line(double x0, double y0, double x1, double y1, Color color, int thickness = 1,
            int dash = 0);
  // 5x7 glyphs scaled by `scale`; returns the width drawn. Non-ASCII prints '?'.
  int text(int x, int y, const std::string& text, Color color, int scale = 1);
  static int text_width(const std::string& text, int scale = 1);
  static int text_height(int scale = 1);

  // PNG bytes of the image (written by the caller, e.g. all or nothing).
  std::string encode_png() const;
  // Throws ddpm::Error when the file cannot be written.
  void write_png(const std::string& path) const;

 private:
  int width_, height_;
  std::vector<std::uint8_t> rgb_;
};

}  // namespace ddpm::image
