// Writing outputs never destroys anything: a regular file is replaced whole
// and keeps its permission bits, a symbolic link keeps being a link, a FIFO
// or a device is written through, other nodes are refused, and several
// outputs are all or nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "io/file_output.h"
#include "npy_bytes.h"
#include "scratch_dir.h"
#include "test_support.h"

namespace ddpm {
namespace {

namespace fs = std::filesystem;
using test::message_of;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

class FileOutput : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }
  std::vector<std::string> listing() const { return dir_.listing(); }
  void write_array(const std::string& name) const {
    const std::vector<float> data{1.0f, 2.0f, 3.0f};
    write_npy(path(name), {3}, data.data());
  }
  test::ScratchDir dir_;
};

// ---------------------------------------------------------------------------
// One output.

TEST_F(FileOutput, AReplacedFileKeepsItsPermissionBits) {
  for (const mode_t mode : {0600, 0640, 0604, 0755}) {
    test::write_bytes(path("out.npy"), "old");
    ::chmod(path("out.npy").c_str(), mode);
    write_array("out.npy");
    EXPECT_EQ(mode_of(path("out.npy")) & 07777, mode) << std::oct << mode;
    EXPECT_EQ(read_npy(path("out.npy")).data, (std::vector<float>{1, 2, 3}));
  }
}

TEST_F(FileOutput, ANewFileGetsTheUmaskLikeAnyCreatedFile) {
  const mode_t saved = ::umask(027);
  write_array("new.npy");
  ::umask(saved);
  EXPECT_EQ(mode_of(path("new.npy")) & 07777, 0640u);
}

