// A chunked job's files: the lock, the partial files, the manifest with its
// checksums, publishing and clean-up (include/ddpm/chunked_output.h).
#include "ddpm/chunked_output.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#define XXH_INLINE_ALL  // header-only: nothing more to link, for ddpm's users too
#include <xxhash.h>

#include "chunk_manifest.h"
#include "ddpm/error.h"
#include "file_input.h"
#include "file_lock.h"
#include "file_output.h"

namespace ddpm {
namespace {

using detail::ChunkManifest;
using detail::DoneChunk;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string rows_text(RowRange rows) {
  return "rows " + std::to_string(rows.begin) + " to " + std::to_string(rows.end - 1);
}

// A file this run made, known by device and inode: clean-up removes the
// name only while it still names that file.
struct Created {
  std::string path;
  dev_t device = 0;
  ino_t inode = 0;
};

std::optional<Created> identity_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return Created{path, st.st_dev, st.st_ino};
}

void remove_if_same(const Created& file) {
  const std::optional<Created> now = identity_of(file.path);
  if (now && now->device == file.device && now->inode == file.inode) ::unlink(file.path.c_str());
}

// How the manifest names an output: its file relative to the manifest's
// directory, both with every link, "." and ".." resolved, so that big.npy,
// ./big.npy and /data/big.npy are one output (and a directory moved with
// its files still resumes).
std::string manifest_name_of(const std::string& file, const std::string& manifest) {
  namespace fs = std::filesystem;
  const auto directory = [](const std::string& path) {
    const fs::path parent = fs::path(path).parent_path();
    return fs::weakly_canonical(fs::absolute(parent.empty() ? fs::path(".") : parent));
  };
  try {
    const fs::path name = fs::path(file).filename();
    const fs::path from = directory(file);
    const fs::path relative = from.lexically_relative(directory(manifest));
    if (relative.empty()) return (from / name).string();
    return relative == "." ? name.string() : (relative / name).string();
  } catch (const fs::filesystem_error& e) {
    throw Error("cannot write " + file + ": " + e.code().message());
  }
}

// XXH3-64 of rows `rows` of a partial file, read back from it.
std::uint64_t checksum_of(const NpyRowWriter& file, RowRange rows) {
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::vector<char> block(kBlock);
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(state);
  std::uint64_t offset =
      file.data_offset() + static_cast<std::uint64_t>(rows.begin * file.row_size()) * sizeof(float);
  std::uint64_t left = static_cast<std::uint64_t>(rows.size() * file.row_size()) * sizeof(float);
  while (left > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, kBlock));
    const ssize_t got = ::pread(file.descriptor(), block.data(), want, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int error = got < 0 ? errno : EIO;
      XXH3_freeState(state);
      throw Error("cannot read " + file.path() + ": " +
                  (got < 0 ? std::strerror(error) : std::string("it ends before its rows")));
    }
    XXH3_64bits_update(state, block.data(), static_cast<std::size_t>(got));
    offset += static_cast<std::uint64_t>(got);
    left -= static_cast<std::uint64_t>(got);
  }
  const std::uint64_t sum = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return sum;
}

}  // namespace

struct ChunkedOutput::State {
  ChunkedOutputSpec spec;
  std::vector<std::string> partials;  // beside each output's file (links resolved)
  std::string manifest_path;
  std::string lock_path;
  std::int64_t row_size = 1;

  bool owner = false;
  std::optional<detail::FileLock> lock;
  ChunkManifest manifest;  // the owner's
  std::int64_t rows_resumed = 0;
  std::vector<RowRange> rejected;
  std::vector<NpyRowWriter> writers;
  std::vector<Created> created;  // files this run made
  bool published = false;

  explicit State(const ChunkedOutputSpec& s) : spec(s) {
    if (spec.outputs.empty()) throw Error("a chunked output needs at least one output file");
    if (spec.shape.empty()) throw Error(spec.outputs.front() + ": a chunked output needs at least one axis");
    for (std::size_t i = 1; i < spec.shape.size(); ++i) row_size *= spec.shape[i];
    for (const std::string& path : spec.outputs) {
      const detail::OutputTarget target = detail::resolve_output(path);
      if (target.kind != detail::OutputTarget::Kind::file) {
        throw Error(path + ": a chunked run writes its rows in place into a file, not a stream");
      }
      partials.push_back(target.file + ".partial");
    }
    const std::string first = partials.front().substr(0, partials.front().size() - 8);
    manifest_path = first + ".manifest";
    lock_path = first + ".lock";
    manifest.options = spec.fingerprint;
    manifest.shape = spec.shape;
    for (const std::string& partial : partials) {
      manifest.outputs.push_back(
          manifest_name_of(partial.substr(0, partial.size() - 8), manifest_path));
    }
  }

