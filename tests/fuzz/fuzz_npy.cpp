// The .npy reader on arbitrary bytes, through all three element types: it
// either returns an array whose size matches its shape or throws
// ddpm::Error; anything else (a crash, a leak, undefined behaviour, another
// exception) is a finding. An array read as float32 is written back with
// the writer's header and must read back bit for bit.
#include <cstddef>
#include <cstdint>
#include <string>

#include <cstring>

#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "io/npy_image.h"

namespace {

template <class Array>
void check(const Array& a) {
  std::uint64_t count = 1;
  for (std::int64_t extent : a.shape) {
    if (extent < 0) __builtin_trap();
    count *= static_cast<std::uint64_t>(extent);
  }
  if (count != a.data.size()) __builtin_trap();
}

template <class Parse>
void try_parse(Parse parse, const std::string& bytes) {
  try {
    check(parse(bytes, "fuzz.npy"));
  } catch (const ddpm::Error&) {
  }
}

void round_trip(const std::string& bytes) {
  ddpm::NpyArray first;
  try {
    first = ddpm::parse_npy(bytes, "fuzz.npy");
  } catch (const ddpm::Error&) {
    return;
  }
  std::string image;
  try {
    const ddpm::detail::NpyImage written =
        ddpm::detail::npy_image("fuzz.npy", first.shape, first.data.data());
    image = written.header + std::string(written.data);
  } catch (const ddpm::Error&) {
    return;  // a shape whose header would not fit a .npy 1.0 header
  }
  const ddpm::NpyArray second = ddpm::parse_npy(image, "written.npy");
  if (second.shape != first.shape || second.data.size() != first.data.size() ||
      (!first.data.empty() && std::memcmp(second.data.data(), first.data.data(),
                                          first.data.size() * sizeof(float)) != 0)) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try_parse(ddpm::parse_npy, bytes);
  try_parse(ddpm::parse_npy_double, bytes);
  try_parse(ddpm::parse_npy_int64, bytes);
  round_trip(bytes);
  return 0;
}
