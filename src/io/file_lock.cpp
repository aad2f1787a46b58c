#include "file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "ddpm/error.h"

namespace ddpm::detail {
namespace {

// "process 1234 on node7", from the holder's file (best effort: a lock file
// written by someone else may say anything; only its first line is shown).
// The holder writes it just after it takes the lock, so a file still empty
// is read again for up to a tenth of a second.
std::string holder_of(int fd) {
  std::string holder;
  for (int tries = 0; tries < 50 && holder.empty(); ++tries) {
    if (tries > 0) ::usleep(2000);
    char text[256] = {};
    const ssize_t got = ::pread(fd, text, sizeof text - 1, 0);
    holder.assign(text, got > 0 ? static_cast<std::size_t>(got) : 0);
    holder = holder.substr(0, holder.find('\n'));
  }
  for (char& c : holder) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return holder.empty() ? "another process" : holder;
}

bool same_file(int fd, const std::string& path) {
  struct stat open {}, named {};
  return ::fstat(fd, &open) == 0 && ::lstat(path.c_str(), &named) == 0 &&
         open.st_dev == named.st_dev && open.st_ino == named.st_ino;
}

[[noreturn]] void cannot_lock(const std::string& path, int error) {
  throw Error("cannot lock " + path + ": " + std::strerror(error));
}

// The refusal when another holds the lock on `fd` (closed here).
[[noreturn]] void held_by_another(int fd, const std::string& path, const std::string& what) {
  const std::string holder = holder_of(fd);
  ::close(fd);
  throw Error(what + ": another run is writing it (" + holder + " holds " + path +
              "); wait for it to end, or stop it");
}

}  // namespace

FileLock FileLock::acquire(const std::string& path, const std::string& what) {
  for (;;) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) cannot_lock(path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      if (error != EWOULDBLOCK) {
        ::close(fd);
        cannot_lock(path, error);
      }
      // refuse_if_held() holds a shared lock for a moment: a holder still
      // there after a few milliseconds is a run.
      bool locked = false;
      for (int tries = 0; tries < 10 && !locked; ++tries) {
        ::usleep(1000);
        locked = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
      }
      if (!locked) held_by_another(fd, path, what);
    }
    // The holder before us may have removed the file between our open and
    // our lock: then a third run may lock a new file under the name, so
    // this one does not count.
    if (!same_file(fd, path)) {
      ::close(fd);
      continue;
    }
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string holder = "process " + std::to_string(::getpid()) + " on " + host + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, holder.data(), holder.size(), 0) < 0) {
      const int error = errno;
      ::close(fd);
      cannot_lock(path, error);
    }
    return FileLock(path, fd);
  }
}

void FileLock::refuse_if_held(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return;
    cannot_lock(path, errno);
  }
  // A shared lock, let go at once: it fails only while a run holds the
  // exclusive one.
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) held_by_another(fd, path, what);
    ::close(fd);
    cannot_lock(path, error);
  }
  ::close(fd);
}

FileLock::FileLock(FileLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() { release(); }

void FileLock::release() noexcept {
  if (fd_ < 0) return;
  // Removed while still held, so that no one locks it in between.
  if (same_file(fd_, path_)) ::unlink(path_.c_str());
  ::close(std::exchange(fd_, -1));
}

}  // namespace ddpm::detail