  ~State() {
    writers.clear();
    // A run that did nothing takes back what it made (bad input leaves no
    // trace); a file someone replaced meanwhile is not this run's to remove.
    if (owner && !published && manifest.done.empty()) {
      for (const Created& file : created) remove_if_same(file);
    }
    lock.reset();  // last: the files are settled
  }

  std::string leftovers() const {
    std::string text;
    for (const std::string& partial : partials) text += partial + ", ";
    return text.substr(0, text.size() - 2) + " and " + manifest_path;
  }

  // `made_here`: this run starts the manifest (else it rewrites another run's).
  void write_manifest(bool made_here = false) {
    const auto mine = [&](const Created& f) { return f.path == manifest_path; };
    const bool ours = made_here || std::any_of(created.begin(), created.end(), mine);
    manifest.write(manifest_path);
    // Its inode changes with every rename: keep the newest one.
    std::erase_if(created, mine);
    if (const std::optional<Created> now = identity_of(manifest_path); now && ours) {
      created.push_back(*now);
    }
  }

  void create_partial(const std::string& partial) {
    writers.push_back(NpyRowWriter::create(partial, spec.shape));
    if (const std::optional<Created> made = identity_of(partial)) created.push_back(*made);
  }

  // An existing partial file: a regular file (no link followed), of this
  // user, with no other name (a hard link would write into another file).
  void open_partial(const std::string& partial) {
    NpyRowWriter writer = NpyRowWriter::open(partial, spec.shape);
    struct stat st {};
    if (::fstat(writer.descriptor(), &st) != 0) {
      throw Error("cannot write " + partial + ": " + std::strerror(errno));
    }
    if (st.st_uid != ::geteuid()) {
      throw Error("cannot write " + partial + ": it belongs to user " + std::to_string(st.st_uid) +
                  ", not to this run's user " + std::to_string(::geteuid()));
    }
    if (st.st_nlink != 1) {
      throw Error("cannot write " + partial + ": it has " + std::to_string(st.st_nlink) +
                  " names (a hard link), so writing it would change another file");
    }
    writers.push_back(std::move(writer));
  }

  // Disk space for a new set of partial files, checked before they are made
  // (they are sparse: a full disk would otherwise show only part-way through).
  void require_disk_space() const {
    const double bytes = static_cast<double>(spec.shape.front()) *
                         static_cast<double>(row_size) * sizeof(float);
    for (const std::string& partial : partials) {
      const std::filesystem::path parent = std::filesystem::path(partial).parent_path();
      struct statvfs fs {};
      if (::statvfs(parent.empty() ? "." : parent.c_str(), &fs) != 0) continue;
      const double free = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
      if (bytes * static_cast<double>(partials.size()) > free) {
        throw Error("cannot write " + partial + ": the output needs " +
                    detail::describe_bytes(bytes) +
                    " of disk space per file and its file system has " +
                    detail::describe_bytes(free) + " free");
      }
    }
  }

  std::vector<std::uint64_t> checksums(RowRange rows) const {
    std::vector<std::uint64_t> sums;
    for (const NpyRowWriter& writer : writers) sums.push_back(checksum_of(writer, rows));
    return sums;
  }

  // The done chunks whose bytes no longer match their checksums, dropped
  // from the manifest (and the manifest rewritten, so it claims only rows
  // it can prove).
  std::vector<RowRange> drop_unproven() {
    std::vector<RowRange> dropped;
    std::erase_if(manifest.done, [&](const DoneChunk& chunk) {
      if (checksums(chunk.rows) == chunk.checksums) return false;
      dropped.push_back(chunk.rows);
      return true;
    });
    if (!dropped.empty()) write_manifest();
    return dropped;
  }

