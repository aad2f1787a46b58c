#include "input_arrays.h"

#include "ddpm/error.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

Shape batch_of(const std::vector<std::int64_t>& extents, const std::string& path,
               const std::string& flag) {
  if (extents.empty()) {
    throw Error(flag + " " + path + " holds a scalar; expected a batch (first axis) of samples");
  }
  const Shape shape = batch_shape(extents);
  if (shape.size() == 0) {
    throw Error(flag + " " + path + " is empty (shape " + format_shape(extents) + ")");
  }
  return shape;
}

void require_same_extents(const std::vector<std::int64_t>& given, const std::string& given_flag,
                          const std::string& given_path,
                          const std::vector<std::int64_t>& reference,
                          const std::string& reference_flag, const std::string& reference_path) {
  if (given != reference) {
    throw Error("shape mismatch: " + given_flag + " " + given_path + " is " + format_shape(given) +
                " but " + reference_flag + " " + reference_path + " is " +
                format_shape(reference));
  }
}

}  // namespace

BatchArray read_batch(const std::string& path, const std::string& flag) {
  BatchArray batch{path, read_npy(path), {}};
  batch.shape = batch_of(batch.array.shape, path, flag);
  return batch;
}

BatchRows open_batch_rows(const std::string& path, const std::string& flag) {
  BatchRows batch{path, NpyRowReader(path), {}};
  batch.shape = batch_of(batch.rows.shape(), path, flag);
  return batch;
}

void require_same_shape(const BatchArray& given, const std::string& given_flag,
                        const BatchArray& reference, const std::string& reference_flag) {
  require_same_extents(given.array.shape, given_flag, given.path, reference.array.shape,
                       reference_flag, reference.path);
}

void require_same_shape(const BatchRows& given, const std::string& given_flag,
                        const BatchRows& reference, const std::string& reference_flag) {
  require_same_extents(given.extents(), given_flag, given.path, reference.extents(),
                       reference_flag, reference.path);
}

}  // namespace ddpm::cli
