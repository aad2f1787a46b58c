#include "chunk_manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "file_input.h"
#include "strict_json.h"

namespace ddpm::detail {
namespace {

constexpr int kFormat = 2;
constexpr std::uint64_t kMaxManifestBytes = std::uint64_t{64} << 20;

using Json = nlohmann::json;

// After a rename, the directory entry itself is made durable.
void sync_directory_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the data itself is already synced
  ::fsync(fd);
  ::close(fd);
}

std::string hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string rows_text(RowRange rows) {
  std::string text = "[";  // built up: GCC 12 warns (falsely) on "[" + std::to_string(...)
  text += std::to_string(rows.begin) + ", " + std::to_string(rows.end) + ")";
  return text;
}

// Reads a manifest's fields, each refusal naming where ("done[3].rows[1]"),
// what was found and what was expected.
class Reader {
 public:
  explicit Reader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(name_ + ": not a manifest this ddpm wrote (" + why + ")");
  }
  [[noreturn]] void expected(const std::string& where, const Json& found,
                             const std::string& what) const {
    std::string shown = found.dump();
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    fail(where + " is " + shown + "; expected " + what);
  }

  const Json& field(const Json& object, const char* key) const {
    if (!object.contains(key)) fail("it has no \"" + std::string(key) + "\"");
    return object.at(key);
  }
  const Json& array(const Json& value, const std::string& where) const {
    if (!value.is_array()) expected(where, value, "an array");
    return value;
  }
  std::int64_t whole(const Json& value, const std::string& where, const char* what) const {
    if (!value.is_number_integer()) expected(where, value, what);
    if (value.is_number_unsigned() &&
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      expected(where, value, what);
    }
    return value.get<std::int64_t>();
  }
  std::string text(const Json& value, const std::string& where) const {
    if (!value.is_string()) expected(where, value, "a string");
    return value.get<std::string>();
  }
  std::uint64_t checksum(const Json& value, const std::string& where) const {
    const std::string digits = value.is_string() ? value.get<std::string>() : std::string();
    std::uint64_t sum = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), sum, 16);
    if (digits.size() != 16 || error != std::errc() || end != digits.data() + digits.size()) {
      expected(where, value, "an XXH3-64 checksum in 16 hexadecimal digits");
    }
    return sum;
  }

 private:
  std::string name_;
};

