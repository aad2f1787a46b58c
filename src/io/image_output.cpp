// Model-space arrays back to 8-bit pixels and PNG (stb_image_write).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "ddpm/error.h"
#include "ddpm/image.h"
#include "ddpm/npy.h"

// stb_image_write for this file alone (src/image/canvas.cpp, outside the
// library, has its own copy for the figures).
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

namespace ddpm::detail {

// stb_image_write's CRC-32 (the PNG one), for the reader's chunk check: the
// reader's stb_image checks no CRC.
std::uint32_t png_crc32(std::string_view bytes) {
  return stbiw__crc32(reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data())),
                      static_cast<int>(bytes.size()));
}

}  // namespace ddpm::detail

namespace ddpm {
namespace {

constexpr int kGridGap = 2;                // pixels between the images of a batch
constexpr std::uint8_t kGridBackground = 32;  // dark grey, as the CLI's figures

struct Layout {
  std::int64_t count, channels, height, width;
};

std::string format(const std::vector<std::int64_t>& shape) {
  std::string t = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + std::to_string(shape[i]);
  return t + "]";
}

Layout layout_of(const std::vector<std::int64_t>& shape) {
  const auto text = [&] { return format(shape); };
  Layout l{};
  if (shape.size() == 3) {
    l = {1, shape[0], shape[1], shape[2]};
  } else if (shape.size() == 4) {
    l = {shape[0], shape[1], shape[2], shape[3]};
  } else {
    throw Error("an image array is [C, H, W] or [N, C, H, W], not " + text());
  }
  if (l.channels != 1 && l.channels != 3) {
    throw Error("an image array has 1 (grey) or 3 (RGB) channels first; shape " + text() +
                " has " + std::to_string(l.channels));
  }
  if (l.count < 1 || l.height < 1 || l.width < 1 || l.height > (1 << 24) || l.width > (1 << 24)) {
    throw Error("an image array of shape " + text() + " is empty or too large to draw");
  }
  return l;
}

Layout layout_of(std::span<const float> data, const std::vector<std::int64_t>& shape) {
  const Layout l = layout_of(shape);
  const auto size = static_cast<std::uint64_t>(l.count) * l.channels * l.height * l.width;
  if (size != data.size()) {
    throw Error("an image array of shape " + format(shape) + " needs " + std::to_string(size) +
                " values, not " + std::to_string(data.size()));
  }
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (!std::isfinite(data[i])) {
      throw Error("the image array has a non-finite value at index " + std::to_string(i) +
                  "; no picture was made");
    }
  }
  return l;
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<std::size_t>(size));
}

}  // namespace

std::uint8_t to_pixel(float x) {
  const float unit = std::clamp((x + 1.0f) * 0.5f, 0.0f, 1.0f);
  return std::isnan(unit) ? 0 : static_cast<std::uint8_t>(std::lround(unit * 255.0f));
}

void require_image_shape(const std::vector<std::int64_t>& shape) { layout_of(shape); }

std::vector<std::uint8_t> to_pixels(std::span<const float> data,
                                    const std::vector<std::int64_t>& shape) {
  const Layout l = layout_of(data, shape);
  const auto plane = static_cast<std::size_t>(l.height * l.width);
  const auto channels = static_cast<std::size_t>(l.channels);
  std::vector<std::uint8_t> pixels(data.size());
  for (std::size_t n = 0; n < static_cast<std::size_t>(l.count); ++n) {
    const float* in = data.data() + n * channels * plane;
    std::uint8_t* out = pixels.data() + n * channels * plane;
    for (std::size_t p = 0; p < plane; ++p) {
      for (std::size_t c = 0; c < channels; ++c) out[p * channels + c] = to_pixel(in[c * plane + p]);
    }
  }
  return pixels;
}

std::string encode_png(std::span<const float> data, const std::vector<std::int64_t>& shape) {
  const Layout l = layout_of(data, shape);
  const std::vector<std::uint8_t> pixels = to_pixels(data, shape);
  // A batch as a near-square grid, row by row.
  const auto columns = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(l.count))));
  const std::int64_t rows = (l.count + columns - 1) / columns;
  const std::int64_t gap = l.count > 1 ? kGridGap : 0;
  const std::int64_t width = columns * l.width + (columns - 1) * gap;
  const std::int64_t height = rows * l.height + (rows - 1) * gap;
  if (width > (1 << 24) || height > (1 << 24) ||
      static_cast<std::uint64_t>(width) * l.channels > static_cast<std::uint64_t>(INT32_MAX) / 2) {
    throw Error("a picture of " + std::to_string(width) + " x " + std::to_string(height) +
                " pixels is too large for a PNG");
  }
  const auto stride = static_cast<std::size_t>(width * l.channels);
  std::vector<std::uint8_t> canvas(stride * static_cast<std::size_t>(height), kGridBackground);
  const auto image_row = static_cast<std::size_t>(l.width * l.channels);
  for (std::int64_t n = 0; n < l.count; ++n) {
    const std::int64_t top = (n / columns) * (l.height + gap);
    const std::int64_t left = (n % columns) * (l.width + gap);
    const std::uint8_t* image = pixels.data() + static_cast<std::size_t>(n) * image_row * l.height;
    for (std::int64_t y = 0; y < l.height; ++y) {
      std::copy_n(image + static_cast<std::size_t>(y) * image_row, image_row,
                  canvas.data() + static_cast<std::size_t>(top + y) * stride +
                      static_cast<std::size_t>(left * l.channels));
    }
  }
  std::string png;
  if (!stbi_write_png_to_func(append_bytes, &png, static_cast<int>(width), static_cast<int>(height),
                              static_cast<int>(l.channels), canvas.data(), static_cast<int>(stride))) {
    throw Error("PNG encoding failed");
  }
  return png;
}

void write_png(const std::string& path, std::span<const float> data,
               const std::vector<std::int64_t>& shape) {
  write_file_atomically(path, encode_png(data, shape));
}

}  // namespace ddpm
