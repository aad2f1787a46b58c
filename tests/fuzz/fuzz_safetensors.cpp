// detail::parse_safetensors on arbitrary bytes: a file whose tensors all lie
// inside the buffer, or ddpm::Error; never a read outside it.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ddpm/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy of exactly `size` bytes, so that ASan sees any read past the end.
  const std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                                     reinterpret_cast<const std::byte*>(data) + size);
  try {
    const ddpm::detail::SafetensorsFile file = ddpm::detail::parse_safetensors(bytes, "fuzz");
    for (const ddpm::detail::SafetensorsTensor& tensor : file.tensors()) {
      const auto width = static_cast<std::size_t>(tensor.element_bytes());  // F32 4, F16 and BF16 2
      if (tensor.bytes.size() != static_cast<std::size_t>(tensor.elements) * width) __builtin_trap();
      const std::vector<float> values = tensor.to_floats();
      if (values.size() != static_cast<std::size_t>(tensor.elements)) __builtin_trap();
    }
  } catch (const ddpm::Error&) {
  }
  return 0;
}
