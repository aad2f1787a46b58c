#include "array_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ddpm/error.h"
#include "ddpm/image.h"
#include "image_input.h"
#include "npy_input.h"

namespace ddpm {
using namespace detail;  // the io helpers this file builds on
namespace {

// Replays the bytes already taken from the front of `rest`, then reads on.
class PrefixedSource final : public InputSource {
 public:
  PrefixedSource(std::string prefix, InputSource& rest)
      : InputSource(rest.name()), prefix_(std::move(prefix)), rest_(rest) {}
  std::size_t read(char* out, std::size_t n) override {
    const std::size_t from_prefix = std::min(n, prefix_.size() - position_);
    std::memcpy(out, prefix_.data() + position_, from_prefix);
    position_ += from_prefix;
    return from_prefix + (n > from_prefix ? rest_.read(out + from_prefix, n - from_prefix) : 0);
  }
  std::optional<std::uint64_t> size() const override { return rest_.size(); }

 private:
  std::string prefix_;
  std::size_t position_ = 0;
  InputSource& rest_;
};

constexpr std::size_t kSniffBytes = 8;  // the longest signature: PNG's

bool looks_like_npy(std::string_view start) { return start.starts_with("\x93NUMPY"); }

}  // namespace

InputArray read_array_or_image(const std::string& path) {
  FileSource file(path);
  std::string start = read_up_to(file, kSniffBytes);
  const bool image = looks_like_image(start);
  if (!image && !looks_like_npy(start)) {
    throw Error(path + (start.empty() ? ": the file is empty (expected a .npy, PNG or JPEG file)"
                                      : ": not a .npy, PNG or JPEG file (no signature of one "
                                        "at the start)"));
  }
  PrefixedSource in(std::move(start), file);
  InputArray result;
  if (!image) {
    result.array = read_npy(in);
    return result;
  }
  ImageArray decoded = read_image(in);
  result.array = {std::move(decoded.shape), std::move(decoded.data)};
  result.image = true;
  result.warning = std::move(decoded.warning);
  return result;
}

bool is_image_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  char start[kSniffBytes];
  ssize_t got = 0;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) got = ::read(fd, start, sizeof start);
  ::close(fd);
  return got > 0 && looks_like_image(std::string_view(start, static_cast<std::size_t>(got)));
}

}  // namespace ddpm