TEST_F(FileOutput, ASymbolicLinkStaysALinkAndItsTargetIsReplaced) {
  fs::create_directories(path("data"));
  test::write_bytes(path("data/target.npy"), "old");
  ::chmod(path("data/target.npy").c_str(), 0600);
  fs::create_symlink("data/target.npy", path("link.npy"));
  write_array("link.npy");
  EXPECT_TRUE(S_ISLNK(mode_of(path("link.npy"))));
  EXPECT_EQ(fs::read_symlink(path("link.npy")), "data/target.npy");
  EXPECT_EQ(read_npy(path("data/target.npy")).data, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(mode_of(path("data/target.npy")) & 07777, 0600u);
  // The temporary went beside the target, and is gone.
  EXPECT_EQ(test::ScratchDir::listing_of(path("data")), (std::vector<std::string>{"target.npy"}));
  EXPECT_EQ(listing(), (std::vector<std::string>{"data", "link.npy"}));
}

TEST_F(FileOutput, ADanglingLinkIsRefusedAndLeftAlone) {
  fs::create_symlink("missing.npy", path("dangling.npy"));
  EXPECT_EQ(message_of([&] { write_array("dangling.npy"); }),
            "cannot write " + path("dangling.npy") +
                ": it is a symbolic link to a file that does not exist (write to the link's "
                "target by its own name)");
  EXPECT_TRUE(S_ISLNK(mode_of(path("dangling.npy"))));
  EXPECT_EQ(listing(), (std::vector<std::string>{"dangling.npy"}));
}

TEST_F(FileOutput, HardLinksToTheOldFileKeepTheOldContent) {
  // Documented: the name gets a new file; other names of the old one keep it.
  test::write_bytes(path("a.npy"), "old");
  ASSERT_EQ(::link(path("a.npy").c_str(), path("b.npy").c_str()), 0);
  write_array("a.npy");
  EXPECT_EQ(read_file(path("b.npy")), "old");
  EXPECT_EQ(read_npy(path("a.npy")).data, (std::vector<float>{1, 2, 3}));
}

TEST_F(FileOutput, AFifoIsWrittenThroughNotReplaced) {
  ASSERT_EQ(::mkfifo(path("pipe.npy").c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] { received = read_file(path("pipe.npy")); });
  write_array("pipe.npy");
  reader.join();
  EXPECT_EQ(parse_npy(received, "pipe").data, (std::vector<float>{1, 2, 3}));
  EXPECT_TRUE(S_ISFIFO(mode_of(path("pipe.npy"))));
  EXPECT_EQ(listing(), (std::vector<std::string>{"pipe.npy"}));
}

TEST_F(FileOutput, ACharacterDeviceIsWrittenThroughNotReplaced) {
  // A copy of /dev/null in the scratch directory: as root, the old
  // write-and-rename replaced such a node with a regular file.
  if (::mknod(path("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    GTEST_SKIP() << "cannot make a device node here (" << std::strerror(errno) << ")";
  }
  write_array("null");
  EXPECT_TRUE(S_ISCHR(mode_of(path("null"))));
  fs::create_symlink("null", path("link-to-null"));
  write_array("link-to-null");
  EXPECT_TRUE(S_ISCHR(mode_of(path("null"))));
  EXPECT_TRUE(S_ISLNK(mode_of(path("link-to-null"))));
  EXPECT_EQ(listing(), (std::vector<std::string>{"link-to-null", "null"}));
}

TEST_F(FileOutput, ADirectoryASocketAndABlockDeviceAreRefused) {
  fs::create_directories(path("dir.npy"));
  EXPECT_EQ(message_of([&] { write_array("dir.npy"); }),
            "cannot write " + path("dir.npy") + ": Is a directory");

  const int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string socket_path = path("sock.npy");
  ASSERT_LT(socket_path.size(), sizeof(address.sun_path));
  std::strcpy(address.sun_path, socket_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(message_of([&] { write_array("sock.npy"); }),
            "cannot write " + socket_path + ": it is a socket");
  ::close(sock);

  if (::mknod(path("disk").c_str(), S_IFBLK | 0600, makedev(7, 0)) == 0) {
    EXPECT_EQ(message_of([&] { write_array("disk"); }),
              "cannot write " + path("disk") +
                  ": it is a block device (ddpm does not write to disks)");
    EXPECT_TRUE(S_ISBLK(mode_of(path("disk"))));
  }
  EXPECT_TRUE(S_ISDIR(mode_of(path("dir.npy"))));
  EXPECT_TRUE(S_ISSOCK(mode_of(path("sock.npy"))));
}

TEST_F(FileOutput, AFileWithoutWritePermissionIsNotReplaced) {
  // Root may write any file, as with a shell's '>'; anyone else is refused
  // even where the directory would let a rename replace the file.
  test::write_bytes(path("locked.npy"), "old");
  ::chmod(path("locked.npy").c_str(), 0444);
  fs::permissions(dir_.path(), fs::perms::all);
  EXPECT_EQ(test::message_as_unprivileged([&] { write_array("locked.npy"); }),
            "cannot write " + path("locked.npy") + ": Permission denied");
  EXPECT_EQ(read_file(path("locked.npy")), "old");
}

TEST_F(FileOutput, AVeryLongNameStillGetsATemporary) {
  const std::string name = std::string(250, 'n') + ".npy";  // 254: NAME_MAX is 255
  write_array(name);
  EXPECT_EQ(listing(), (std::vector<std::string>{name}));
}

// ---------------------------------------------------------------------------
// Several outputs: all or nothing.

TEST_F(FileOutput, ASetThatFailsToStageLeavesEveryFileAsItWas) {
  test::write_bytes(path("a.npy"), "old a");
  const std::string b = "b bytes";
  {
    detail::OutputSet set;
    set.add(path("a.npy"), "new a", {});
    EXPECT_THROW(set.add(path("missing/b.npy"), {}, b), Error);
  }
  EXPECT_EQ(read_file(path("a.npy")), "old a");
  EXPECT_EQ(listing(), (std::vector<std::string>{"a.npy"}));
}

TEST_F(FileOutput, AFailedStreamLeavesEveryFileAsItWas) {
  test::write_bytes(path("a.npy"), "old a");
  detail::OutputSet set;
  set.add(path("a.npy"), "new a", {});
  set.add("/dev/full", "stream bytes", {});
  EXPECT_EQ(message_of([&] { set.commit(); }), "cannot write /dev/full: No space left on device");
  EXPECT_EQ(read_file(path("a.npy")), "old a");
}

TEST_F(FileOutput, AFailedRenameUndoesTheRenamesBeforeIt) {
  test::write_bytes(path("a.npy"), "old a");
  ::chmod(path("a.npy").c_str(), 0600);
  test::write_bytes(path("c.npy"), "old c");
  {
    detail::OutputSet set;
    set.add(path("a.npy"), "new a", {});
    set.add(path("b.npy"), "new b", {});
    set.add(path("c.npy"), "new c", {});
    // Something else takes b's name before the commit: b's rename fails
    // after a's has been done, and a's must be undone.
    fs::create_directories(path("b.npy/inside"));
    EXPECT_THROW(set.commit(), Error);
  }
  EXPECT_EQ(read_file(path("a.npy")), "old a");
  EXPECT_EQ(mode_of(path("a.npy")) & 07777, 0600u);
  EXPECT_EQ(read_file(path("c.npy")), "old c");
  EXPECT_EQ(listing(), (std::vector<std::string>{"a.npy", "b.npy", "c.npy"}));
}

TEST_F(FileOutput, ANewFileIsRemovedWhenALaterRenameFails) {
  {
    detail::OutputSet set;
    set.add(path("new.npy"), "new", {});
    set.add(path("b.npy"), "new b", {});
    fs::create_directories(path("b.npy/inside"));
    EXPECT_THROW(set.commit(), Error);
  }
  EXPECT_EQ(listing(), (std::vector<std::string>{"b.npy"}));
}

TEST_F(FileOutput, ASetDestroyedUncommittedLeavesNothing) {
  test::write_bytes(path("a.npy"), "old a");
  {
    detail::OutputSet set;
    set.add(path("a.npy"), "new a", {});
    set.add(path("b.npy"), "new b", {});
  }
  EXPECT_EQ(read_file(path("a.npy")), "old a");
  EXPECT_EQ(listing(), (std::vector<std::string>{"a.npy"}));
}

TEST_F(FileOutput, ACommittedSetReplacesEveryFile) {
  test::write_bytes(path("a.npy"), "old a");
  detail::OutputSet set;
  set.add(path("a.npy"), "new ", "a");
  set.add(path("b.npy"), "new ", "b");
  set.commit();
  EXPECT_EQ(read_file(path("a.npy")), "new a");
  EXPECT_EQ(read_file(path("b.npy")), "new b");
  EXPECT_EQ(listing(), (std::vector<std::string>{"a.npy", "b.npy"}));
}

// ---------------------------------------------------------------------------
// Adopted files: a finished file beside the output (a chunked run's
// OUT.partial) is renamed into place with the others, and is never removed.

TEST_F(FileOutput, AnAdoptedFileReplacesTheOutputAndTakesItsMode) {
  test::write_bytes(path("a.npy"), "old a");
  ::chmod(path("a.npy").c_str(), 0640);
  test::write_bytes(path("a.npy.partial"), "finished a");
  ::chmod(path("a.npy.partial").c_str(), 0644);
  detail::OutputSet set;
  set.adopt(path("a.npy"), path("a.npy.partial"));
  set.add(path("b.npy"), "new b", {});
  set.commit();
  EXPECT_EQ(read_file(path("a.npy")), "finished a");
  EXPECT_EQ(mode_of(path("a.npy")) & 07777, 0640u);
  EXPECT_EQ(listing(), (std::vector<std::string>{"a.npy", "b.npy"}));
}

TEST_F(FileOutput, AFailedCommitPutsAnAdoptedFileBackUnderItsOwnName) {
  test::write_bytes(path("a.npy"), "old a");
  test::write_bytes(path("a.npy.partial"), "finished a");
  test::write_bytes(path("n.npy.partial"), "finished n");
  {
    detail::OutputSet set;
    set.adopt(path("a.npy"), path("a.npy.partial"));
    set.adopt(path("n.npy"), path("n.npy.partial"));  // a new output
    set.add(path("c.npy"), "new c", {});
    fs::create_directories(path("c.npy/inside"));  // c's rename fails, after a's and n's
    EXPECT_THROW(set.commit(), Error);
  }
  EXPECT_EQ(read_file(path("a.npy")), "old a");
  EXPECT_EQ(read_file(path("a.npy.partial")), "finished a");
  EXPECT_EQ(read_file(path("n.npy.partial")), "finished n");
  EXPECT_EQ(listing(),
            (std::vector<std::string>{"a.npy", "a.npy.partial", "c.npy", "n.npy.partial"}));
}

TEST_F(FileOutput, AnUncommittedSetLeavesAnAdoptedFileAlone) {
  test::write_bytes(path("a.npy.partial"), "finished a");
  {
    detail::OutputSet set;
    set.adopt(path("a.npy"), path("a.npy.partial"));
  }
  EXPECT_EQ(read_file(path("a.npy.partial")), "finished a");
  EXPECT_EQ(listing(), (std::vector<std::string>{"a.npy.partial"}));
  detail::OutputSet set;
  EXPECT_THROW(set.adopt("-", path("a.npy.partial")), Error);  // a stream cannot adopt a file
}

}  // namespace
}  // namespace ddpm
