#pragma once
// Reading PNG and JPEG inputs from an open InputSource, so that a reader that
// has already looked at a file's first bytes (to tell an image from a .npy)
// decodes the rest without opening it again (a FIFO can be read once).
#include <cstdint>
#include <string_view>

#include "ddpm/image.h"
#include "file_input.h"

namespace ddpm::detail {

// The cap on an image file: stb_image addresses its input with an int, and
// a compressed image larger than memory cannot be decoded anyway.
std::uint64_t max_image_file_bytes();

// Everything `in` still holds, decoded (errors as ddpm::read_image).
ImageArray read_image(InputSource& in);

// The CRC-32 of a PNG chunk's type and data (image_output.cpp: stb_image_write's).
std::uint32_t png_crc32(std::string_view bytes);

}  // namespace ddpm::detail
