#pragma once
// A .npy staged with other outputs: public in ddpm/files.h.
#include "ddpm/files.h"

namespace ddpm::detail {

using ddpm::NpyImage;
using ddpm::npy_image;
using ddpm::npy_header;

}  // namespace ddpm::detail
