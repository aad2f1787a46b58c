#pragma once
// Arrays between Python and the engine. The Python layer (ddpm/_arrays.py)
// hands over float32 / int32 C-contiguous arrays in their own framework; here
// they are read through DLPack or the buffer protocol (nanobind's ndarray)
// without copies, checked (dtype, order, shape, where they live) and turned
// into the spans and Memory of a request. The other way, engine buffers are
// wrapped as NumPy, PyTorch or CuPy views for Python predictors.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "ddpm/types.h"

namespace ddpm::python {

namespace nb = nanobind;

// Any array: any dtype, order and device, read-only / writable.
using InputArray = nb::ndarray<nb::ro>;
using OutputArray = nb::ndarray<>;

// Where an array lives: host memory (CPU or pinned), or a CUDA device.
struct Place {
  Memory memory = Memory::host;
  int device = 0;  // CUDA ordinal for Memory::device
  bool operator==(const Place&) const = default;
};
std::string describe(Place place);  // "cpu", "cuda:0"

// The frameworks a Python predictor can be handed views in.
enum class Framework { numpy, torch, cupy };
Framework parse_framework(const std::string& name);

// A checked float32 C-contiguous array.
struct Floats {
  const char* name = "";
  float* data = nullptr;
  std::vector<std::int64_t> extents;
  Place place;
  std::int64_t size() const;
  Shape batch_shape() const;  // first axis the batch, the rest one sample
  std::span<const float> in() const { return {data, static_cast<std::size_t>(size())}; }
  std::span<float> out() const { return {data, static_cast<std::size_t>(size())}; }
};

// Throws TypeError for a dtype other than float32 or a non-C-contiguous
// array, ddpm::Error for an unsupported device or a scalar.
Floats floats(const InputArray& array, const char* name);
Floats floats(const OutputArray& array, const char* name);

// A checked int32 C-contiguous vector of `count` entries (steps, labels).
struct Ints {
  const std::int32_t* data = nullptr;
  std::size_t count = 0;
  Place place;
  std::span<const std::int32_t> span() const { return {data, count}; }
};
Ints ints(const InputArray& array, const char* name, std::int64_t count);

// Throws ddpm::Error "shape mismatch: ..." unless `a` has the extents of `reference`.
void require_same_shape(const Floats& a, const Floats& reference);
// Throws ddpm::Error unless `a` lives where `reference` does.
void require_same_place(Place a, const char* name, const Floats& reference);

// A view of engine memory as an array of `framework` (no copy, no owner: valid
// only while the engine's buffer is).
nb::object float_view(Framework framework, const float* data,
                      const std::vector<std::size_t>& shape, Place place, bool read_only);
nb::object int_view(Framework framework, const std::int32_t* data, std::size_t count, Place place);

}  // namespace ddpm::python
