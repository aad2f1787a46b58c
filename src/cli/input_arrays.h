#pragma once
// Reading the CLI's array inputs as batches: the first axis is the batch, the
// rest is flattened into one sample of `dim` elements. Each is a .npy or an
// image (PNG, JPEG), told apart by content: an image is a batch of one,
// [1, C, H, W] in [-1, 1] (ddpm/image.h).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ddpm/npy.h"
#include "ddpm/shard.h"
#include "ddpm/types.h"

namespace ddpm::cli {

struct BatchArray {
  std::string path;
  NpyArray array;  // the full shape, kept for the output
  Shape shape;     // [batch, dim]
};

// Throws ddpm::Error naming `flag` and the file for a scalar or empty array.
// An image that lost its alpha channel is read with a warning on stderr.
BatchArray read_batch(const std::string& path, const std::string& flag);

// An array read whole, whatever its shape (per-element prior values).
NpyArray read_input_array(const std::string& path);

// The same batch read a chunk of rows at a time (chunked runs): only the
// header of a .npy is read here; an image (one row) is read whole.
struct BatchRows {
  std::string path;
  std::optional<NpyRowReader> rows;  // a .npy
  NpyArray image;                    // an image, when `rows` is empty
  Shape shape;                       // [batch, dim]
  const std::vector<std::int64_t>& extents() const { return rows ? rows->shape() : image.shape; }
  // Rows [first_row, first_row + out.size() / shape.dim) into `out`.
  void read_rows(std::int64_t first_row, std::span<float> out) const;
};
BatchRows open_batch_rows(const std::string& path, const std::string& flag);

// Throws "shape mismatch: ..." unless `given` has exactly the shape of `reference`.
void require_same_shape(const BatchArray& given, const std::string& given_flag,
                        const BatchArray& reference, const std::string& reference_flag);
void require_same_shape(const BatchRows& given, const std::string& given_flag,
                        const BatchRows& reference, const std::string& reference_flag);

}  // namespace ddpm::cli
