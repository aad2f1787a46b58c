#pragma once
// The outputs of one command, written all or nothing: each is staged (a
// file's bytes go to a temporary beside it at once) and commit() puts them
// all in place; if anything fails before or during commit(), every file that
// existed is left exactly as it was and no temporary remains. Standard
// output ("-"), FIFOs and character devices are written through; see
// src/io/file_output.h for what happens to each kind of path.
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "ddpm/files.h"

namespace ddpm::cli {

class OutputFiles {
 public:
  // Refuses (ddpm::Error) a non-finite value: no run writes NaN or Inf.
  void write_npy(const std::string& path, const std::vector<std::int64_t>& shape,
                 const float* data);
  void write_bytes(const std::string& path, std::string bytes);
  void commit() { outputs_.commit(); }
  // Where the command's summary line goes: stdout, or stderr when an output
  // is standard output (the .npy stream stays clean).
  std::FILE* summary_stream() const;

 private:
  OutputSet outputs_;
};

// Throws ddpm::Error naming `path` and the first NaN or infinity among
// `count` floats of rows of `row_size`, the first of them global row
// `first_row`: no run writes NaN or Inf.
void require_finite(const std::string& path, const float* data, std::int64_t count,
                    std::int64_t row_size, std::int64_t first_row = 0);

// Checks the (flag, path) outputs before any work: no two name the same
// file (also through a symbolic or hard link, or "-" and /dev/stdout), and
// each is a path that can be written (not a directory, a missing directory,
// a socket, ...). Empty paths are unused outputs. Throws ddpm::Error.
void check_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

}  // namespace ddpm::cli
