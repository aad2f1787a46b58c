#pragma once
// A small NumPy .npy reader and writer: float32 or float64 in (C order,
// little-endian), float32 out. Malformed files throw ddpm::Error naming the
// problem; writes go to a temporary name and are renamed on success.
#include <cstdint>
#include <string>
#include <vector>

namespace ddpm {

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // converted to float32
};

NpyArray read_npy(const std::string& path);
// Parse an in-memory .npy image (what read_npy reads); `name` is used in errors.
NpyArray parse_npy(const std::string& bytes, const std::string& name);
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
               const float* data);

}  // namespace ddpm
