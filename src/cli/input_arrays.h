#pragma once
// Reading the CLI's .npy inputs as batches: the first axis is the batch, the
// rest is flattened into one sample of `dim` elements.
#include <string>

#include "ddpm/npy.h"
#include "ddpm/types.h"

namespace ddpm::cli {

struct BatchArray {
  std::string path;
  NpyArray array;  // the full shape, kept for the output
  Shape shape;     // [batch, dim]
};

// Throws ddpm::Error naming `flag` and the file for a scalar or empty array.
BatchArray read_batch(const std::string& path, const std::string& flag);

// Throws "shape mismatch: ..." unless `given` has exactly the shape of `reference`.
void require_same_shape(const BatchArray& given, const std::string& given_flag,
                        const BatchArray& reference, const std::string& reference_flag);

}  // namespace ddpm::cli
