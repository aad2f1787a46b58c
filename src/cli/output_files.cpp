#include "output_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "ddpm/error.h"
#include "ddpm/files.h"

namespace ddpm::cli {
namespace {

// "./x.npy", "x.npy" and "dir/../x.npy" all resolve to one name, whether or
// not the file exists yet; an unresolvable path is left as it is.
std::filesystem::path resolved(const std::string& path) {
  std::error_code error;
  std::filesystem::path result =
      std::filesystem::weakly_canonical(std::filesystem::absolute(path, error), error);
  return error ? std::filesystem::path(path) : result;
}

bool same_output(const std::string& a, const std::string& b) {
  if (a == b) return true;
  const int fd_a = inherited_descriptor(a), fd_b = inherited_descriptor(b);
  if (fd_a >= 0 || fd_b >= 0) return fd_a == fd_b;
  if (resolved(a) == resolved(b)) return true;
  struct stat sa {}, sb {};  // hard links: one file under two names
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// The first element that is NaN or infinite, or -1.
std::int64_t first_non_finite(const float* data, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(data[i])) return i;
  }
  return -1;
}

}  // namespace

void require_finite(const std::string& path, const float* data, std::int64_t count,
                    std::int64_t row_size, std::int64_t first_row) {
  if (const std::int64_t bad = first_non_finite(data, count); bad >= 0) {
    row_size = std::max<std::int64_t>(row_size, 1);
    throw Error("refusing to write " + path + ": the result has " + std::to_string(data[bad]) +
                " at sample " + std::to_string(first_row + bad / row_size) + ", element " +
                std::to_string(bad % row_size) +
                " (float32 overflowed); no output was written");
  }
}

void OutputFiles::write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
                            const float* data) {
  NpyImage image = npy_image(path, shape, data);
  const auto count = static_cast<std::int64_t>(image.data.size() / sizeof(float));
  require_finite(path, data, count,
                 shape.empty() || shape.front() == 0 ? 1 : count / shape.front());
  outputs_.add(path, std::move(image.header), image.data);
}

void OutputFiles::write_bytes(const std::string& path, std::string bytes) {
  outputs_.add(path, std::move(bytes), {});
}

std::FILE* OutputFiles::summary_stream() const {
  return outputs_.writes_standard_output() ? stderr : stdout;
}

void check_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const auto& [flag_a, path_a] = outputs[i];
    if (path_a.empty()) continue;
    resolve_output(path_a);
    for (std::size_t j = i + 1; j < outputs.size(); ++j) {
      const auto& [flag_b, path_b] = outputs[j];
      if (!path_b.empty() && same_output(path_a, path_b)) {
        throw Error(flag_a + " and " + flag_b + " name the same file " + path_a);
      }
    }
  }
}

}  // namespace ddpm::cli
