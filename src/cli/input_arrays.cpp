#include "input_arrays.h"

#include <algorithm>

#include "ddpm/files.h"
#include "command_line.h"
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

NpyArray read_input_array(const std::string& path) {
  InputArray input = read_array_or_image(path);
  if (!input.warning.empty()) warn(input.warning);
  return std::move(input.array);
}

BatchArray read_batch(const std::string& path, const std::string& flag) {
  BatchArray batch{path, read_input_array(path), {}};
  batch.shape = batch_of(batch.array.shape, path, flag);
  return batch;
}

BatchRows open_batch_rows(const std::string& path, const std::string& flag) {
  BatchRows batch{path, std::nullopt, {}, {}};
  if (is_image_file(path)) {
    batch.image = read_input_array(path);
  } else {
    batch.rows.emplace(path);
  }
  batch.shape = batch_of(batch.extents(), path, flag);
  return batch;
}

void BatchRows::read_rows(std::int64_t first_row, std::span<float> out) const {
  if (rows) return rows->read_rows(first_row, out);
  const std::size_t first = static_cast<std::size_t>(first_row * shape.dim);
  if (first_row < 0 || first > image.data.size() || out.size() > image.data.size() - first) {
    throw Error(path + ": cannot read " + std::to_string(out.size()) + " elements from row " +
                std::to_string(first_row) + " of an image of " + std::to_string(shape.batch) +
                " rows");
  }
  std::copy_n(image.data.begin() + static_cast<std::ptrdiff_t>(first), out.size(), out.begin());
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
