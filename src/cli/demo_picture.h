#pragma once
// The demo's built-in picture, drawn procedurally so that the demo needs no
// files or downloads: a gradient sky, a sun, hills and a striped field.
#include <vector>

namespace ddpm::cli {

// A size x size RGB image, row-major HWC, values in [-1, 1] (the range
// image diffusion models work in).
std::vector<float> make_demo_picture(int size);

}  // namespace ddpm::cli
