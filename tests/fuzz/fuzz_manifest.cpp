// ChunkManifest::from_json (a chunked run's OUT.manifest) on arbitrary text:
// a manifest or ddpm::Error, never a crash. A manifest it returns lists
// ordered, disjoint chunks inside the array, each with one checksum per
// output; it survives its own writing and reading unchanged; and a text it
// accepts is refused with anything but whitespace after it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/chunk_manifest.h"
#include "ddpm/error.h"
#include "whole_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using ddpm::detail::ChunkManifest;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto read = [](const std::string& t) { return ChunkManifest::from_json(t, "fuzz"); };
  try {
    const ChunkManifest manifest = read(text);
    ddpm::fuzz::require_whole_text_read(text, read);
    std::int64_t end = 0;
    for (const ddpm::detail::DoneChunk& chunk : manifest.done) {
      if (chunk.rows.begin < end || chunk.rows.empty() || chunk.rows.end > manifest.shape.front() ||
          chunk.checksums.size() != manifest.outputs.size()) {
        __builtin_trap();
      }
      end = chunk.rows.end;
    }
    const ChunkManifest again = read(manifest.to_json());
    if (again.options != manifest.options || again.shape != manifest.shape ||
        again.outputs != manifest.outputs || again.done.size() != manifest.done.size()) {
      __builtin_trap();
    }
    for (std::size_t i = 0; i < again.done.size(); ++i) {
      if (!(again.done[i].rows == manifest.done[i].rows) ||
          again.done[i].checksums != manifest.done[i].checksums) {
        __builtin_trap();
      }
    }
  } catch (const ddpm::Error&) {
  }
  return 0;
}
