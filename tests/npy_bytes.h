#pragma once
// Hand-made .npy images for the reader's tests: any header text, any version,
// any data bytes, so that every malformed case can be written on purpose.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace ddpm::test {

// Magic, version, little-endian header length (2 bytes for 1.0, 4 for 2.0
// and 3.0), the header as given (padded to 64 bytes with spaces and '\n'
// when `pad`), then `data`.
inline std::string npy_image(const std::string& dict, const std::string& data, int major = 1,
                             bool pad = true) {
  const std::size_t prefix = 8 + (major == 1 ? 2 : 4);
  std::string header = dict;
  if (pad) {
    const std::size_t unpadded = prefix + header.size() + 1;
    header.append((unpadded + 63) / 64 * 64 - unpadded, ' ');
    header += '\n';
  }
  std::string bytes("\x93NUMPY", 6);
  bytes += static_cast<char>(major);
  bytes += '\0';
  const std::uint32_t length = static_cast<std::uint32_t>(header.size());
  for (std::size_t i = 0; i < prefix - 8; ++i)
    bytes += static_cast<char>((length >> (8 * i)) & 0xFF);
  return bytes + header + data;
}

inline std::string float_bytes(const std::vector<float>& values) {
  return {reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)};
}

inline std::string double_bytes(const std::vector<double>& values) {
  return {reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double)};
}

// A float32 header for `shape`, e.g. "(2, 3)".
inline std::string f4_dict(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace ddpm::test
