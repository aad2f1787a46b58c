#pragma once
// A small NumPy .npy reader and writer. In: float32, float64 or integer
// arrays (C order, little-endian), converted exactly or refused; out: float32.
// Malformed files throw ddpm::Error naming the problem; a reader reads the
// header first and then exactly the bytes it declares, so a stream (a pipe,
// a FIFO) works and an endless or oversized one is refused. Writers never
// replace anything but a regular file (see write_npy).
#include <cstdint>
#include <span>
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

// Whole numbers (steps, timesteps): integer arrays as they are, float arrays
// only when every value is a whole number in the int64 range.
struct NpyArrayInt64 {
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> data;
};

// Integer data is accepted by all three readers: as float32 or float64 only
// where each value is exactly representable (an error names the first that
// is not). Finite float64 values beyond the float32 range are refused by
// read_npy; NaN and infinities are passed on for the caller to judge.
NpyArray read_npy(const std::string& path);
NpyArrayDouble read_npy_double(const std::string& path);
NpyArrayInt64 read_npy_int64(const std::string& path);
// Parse an in-memory .npy image (what read_npy reads); `name` is used in errors.
NpyArray parse_npy(const std::string& bytes, const std::string& name);
NpyArrayDouble parse_npy_double(const std::string& bytes, const std::string& name);
NpyArrayInt64 parse_npy_int64(const std::string& bytes, const std::string& name);

// Writes `data` (float32, C order) as .npy. A regular file (or a new one) is
// written to a temporary beside it and renamed into place, keeping the old
// file's permission bits, so readers never see a partial file; a symbolic
// link is followed (the link stays, its target is replaced); "-",
// /dev/stdout, a FIFO or a character device is written through. A
// directory, a socket or a block device is refused. On failure nothing is
// replaced, the temporary is removed and ddpm::Error("cannot write <path>:
// <reason>") is thrown.
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
               const float* data);
// float64 out (tables such as `ddpm schedule` writes).
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
               const double* data);

// The same for any bytes (the CLI's PNGs).
void write_file_atomically(const std::string& path, std::string_view bytes);

// Rows of a .npy file read at their offsets, converted as read_npy (float32)
// or read_npy_int64 (whole numbers) convert: exactly or refused, naming the
// element by its index in the whole array. The header and the file's size are
// checked when it is opened; the file must be a regular file (a pipe has no
// offsets). Errors are ddpm::Error naming the path.
class NpyRowReader {
 public:
  explicit NpyRowReader(const std::string& path);
  NpyRowReader(NpyRowReader&& other) noexcept;
  NpyRowReader& operator=(NpyRowReader&& other) noexcept;
  NpyRowReader(const NpyRowReader&) = delete;
  NpyRowReader& operator=(const NpyRowReader&) = delete;
  ~NpyRowReader();

  const std::string& path() const { return path_; }
  // The array's shape; a 0-d array (a scalar) has shape {} and one row.
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t rows() const;
  std::int64_t row_size() const { return row_size_; }  // elements per row

  // Rows [first_row, first_row + out.size() / row_size()) into `out`.
  void read_rows(std::int64_t first_row, std::span<float> out) const;
  void read_rows(std::int64_t first_row, std::span<std::int64_t> out) const;

 private:
  template <class T>
  void read_as(std::int64_t first_row, std::span<T> out) const;

  std::string path_;
  std::vector<std::int64_t> shape_;
  std::int64_t row_size_ = 1;
  int dtype_ = 0;              // npy.cpp's element type
  std::size_t item_size_ = 0;  // bytes per element in the file
  std::uint64_t data_offset_ = 0;
  int fd_ = -1;
};

}  // namespace ddpm
