#include "run_manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "file_input.h"

namespace ddpm::cli {
namespace {

constexpr int kFormat = 1;
constexpr std::uint64_t kMaxManifestBytes = std::uint64_t{64} << 20;

// After a rename, the directory entry itself is made durable.
void sync_directory_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the data itself is already synced
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::int64_t RunManifest::rows_done() const {
  std::int64_t rows = 0;
  for (const RowRange& range : done) rows += range.size();
  return rows;
}

void RunManifest::add_done(RowRange rows) {
  if (rows.empty()) return;
  done.push_back(rows);
  std::sort(done.begin(), done.end(),
            [](const RowRange& a, const RowRange& b) { return a.begin < b.begin; });
  std::vector<RowRange> merged;
  for (const RowRange& range : done) {
    if (!merged.empty() && range.begin <= merged.back().end) {
      merged.back().end = std::max(merged.back().end, range.end);
    } else {
      merged.push_back(range);
    }
  }
  done = std::move(merged);
}

std::optional<RunManifest> RunManifest::read(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return std::nullopt;
  const std::string text = detail::read_file_bounded(path, kMaxManifestBytes, "manifest");
  auto bad = [&](const std::string& why) {
    return Error("cannot resume from " + path + ": not a manifest this ddpm wrote (" + why + ")");
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  RunManifest manifest;
  try {
    if (json.at("ddpm_manifest").get<int>() != kFormat) throw bad("unknown format");
    manifest.options = json.at("options").get<std::vector<std::string>>();
    manifest.shape = json.at("shape").get<std::vector<std::int64_t>>();
    manifest.outputs = json.at("outputs").get<std::vector<std::string>>();
    // This ddpm writes the done rows as ordered ranges that neither overlap
    // nor touch (add_done merges them), and their total as rows_done: any
    // other list was not written by it, and trusting it could rename rows
    // never computed into place.
    std::int64_t previous_end = -1;
    for (const auto& pair : json.at("done")) {
      const RowRange rows{pair.at(0).get<std::int64_t>(), pair.at(1).get<std::int64_t>()};
      if (rows.begin < 0 || rows.end <= rows.begin || manifest.shape.empty() ||
          rows.end > manifest.shape.front()) {
        throw bad("rows [" + std::to_string(rows.begin) + ", " + std::to_string(rows.end) +
                  ") are outside the array");
      }
      if (rows.begin <= previous_end) {
        throw bad("rows [" + std::to_string(rows.begin) + ", " + std::to_string(rows.end) +
                  ") overlap or follow the rows before them out of order");
      }
      previous_end = rows.end;
      manifest.add_done(rows);
    }
    if (json.at("rows_done").get<std::int64_t>() != manifest.rows_done()) {
      throw bad("rows_done " + json.at("rows_done").dump() + " is not the rows listed (" +
                std::to_string(manifest.rows_done()) + ")");
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  return manifest;
}

void RunManifest::write(const std::string& path) const {
  nlohmann::json json = {{"ddpm_manifest", kFormat},
                         {"options", options},
                         {"shape", shape},
                         {"outputs", outputs},
                         {"rows_done", rows_done()}};
  json["done"] = nlohmann::json::array();
  for (const RowRange& rows : done) json["done"].push_back({rows.begin, rows.end});
  write_file_atomically(path, json.dump(1) + "\n");
  sync_directory_of(path);
}

std::string RunManifest::encode(const std::vector<RowRange>& rows) {
  std::ostringstream text;
  for (const RowRange& range : rows) text << range.begin << ' ' << range.end << ' ';
  return text.str();
}

std::vector<RowRange> RunManifest::decode(const std::string& text) {
  std::istringstream in(text);
  std::vector<RowRange> rows;
  RowRange range;
  while (in >> range.begin >> range.end) rows.push_back(range);
  return rows;
}

}  // namespace ddpm::cli
