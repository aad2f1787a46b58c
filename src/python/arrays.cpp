#include "arrays.h"

#include "ddpm/error.h"

namespace ddpm::python {
namespace {

// DLPack device types (dlpack.h's DLDeviceType).
constexpr int kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13;

std::string dtype_name(nb::dlpack::dtype d) {
  using Code = nb::dlpack::dtype_code;
  std::string base;
  switch (static_cast<Code>(d.code)) {
    case Code::Int: base = "int"; break;
    case Code::UInt: base = "uint"; break;
    case Code::Float: base = "float"; break;
    case Code::Bfloat: base = "bfloat"; break;
    case Code::Complex: base = "complex"; break;
    case Code::Bool: return "bool";
    default: base = "dtype code " + std::to_string(d.code) + " of "; break;
  }
  return base + std::to_string(d.bits);
}

// As Python writes the shape: "(2, 3)", "(2,)".
std::string format_extents(const std::vector<std::int64_t>& extents) {
  nb::list items;
  for (std::int64_t e : extents) items.append(e);
  return nb::repr(nb::tuple(items)).c_str();
}

template <class Array>
Place place_of(const Array& a, const char* name) {
  switch (a.device_type()) {
    case kDLCPU:
    case kDLCUDAHost:
      return {Memory::host, 0};
    case kDLCUDA:
    case kDLCUDAManaged:
      return {Memory::device, a.device_id()};
    default:
      throw Error(std::string(name) + " is on an unsupported device (DLPack device type " +
                  std::to_string(a.device_type()) + "); ddpm takes CPU and CUDA arrays");
  }
}

template <class Array>
bool c_contiguous(const Array& a) {
  std::int64_t expected = 1;
  for (std::size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expected) return false;
    expected *= static_cast<std::int64_t>(a.shape(i));
  }
  return true;
}

template <class Array>
std::vector<std::int64_t> extents_of(const Array& a) {
  std::vector<std::int64_t> extents(a.ndim());
  for (std::size_t i = 0; i < a.ndim(); ++i) extents[i] = static_cast<std::int64_t>(a.shape(i));
  return extents;
}

template <class Array>
Floats checked_floats(const Array& a, const char* name) {
  if (a.dtype() != nb::dtype<float>()) {
    throw nb::type_error((std::string(name) + " must be a float32 array, got " +
                          dtype_name(a.dtype()))
                             .c_str());
  }
  if (!c_contiguous(a)) {
    throw nb::type_error((std::string(name) + " must be C-contiguous").c_str());
  }
  Floats f;
  f.name = name;
  f.data = static_cast<float*>(const_cast<void*>(static_cast<const void*>(a.data())));
  f.extents = extents_of(a);
  f.place = place_of(a, name);
  if (f.extents.empty()) {
    throw Error(std::string(name) + " is a scalar; expected a batch of samples (first axis the batch)");
  }
  return f;
}

int dlpack_device_type(Place place) { return place.memory == Memory::host ? kDLCPU : kDLCUDA; }

template <class Tag, class T>
nb::object view_in(T* data, const std::vector<std::size_t>& shape, Place place) {
  return nb::ndarray<Tag, T>(data, shape.size(), shape.data(), nb::handle(), nullptr,
                             nb::dtype<std::remove_const_t<T>>(), dlpack_device_type(place),
                             place.device)
      .cast(nb::rv_policy::reference);
}

template <class T>
nb::object view(Framework framework, T* data, const std::vector<std::size_t>& shape, Place place) {
  switch (framework) {
    case Framework::numpy: return view_in<nb::numpy, T>(data, shape, place);
    case Framework::torch: return view_in<nb::pytorch, T>(data, shape, place);
    case Framework::cupy: return view_in<nb::cupy, T>(data, shape, place);
  }
  throw Error("unknown framework");
}

}  // namespace

std::string describe(Place place) {
  return place.memory == Memory::host ? "cpu" : "cuda:" + std::to_string(place.device);
}

Framework parse_framework(const std::string& name) {
  if (name == "numpy") return Framework::numpy;
  if (name == "torch") return Framework::torch;
  if (name == "cupy") return Framework::cupy;
  throw Error("unknown array framework '" + name + "' (expected numpy, torch or cupy)");
}

std::int64_t Floats::size() const {
  std::int64_t n = 1;
  for (std::int64_t e : extents) n *= e;
  return n;
}

Shape Floats::batch_shape() const {
  Shape shape{extents.front(), 1};
  for (std::size_t i = 1; i < extents.size(); ++i) shape.dim *= extents[i];
  return shape;
}

Floats floats(const InputArray& array, const char* name) { return checked_floats(array, name); }
Floats floats(const OutputArray& array, const char* name) { return checked_floats(array, name); }

Ints ints(const InputArray& a, const char* name, std::int64_t count) {
  if (a.dtype() != nb::dtype<std::int32_t>()) {
    throw nb::type_error(
        (std::string(name) + " must be an int32 array, got " + dtype_name(a.dtype())).c_str());
  }
  if (a.ndim() != 1 || static_cast<std::int64_t>(a.shape(0)) != count) {
    throw Error(std::string(name) + " must have one entry per sample: shape (" +
                std::to_string(count) + ",), got " + format_extents(extents_of(a)));
  }
  if (!c_contiguous(a)) throw nb::type_error((std::string(name) + " must be contiguous").c_str());
  return {static_cast<const std::int32_t*>(a.data()), static_cast<std::size_t>(count),
          place_of(a, name)};
}

void require_same_shape(const Floats& a, const Floats& reference) {
  if (a.extents != reference.extents) {
    throw Error(std::string("shape mismatch: ") + a.name + " has shape " + format_extents(a.extents) +
                " but " + reference.name + " has shape " + format_extents(reference.extents));
  }
}

void require_same_place(Place a, const char* name, const Floats& reference) {
  if (!(a == reference.place)) {
    throw Error(std::string(name) + " is on " + describe(a) + " but " + reference.name + " is on " +
                describe(reference.place) + "; every array of a call must be on one device");
  }
}

nb::object float_view(Framework framework, const float* data,
                      const std::vector<std::size_t>& shape, Place place, bool read_only) {
  // Only NumPy has read-only arrays; PyTorch and CuPy views are writable.
  if (read_only && framework == Framework::numpy) return view(framework, data, shape, place);
  return view(framework, const_cast<float*>(data), shape, place);
}

nb::object int_view(Framework framework, const std::int32_t* data, std::size_t count, Place place) {
  if (framework == Framework::numpy) return view(framework, data, {count}, place);
  return view(framework, const_cast<std::int32_t*>(data), {count}, place);
}

}  // namespace ddpm::python
