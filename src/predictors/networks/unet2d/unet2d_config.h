#pragma once
// Reading a UNet2DModel's config.json from its file (the parser is
// UNet2DConfig::from_json, ddpm/unet2d.h).
#include <string>

#include "ddpm/unet2d.h"

namespace ddpm::detail {

// Throws ddpm::Error starting with `path` for an unreadable, oversized or
// refused config.
UNet2DConfig read_unet2d_config(const std::string& path);

}  // namespace ddpm::detail
