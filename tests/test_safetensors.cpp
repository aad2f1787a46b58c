// The safetensors reader against valid, truncated and hostile files built in
// the test: every broken file is a ddpm::Error naming the file, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ddpm/error.h"
#include "io/safetensors.h"
#include "safetensors_bytes.h"
#include "scratch_dir.h"
#include "test_support.h"

namespace ddpm {
namespace {

using detail::parse_safetensors;
using test::safetensors_bytes;
using test::safetensors_raw;

std::vector<std::byte> small_valid_file() {
  return safetensors_bytes({{"a", {2, 3}, {1, 2, 3, 4, 5, 6}}, {"b", {2}, {-1.5f, 0.25f}}},
                           {{"card", "{\"x\": 1}"}, {"format", "pt"}});
}

// Parses and returns the error message ("" when it parsed).
std::string error_of(const std::vector<std::byte>& bytes, const std::string& name = "test.safetensors") {
  try {
    parse_safetensors(bytes, name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

::testing::AssertionResult fails_with(const std::vector<std::byte>& bytes, const std::string& needle) {
  const std::string message = error_of(bytes);
  if (message.empty()) return ::testing::AssertionFailure() << "parsed without an error";
  if (message.rfind("test.safetensors: ", 0) != 0) {
    return ::testing::AssertionFailure() << "message does not start with the file's name: " << message;
  }
  if (message.find('\n') != std::string::npos) {
    return ::testing::AssertionFailure() << "message is not one line: " << message;
  }
  if (message.find(needle) == std::string::npos) {
    return ::testing::AssertionFailure() << "message lacks \"" << needle << "\": " << message;
  }
  return ::testing::AssertionSuccess() << message;
}

std::vector<std::byte> data_of(std::size_t floats) { return test::float_bytes(std::vector<float>(floats, 1.0f)); }

TEST(Safetensors, ReadsTensorsAndMetadata) {
  const auto bytes = small_valid_file();
  const auto file = parse_safetensors(bytes, "mem");
  ASSERT_EQ(file.tensors().size(), 2u);
  const auto& a = file.at("a");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.elements, 6);
  EXPECT_EQ(a.to_floats(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(file.at("b").to_floats(), (std::vector<float>{-1.5f, 0.25f}));
  EXPECT_EQ(file.metadata().at("card"), "{\"x\": 1}");
  EXPECT_EQ(file.find("c"), nullptr);
  EXPECT_THROW(file.at("c"), Error);
}

TEST(Safetensors, AcceptsEmptyTensorsScalarsAndNoTensors) {
  const auto bytes = safetensors_bytes({{"empty", {0, 4}, {}}, {"scalar", {}, {7.0f}}});
  const auto file = parse_safetensors(bytes, "mem");
  EXPECT_EQ(file.at("empty").elements, 0);
  EXPECT_EQ(file.at("scalar").to_floats(), std::vector<float>{7.0f});
  EXPECT_TRUE(parse_safetensors(safetensors_raw("{}"), "mem").tensors().empty());
}

TEST(Safetensors, TruncatedAtEveryByteIsAnError) {
  const auto bytes = small_valid_file();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(error_of(prefix).empty()) << "truncated to " << n << " of " << bytes.size() << " bytes";
  }
}

TEST(Safetensors, EveryByteChangedIsAnErrorOrAValidFile) {
  // A cheap stand-in for fuzzing: no change to any byte crashes the parser
  // or lets a tensor point outside the buffer.
  const auto bytes = small_valid_file();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int v : {0x00, 0x20, 0x22, 0x2c, 0x39, 0x5b, 0x7d, 0xff}) {
      auto changed = bytes;
      changed[i] = static_cast<std::byte>(v);
      try {
        const auto file = parse_safetensors(changed, "mem");
        for (const auto& t : file.tensors()) {
          ASSERT_GE(t.bytes.data(), changed.data());
          ASSERT_LE(t.bytes.data() + t.bytes.size(), changed.data() + changed.size());
        }
      } catch (const Error&) {
      }
    }
  }
}

TEST(Safetensors, HeaderLengthMustFitTheFileAndTheCap) {
  auto bytes = small_valid_file();
  bytes[0] = std::byte{0xff};
  bytes[1] = std::byte{0xff};
  EXPECT_TRUE(fails_with(bytes, "header length 65535 but only"));
  auto huge = safetensors_raw("{}");
  huge[5] = std::byte{0x10};  // 2^44 + 2
  EXPECT_TRUE(fails_with(huge, "exceeds the 100 MB limit"));
  EXPECT_TRUE(fails_with(std::vector<std::byte>(5), "shorter than the 8-byte header length"));
}

TEST(Safetensors, HeaderMustBeAJsonObject) {
  EXPECT_TRUE(fails_with(safetensors_raw("[1, 2]"), "does not start with '{'"));
  EXPECT_TRUE(fails_with(safetensors_raw(" {}"), "does not start with '{'"));
  EXPECT_TRUE(fails_with(safetensors_raw("{\"a\": "), "not valid JSON"));
  EXPECT_TRUE(fails_with(safetensors_raw("{} {}"), "not valid JSON"));
  EXPECT_TRUE(fails_with(safetensors_raw("{\"a\": \"\xff\"}"), "not valid JSON"));
  EXPECT_TRUE(fails_with(safetensors_raw("{\"a\": [[[[[[[[1]]]]]]]]}"), "nests deeper"));
  EXPECT_EQ(error_of(safetensors_raw("{}      ")), "");  // space padding is allowed
}

// The format pads the header with spaces only; nlohmann-json alone stops at
// a NUL byte, so text after one used to be ignored.
TEST(Safetensors, HeaderPaddingIsSpacesOnly) {
  using namespace std::literals;
  const std::string header = R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  const std::vector<std::byte> data = test::float_bytes({1.5f});
  EXPECT_EQ(error_of(safetensors_raw(header + "   ", data)), "");
  EXPECT_TRUE(fails_with(safetensors_raw(header + std::string("\0GARBAGE{{{"sv), data),
                         "safetensors header is not valid JSON at byte 61: a NUL byte"));
  EXPECT_TRUE(fails_with(safetensors_raw(header + std::string("\0\0\0\0"sv), data),
                         "safetensors header is not valid JSON at byte 61: a NUL byte"));
  EXPECT_TRUE(fails_with(safetensors_raw(header + "\n", data),
                         "safetensors header has byte 10 at offset 61 after its JSON object; "
                         "only spaces may pad the header"));
  EXPECT_TRUE(fails_with(safetensors_raw(header + std::string("\0 }"sv), data),
                         "safetensors header is not valid JSON at byte 61: a NUL byte"));
}

TEST(Safetensors, RefusesOtherDtypesByName) {
  const std::string header = R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(header, data_of(2)), "dtype 'F64'; ddpm reads F32, F16 and BF16"));
  const std::string number = R"({"w": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(number, data_of(1)), "dtype that is not a string"));
}

// diffusers' fp16 and bf16 variant files: the half values widen exactly.
TEST(Safetensors, ReadsHalfWidthsWidenedExactly) {
  const std::uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8400, 0x3555};
  const std::uint16_t bf16[] = {0x3F80, 0xC040, 0x7F7F, 0x0001};
  std::vector<std::byte> data(sizeof f16 + sizeof bf16);
  std::memcpy(data.data(), f16, sizeof f16);
  std::memcpy(data.data() + sizeof f16, bf16, sizeof bf16);
  const std::string header = R"({"h": {"dtype": "F16", "shape": [6], "data_offsets": [0, 12]},)"
                             R"( "b": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [12, 20]}})";
  const std::vector<std::byte> bytes = safetensors_raw(header, data);  // the file points into it
  const auto file = parse_safetensors(bytes, "half");
  EXPECT_STREQ(file.at("h").dtype_name(), "F16");
  EXPECT_EQ(file.at("h").to_floats(),
            (std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), -std::ldexp(1.0f, -14),
                                0.333251953125f}));
  EXPECT_EQ(file.at("b").to_floats(),
            (std::vector<float>{1.0f, -3.0f, 3.3895313892515355e38f, std::ldexp(1.0f, -133)}));
  // A half tensor's byte count is 2 per element.
  const std::string short_header = R"({"h": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 12]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(short_header, data_of(3)), "needs 6 bytes"));
}