  void start(bool resume) {
    // Nothing is created before the lock is held, so a second run on the
    // same output is refused having touched nothing.
    lock = detail::FileLock::acquire(lock_path, "cannot write " + spec.outputs.front());
    // A damaged manifest proves no row: the rows must be computed again.
    std::optional<ChunkManifest> existing = ChunkManifest::read(
        manifest_path, "delete " + leftovers() + ", then run the command again without --resume");
    const bool any_partial = std::any_of(partials.begin(), partials.end(), exists);
    if (!resume && (existing || any_partial)) {
      throw Error(spec.outputs.front() + ": an unfinished run left " + leftovers() +
                  ": finish it with --resume (the same command), or delete them to start again");
    }
    if (existing) {
      const std::string change = manifest.difference_from(*existing);
      if (!change.empty()) {
        throw Error("--resume: " + manifest_path + " is from a run with " + change +
                    ": run the same command to finish it, or delete " + leftovers() +
                    " to start again");
      }
      manifest.done = std::move(existing->done);
      for (const std::string& partial : partials) {
        if (exists(partial)) {
          open_partial(partial);
        } else if (manifest.done.empty()) {
          create_partial(partial);
        } else {
          throw Error("--resume: " + partial + " is missing, with the " +
                      std::to_string(manifest.rows_done()) + " rows " + manifest_path +
                      " lists as done; delete " + manifest_path + " to start again");
        }
      }
      rejected = drop_unproven();
      rows_resumed = manifest.rows_done();
      return;
    }
    if (any_partial) {
      std::string present;
      for (const std::string& partial : partials) {
        if (exists(partial)) present += (present.empty() ? "" : ", ") + partial;
      }
      throw Error("--resume: " + present + " exists but " + manifest_path +
                  " does not, so no row is known to be done; delete it to start again");
    }
    require_disk_space();
    // The manifest first: a run stopped between the two leaves a manifest
    // with nothing done, which --resume completes.
    write_manifest(/*made_here=*/true);
    for (const std::string& partial : partials) create_partial(partial);
  }

  void require_owner(const char* what) const {
    if (!owner) throw Error(std::string("ChunkedOutput::") + what + " is the owner's (create_or_resume)");
  }
};

ChunkedOutput::ChunkedOutput(std::unique_ptr<State> state) : state_(std::move(state)) {}
ChunkedOutput::ChunkedOutput(ChunkedOutput&&) noexcept = default;
ChunkedOutput& ChunkedOutput::operator=(ChunkedOutput&&) noexcept = default;
ChunkedOutput::~ChunkedOutput() = default;

ChunkedOutput ChunkedOutput::create_or_resume(const ChunkedOutputSpec& spec, bool resume) {
  auto state = std::make_unique<State>(spec);
  state->owner = true;
  state->start(resume);
  return ChunkedOutput(std::move(state));
}

ChunkedOutput ChunkedOutput::join(const ChunkedOutputSpec& spec) {
  auto state = std::make_unique<State>(spec);
  for (const std::string& partial : state->partials) {
    if (!exists(partial)) {
      throw Error("cannot write " + partial + ": " + std::strerror(ENOENT) +
                  " (rank 0 created it: every rank must see the output's directory, e.g. on a "
                  "file system shared by every machine)");
    }
    state->open_partial(partial);
  }
  return ChunkedOutput(std::move(state));
}

void ChunkedOutput::refuse_unfinished(const std::vector<std::string>& outputs) {
  std::string found;
  std::string manifest;
  std::string named;  // the first output, for the message
  for (const std::string& path : outputs) {
    if (path.empty() || detail::inherited_descriptor(path) >= 0) continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) continue;  // a stream or worse
    const detail::OutputTarget target = detail::resolve_output(path);
    if (target.kind != detail::OutputTarget::Kind::file) continue;
    if (manifest.empty()) {
      // A chunked run writing it now: refused at once, touching nothing
      // (its files are not leftovers, and are not this run's to delete).
      detail::FileLock::refuse_if_held(target.file + ".lock", "cannot write " + path);
      manifest = target.file + ".manifest";
      named = path;
    }
    if (exists(target.file + ".partial")) found += (found.empty() ? "" : ", ") + target.file + ".partial";
  }
  if (!manifest.empty() && exists(manifest)) found += (found.empty() ? "" : " and ") + manifest;
  if (found.empty()) return;
  throw Error(named + ": an unfinished chunked run left " + found +
              ": finish it with --resume (the same command), or delete them to write it in one go");
}

