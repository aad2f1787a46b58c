#pragma once
// The outputs of one command. Each file is written whole (write_npy renames a
// finished temporary), and if a later one fails the earlier ones are removed,
// so that a failed command leaves no output behind.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ddpm::cli {

class OutputFiles {
 public:
  OutputFiles() = default;
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;
  // Removes what was written unless commit() was called.
  ~OutputFiles();

  void write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
                 const float* data);
  void write_bytes(const std::string& path, const std::string& bytes);
  // Every output is written: keep them.
  void commit() { written_.clear(); }

 private:
  std::vector<std::string> written_;
};

// Throws ddpm::Error when two of the (flag, path) outputs name the same
// file, which would leave only the last one written. Empty paths are unused.
void require_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

}  // namespace ddpm::cli
