#include "file_output.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string_view>
#include <mutex>
#include <thread>

#include "ddpm/error.h"

namespace ddpm {
using namespace detail;  // the io helpers this file builds on
namespace {

[[noreturn]] void cannot_write(const std::string& path, const std::string& why) {
  throw Error("cannot write " + path + ": " + why);
}

// ---------------------------------------------------------------------------
// The temporaries that exist right now. One lock guards the list and every
// creation, rename and removal of a temporary, so that the signal thread,
// which takes the lock and never gives it back, sees a consistent set and
// nothing new appears after it has cleaned up. Never destroyed: the signal
// thread may use it while the process exits.

struct Temporaries {
  std::recursive_mutex mutex;
  std::vector<std::string> paths;
  std::function<std::string()> signal_message;  // set_signal_message's
};

Temporaries& temporaries() {
  static Temporaries* all = new Temporaries;
  return *all;
}

void forget_temporary(const std::string& path) {
  Temporaries& t = temporaries();
  std::lock_guard lock(t.mutex);
  std::erase(t.paths, path);
}

void remove_temporary(const std::string& path) {
  Temporaries& t = temporaries();
  std::lock_guard lock(t.mutex);
  ::unlink(path.c_str());
  std::erase(t.paths, path);
}

// A fresh name beside `file` that no other writer uses; `make` creates the
// node (exclusively: it fails with EEXIST when the name is taken) and the
// name is registered before the lock is released. Returns make's result, or
// -1 with errno set.
template <class Make>
int create_beside(const std::string& file, const char* kind, std::string* created, Make make) {
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path target(file);
  // Long names are cut so that the suffix still fits in NAME_MAX.
  std::string base = target.filename().string().substr(0, 200);
  Temporaries& t = temporaries();
  std::lock_guard lock(t.mutex);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = base + "." + kind + "-" + std::to_string(::getpid()) + "-" +
                       std::to_string(counter++);
    *created = (target.parent_path() / name).string();
    const int result = make(*created);
    if (result >= 0) {
      t.paths.push_back(*created);
      return result;
    }
    if (errno != EEXIST) return -1;
  }
  errno = EEXIST;
  return -1;
}

bool write_all(int fd, std::string_view bytes) {
  const char* data = bytes.data();
  std::size_t size = bytes.size();
  while (size > 0) {
    const ssize_t written = ::write(fd, data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += written;
    size -= static_cast<std::size_t>(written);
  }
  return true;
}

// The directory a new file or a temporary goes into must exist and be writable.
void require_writable_directory(const std::string& path, const std::string& file) {
  const std::filesystem::path parent = std::filesystem::path(file).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) cannot_write(path, std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) cannot_write(path, std::strerror(ENOTDIR));
  if (::access(dir.c_str(), W_OK | X_OK) != 0) cannot_write(path, std::strerror(errno));
}

const char* refused_kind(mode_t mode) {
  if (S_ISSOCK(mode)) return "it is a socket";
  if (S_ISBLK(mode)) return "it is a block device (ddpm does not write to disks)";
  return "it is not a regular file";
}

// Gives the file open as `fd` the permission bits of `old`, and its owner
// where the process may (only root may give a file away; anyone else keeps
// what it can). False, with errno set, when the mode cannot be set.
bool take_owner_and_mode(int fd, const struct stat& old) {
  if (old.st_uid != ::geteuid() || old.st_gid != ::getegid()) {
    [[maybe_unused]] const int ignored = ::fchown(fd, old.st_uid, old.st_gid);
  }
  return ::fchmod(fd, old.st_mode & 07777) == 0;
}

// Writes head + body to a fresh temporary beside target.file and returns its
// name; the old file's mode (and owner, where allowed) is carried over.
std::string write_temporary(const OutputTarget& target, std::string_view head,
                            std::string_view body) {
  struct stat old {};
  const bool keep = target.exists && ::stat(target.file.c_str(), &old) == 0 && S_ISREG(old.st_mode);
  std::string temporary;
  // A file replacing one starts private and gets the old mode at the end; a
  // new file is created like any other (0666 less the umask, default ACLs).
  const mode_t create_mode = keep ? 0600 : 0666;
  const int fd = create_beside(target.file, "tmp", &temporary, [&](const std::string& name) {
    return ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, create_mode);
  });
  if (fd < 0) cannot_write(target.path, std::strerror(errno));

  bool ok = write_all(fd, head) && write_all(fd, body);
  if (ok && keep) ok = take_owner_and_mode(fd, old);
  ok = ok && ::fsync(fd) == 0;  // the data is on disk before the name points at it
  int error = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    error = errno;
  }
  if (!ok) {
    remove_temporary(temporary);
    cannot_write(target.path, std::strerror(error));
  }
  return temporary;
}

