#pragma once
// The .npy reader on an open InputSource, for readers that look at a file's
// first bytes before they know it is a .npy (array_input.h).
#include "ddpm/npy.h"
#include "file_input.h"

namespace ddpm::detail {

NpyArray read_npy(InputSource& in);

}  // namespace ddpm::detail
