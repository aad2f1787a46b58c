#pragma once
// Reading input files with bounded memory. Every reader decides how much it
// will read before reading it: a .npy from the size its header declares, a
// JSON spec from a fixed cap. A directory, a missing or an unreadable path is
// named as such with the system's reason, never as a format error; an
// endless or oversized stream (a character device, a FIFO, a file larger
// than declared) is refused instead of read until memory runs out.
//
// Reuse: read_file_bounded() for any whole-file text format (JSON specs,
// scheduler configs); InputSource + read_exactly() for a format with a
// header that declares the size of what follows (.npy, safetensors).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ddpm/backend.h"

namespace ddpm::detail {

// Bytes read from the front, in order: a file, a stream, or bytes in memory.
class InputSource {
 public:
  virtual ~InputSource() = default;
  // Up to `n` bytes into `out`; fewer only at the end of the input.
  virtual std::size_t read(char* out, std::size_t n) = 0;
  // The total size, when known before reading (a regular file, memory).
  virtual std::optional<std::uint64_t> size() const = 0;
  // The name errors use: the path, or what the caller called the bytes.
  const std::string& name() const { return name_; }

 protected:
  explicit InputSource(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

class MemorySource final : public InputSource {
 public:
  MemorySource(std::string_view bytes, std::string name)
      : InputSource(std::move(name)), bytes_(bytes) {}
  std::size_t read(char* out, std::size_t n) override;
  std::optional<std::uint64_t> size() const override { return bytes_.size(); }

 private:
  std::string_view bytes_;
  std::size_t position_ = 0;
};

// An open file: a regular file, or a stream (FIFO, pipe, character device)
// whose size is not known. Opening throws ddpm::Error
// "cannot read <what> <path>: <reason>" for a missing or unreadable path, a
// directory ("Is a directory") or a socket.
class FileSource final : public InputSource {
 public:
  // `what` names the kind of input in messages ("GMM spec"), or is empty.
  FileSource(const std::string& path, std::string_view what = {});
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  std::size_t read(char* out, std::size_t n) override;
  std::optional<std::uint64_t> size() const override { return size_; }

 private:
  int fd_ = -1;
  std::optional<std::uint64_t> size_;
  std::string what_;  // "cannot read <what_>" prefix for read errors
};

// Reads `n` bytes, or as many as there are before the end (then fewer).
std::string read_up_to(InputSource& in, std::size_t n);

// True when at least one more byte follows (it is consumed).
bool has_more(InputSource& in);

// The cap for a JSON spec or config: far above any real one, far below memory.
inline constexpr std::uint64_t kMaxJsonBytes = std::uint64_t{64} << 20;

// The whole file, refused before it is read when it is larger than
// `max_bytes` (a stream is read to at most max_bytes + 1 bytes). Errors say
// "<what> <path> is larger than the <limit> limit" or the system's reason.
std::string read_file_bounded(const std::string& path, std::uint64_t max_bytes,
                              std::string_view what);

// Memory facts and sizes in messages (public in ddpm/backend.h).
using ddpm::available_memory_bytes;
using ddpm::describe_bytes;
using ddpm::physical_memory_bytes;

}  // namespace ddpm::detail
