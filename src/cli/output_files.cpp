#include "output_files.h"

#include <unistd.h>

#include <filesystem>

#include "ddpm/error.h"
#include "ddpm/npy.h"

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

}  // namespace

OutputFiles::~OutputFiles() {
  for (const std::string& path : written_) ::unlink(path.c_str());
}

void OutputFiles::write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
                            const float* data) {
  ddpm::write_npy(path, shape, data);
  written_.push_back(path);
}

void OutputFiles::write_bytes(const std::string& path, const std::string& bytes) {
  write_file_atomically(path, bytes);
  written_.push_back(path);
}

void require_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    for (std::size_t j = i + 1; j < outputs.size(); ++j) {
      const auto& [flag_a, path_a] = outputs[i];
      const auto& [flag_b, path_b] = outputs[j];
      if (path_a.empty() || path_b.empty()) continue;
      if (path_a == path_b || resolved(path_a) == resolved(path_b)) {
        throw Error(flag_a + " and " + flag_b + " name the same file " + path_a);
      }
    }
  }
}

}  // namespace ddpm::cli
