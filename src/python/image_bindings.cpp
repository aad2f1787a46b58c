// Images in and out (ddpm/image.h): read_image as a float32 NumPy array in
// [-1, 1], [1, C, H, W]; to_pixels and write_png from model space. The
// ddpm package wraps these (python/ddpm/_images.py) to take any array-like.
#include <algorithm>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>

#include "ddpm/image.h"
#include "module.h"

namespace nb = nanobind;

namespace ddpm::python {
namespace {

template <class T>
nb::ndarray<nb::numpy, T> numpy_owning(std::vector<T> values, const std::vector<std::size_t>& shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return {owned->data(), shape.size(), shape.data(), owner};
}

using FloatArray = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;

std::vector<std::int64_t> shape_of(const FloatArray& x) {
  std::vector<std::int64_t> shape;
  for (std::size_t i = 0; i < x.ndim(); ++i) shape.push_back(static_cast<std::int64_t>(x.shape(i)));
  return shape;
}

}  // namespace

void bind_images(nb::module_& m) {
  m.def(
      "read_image",
      [](const std::string& path) {
        ImageArray image;
        {
          nb::gil_scoped_release released;
          image = read_image(path);
        }
        std::vector<std::size_t> shape(image.shape.begin(), image.shape.end());
        return std::make_pair(numpy_owning(std::move(image.data), shape), image.warning);
      },
      nb::arg("path"), "(array [1, C, H, W] float32 in [-1, 1], warning or '') of a PNG or JPEG.");
  m.def(
      "to_pixels",
      [](FloatArray x) {
        const std::vector<std::int64_t> shape = shape_of(x);
        std::vector<std::uint8_t> pixels = to_pixels({x.data(), x.size()}, shape);
        // [C, H, W] -> [H, W, C]; [N, C, H, W] -> [N, H, W, C].
        std::vector<std::size_t> out(shape.begin(), shape.end());
        std::rotate(out.end() - 3, out.end() - 2, out.end());
        return numpy_owning(std::move(pixels), out);
      },
      nb::arg("x"), "uint8 pixels, channel last, of a [C, H, W] or [N, C, H, W] float32 array.");
  m.def(
      "write_png",
      [](const std::string& path, FloatArray x) { write_png(path, {x.data(), x.size()}, shape_of(x)); },
      nb::arg("path"), nb::arg("x"), "Writes a [C, H, W] or [N, C, H, W] float32 array as a PNG.");
}

}  // namespace ddpm::python
