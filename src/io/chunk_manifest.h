#pragma once
// The sidecar of a chunked run, OUT.manifest beside OUT.partial (see
// include/ddpm/chunked_output.h): the job it belongs to (the fingerprint
// lines, the shape, the outputs) and every chunk done, each with the XXH3-64
// checksum of its bytes in every output's partial file, so that a resumed
// run can prove each row it keeps was computed and written. Written
// atomically and durably (a temporary renamed over it).
//
//   {"ddpm_manifest": 2, "options": [...], "shape": [N, ...], "outputs": [...],
//    "rows_done": 8, "done": [{"rows": [0, 4], "xxh3": ["0123456789abcdef"]}, ...]}
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ddpm/shard.h"

namespace ddpm::detail {

struct DoneChunk {
  RowRange rows;
  std::vector<std::uint64_t> checksums;  // one per output, of the chunk's bytes
};

struct ChunkManifest {
  std::vector<std::string> options;  // the job's fingerprint lines
  std::vector<std::int64_t> shape;   // of every output, rows first
  std::vector<std::string> outputs;  // the outputs' files, relative to the manifest's directory
  std::vector<DoneChunk> done;       // ordered by first row, disjoint

  std::int64_t rows_done() const;
  // The done rows as ordered, disjoint, merged ranges.
  std::vector<RowRange> done_rows() const;
  // Adds a chunk in order; throws ddpm::Error if it overlaps one done.
  void add(DoneChunk chunk);

  // What differs between the job `that` describes and this one, naming each
  // field with both values ("other options (that run: --seed 7; this run:
  // --seed 8)"); empty when they are the same job.
  std::string difference_from(const ChunkManifest& that) const;

  // Parses a manifest; throws ddpm::Error "<name>: not a manifest this ddpm
  // wrote (<what is wrong, where, and what was expected>)".
  static ChunkManifest from_json(std::string_view text, const std::string& name);
  // The manifest at `path` (read once, bounded), or nothing when there is no
  // file. A damaged one is refused with from_json's message, then "; " and
  // `remedy` (what to do about it) when one is given.
  static std::optional<ChunkManifest> read(const std::string& path, const std::string& remedy = "");
  std::string to_json() const;
  // Replaces `path` atomically with this manifest, durably.
  void write(const std::string& path) const;
};

}  // namespace ddpm::detail
