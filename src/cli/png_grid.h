#pragma once
// A grid of equally sized RGB tiles saved as one PNG: the demo's figure.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ddpm::cli {

class ImageGrid {
 public:
  // `tile` pixels square per image, each drawn `scale` times larger, with a
  // thin gap between tiles.
  ImageGrid(int rows, int columns, int tile, int scale);

  // `image` is tile x tile RGB, row-major HWC, values in [-1, 1]; values
  // outside are clamped (noisy samples overshoot), NaN or Inf is refused
  // with ddpm::Error.
  void place(int row, int column, std::span<const float> image);

  // PNG bytes of the whole grid.
  std::string encode_png() const;

 private:
  int tile_, scale_, gap_, width_, height_;
  std::vector<std::uint8_t> pixels_;  // RGB, row-major
};

}  // namespace ddpm::cli
