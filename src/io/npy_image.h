#pragma once
// The bytes write_npy writes, for writers that stage several outputs
// together (the CLI's OutputFiles) instead of writing one file at once.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ddpm::detail {

struct NpyImage {
  std::string header;     // format 1.0, float32, padded to 64 bytes
  std::string_view data;  // the caller's floats, as bytes
};

// Throws ddpm::Error("cannot write <path>: ...") for a negative extent, a
// shape too large to address, or missing data.
NpyImage npy_image(const std::string& path, const std::vector<std::int64_t>& shape,
                   const float* data);

// The header alone (float32), for a file written by rows (NpyRowWriter).
std::string npy_header(const std::string& path, const std::vector<std::int64_t>& shape);

}  // namespace ddpm::detail
