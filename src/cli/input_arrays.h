#pragma once
// Reading the CLI's .npy inputs as batches: the first axis is the batch, the
// rest is flattened into one sample of `dim` elements.
#include <cstdint>
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
BatchArray read_batch(const std::string& path, const std::string& flag);

// The same batch read a chunk of rows at a time (chunked runs): only the
// header is read here.
struct BatchRows {
  std::string path;
  NpyRowReader rows;
  Shape shape;  // [batch, dim]
  const std::vector<std::int64_t>& extents() const { return rows.shape(); }
};
BatchRows open_batch_rows(const std::string& path, const std::string& flag);

// Throws "shape mismatch: ..." unless `given` has exactly the shape of `reference`.
void require_same_shape(const BatchArray& given, const std::string& given_flag,
                        const BatchArray& reference, const std::string& reference_flag);
void require_same_shape(const BatchRows& given, const std::string& given_flag,
                        const BatchRows& reference, const std::string& reference_flag);

}  // namespace ddpm::cli
