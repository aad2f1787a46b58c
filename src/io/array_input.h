#pragma once
// Arrays by content: public in ddpm/files.h.
#include "ddpm/files.h"

namespace ddpm::detail {

using ddpm::InputArray;
using ddpm::read_array_or_image;
using ddpm::is_image_file;

}  // namespace ddpm::detail