TEST(Safetensors, ShapeMustMatchTheOffsets) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(header, data_of(5)), "needs 24 bytes but its data_offsets span 20"));
  const std::string negative = R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(negative, data_of(1)), "not an integer >= 0"));
  const std::string fractional = R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(fractional, data_of(1)), "not an integer >= 0"));
  const std::string overflow =
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(overflow, data_of(1)), "overflows"));
  const std::string wraps =  // 2^62 elements: 2^64 bytes would wrap to 0
      R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})";
  EXPECT_TRUE(fails_with(safetensors_raw(wraps), "overflows"));
}

TEST(Safetensors, OffsetsMustTileTheDataSection) {
  const auto two = [](const char* a, const char* b) {
    return std::string(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": )") + a +
           R"(}, "b": {"dtype": "F32", "shape": [2], "data_offsets": )" + b + "}}";
  };
  EXPECT_EQ(error_of(safetensors_raw(two("[8, 16]", "[0, 8]"), data_of(4))), "");  // any order
  EXPECT_TRUE(fails_with(safetensors_raw(two("[0, 8]", "[4, 12]"), data_of(3)), "overlaps"));
  EXPECT_TRUE(fails_with(safetensors_raw(two("[0, 8]", "[0, 8]"), data_of(2)), "overlaps"));
  EXPECT_TRUE(fails_with(safetensors_raw(two("[0, 8]", "[12, 20]"), data_of(5)), "belong to no tensor"));
  EXPECT_TRUE(fails_with(safetensors_raw(two("[0, 8]", "[8, 16]"), data_of(5)), "bytes after the last tensor"));
  EXPECT_TRUE(fails_with(safetensors_raw(two("[0, 8]", "[8, 16]"), data_of(3)), "truncated"));
  EXPECT_TRUE(fails_with(safetensors_raw(two("[0, 8]", "[16, 8]"), data_of(4)), "end before they begin"));
  EXPECT_TRUE(fails_with(safetensors_raw(two("[0, 8]", "[8]"), data_of(4)), "data_offsets [BEGIN, END]"));
  EXPECT_TRUE(fails_with(
      safetensors_raw(two("[0, 8]", "[18446744073709551615, 8]"), data_of(4)), "end before they begin"));
}

