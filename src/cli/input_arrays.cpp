#include "input_arrays.h"

#include "ddpm/error.h"
#include "text_parsing.h"

namespace ddpm::cli {

BatchArray read_batch(const std::string& path, const std::string& flag) {
  BatchArray batch{path, read_npy(path), {}};
  if (batch.array.shape.empty()) {
    throw Error(flag + " " + path + " holds a scalar; expected a batch (first axis) of samples");
  }
  batch.shape = batch_shape(batch.array.shape);
  if (batch.shape.size() == 0) {
    throw Error(flag + " " + path + " is empty (shape " + format_shape(batch.array.shape) + ")");
  }
  return batch;
}

void require_same_shape(const BatchArray& given, const std::string& given_flag,
                        const BatchArray& reference, const std::string& reference_flag) {
  if (given.array.shape != reference.array.shape) {
    throw Error("shape mismatch: " + given_flag + " " + given.path + " is " +
                format_shape(given.array.shape) + " but " + reference_flag + " " + reference.path +
                " is " + format_shape(reference.array.shape));
  }
}

}  // namespace ddpm::cli
