#include "file_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "ddpm/error.h"

namespace ddpm::detail {
namespace {

std::string read_failure(std::string_view what, const std::string& path, int error) {
  std::string message = "cannot read ";
  if (!what.empty()) message += std::string(what) + " ";
  return message + path + ": " + std::strerror(error);
}

}  // namespace

std::size_t MemorySource::read(char* out, std::size_t n) {
  const std::size_t count = std::min(n, bytes_.size() - position_);
  if (count > 0) std::memcpy(out, bytes_.data() + position_, count);
  position_ += count;
  return count;
}

FileSource::FileSource(const std::string& path, std::string_view what)
    : InputSource(path), what_(what) {
  // O_NONBLOCK only for the open itself would make a FIFO without a writer
  // fail; a reader of a FIFO waits for its writer, as cat does.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) throw Error(read_failure(what_, path, errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int error = errno;
    ::close(fd_);
    throw Error(read_failure(what_, path, error));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    throw Error(read_failure(what_, path, EISDIR));
  }
  if (S_ISREG(st.st_mode)) size_ = static_cast<std::uint64_t>(st.st_size);
  // FIFOs, pipes and character devices are streams of unknown size; the
  // readers bound what they take from them.
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t FileSource::read(char* out, std::size_t n) {
  std::size_t total = 0;
  while (total < n) {
    const ssize_t got = ::read(fd_, out + total, n - total);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(read_failure(what_, name(), errno));
    }
    if (got == 0) break;
    total += static_cast<std::size_t>(got);
  }
  return total;
}

std::string read_up_to(InputSource& in, std::size_t n) {
  // Grown as bytes arrive, so that a short stream asked for much costs little.
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::string bytes;
  if (in.size()) bytes.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, *in.size())));
  while (bytes.size() < n) {
    const std::size_t have = bytes.size();
    const std::size_t want = std::min(n - have, std::max(kChunk, have));
    bytes.resize(have + want);
    const std::size_t got = in.read(bytes.data() + have, want);
    bytes.resize(have + got);
    if (got < want) break;
  }
  return bytes;
}

bool has_more(InputSource& in) {
  char byte;
  return in.read(&byte, 1) == 1;
}

std::string read_file_bounded(const std::string& path, std::uint64_t max_bytes,
                              std::string_view what) {
  FileSource in(path, what);
  const std::string limit = describe_bytes(max_bytes);
  if (in.size() && *in.size() > max_bytes) {
    throw Error(std::string(what) + " " + path + " is larger than the " + limit + " limit (" +
                describe_bytes(*in.size()) + ")");
  }
  // A regular file is read to its size (plus one byte, to see it did not
  // grow); a stream to at most the limit plus one byte.
  const std::uint64_t budget = in.size() ? *in.size() : max_bytes;
  std::string bytes = read_up_to(in, static_cast<std::size_t>(budget));
  if (bytes.size() == budget && has_more(in)) {
    throw Error(std::string(what) + " " + path + " is larger than the " + limit +
                " limit (the input goes on past it)");
  }
  return bytes;
}

}  // namespace ddpm::detail

namespace ddpm {

std::uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return std::numeric_limits<std::uint64_t>::max();
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

std::uint64_t available_memory_bytes() {
  if (std::FILE* meminfo = std::fopen("/proc/meminfo", "re")) {
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (!found && std::fgets(line, sizeof line, meminfo)) {
      found = std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    }
    std::fclose(meminfo);
    if (found) return static_cast<std::uint64_t>(kib) * 1024;
  }
  return physical_memory_bytes();
}

std::string describe_bytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = bytes;
  int unit = 0;
  while (value >= 1024.0 && unit < 6) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%.0f bytes", value);
  } else if (value == static_cast<double>(static_cast<std::uint64_t>(value))) {
    std::snprintf(text, sizeof text, "%.0f %s", value, units[unit]);
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  }
  return text;
}

}  // namespace ddpm
