// ddpm::ChunkedOutput (include/ddpm/chunked_output.h): one owner per output,
// chunks proven by their checksums, clean-up of only what a run made; and
// the manifest's reader (src/io/chunk_manifest.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "io/chunk_manifest.h"
#include "ddpm/chunked_output.h"
#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "scratch_dir.h"
#include "npy_bytes.h"
#include "test_support.h"

namespace ddpm {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

using test::error_of;

class ChunkedOutputTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return (scratch_.path() / name).string(); }
  ChunkedOutputSpec spec() const {
    return {.outputs = {path("x.npy"), path("noise.npy")}, .shape = {10, 3}, .fingerprint = {"seed 1"}};
  }
  // Rows [b, e) of output k: values that are never zero.
  static std::vector<float> rows_of(RowRange rows, int k) {
    std::vector<float> v;
    for (std::int64_t i = rows.begin * 3; i < rows.end * 3; ++i) v.push_back(1.0f + i + 100.0f * k);
    return v;
  }
  static void write(ChunkedOutput& out, RowRange chunk) {
    const std::vector<float> a = rows_of(chunk, 0), b = rows_of(chunk, 1);
    const std::vector<std::span<const float>> arrays{a, b};
    out.write_chunk(chunk, arrays);
  }
  std::vector<std::string> listing() const { return scratch_.listing(); }

  test::ScratchDir scratch_;
};

TEST_F(ChunkedOutputTest, ChunksInAnyOrderPublishEveryOutput) {
  {
    ChunkedOutput out = ChunkedOutput::create_or_resume(spec(), false);
    EXPECT_EQ(out.rows_to_do(), (std::vector<RowRange>{{0, 10}}));
    for (const RowRange chunk : {RowRange{4, 8}, RowRange{0, 4}, RowRange{8, 10}}) write(out, chunk);
    EXPECT_EQ(out.rows_done(), (std::vector<RowRange>{{0, 10}}));
    out.publish();
  }
  EXPECT_EQ(read_npy(path("x.npy")).data, rows_of({0, 10}, 0));
  EXPECT_EQ(read_npy(path("noise.npy")).data, rows_of({0, 10}, 1));
  EXPECT_EQ(listing(), (std::vector<std::string>{"noise.npy", "x.npy"}));
}

TEST_F(ChunkedOutputTest, ASecondOwnerIsRefusedWhileTheFirstHoldsTheOutput) {
  ChunkedOutput first = ChunkedOutput::create_or_resume(spec(), false);
  write(first, {0, 4});
  const std::vector<std::string> before = listing();
  const std::string manifest = read_file(path("x.npy.manifest"));
  for (const bool resume : {false, true}) {
    const std::string error = error_of([&] { ChunkedOutput::create_or_resume(spec(), resume); });
    EXPECT_NE(error.find("cannot write " + path("x.npy") + ": another run is writing it (process " +
                         std::to_string(::getpid()) + " on "),
              std::string::npos)
        << error;
    EXPECT_NE(error.find(" holds " + path("x.npy.lock") + ")"), std::string::npos) << error;
  }
  EXPECT_EQ(listing(), before);
  EXPECT_EQ(read_file(path("x.npy.manifest")), manifest);
}

TEST_F(ChunkedOutputTest, AResumeKeepsOnlyTheChunksItCanProve) {
  {
    ChunkedOutput out = ChunkedOutput::create_or_resume(spec(), false);
    write(out, {0, 4});
    write(out, {4, 8});
  }  // unpublished: kept, and the lock let go
  {
    // One byte of row 5 of the second output changes.
    std::fstream partial(path("noise.npy.partial"), std::ios::in | std::ios::out | std::ios::binary);
    partial.seekp(static_cast<std::streamoff>(fs::file_size(path("noise.npy.partial")) - 5 * 3 * 4));
    partial.put('\x7f');
  }
  ChunkedOutput out = ChunkedOutput::create_or_resume(spec(), true);
  EXPECT_EQ(out.rows_done(), (std::vector<RowRange>{{0, 4}}));
  EXPECT_EQ(out.rejected(), (std::vector<RowRange>{{4, 8}}));
  EXPECT_EQ(out.rows_to_do(), (std::vector<RowRange>{{4, 10}}));
  EXPECT_EQ(out.rows_resumed(), 4);
  write(out, {4, 10});
  out.publish();
  EXPECT_EQ(read_npy(path("noise.npy")).data, rows_of({0, 10}, 1));
}

