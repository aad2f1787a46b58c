#pragma once
// Files in and out as the ddpm program handles them, for any front end:
// outputs that never destroy data, arrays read by their content (.npy or
// image), and the bytes of a .npy staged with other outputs.
//
// Writing outputs so that nothing is ever destroyed:
//
// - A regular file (or a new one) is written to a temporary beside it and
//   renamed over it, keeping the old file's permission bits (and owner, where
//   the process may set it); a new file gets 0666 & ~umask like any created
//   file. Renaming gives the name a new inode: other hard links to the old
//   file keep the old content.
// - A symbolic link is followed: its target is replaced, the link stays.
// - Standard output ("-" or /dev/stdout), another descriptor the process was
//   given (/dev/stderr, /dev/fd/N), a FIFO or a character device is written
//   through, never replaced.
// - Anything else (a directory, a socket, a block device, a dangling link) is
//   refused with "cannot write <path>: <reason>" before any work.
// - Several outputs are all or nothing (OutputSet): every file is written to
//   its temporary first, then the streams, then all are renamed; when any
//   step fails, every file that existed is left as it was.
// - Temporaries are registered, so that remove_temporaries_on_signals() can
//   delete them when SIGINT, SIGTERM or SIGHUP ends the process.
//
// Used by write_npy, write_file_atomically and the ddpm program's
// outputs; reuse it for any file a program writes.
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ddpm/npy.h"

namespace ddpm {

// Where an output goes, decided from the path before anything is written.
struct OutputTarget {
  enum class Kind { file, stream };
  Kind kind = Kind::file;
  std::string path;     // as given, for messages
  std::string file;     // Kind::file: the regular file replaced or created (links resolved)
  bool exists = false;  // Kind::file: there is a file to replace
  int fd = -1;          // Kind::stream: an inherited descriptor, or -1 to open `path`
};

// The descriptor a path names that the process already has open: "-" and
// /dev/stdout are 1, /dev/stderr is 2, /dev/fd/N and /proc/self/fd/N are N;
// -1 for any other path. Such an output is written to that descriptor (its
// offset and O_APPEND count), not opened anew or replaced.
int inherited_descriptor(const std::string& path);

// Throws ddpm::Error("cannot write <path>: <reason>") for a path that is never
// written: a directory, a socket, a block device, a dangling symbolic link, a
// missing or unwritable directory, a file without write permission, or an
// inherited descriptor that is closed or a terminal (binary data).
OutputTarget resolve_output(const std::string& path);

// Outputs written all or nothing. add() checks the path and writes a file's
// bytes to its temporary at once (so that a full disk shows before anything
// is replaced); commit() writes the streams, then renames every temporary
// into place as one step that signals do not split, rolling back the renames
// already done if one fails. A set destroyed without commit() removes its
// temporaries.
class OutputSet {
 public:
  OutputSet() = default;
  ~OutputSet();
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;

  // The output is `head` followed by `body`. For a stream, `body` is written
  // at commit(), so its bytes must stay valid until then.
  void add(const std::string& path, std::string head, std::string_view body);
  // The output is `finished`, a complete file written beside the output's
  // file (a chunked run's FILE.partial): commit() renames it into place with
  // the others, taking the old file's permission bits and owner. It is never
  // removed: if the commit fails or does not happen, it stays where it was.
  // `path` must resolve to a regular file (or a new one), not a stream.
  void adopt(const std::string& path, const std::string& finished);
  void commit();
  // Whether an output added so far (committed or not) is standard output.
  bool writes_standard_output() const { return standard_output_; }

 private:
  struct Staged {
    OutputTarget target;
    std::string head;       // streams only: written at commit()
    std::string_view body;  // streams only
    std::string temporary;  // files: the finished temporary
    bool adopted = false;   // `temporary` is the caller's file: never removed
  };
  std::vector<Staged> staged_;
  bool standard_output_ = false;
};

// Makes SIGINT, SIGTERM and SIGHUP remove every temporary this process has,
// then end the process as the signal would have (exit status 128 + signal in
// a shell). A signal that arrives while an OutputSet renames waits until the
// renames are done. Signals ignored when the program started (nohup) stay
// ignored. Call it first thing in main(): a handler (in whichever thread the
// signal lands, a library's included) wakes one thread of its own that cleans up.
void remove_temporaries_on_signals();

// While the returned lock is held, a signal's clean-up (and its message)
// waits: what happens under it is either all done or not begun when the
// process ends.
std::unique_lock<std::recursive_mutex> hold_off_signals();
// The line (without its newline) written to stderr when a signal ends the
// process, after the temporaries are removed: `message` is called then, by
// the clean-up thread, under hold_off_signals()'s lock; an empty line, or an
// empty function (the default; pass {} to clear it), writes nothing.
void set_signal_message(std::function<std::string()> message);

// ---- arrays by content ----
//
// An input array by its content, not its name: a .npy, or a PNG or JPEG
// read as [1, C, H, W] in [-1, 1] (ddpm/image.h). The file is opened once
// and its first bytes decide, so a FIFO or a pipe works as well.

struct InputArray {
  NpyArray array;
  bool image = false;
  std::string warning;  // from the image reader (an alpha channel dropped), or empty
};

// Errors: the .npy reader's or the image reader's; a file that is neither
// says so ("not a .npy, PNG or JPEG file").
InputArray read_array_or_image(const std::string& path);

// True when `path` is a regular file that begins like a PNG or JPEG (for
// readers that read a .npy by rows but an image whole). Never blocks: a
// FIFO, a device or a path that cannot be opened is not an image file here.
bool is_image_file(const std::string& path);

// ---- a .npy staged with other outputs ----
//
// The bytes write_npy writes, for writers that stage several outputs
// together (an OutputSet) instead of writing one file at once.

struct NpyImage {
  std::string header;     // format 1.0, float32, padded to 64 bytes
  std::string_view data;  // the caller's floats, as bytes
};

// Throws ddpm::Error("cannot write <path>: ...") for a negative extent, a
// shape too large to address, or missing data.
NpyImage npy_image(const std::string& path, const std::vector<std::int64_t>& shape,
                   const float* data);

// The header alone (float32), for a file written by rows (NpyRowWriter).
std::string npy_header(const std::string& path, const std::vector<std::int64_t>& shape);

}  // namespace ddpm