void write_stream(const OutputTarget& target, std::string_view head, std::string_view body) {
  int fd = target.fd;
  if (fd < 0) {
    // A FIFO blocks here until a reader opens it, as with `cat > fifo`.
    fd = ::open(target.path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) cannot_write(target.path, std::strerror(errno));
  }
  bool ok = write_all(fd, head) && write_all(fd, body);
  int error = errno;
  if (fd != target.fd && ::close(fd) != 0 && ok) {
    ok = false;
    error = errno;
  }
  if (!ok) cannot_write(target.path, std::strerror(error));
}

// One rename of a commit, remembered so that it can be undone.
struct Replacement {
  std::string file;
  bool existed = false;
  std::string backup;  // a hard link to the old file; empty where links are not supported
  std::string adopted;  // an adopted file's own name, to which an undo moves it back
};

// Renames `temporary` over target.file. The old file, if any, is first
// linked to a backup name so that the rename can be undone.
Replacement replace(const OutputTarget& target, const std::string& temporary) {
  Replacement done{target.file, false, {}, {}};
  struct stat st {};
  if (::lstat(target.file.c_str(), &st) == 0) {
    done.existed = true;
    // Checked again: a node put here since add() is never replaced.
    if (!S_ISREG(st.st_mode)) {
      cannot_write(target.path, target.file + " is no longer a regular file");
    }
    if (create_beside(target.file, "old", &done.backup, [&](const std::string& name) {
          return ::link(target.file.c_str(), name.c_str());
        }) < 0) {
      done.backup.clear();  // no hard links here: this rename cannot be undone
    }
  } else if (errno != ENOENT) {
    cannot_write(target.path, std::strerror(errno));
  }
  if (::rename(temporary.c_str(), target.file.c_str()) != 0) {
    const int error = errno;
    if (!done.backup.empty()) remove_temporary(done.backup);
    cannot_write(target.path, std::strerror(error));
  }
  forget_temporary(temporary);
  return done;
}

// An adopted file replacing an existing one gets its mode and owner, as a
// temporary that write_temporary() makes does.
void take_owner_and_mode_of_target(const OutputTarget& target, const std::string& file) {
  struct stat old {};
  if (!target.exists || ::stat(target.file.c_str(), &old) != 0 || !S_ISREG(old.st_mode)) return;
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) cannot_write(target.path, std::strerror(errno));
  const bool ok = take_owner_and_mode(fd, old);
  const int error = errno;
  ::close(fd);
  if (!ok) cannot_write(target.path, std::strerror(error));
}

// Puts back what `done` replaced, newest first.
void undo(const std::vector<Replacement>& done) {
  for (auto it = done.rbegin(); it != done.rend(); ++it) {
    if (!it->adopted.empty()) {
      // The caller's finished file goes back to its own name (then the old
      // file, if any, back to its); if that fails it stays where it is.
      if (!it->existed) {
        ::rename(it->file.c_str(), it->adopted.c_str());
        continue;
      }
      if (::link(it->file.c_str(), it->adopted.c_str()) != 0) continue;
    }
    if (!it->existed) {
      ::unlink(it->file.c_str());
    } else if (!it->backup.empty() && ::rename(it->backup.c_str(), it->file.c_str()) == 0) {
      forget_temporary(it->backup);
    }
    // A file replaced where hard links are not supported cannot be put back;
    // the new one stays rather than leaving nothing.
  }
}

}  // namespace

int inherited_descriptor(const std::string& path) {
  if (path == "-" || path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (const std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0) {
      int fd = -1;
      const char* end = path.data() + path.size();
      const auto [stop, error] = std::from_chars(path.data() + prefix.size(), end, fd);
      if (error == std::errc() && stop == end && fd >= 0) return fd;
    }
  }
  return -1;
}

OutputTarget resolve_output(const std::string& path) {
  OutputTarget target;
  target.path = path;
  if (path.empty()) cannot_write("''", "the path is empty");
  if (const int fd = inherited_descriptor(path); fd >= 0) {
    target.kind = OutputTarget::Kind::stream;
    target.fd = fd;
    if (::fcntl(fd, F_GETFL) < 0) cannot_write(path, std::strerror(errno));
    if (::isatty(fd)) {
      cannot_write(path, "it is a terminal; redirect it to a file or a pipe for binary data");
    }
    return target;
  }

  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) cannot_write(path, std::strerror(errno));
    require_writable_directory(path, path);
    target.file = path;
    return target;
  }
  target.file = path;
  if (S_ISLNK(st.st_mode)) {
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        cannot_write(path, "it is a symbolic link to a file that does not exist (write to the "
                           "link's target by its own name)");
      }
      cannot_write(path, std::strerror(errno));
    }
    if (S_ISREG(st.st_mode)) {
      char* real = ::realpath(path.c_str(), nullptr);
      if (real == nullptr) cannot_write(path, std::strerror(errno));
      target.file = real;
      std::free(real);
    }
  }
  if (S_ISREG(st.st_mode)) {
    // As a shell's '>' would: a file without write permission is not replaced.
    if (::access(target.file.c_str(), W_OK) != 0) cannot_write(path, std::strerror(errno));
    require_writable_directory(path, target.file);
    target.exists = true;
    return target;
  }
  if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
    target.kind = OutputTarget::Kind::stream;
    return target;
  }
  if (S_ISDIR(st.st_mode)) cannot_write(path, std::strerror(EISDIR));
  cannot_write(path, refused_kind(st.st_mode));
}