TEST_F(ChunkedOutputTest, ARunThatDidNothingRemovesOnlyTheFilesItMade) {
  {
    ChunkedOutput out = ChunkedOutput::create_or_resume(spec(), false);
    // Someone puts another file under one of the names meanwhile.
    test::write_bytes(path("elsewhere"), "not this run's");
    fs::rename(path("elsewhere"), path("noise.npy.partial"));
  }
  EXPECT_EQ(listing(), (std::vector<std::string>{"noise.npy.partial"}));
  EXPECT_EQ(read_file(path("noise.npy.partial")), "not this run's");
}

TEST_F(ChunkedOutputTest, APublishedRowIsAProvenRow) {
  ChunkedOutput out = ChunkedOutput::create_or_resume(spec(), false);
  write(out, {0, 10});
  {
    std::fstream partial(path("x.npy.partial"), std::ios::in | std::ios::out | std::ios::binary);
    partial.seekp(-4, std::ios::end);
    partial.put('\x01');
  }
  const std::string error = error_of([&] { out.publish(); });
  EXPECT_NE(error.find("rows 0 to 9 no longer match their checksum in " + path("x.npy.manifest")),
            std::string::npos)
      << error;
  EXPECT_FALSE(fs::exists(path("x.npy")));
  EXPECT_EQ(out.rows_to_do(), (std::vector<RowRange>{{0, 10}}));
}

TEST(ChunkManifest, RefusalsNameThePlaceAndWhatWasExpected) {
  const std::string good =
      R"({"ddpm_manifest": 2, "options": ["a"], "shape": [100, 2], "outputs": ["o.npy"],
          "rows_done": 80, "done": [{"rows": [0, 80], "xxh3": ["0123456789abcdef"]}]})";
  const detail::ChunkManifest m = detail::ChunkManifest::from_json(good, "m");
  EXPECT_EQ(m.done_rows(), (std::vector<RowRange>{{0, 80}}));
  EXPECT_EQ(m.done.front().checksums, (std::vector<std::uint64_t>{0x0123456789abcdefull}));
  struct Case {
    std::string from, to, expected;
  };
  for (const Case& c : std::vector<Case>{
           {"[0, 80]", "[0, 80.5]", "done[0].rows[1] is 80.5; expected a whole number of rows"},
           {"[0, 80]", "[0, 101]", "done[0].rows is [0,101]; expected rows first < end inside"},
           {"\"0123456789abcdef\"", "\"0123\"", "done[0].xxh3[0] is \"0123\"; expected an XXH3-64"},
           {"\"rows_done\": 80", "\"rows_done\": 81", "rows_done is 81; expected the rows listed (80)"},
           {"\"shape\": [100, 2]", "\"shape\": [100, -2]", "shape[1] is -2; expected a whole number >= 0"},
           {"\"options\"", "\"option\"", "it has an unknown field \"option\""},
           {"\"ddpm_manifest\": 2", "\"ddpm_manifest\": 1", "ddpm_manifest is 1; expected format 2"}}) {
    std::string text = good;
    text.replace(text.find(c.from), c.from.size(), c.to);
    const std::string error = error_of([&] { detail::ChunkManifest::from_json(text, "m"); });
    EXPECT_EQ(error.rfind("m: not a manifest this ddpm wrote (" + c.expected, 0), 0u)
        << c.to << ": " << error;
  }
}

}  // namespace
}  // namespace ddpm
