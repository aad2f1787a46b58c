// Bounded reading: the size is decided before the bytes are read, and a path
// that is not a readable file is named as what it is, with the system's words.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "io/file_input.h"
#include "npy_bytes.h"
#include "scratch_dir.h"
#include "test_support.h"

namespace ddpm {
namespace {

using test::message_of;

TEST(ReadFileBounded, ReadsAFileWithinTheLimit) {
  test::ScratchDir dir;
  test::write_bytes(dir / "a.json", "{\"x\": 1}");
  EXPECT_EQ(detail::read_file_bounded(dir / "a.json", 8, "spec"), "{\"x\": 1}");
}

TEST(ReadFileBounded, RefusesALargerFileBeforeReadingIt) {
  test::ScratchDir dir;
  test::write_bytes(dir / "big.json", std::string(11, ' '));
  EXPECT_EQ(message_of([&] { detail::read_file_bounded(dir / "big.json", 10, "spec"); }),
            "spec " + (dir / "big.json") + " is larger than the 10 bytes limit (11 bytes)");
}

TEST(ReadFileBounded, StopsAnEndlessStreamAtTheLimit) {
  EXPECT_EQ(message_of([] { detail::read_file_bounded("/dev/zero", 1 << 20, "spec"); }),
            "spec /dev/zero is larger than the 1 MiB limit (the input goes on past it)");
}

TEST(ReadFileBounded, NamesDirectoriesAndMissingFiles) {
  test::ScratchDir dir;
  EXPECT_EQ(message_of([&] { detail::read_file_bounded(dir.path(), 10, "spec"); }),
            "cannot read spec " + dir.path().string() + ": Is a directory");
  EXPECT_EQ(message_of([&] { detail::read_file_bounded(dir / "absent", 10, "spec"); }),
            "cannot read spec " + (dir / "absent") + ": No such file or directory");
}

TEST(GmmSpecLoad, NamesTheSystemReasonNotAFormatError) {
  test::ScratchDir dir;
  EXPECT_EQ(message_of([&] { GmmSpec::load(dir.path()); }),
            "cannot read GMM spec " + dir.path().string() + ": Is a directory");
  EXPECT_EQ(message_of([&] { GmmSpec::load(dir / "absent.json"); }),
            "cannot read GMM spec " + (dir / "absent.json") + ": No such file or directory");
}

TEST(GmmSpecLoad, RefusesAnEndlessStream) {
  // Before the cap, this read /dev/zero until memory ran out.
  EXPECT_EQ(message_of([] { GmmSpec::load("/dev/zero"); }),
            "GMM spec /dev/zero is larger than the 64 MiB limit (the input goes on past it)");
}

TEST(GmmSpecLoad, ReadsAValidSpec) {
  test::ScratchDir dir;
  test::write_bytes(dir / "g.json", R"({"weights": [1], "means": [[0.5, 2]], "stds": [0.1]})");
  const GmmSpec spec = GmmSpec::load(dir / "g.json");
  EXPECT_EQ(spec.dim(), 2);
  EXPECT_EQ(spec.means[0][1], 2.0);
}

TEST(DescribeBytes, ReadsLikeAPerson) {
  EXPECT_EQ(detail::describe_bytes(10), "10 bytes");
  EXPECT_EQ(detail::describe_bytes(64u << 20), "64 MiB");
  EXPECT_EQ(detail::describe_bytes(1536), "1.5 KiB");
}

}  // namespace
}  // namespace ddpm