std::int64_t ChunkedOutput::rows() const { return state_->spec.shape.front(); }
std::int64_t ChunkedOutput::row_size() const { return state_->row_size; }
std::vector<RowRange> ChunkedOutput::rows_done() const { return state_->manifest.done_rows(); }
std::vector<RowRange> ChunkedOutput::rows_to_do() const {
  const std::vector<RowRange> done = rows_done();
  return rows_not_in(rows(), done);
}
std::int64_t ChunkedOutput::rows_resumed() const { return state_->rows_resumed; }
const std::vector<RowRange>& ChunkedOutput::rejected() const { return state_->rejected; }
const std::string& ChunkedOutput::manifest_path() const { return state_->manifest_path; }
std::string ChunkedOutput::leftovers() const { return state_->leftovers(); }

void ChunkedOutput::write_rows(RowRange chunk, std::span<const std::span<const float>> arrays) {
  State& s = *state_;
  if (arrays.size() != s.writers.size()) {
    throw Error("ChunkedOutput::write_rows: " + std::to_string(arrays.size()) + " arrays for " +
                std::to_string(s.writers.size()) + " outputs");
  }
  for (std::size_t k = 0; k < arrays.size(); ++k) {
    if (static_cast<std::int64_t>(arrays[k].size()) != chunk.size() * s.row_size) {
      throw Error("cannot write " + s.partials[k] + ": " + std::to_string(arrays[k].size()) +
                  " floats for " + rows_text(chunk) + " of " + std::to_string(s.row_size));
    }
    s.writers[k].write_rows(chunk.begin, arrays[k]);
  }
  for (NpyRowWriter& writer : s.writers) writer.sync();
}

void ChunkedOutput::record_done(std::span<const RowRange> chunks) {
  State& s = *state_;
  s.require_owner("record_done");
  bool any = false;
  for (const RowRange& chunk : chunks) {
    if (chunk.empty()) continue;
    if (chunk.begin < 0 || chunk.end > rows()) {
      throw Error(s.manifest_path + ": " + rows_text(chunk) + " are outside the " +
                  std::to_string(rows()) + " rows");
    }
    s.manifest.add({chunk, s.checksums(chunk)});
    any = true;
  }
  if (any) s.write_manifest();
}

void ChunkedOutput::write_chunk(RowRange chunk, std::span<const std::span<const float>> arrays) {
  write_rows(chunk, arrays);
  record_done(std::span<const RowRange>(&chunk, 1));
}

void ChunkedOutput::write_chunk(RowRange chunk, std::span<const float> rows) {
  write_chunk(chunk, std::span<const std::span<const float>>(&rows, 1));
}

void ChunkedOutput::close() {
  for (NpyRowWriter& writer : state_->writers) writer.close();
}

void ChunkedOutput::publish() {
  State& s = *state_;
  s.require_owner("publish");
  if (s.manifest.rows_done() != rows()) {
    throw Error("cannot publish " + s.spec.outputs.front() + ": " +
                std::to_string(s.manifest.rows_done()) + " of " + std::to_string(rows()) +
                " rows are done");
  }
  // Read back once more: a row is renamed into place only when proven.
  if (std::any_of(s.writers.begin(), s.writers.end(),
                  [](const NpyRowWriter& w) { return w.descriptor() < 0; })) {
    s.writers.clear();  // closed (every process closes before the owner publishes)
    for (const std::string& partial : s.partials) s.open_partial(partial);
  }
  const std::vector<RowRange> dropped = s.drop_unproven();
  if (!dropped.empty()) {
    throw Error(s.partials.front() + ": " + rows_text(dropped.front()) +
                " no longer match their checksum in " + s.manifest_path +
                " (the file changed after they were written); nothing was published: run the "
                "same command with --resume to compute them again");
  }
  close();
  detail::OutputSet outputs;
  for (std::size_t k = 0; k < s.spec.outputs.size(); ++k) {
    outputs.adopt(s.spec.outputs[k], s.partials[k]);
  }
  outputs.commit();
  s.published = true;
  ::unlink(s.manifest_path.c_str());  // the caller may check manifest_path() and warn
  s.lock.reset();
}

}  // namespace ddpm
