#pragma once
// An input array by its content, not its name: a .npy, or a PNG or JPEG
// read as [1, C, H, W] in [-1, 1] (ddpm/image.h). The file is opened once
// and its first bytes decide, so a FIFO or a pipe works as well.
#include <string>

#include "ddpm/npy.h"

namespace ddpm::detail {

struct InputArray {
  NpyArray array;
  bool image = false;
  std::string warning;  // from the image reader (an alpha channel dropped), or empty
};

// Errors: the .npy reader's or the image reader's; a file that is neither
// says so ("not a .npy, PNG or JPEG file").
InputArray read_array_or_image(const std::string& path);

// True when `path` is a regular file that begins like a PNG or JPEG (for
// readers that read a .npy by rows but an image whole). Never blocks: a
// FIFO, a device or a path that cannot be opened is not an image file here.
bool is_image_file(const std::string& path);

}  // namespace ddpm::detail