OutputSet::~OutputSet() {
  for (const Staged& s : staged_) {
    if (!s.temporary.empty() && !s.adopted) remove_temporary(s.temporary);
  }
}

void OutputSet::adopt(const std::string& path, const std::string& finished) {
  Staged staged;
  staged.target = resolve_output(path);
  if (staged.target.kind != OutputTarget::Kind::file) {
    cannot_write(path, "a finished file can only replace a regular file");
  }
  staged.temporary = finished;
  staged.adopted = true;
  staged_.push_back(std::move(staged));
}

void OutputSet::add(const std::string& path, std::string head, std::string_view body) {
  Staged staged;
  staged.target = resolve_output(path);
  if (staged.target.kind == OutputTarget::Kind::stream) {
    standard_output_ = standard_output_ || staged.target.fd == STDOUT_FILENO;
    staged.head = std::move(head);
    staged.body = body;
  } else {
    staged.temporary = write_temporary(staged.target, head, body);
  }
  staged_.push_back(std::move(staged));
}

void OutputSet::commit() {
  // Streams first: if one fails, no file has been replaced yet.
  for (const Staged& s : staged_) {
    if (s.target.kind == OutputTarget::Kind::stream) write_stream(s.target, s.head, s.body);
  }
  // Then every rename, under the lock the signal thread needs: a signal now
  // waits until the files are either all replaced or all as they were.
  Temporaries& t = temporaries();
  std::lock_guard lock(t.mutex);
  std::vector<Replacement> done;
  for (Staged& s : staged_) {
    if (s.temporary.empty()) continue;
    try {
      if (s.adopted) take_owner_and_mode_of_target(s.target, s.temporary);
      done.push_back(replace(s.target, s.temporary));
      if (s.adopted) done.back().adopted = s.temporary;
    } catch (...) {
      undo(done);
      throw;  // the destructor removes the temporaries not renamed
    }
    s.temporary.clear();
  }
  for (const Replacement& r : done) {
    if (!r.backup.empty()) remove_temporary(r.backup);
  }
  staged_.clear();
}

namespace {

// The write end of the pipe that wakes the cleanup thread; the handler does
// nothing but write the signal number there (async-signal-safe). A handler
// rather than a blocked signal and sigwait: threads that libraries start
// before main (OpenBLAS's pool) would not have the signals blocked, and a
// signal delivered to one of them would end the process without cleanup.
int signal_pipe_write = -1;

extern "C" void forward_signal(int signo) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  [[maybe_unused]] const ssize_t written = ::write(signal_pipe_write, &byte, 1);
  errno = saved;
}

}  // namespace

std::unique_lock<std::recursive_mutex> hold_off_signals() {
  return std::unique_lock(temporaries().mutex);
}

void set_signal_message(std::function<std::string()> message) {
  Temporaries& t = temporaries();
  std::lock_guard lock(t.mutex);
  t.signal_message = std::move(message);
}

void remove_temporaries_on_signals() {
  static std::once_flag once;
  std::call_once(once, [] {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;  // no cleanup, but the run goes on
    signal_pipe_write = fds[1];
    const int read_end = fds[0];
    std::thread([read_end] {
      unsigned char byte = 0;
      while (::read(read_end, &byte, 1) != 1) {
      }
      const int signo = byte;
      Temporaries& t = temporaries();
      t.mutex.lock();  // kept until the end: nothing is created or renamed any more
      for (const std::string& path : t.paths) ::unlink(path.c_str());
      if (t.signal_message) {
        try {
          if (std::string line = t.signal_message(); !line.empty()) {
            // Below a progress bar's line, on a terminal.
            line = (::isatty(STDERR_FILENO) == 1 ? "\n" : "") + line + "\n";
            [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
          }
        } catch (...) {
          // No line, but the process still ends as the signal says.
        }
      }
      // End as the signal would have ended the process without the handler.
      ::signal(signo, SIG_DFL);
      sigset_t just_this;
      sigemptyset(&just_this);
      sigaddset(&just_this, signo);
      ::pthread_sigmask(SIG_UNBLOCK, &just_this, nullptr);
      ::raise(signo);
      ::_exit(128 + signo);
    }).detach();
    for (int signo : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      // A signal ignored at start (nohup, a background job) stays ignored.
      if (::sigaction(signo, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
      struct sigaction handler {};
      handler.sa_handler = forward_signal;
      sigemptyset(&handler.sa_mask);
      handler.sa_flags = SA_RESTART;  // interrupted reads and opens go on until the thread ends us
      ::sigaction(signo, &handler, nullptr);
    }
  });
}

}  // namespace ddpm
