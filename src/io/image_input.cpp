// Decoding PNG and JPEG files with stb_image into model space [-1, 1],
// channel first. The header is read first (stbi_info) and the decoded size
// checked against memory before any pixel is decoded, as .npy's header is.
#include "image_input.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <optional>

#include "ddpm/error.h"

// The one translation unit that compiles stb_image: PNG and JPEG only, from
// memory only, its functions private to this file.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#include <stb_image.h>

namespace ddpm {
namespace {

constexpr unsigned char kPngMagic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr unsigned char kJpegMagic[] = {0xFF, 0xD8, 0xFF};

bool starts_with(std::string_view bytes, const unsigned char* magic, std::size_t n) {
  return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
}
bool is_png(std::string_view bytes) { return starts_with(bytes, kPngMagic, sizeof kPngMagic); }
bool is_jpeg(std::string_view bytes) { return starts_with(bytes, kJpegMagic, sizeof kJpegMagic); }

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw Error(name + ": " + what);
}

std::uint32_t big_endian(std::string_view bytes, std::size_t at, int width) {
  std::uint32_t v = 0;
  for (int i = 0; i < width; ++i) v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// stb_image decodes a JPEG cut short without complaint (the missing part
// comes out grey) and a PNG cut inside its last chunk, and checks no PNG
// CRC (a flipped bit in the pixel data can decode to a smudged picture), so
// the file's structure is walked to its end first. A PNG's chunks must reach
// an IEND chunk, each with the CRC it declares; a JPEG's marker segments its
// end-of-image marker (walk_jpeg). Data after the end (a camera's trailer) is
// fine. Returns what is wrong, or "" for a whole file.
std::string png_walk_error(std::string_view bytes) {
  std::size_t at = 8;  // after the signature
  while (at + 12 <= bytes.size()) {
    const std::uint64_t length = big_endian(bytes, at, 4);
    const std::uint64_t next = at + 12 + length;  // length, type, data, CRC
    if (next > bytes.size()) break;
    const std::string_view type = bytes.substr(at + 4, 4);
    const std::uint32_t declared = big_endian(bytes, static_cast<std::size_t>(next - 4), 4);
    if (detail::png_crc32(bytes.substr(at + 4, static_cast<std::size_t>(4 + length))) != declared) {
      return "corrupt PNG (the CRC of its " + std::string(type) + " chunk at byte " +
             std::to_string(at) + " does not match its data)";
    }
    if (type == "IEND") return "";
    at = static_cast<std::size_t>(next);
  }
  return "truncated PNG (the file ends before its end marker)";
}

// A JPEG's marker segments, walked from SOI: through each scan's
// entropy-coded data (where FF is followed by 00 or a restart marker) to the
// next marker, up to EOI. Every Huffman table (DHT) is checked on the way:
// Debian's stb_image 2.27 builds a table of more than 256 codes past the end
// of its arrays (fixed in stb_image 2.28), so such a file never reaches it.
struct JpegWalk {
  bool reaches_end = false;
  std::string error;  // a malformed segment, or empty
};

JpegWalk walk_jpeg(std::string_view bytes) {
  std::size_t at = 2;  // after SOI
  while (at + 2 <= bytes.size()) {
    if (static_cast<unsigned char>(bytes[at]) != 0xFF) {  // junk before a marker: skipped, as stb_image does
      ++at;
      continue;
    }
    const auto marker = static_cast<unsigned char>(bytes[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD9) return {true, {}};
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      at += 2;
      continue;
    }
    if (at + 4 > bytes.size()) return {};
    const std::size_t length = big_endian(bytes, at + 2, 2);
    if (length < 2) return {false, "a marker segment shorter than its length field"};
    const std::size_t segment_end = at + 2 + length;
    // A table is checked also when the file ends inside it: stb_image reads
    // the missing bytes as zeros and builds the table all the same.
    if (marker == 0xC4) {
      const auto byte_at = [&](std::size_t i) {
        return i < bytes.size() ? static_cast<unsigned char>(bytes[i]) : 0u;
      };
      for (std::size_t table = at + 4; table < std::min(segment_end, bytes.size());) {
        if (table + 17 > segment_end) return {false, "a Huffman table runs past its segment"};
        std::size_t codes = 0;
        for (std::size_t i = 1; i <= 16; ++i) codes += byte_at(table + i);
        if (codes > 256) {
          return {false, "a Huffman table of " + std::to_string(codes) + " codes (at most 256)"};
        }
        table += 17 + codes;
        if (table > segment_end) return {false, "a Huffman table runs past its segment"};
      }
    }
    if (segment_end > bytes.size()) return {};
    at = segment_end;
    if (marker == 0xDA) {  // a scan: its entropy-coded data runs to the next marker
      while (at + 1 < bytes.size()) {
        const auto next = static_cast<unsigned char>(bytes[at + 1]);
        if (static_cast<unsigned char>(bytes[at]) != 0xFF || next == 0x00 || next == 0xFF ||
            (next >= 0xD0 && next <= 0xD7)) {
          ++at;
          continue;
        }
        break;
      }
    }
  }
  return {};
}

// Width and height as a PNG's IHDR declares them, read here because
// stb_image's info call does not say why it refuses one (zero, too large).
struct Declared {
  std::uint64_t width = 0, height = 0;
};
std::optional<Declared> png_declared_size(std::string_view bytes) {
  if (bytes.size() < 25 || bytes.substr(12, 4) != "IHDR") return std::nullopt;
  return Declared{big_endian(bytes, 16, 4), big_endian(bytes, 20, 4)};
}

// Both buffers live at once: stb_image's pixels (at most 4 channels of 2
// bytes) and our floats (3 channels).
void require_memory(std::uint64_t width, std::uint64_t height, int file_channels, bool sixteen,
                    const std::string& name) {
  const int channels = file_channels >= 3 ? 3 : 1;
  const std::uint64_t memory = detail::physical_memory_bytes();
  const double needed = static_cast<double>(width) * static_cast<double>(height) *
                        (file_channels * (sixteen ? 2.0 : 1.0) + channels * 4.0);
  if (needed > static_cast<double>(memory)) {
    fail(name, std::to_string(width) + " x " + std::to_string(height) + " pixels need " +
                   detail::describe_bytes(needed) + " decoded, more than this machine's memory (" +
                   detail::describe_bytes(static_cast<double>(memory)) + ")");
  }
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

// One pixel value p of `max` to model space, in float32 as diffusers does it
// (2 * (p / max) - 1; 2 * u is exact, so a fused multiply-add changes nothing).
template <class Pixel>
void to_model_space(const Pixel* pixels, int width, int height, int file_channels, int channels,
                    float max, float* out) {
  const std::size_t plane = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  for (int c = 0; c < channels; ++c) {
    float* o = out + static_cast<std::size_t>(c) * plane;
    for (std::size_t p = 0; p < plane; ++p) {
      const float unit = static_cast<float>(pixels[p * file_channels + c]) / max;
      o[p] = 2.0f * unit - 1.0f;
    }
  }
}

}  // namespace

bool looks_like_image(std::string_view bytes) { return is_png(bytes) || is_jpeg(bytes); }

ImageArray decode_image(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) fail(name, "the file is empty");
  if (!looks_like_image(bytes)) fail(name, "not a PNG or JPEG file (no PNG or JPEG signature)");
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    fail(name, "the file is larger than stb_image reads (2 GiB)");
  }
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = static_cast<int>(bytes.size());
  JpegWalk jpeg;
  if (is_jpeg(bytes)) {
    jpeg = walk_jpeg(bytes);
    if (!jpeg.error.empty()) fail(name, "corrupt JPEG (" + jpeg.error + ")");
  }
  const std::optional<Declared> declared = png_declared_size(bytes);
  if (declared) {
    if (declared->width == 0 || declared->height == 0) {
      fail(name, "the image has zero size (" + std::to_string(declared->width) + " x " +
                     std::to_string(declared->height) + " pixels, a 0-pixel image)");
    }
    require_memory(declared->width, declared->height, 4, bytes[24] == 16, name);
  }
  int width = 0, height = 0, file_channels = 0;
  if (!stbi_info_from_memory(data, length, &width, &height, &file_channels)) {
    // stb_image decodes at most 2^30 bytes of PNG pixels (and 2^24 pixels a side).
    if (declared && declared->width * declared->height * 4 * (bytes[24] == 16 ? 2 : 1) >= (1u << 30)) {
      fail(name, std::to_string(declared->width) + " x " + std::to_string(declared->height) +
                     " pixels are more than stb_image decodes (1 GiB of pixels)");
    }
    fail(name, std::string("corrupt or unsupported ") + (is_png(bytes) ? "PNG" : "JPEG") +
                   " header (" + stbi_failure_reason() + ")");
  }
  if (width <= 0 || height <= 0) fail(name, "the image has zero size (a 0-pixel image)");
  if (file_channels < 1 || file_channels > 4) fail(name, "unsupported channel count");
  const bool sixteen = stbi_is_16_bit_from_memory(data, length) != 0;
  require_memory(static_cast<std::uint64_t>(width), static_cast<std::uint64_t>(height),
                 file_channels, sixteen, name);
  if (is_png(bytes)) {
    if (const std::string error = png_walk_error(bytes); !error.empty()) fail(name, error);
  } else if (!jpeg.reaches_end) {
    fail(name, "truncated JPEG (the file ends before its end marker)");
  }

