// Splitting a job by rows, and the float32 .npy written by rows at their
// offsets (see include/ddpm/shard.h).
#include "ddpm/shard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "ddpm/error.h"
#include "npy_image.h"

namespace ddpm {

namespace {

void check_align(std::int64_t align) {
  if (align < 1) throw Error("the row alignment must be at least 1, got " + std::to_string(align));
}

}  // namespace

RowRange split_rows(std::int64_t rows, int parts, int part, std::int64_t align) {
  if (rows < 0) throw Error("split_rows: rows must be >= 0, got " + std::to_string(rows));
  if (parts < 1) throw Error("split_rows: parts must be >= 1, got " + std::to_string(parts));
  if (part < 0 || part >= parts) {
    throw Error("split_rows: part " + std::to_string(part) + " is outside [0, " +
                std::to_string(parts) + ")");
  }
  check_align(align);
  // Whole blocks of `align` rows (the last one may be short) go to the parts.
  const std::int64_t blocks = rows / align + (rows % align != 0 ? 1 : 0);
  const std::int64_t base = blocks / parts;
  const std::int64_t extra = blocks % parts;
  const std::int64_t begin = part * base + std::min<std::int64_t>(part, extra);
  const std::int64_t end = begin + base + (part < extra ? 1 : 0);
  return {std::min(rows, begin * align), std::min(rows, end * align)};
}

std::vector<RowRange> split_rows(std::span<const RowRange> ranges, int parts, int part,
                                 std::int64_t align) {
  check_align(align);
  std::int64_t total = 0;
  std::int64_t previous_end = std::numeric_limits<std::int64_t>::min();
  for (const RowRange& range : ranges) {
    if (range.begin < 0) throw Error("split_rows: rows must be >= 0, got " + std::to_string(range.begin));
    if (range.begin < previous_end || range.end < range.begin) {
      throw Error("split_rows: the ranges must be ordered and disjoint");
    }
    previous_end = range.end;
    total += range.size();
  }
  if (align == 1) {
    // The part's rows as positions in the concatenation of the ranges.
    const RowRange share = split_rows(total, parts, part);
    std::vector<RowRange> result;
    std::int64_t position = 0;
    for (const RowRange& range : ranges) {
      const std::int64_t lo = std::max(share.begin, position);
      const std::int64_t hi = std::min(share.end, position + range.size());
      if (lo < hi) result.push_back({range.begin + (lo - position), range.begin + (hi - position)});
      position += range.size();
    }
    return result;
  }
  // The ranges cut at multiples of align: pieces that go to the parts whole.
  std::vector<RowRange> pieces;
  for (const RowRange& range : ranges) {
    for (std::int64_t begin = range.begin; begin < range.end;) {
      // The next multiple of align, or the range's end where that would
      // pass INT64_MAX (the last block of the index space).
      const std::int64_t to_next = align - begin % align;
      const std::int64_t end = range.end - begin <= to_next ? range.end : begin + to_next;
      pieces.push_back({begin, end});
      begin = end;
    }
  }
  const RowRange share = split_rows(static_cast<std::int64_t>(pieces.size()), parts, part);
  std::vector<RowRange> result;
  for (std::int64_t i = share.begin; i < share.end; ++i) {
    const RowRange& piece = pieces[static_cast<std::size_t>(i)];
    if (!result.empty() && result.back().end == piece.begin) {
      result.back().end = piece.end;
    } else {
      result.push_back(piece);
    }
  }
  return result;
}

std::int64_t aligned_chunk_rows(std::int64_t chunk_rows, std::int64_t align) {
  if (chunk_rows < 1) {
    throw Error("the chunk size must be at least 1 row, got " + std::to_string(chunk_rows));
  }
  check_align(align);
  const std::int64_t blocks = chunk_rows / align + (chunk_rows % align != 0 ? 1 : 0);
  return blocks > std::numeric_limits<std::int64_t>::max() / align
             ? std::numeric_limits<std::int64_t>::max() / align * align
             : blocks * align;
}

std::vector<RowRange> chunk_rows(std::span<const RowRange> ranges, std::int64_t chunk_rows,
                                 std::int64_t align) {
  const std::int64_t size = aligned_chunk_rows(chunk_rows, align);
  std::vector<RowRange> chunks;
  for (const RowRange& range : ranges) {
    if (range.begin < 0) throw Error("chunk_rows: rows must be >= 0, got " + std::to_string(range.begin));
    for (std::int64_t begin = range.begin; begin < range.end;) {
      // align = 1: pieces of `size` from the range's start; otherwise every
      // cut falls on a multiple of align.
      const std::int64_t start = align == 1 ? begin : (begin / align) * align;
      const std::int64_t end = start + std::min(size, range.end - start);
      chunks.push_back({begin, end});
      begin = end;
    }
  }
  return chunks;
}

std::vector<RowRange> rows_not_in(std::int64_t rows, std::span<const RowRange> done) {
  std::vector<RowRange> sorted(done.begin(), done.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const RowRange& a, const RowRange& b) { return a.begin < b.begin; });
  std::vector<RowRange> missing;
  std::int64_t next = 0;  // the first row not known to be done
  for (const RowRange& range : sorted) {
    if (range.empty()) continue;
    if (range.begin > next) missing.push_back({next, std::min(range.begin, rows)});
    next = std::max(next, range.end);
    if (next >= rows) break;
  }
  if (next < rows) missing.push_back({next, rows});
  std::erase_if(missing, [](const RowRange& r) { return r.empty(); });
  return missing;
}

