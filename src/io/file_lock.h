#pragma once
// An advisory lock held for a run's whole life: flock(2) on a lock file,
// which holds the owner's process id and host for the message another run
// gets. The kernel releases the lock when the process ends in any way
// (SIGKILL included), so a stale file never blocks anyone; the owner removes
// the file when it lets go, and a run that locked a file that was removed
// meanwhile takes the new one instead (the identity is checked after locking).
#include <string>

namespace ddpm::detail {

class FileLock {
 public:
  // Takes the lock at `path` (creating the file), or throws ddpm::Error
  // "<what>: another run is writing it (process P on H holds PATH)" at once,
  // without waiting and without touching the file, when another holds it.
  static FileLock acquire(const std::string& path, const std::string& what);
  // Throws the same refusal when another process holds the lock at `path`;
  // takes nothing and creates nothing (no file: no holder).
  static void refuse_if_held(const std::string& path, const std::string& what);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  // Removes the file if it is still the one locked, then lets go.
  ~FileLock();

  const std::string& path() const { return path_; }

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void release() noexcept;

  std::string path_;
  int fd_ = -1;
};

}  // namespace ddpm::detail
