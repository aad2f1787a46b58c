#pragma once
// The sidecar of a chunked run, OUT.manifest beside OUT.partial: which rows
// are done (their data made durable before they are listed), and the
// options and shape they were computed with, so that --resume finishes the
// same job and refuses another. Written atomically (a temporary renamed over
// it) by rank 0 after every round of chunks; removed when OUT is in place.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/shard.h"

namespace ddpm::cli {

struct RunManifest {
  std::vector<std::string> options;  // the run's fingerprint lines (chunked_run.cpp)
  std::vector<std::int64_t> shape;   // of every output
  std::vector<std::string> outputs;  // the outputs' paths, as given
  std::vector<RowRange> done;        // ordered, disjoint, merged

  std::int64_t rows_done() const;
  // Adds rows to `done`, merging neighbours.
  void add_done(RowRange rows);

  // The manifest at `path`, or nothing when there is no file there; throws
  // ddpm::Error for a file that is not a manifest this ddpm wrote.
  static std::optional<RunManifest> read(const std::string& path);
  // Replaces `path` atomically with this manifest, durably.
  void write(const std::string& path) const;

  // The done rows as text ("b e b e ..."), for sending between ranks.
  static std::string encode(const std::vector<RowRange>& rows);
  static std::vector<RowRange> decode(const std::string& text);
};

}  // namespace ddpm::cli
