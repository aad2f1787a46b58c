#pragma once
// Images in and out: a PNG or JPEG as a float32 array in [-1, 1], channel
// first ([1, C, H, W]: a batch of one, the layout diffusers' pipelines and
// UNets use), and an array in [-1, 1] back to 8-bit pixels and PNG.
//
//   pixels -> model space:  x = 2 * (p / max) - 1   (float32; max 255 or 65535),
//                           as diffusers' VaeImageProcessor.normalize(p / 255)
//   model space -> pixels:  p = round(clamp((x + 1) / 2, 0, 1) * 255)
//                           as diffusers' VaeImageProcessor.postprocess
//
// So a PNG that write_png wrote reads back to exactly the values that map to
// its pixels. Grey (C = 1) and RGB (C = 3) are kept; an alpha channel is
// dropped (grey + alpha -> grey, RGBA -> RGB) and said so in `warning`;
// 16-bit PNGs keep their 16 bits. Decoding is stb_image's (Debian libstb-dev).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ddpm {

struct ImageArray {
  std::vector<std::int64_t> shape;  // [1, C, H, W], C = 1 (grey) or 3 (RGB)
  std::vector<float> data;          // in [-1, 1], C order
  int bits = 8;                     // per channel in the file: 8 or 16
  std::string warning;              // non-empty when something was dropped (alpha)
};

// True when `bytes` (the start of a file; 3 bytes are enough) begin like a
// PNG or a JPEG: how readers tell an image from a .npy by content.
bool looks_like_image(std::string_view bytes);

// Reads a PNG or JPEG by its content (not its name). A missing path, a
// directory, a file that is not a PNG or JPEG, a truncated or corrupt one,
// a zero-size image or one whose pixels would not fit in this machine's
// memory (checked from the header, before decoding) throws ddpm::Error with
// one line naming the file; nothing else happens.
ImageArray read_image(const std::string& path);
// The same from bytes in memory; `name` is used in errors.
ImageArray decode_image(std::string_view bytes, const std::string& name);

// One 8-bit pixel value of a model-space value: round(clamp((x + 1) / 2, 0, 1) * 255).
// NaN maps to 0.
std::uint8_t to_pixel(float x);

// [C, H, W] or [N, C, H, W] (C = 1 or 3) in model space to 8-bit pixels,
// channel last ([H, W, C] per image, images one after another), as
// PIL/matplotlib want them. Throws ddpm::Error for any other shape, a size
// that does not match or a non-finite value.
std::vector<std::uint8_t> to_pixels(std::span<const float> data,
                                     const std::vector<std::int64_t>& shape);

// Throws ddpm::Error unless `shape` is one encode_png draws (checks before work).
void require_image_shape(const std::vector<std::int64_t>& shape);

// PNG bytes of one image: [C, H, W] or [1, C, H, W], C = 1 or 3; a batch of
// several images is tiled left to right, top to bottom in a near-square
// grid with a 2-pixel gap. Errors as to_pixels.
std::string encode_png(std::span<const float> data, const std::vector<std::int64_t>& shape);
// encode_png written to `path` (atomically, as write_npy writes).
void write_png(const std::string& path, std::span<const float> data,
               const std::vector<std::int64_t>& shape);

}  // namespace ddpm