  const int channels = file_channels >= 3 ? 3 : 1;
  const std::uint64_t pixels = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height);
  ImageArray image;
  image.shape = {1, channels, height, width};
  image.bits = sixteen ? 16 : 8;
  image.data.resize(static_cast<std::size_t>(pixels) * static_cast<std::size_t>(channels));
  int w = 0, h = 0, n = 0;
  if (sixteen) {
    std::unique_ptr<stbi_us, StbFree> decoded(stbi_load_16_from_memory(data, length, &w, &h, &n, 0));
    if (!decoded) fail(name, std::string("corrupt PNG (") + stbi_failure_reason() + ")");
    to_model_space(decoded.get(), w, h, n, channels, 65535.0f, image.data.data());
  } else {
    std::unique_ptr<stbi_uc, StbFree> decoded(stbi_load_from_memory(data, length, &w, &h, &n, 0));
    if (!decoded) {
      fail(name, std::string("corrupt ") + (is_png(bytes) ? "PNG" : "JPEG") + " (" +
                     stbi_failure_reason() + ")");
    }
    to_model_space(decoded.get(), w, h, n, channels, 255.0f, image.data.data());
  }
  if (w != width || h != height || n != file_channels) {
    fail(name, "the decoded image differs from its header");
  }
  if (file_channels == 2 || file_channels == 4) {
    image.warning = name + ": the alpha channel was dropped (read as " +
                    (channels == 3 ? "RGB" : "grey") + ")";
  }
  return image;
}

ImageArray read_image(const std::string& path) {
  detail::FileSource in(path, "image");
  return detail::read_image(in);
}

namespace detail {

std::uint64_t max_image_file_bytes() {
  return std::min<std::uint64_t>(INT_MAX, physical_memory_bytes());
}

ImageArray read_image(InputSource& in) {
  const std::uint64_t cap = max_image_file_bytes();
  if (in.size() && *in.size() > cap) {
    fail(in.name(), "the file is larger than the " + describe_bytes(static_cast<double>(cap)) +
                        " an image may have");
  }
  const std::string bytes = read_up_to(in, static_cast<std::size_t>(in.size().value_or(cap)));
  if (bytes.size() == cap && has_more(in)) {
    fail(in.name(), "the input goes on past the " + describe_bytes(static_cast<double>(cap)) +
                        " an image may have");
  }
  return decode_image(bytes, in.name());
}

}  // namespace detail
}  // namespace ddpm