// "a.npy, b.npy", or "(8, 2)" for a shape.
std::string listed(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += (text.empty() ? "" : ", ") + line;
  return text.empty() ? "none" : text;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::int64_t ChunkManifest::rows_done() const {
  std::int64_t rows = 0;
  for (const DoneChunk& chunk : done) rows += chunk.rows.size();
  return rows;
}

std::vector<RowRange> ChunkManifest::done_rows() const {
  std::vector<RowRange> merged;
  for (const DoneChunk& chunk : done) {
    if (!merged.empty() && chunk.rows.begin == merged.back().end) {
      merged.back().end = chunk.rows.end;
    } else {
      merged.push_back(chunk.rows);
    }
  }
  return merged;
}

void ChunkManifest::add(DoneChunk chunk) {
  if (chunk.rows.empty()) return;
  const auto at = std::lower_bound(
      done.begin(), done.end(), chunk.rows.begin,
      [](const DoneChunk& c, std::int64_t begin) { return c.rows.begin < begin; });
  const bool overlaps_next = at != done.end() && at->rows.begin < chunk.rows.end;
  const bool overlaps_previous = at != done.begin() && std::prev(at)->rows.end > chunk.rows.begin;
  if (overlaps_next || overlaps_previous) {
    throw Error("rows " + rows_text(chunk.rows) + " are done already");
  }
  done.insert(at, std::move(chunk));
}

std::string ChunkManifest::difference_from(const ChunkManifest& that) const {
  std::vector<std::string> changes;
  if (that.options != options) {
    auto only = [](const std::vector<std::string>& from, const std::vector<std::string>& other) {
      std::vector<std::string> lines;
      for (const std::string& line : from) {
        if (std::find(other.begin(), other.end(), line) == other.end()) lines.push_back(line);
      }
      return lines.empty() ? std::string("nothing else") : listed(lines);
    };
    changes.push_back("other options (that run: " + only(that.options, options) +
                      "; this run: " + only(options, that.options) + ")");
  }
  if (that.shape != shape) {
    changes.push_back("another shape (that run: " + shape_text(that.shape) +
                      "; this run: " + shape_text(shape) + ")");
  }
  if (that.outputs != outputs) {
    changes.push_back("other outputs (that run: " + listed(that.outputs) +
                      "; this run: " + listed(outputs) + ")");
  }
  std::string text;
  for (const std::string& change : changes) text += (text.empty() ? "" : ", and ") + change;
  return text;
}

ChunkManifest ChunkManifest::from_json(std::string_view text, const std::string& name) {
  const Reader r(name);
  Json json;
  try {
    json = parse_json(text, "it");
  } catch (const Error& e) {
    r.fail(e.what());
  }
  if (!json.is_object()) r.expected("the manifest", json, "a JSON object");
  for (const auto& [key, value] : json.items()) {
    static const char* const known[] = {"ddpm_manifest", "options", "shape", "outputs", "rows_done", "done"};
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
      r.fail("it has an unknown field \"" + key.substr(0, 40) + "\"");
    }
  }
  const Json& format = r.field(json, "ddpm_manifest");
  if (format != kFormat) r.expected("ddpm_manifest", format, "format " + std::to_string(kFormat));

  ChunkManifest m;
  const Json& options = r.array(r.field(json, "options"), "options");
  for (std::size_t i = 0; i < options.size(); ++i) {
    m.options.push_back(r.text(options[i], "options[" + std::to_string(i) + "]"));
  }
  const Json& shape = r.array(r.field(json, "shape"), "shape");
  if (shape.empty()) r.expected("shape", shape, "at least one axis");
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::int64_t extent = r.whole(shape[i], "shape[" + std::to_string(i) + "]", "a whole number >= 0");
    if (extent < 0) r.expected("shape[" + std::to_string(i) + "]", shape[i], "a whole number >= 0");
    m.shape.push_back(extent);
  }
  const Json& outputs = r.array(r.field(json, "outputs"), "outputs");
  if (outputs.empty()) r.expected("outputs", outputs, "at least one path");
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    m.outputs.push_back(r.text(outputs[i], "outputs[" + std::to_string(i) + "]"));
  }
  // Ordered chunks that neither overlap nor leave the array: any other list
  // was not written by this ddpm, and trusting it could publish rows never
  // computed.
  const Json& done = r.array(r.field(json, "done"), "done");
  for (std::size_t i = 0; i < done.size(); ++i) {
    const std::string where = "done[" + std::to_string(i) + "]";
    if (!done[i].is_object() || done[i].size() != 2 || !done[i].contains("rows") ||
        !done[i].contains("xxh3")) {
      r.expected(where, done[i], "{\"rows\": [first, end], \"xxh3\": [a checksum per output]}");
    }
    const Json& rows = r.array(done[i].at("rows"), where + ".rows");
    if (rows.size() != 2) r.expected(where + ".rows", rows, "[first row, end row]");
    DoneChunk chunk;
    chunk.rows = {r.whole(rows[0], where + ".rows[0]", "a whole number of rows"),
                  r.whole(rows[1], where + ".rows[1]", "a whole number of rows")};
    if (chunk.rows.begin < 0 || chunk.rows.end <= chunk.rows.begin ||
        chunk.rows.end > m.shape.front()) {
      r.expected(where + ".rows", rows,
                 "rows first < end inside the array's " + std::to_string(m.shape.front()));
    }
    if (!m.done.empty() && chunk.rows.begin < m.done.back().rows.end) {
      r.expected(where + ".rows", rows,
                 "rows after " + rows_text(m.done.back().rows) + ", in order and not overlapping");
    }
    const Json& sums = r.array(done[i].at("xxh3"), where + ".xxh3");
    if (sums.size() != m.outputs.size()) {
      r.expected(where + ".xxh3", sums, std::to_string(m.outputs.size()) + " checksums, one per output");
    }
    for (std::size_t k = 0; k < sums.size(); ++k) {
      chunk.checksums.push_back(r.checksum(sums[k], where + ".xxh3[" + std::to_string(k) + "]"));
    }
    m.done.push_back(std::move(chunk));
  }
  const Json& rows_done = r.field(json, "rows_done");
  if (r.whole(rows_done, "rows_done", "a whole number") != m.rows_done()) {
    r.expected("rows_done", rows_done, "the rows listed (" + std::to_string(m.rows_done()) + ")");
  }
  return m;
}

std::optional<ChunkManifest> ChunkManifest::read(const std::string& path, const std::string& remedy) {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return std::nullopt;
  const std::string text = read_file_bounded(path, kMaxManifestBytes, "manifest");
  try {
    return from_json(text, path);
  } catch (const Error& e) {
    if (remedy.empty()) throw;
    throw Error(std::string(e.what()) + "; " + remedy);
  }
}

std::string ChunkManifest::to_json() const {
  Json json = {{"ddpm_manifest", kFormat}, {"options", options},     {"shape", shape},
               {"outputs", outputs},       {"rows_done", rows_done()}};
  json["done"] = Json::array();
  for (const DoneChunk& chunk : done) {
    Json sums = Json::array();
    for (const std::uint64_t sum : chunk.checksums) sums.push_back(hex(sum));
    json["done"].push_back({{"rows", {chunk.rows.begin, chunk.rows.end}}, {"xxh3", sums}});
  }
  return json.dump(1) + "\n";
}

void ChunkManifest::write(const std::string& path) const {
  write_file_atomically(path, to_json());
  sync_directory_of(path);
}

}  // namespace ddpm::detail
