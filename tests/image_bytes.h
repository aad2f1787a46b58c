#pragma once
// Hand-made image files for the reader's tests: a PNG whose header declares
// any size (no pixel data follows), and the committed test images' bytes.
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

namespace ddpm::test {

inline std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline std::string big_endian32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string png_chunk(const std::string& type, const std::string& data) {
  return big_endian32(static_cast<std::uint32_t>(data.size())) + type + data +
         big_endian32(crc32(type + data));
}

// Signature, an IHDR declaring width x height (8-bit RGB), an empty IDAT and
// IEND: a well-formed header in front of no pixels at all.
inline std::string png_declaring(std::uint32_t width, std::uint32_t height) {
  const std::string ihdr = big_endian32(width) + big_endian32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", "") +
         png_chunk("IEND", "");
}

// A baseline JPEG's start declaring width x height (SOI, SOF0 for 3
// components), then nothing.
inline std::string jpeg_declaring(std::uint16_t width, std::uint16_t height) {
  std::string sof("\xFF\xD8\xFF\xC0\x00\x11\x08", 7);
  sof += static_cast<char>(height >> 8);
  sof += static_cast<char>(height & 0xFF);
  sof += static_cast<char>(width >> 8);
  sof += static_cast<char>(width & 0xFF);
  sof += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
  return sof;
}

// SOI, one DHT segment whose table declares `codes` codes (16 counts summing
// to it), the codes' symbols, EOI: stb_image 2.27 overruns its tables above 256.
inline std::string jpeg_with_huffman_table(int codes) {
  std::string counts(16, '\0');
  for (int i = 0, left = codes; i < 16; ++i, left -= 255) counts[i] = static_cast<char>(left > 255 ? 255 : (left > 0 ? left : 0));
  const std::string table = std::string(1, '\0') + counts + std::string(static_cast<std::size_t>(codes), '\x01');
  const std::size_t length = 2 + table.size();
  return std::string("\xFF\xD8\xFF\xC4", 4) + static_cast<char>(length >> 8) +
         static_cast<char>(length & 0xFF) + table + std::string("\xFF\xD9", 2);
}

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace ddpm::test