TEST(Safetensors, TensorEntriesAreStrict) {
  EXPECT_TRUE(fails_with(safetensors_raw(R"({"a": [1]})"), "is not an object"));
  EXPECT_TRUE(fails_with(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [0]}})"),
                         "needs dtype, shape and data_offsets"));
  EXPECT_TRUE(fails_with(
      safetensors_raw(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0], "x": 1}})"),
      "unknown field 'x'"));
  EXPECT_TRUE(fails_with(
      safetensors_raw(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},)"
                      R"( "a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}})"),
      "names 'a' twice"));
}

TEST(Safetensors, MetadataMapsStringsToStrings) {
  EXPECT_TRUE(fails_with(safetensors_raw(R"({"__metadata__": {"a": 1}})"), "value 'a' is not a string"));
  EXPECT_TRUE(fails_with(safetensors_raw(R"({"__metadata__": ["a"]})"), "not an object of strings"));
  EXPECT_EQ(parse_safetensors(safetensors_raw(R"({"__metadata__": {}})"), "m").metadata().size(), 0u);
}

TEST(Safetensors, ErrorsNameNonPrintableTensorNamesSafely) {
  const std::string header = std::string(R"({"a)") + "\\n\\u0001" + std::string(200, 'z') +
                             R"(": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})";
  const std::string message = error_of(safetensors_raw(header, data_of(2)));
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_NE(message.find("'a??zzz"), std::string::npos) << message;
  EXPECT_LT(message.size(), 200u);
}

class SafetensorsFileTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return (scratch_ / name); }
  test::ScratchDir scratch_;
};

std::string open_error(const std::string& path) {
  try {
    detail::SafetensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(SafetensorsFileTest, MapsAValidFile) {
  test::write_bytes(path("ok.safetensors"), small_valid_file());
  const auto file = detail::SafetensorsFile::open(path("ok.safetensors"));
  EXPECT_EQ(file.name(), path("ok.safetensors"));
  EXPECT_EQ(file.at("a").to_floats(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(file.metadata().at("format"), "pt");
}

TEST_F(SafetensorsFileTest, NamesMissingDirectoryAndEmptyFiles) {
  EXPECT_EQ(open_error(path("missing.safetensors")),
            path("missing.safetensors") + ": cannot open: No such file or directory");
  const std::string dir = scratch_.path().string();
  EXPECT_EQ(open_error(dir), dir + ": is a directory, not a safetensors file");
  test::write_bytes(path("empty.safetensors"), {});
  EXPECT_NE(open_error(path("empty.safetensors")).find("shorter than the 8-byte header length"),
            std::string::npos);
  const std::string npy = "\x93NUMPY\x01\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  std::vector<std::byte> bytes;
  for (char c : npy) bytes.push_back(static_cast<std::byte>(c));
  test::write_bytes(path("wrong.safetensors"), bytes);
  EXPECT_NE(open_error(path("wrong.safetensors")).find("not a safetensors file"), std::string::npos)
      << open_error(path("wrong.safetensors"));
}

}  // namespace
}  // namespace ddpm
