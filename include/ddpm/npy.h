#pragma once
// A small NumPy .npy reader and writer: float32 or float64 in (C order,
// little-endian), float32 out. Malformed files throw ddpm::Error naming the
// problem; writes go to a temporary name and are renamed on success.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ddpm {

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // converted to float32
};

// The same array with float64 data kept in double precision (a schedule's betas).
struct NpyArrayDouble {
  std::vector<std::int64_t> shape;
  std::vector<double> data;
};

NpyArray read_npy(const std::string& path);
NpyArrayDouble read_npy_double(const std::string& path);
// Parse an in-memory .npy image (what read_npy reads); `name` is used in errors.
NpyArray parse_npy(const std::string& bytes, const std::string& name);
NpyArrayDouble parse_npy_double(const std::string& bytes, const std::string& name);
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
               const float* data);
// float64 out (tables such as `ddpm schedule` writes).
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
               const double* data);

// Writes `bytes` to a unique temporary name beside `path` and renames it into
// place, so that readers never see a partial file; on failure the temporary
// is removed and ddpm::Error("cannot write <path>: <reason>") is thrown.
// write_npy uses it; so does the CLI for its PNGs.
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace ddpm
