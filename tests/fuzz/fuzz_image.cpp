// The image reader (ddpm::decode_image: PNG and JPEG through stb_image) on
// arbitrary bytes: it either returns [1, C, H, W] with C = 1 or 3, H * W * C
// values, all in [-1, 1], or throws ddpm::Error; anything else (a crash, a
// leak, undefined behaviour, another exception) is a finding. A decoded
// image is written back as a PNG (encode_png) and must read back to its
// pixels exactly.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ddpm/error.h"
#include "ddpm/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ddpm::ImageArray image;
  try {
    image = ddpm::decode_image(bytes, "fuzz");
  } catch (const ddpm::Error&) {
    return 0;
  }
  const auto& shape = image.shape;
  if (shape.size() != 4 || shape[0] != 1 || (shape[1] != 1 && shape[1] != 3) || shape[2] < 1 ||
      shape[3] < 1 ||
      image.data.size() != static_cast<std::size_t>(shape[1] * shape[2] * shape[3])) {
    __builtin_trap();
  }
  for (float x : image.data) {
    if (!(x >= -1.0f && x <= 1.0f)) __builtin_trap();
  }
  const std::vector<std::uint8_t> pixels = ddpm::to_pixels(image.data, shape);
  const ddpm::ImageArray back = ddpm::decode_image(ddpm::encode_png(image.data, shape), "written");
  if (back.shape != shape || ddpm::to_pixels(back.data, shape) != pixels) __builtin_trap();
  return 0;
}