// ---------------------------------------------------------------------------

namespace {

[[noreturn]] void cannot_write(const std::string& path, const std::string& why) {
  throw Error("cannot write " + path + ": " + why);
}

void write_all_at(int fd, const std::string& path, const char* data, std::size_t size,
                  std::uint64_t offset) {
  while (size > 0) {
    const ssize_t written = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      cannot_write(path, std::strerror(errno));
    }
    data += written;
    offset += static_cast<std::uint64_t>(written);
    size -= static_cast<std::size_t>(written);
  }
}

std::string describe(const std::vector<std::int64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

NpyRowWriter::NpyRowWriter(std::string path, std::vector<std::int64_t> shape, int fd)
    : path_(std::move(path)), shape_(std::move(shape)), fd_(fd) {
  for (std::size_t i = 1; i < shape_.size(); ++i) row_size_ *= shape_[i];
}

NpyRowWriter NpyRowWriter::create(const std::string& path, const std::vector<std::int64_t>& shape) {
  if (shape.empty()) cannot_write(path, "a file written by rows needs at least one axis");
  const std::string header = detail::npy_header(path, shape);  // checks the shape
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) cannot_write(path, std::strerror(errno));
  NpyRowWriter writer(path, shape, fd);
  writer.data_offset_ = header.size();
  try {
    write_all_at(fd, path, header.data(), header.size(), 0);
    std::uint64_t bytes = sizeof(float);
    for (std::int64_t extent : shape) bytes *= static_cast<std::uint64_t>(extent);
    if (::ftruncate(fd, static_cast<off_t>(header.size() + bytes)) != 0) {
      cannot_write(path, std::strerror(errno));
    }
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
  return writer;
}

NpyRowWriter NpyRowWriter::open(const std::string& path, const std::vector<std::int64_t>& shape) {
  if (shape.empty()) cannot_write(path, "a file written by rows needs at least one axis");
  const std::string header = detail::npy_header(path, shape);
  // One descriptor for every check and every write, so that they all concern
  // one file; a symbolic link is not followed (rows written in place through
  // a link would land in whatever file it names).
  const int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) cannot_write(path, errno == ELOOP ? "it is a symbolic link, not the file written by rows"
                                                : std::strerror(errno));
  NpyRowWriter writer(path, shape, fd);
  writer.data_offset_ = header.size();
  struct stat st {};
  if (::fstat(fd, &st) != 0) cannot_write(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) cannot_write(path, "it is not a regular file");
  // The file must be what create() made for this shape: the same header
  // bytes (so also float32) and the full size.
  std::string present(header.size(), '\0');
  const bool same =
      ::pread(fd, present.data(), present.size(), 0) == static_cast<ssize_t>(present.size()) &&
      present == header;
  if (!same) {
    std::string found = "not the float32 header ddpm writes for this shape";
    try {
      const NpyRowReader existing(path);
      if (existing.shape() != shape) {
        found = "an array of shape " + describe(existing.shape()) + ", not " + describe(shape);
      }
    } catch (const Error&) {
    }
    cannot_write(path, "it holds " + found);
  }
  std::uint64_t bytes = sizeof(float);
  for (std::int64_t extent : shape) bytes *= static_cast<std::uint64_t>(extent);
  if (static_cast<std::uint64_t>(st.st_size) != header.size() + bytes) {
    cannot_write(path, "it is " + std::to_string(st.st_size) + " bytes, not the " +
                           std::to_string(header.size() + bytes) + " of its header's array");
  }
  return writer;
}

NpyRowWriter::NpyRowWriter(NpyRowWriter&& other) noexcept { *this = std::move(other); }

NpyRowWriter& NpyRowWriter::operator=(NpyRowWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    shape_ = std::move(other.shape_);
    row_size_ = other.row_size_;
    data_offset_ = other.data_offset_;
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

NpyRowWriter::~NpyRowWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void NpyRowWriter::write_rows(std::int64_t first_row, std::span<const float> data) {
  if (fd_ < 0) cannot_write(path_, "the file is closed");
  const auto count = static_cast<std::int64_t>(data.size());
  const std::int64_t row_count = row_size_ == 0 ? 0 : count / row_size_;
  if (first_row < 0 || (row_size_ == 0 ? count != 0 : count % row_size_ != 0) ||
      row_count > rows() - first_row) {
    cannot_write(path_, std::to_string(count) + " floats from row " + std::to_string(first_row) +
                            " are not whole rows inside the array " + describe(shape_));
  }
  const std::uint64_t offset =
      data_offset_ + static_cast<std::uint64_t>(first_row * row_size_) * sizeof(float);
  write_all_at(fd_, path_, reinterpret_cast<const char*>(data.data()), data.size_bytes(), offset);
}

void NpyRowWriter::sync() {
  if (fd_ < 0) cannot_write(path_, "the file is closed");
  if (::fdatasync(fd_) != 0) cannot_write(path_, std::strerror(errno));
}

void NpyRowWriter::close() {
  if (fd_ < 0) return;
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) cannot_write(path_, std::strerror(errno));
}

}  // namespace ddpm
