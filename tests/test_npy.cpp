// The .npy reader and writer: round trips, the header forms NumPy writes, and
// every malformed file rejected with one line that names the file and the
// problem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <sstream>

#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "npy_bytes.h"
#include "scratch_dir.h"

namespace ddpm {
namespace {

namespace fs = std::filesystem;
using test::double_bytes;
using test::f4_dict;
using test::float_bytes;
using test::npy_image;

// A fresh directory per test, removed afterwards.
class NpyFiles : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }
  std::vector<std::string> listing() const { return dir_.listing(); }

  test::ScratchDir dir_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// ---------------------------------------------------------------------------
// Round trips and accepted forms.

struct RoundTripCase {
  std::vector<std::int64_t> shape;
};
std::ostream& operator<<(std::ostream& os, const RoundTripCase& c) {
  os << "shape (";
  for (auto d : c.shape) os << d << ",";
  return os << ")";
}

class NpyRoundTrip : public NpyFiles, public ::testing::WithParamInterface<RoundTripCase> {};

TEST_P(NpyRoundTrip, WriteThenReadGivesTheSameArray) {
  const auto& shape = GetParam().shape;
  std::int64_t count = 1;
  for (auto d : shape) count *= d;
  std::vector<float> data(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = 0.25f * static_cast<float>(i) - 3.0f;
  if (!data.empty()) data.back() = std::numeric_limits<float>::denorm_min();  // bits survive

  write_npy(path("a.npy"), shape, data.data());
  const NpyArray back = read_npy(path("a.npy"));
  EXPECT_EQ(back.shape, shape);
  EXPECT_EQ(back.data, data);

  // Version 1.0, and the data starts on a 64-byte boundary after a '\n'.
  const std::string bytes = read_file(path("a.npy"));
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes[6], '\x01');
  EXPECT_EQ(bytes[7], '\x00');
  const std::size_t header_end =
      10 + static_cast<unsigned char>(bytes[8]) + 256u * static_cast<unsigned char>(bytes[9]);
  EXPECT_EQ(header_end % 64, 0u);
  EXPECT_EQ(bytes[header_end - 1], '\n');
  EXPECT_EQ(bytes.size(), header_end + data.size() * sizeof(float));
}

INSTANTIATE_TEST_SUITE_P(Shapes, NpyRoundTrip,
                         ::testing::Values(RoundTripCase{{3, 4}}, RoundTripCase{{5}},
                                           RoundTripCase{{2, 3, 4, 5}}, RoundTripCase{{}},
                                           RoundTripCase{{0, 3}}, RoundTripCase{{1, 1}},
                                           RoundTripCase{{7, 33}}));

TEST_F(NpyFiles, WrittenHeaderIsWhatNumpyWrites) {
  // np.save(f, np.zeros((3, 4), np.float32)) writes exactly this dict.
  const std::string header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  const std::string one_dim("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }");
  std::vector<float> zeros(12, 0.0f);
  write_npy(path("h.npy"), {3, 4}, zeros.data());
  EXPECT_EQ(read_file(path("h.npy")).substr(10, header.size()), header);
  write_npy(path("h.npy"), {5}, zeros.data());
  EXPECT_EQ(read_file(path("h.npy")).substr(10, one_dim.size()), one_dim);
}

TEST(NpyRead, Float64IsConvertedToFloat32) {
  const std::vector<double> values{0.1, -2.5, 1e10, 3.0};
  const NpyArray a =
      parse_npy(npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
                          double_bytes(values)),
                "x.npy");
  ASSERT_EQ(a.shape, (std::vector<std::int64_t>{2, 2}));
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(a.data[i], static_cast<float>(values[i]));
}

TEST(NpyRead, DoubleReaderKeepsFloat64Precision) {
  const std::vector<double> betas{1e-4, 0.0123456789012345, 0.02};
  const NpyArrayDouble a = parse_npy_double(
      npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", double_bytes(betas)),
      "betas.npy");
  EXPECT_EQ(a.data, betas);
  const NpyArrayDouble b =
      parse_npy_double(npy_image(f4_dict("(2,)"), float_bytes({0.5f, 0.1f})), "f.npy");
  EXPECT_EQ(b.data, (std::vector<double>{0.5, static_cast<double>(0.1f)}));
}

TEST(NpyRead, AcceptsVersions2And3) {
  for (int major : {2, 3}) {
    const NpyArray a =
        parse_npy(npy_image(f4_dict("(2,)"), float_bytes({1.0f, 2.0f}), major), "v.npy");
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2})) << "version " << major;
    EXPECT_EQ(a.data, (std::vector<float>{1.0f, 2.0f})) << "version " << major;
  }
}

TEST(NpyRead, AcceptsTheHeaderSpellingsPythonProduces) {
  const std::string data = float_bytes({1, 2, 3, 4, 5, 6});
  for (const std::string dict : {
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
           std::string(
               "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}"),  // no trailing comma
           std::string("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}"),
           std::string("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}"),  // any order
           std::string("{'descr':'<f4','fortran_order':False,'shape':(2,3,)}"),       // no spaces
           std::string("  { 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 ) }"),
           std::string(
               "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"),  // Python 2
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }"),
       }) {
    const NpyArray a = parse_npy(npy_image(dict, data), "h.npy");
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3})) << dict;
    EXPECT_EQ(a.data.size(), 6u) << dict;
  }
}

TEST(NpyRead, ScalarAndEmptyArrays) {
  const NpyArray scalar = parse_npy(npy_image(f4_dict("()"), float_bytes({7.5f})), "s.npy");
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.data, (std::vector<float>{7.5f}));
  const NpyArray empty = parse_npy(npy_image(f4_dict("(0, 4)"), ""), "e.npy");
  EXPECT_EQ(empty.shape, (std::vector<std::int64_t>{0, 4}));
  EXPECT_TRUE(empty.data.empty());
}

TEST_F(NpyFiles, ReadsAFileFromDisk) {
  test::write_bytes(path("d.npy"), npy_image(f4_dict("(3,)"), float_bytes({1.5f, -2.0f, 0.0f})));
  EXPECT_EQ(read_npy(path("d.npy")).data, (std::vector<float>{1.5f, -2.0f, 0.0f}));
}

// ---------------------------------------------------------------------------
// Malformed files.

struct BadNpyCase {
  std::string label;
  std::string bytes;
  std::string expected;  // a piece of the message that names the problem
};
std::ostream& operator<<(std::ostream& os, const BadNpyCase& c) {
  return os << c.label << " (" << c.bytes.size() << " bytes, expecting '" << c.expected << "')";
}

class NpyRejects : public ::testing::TestWithParam<BadNpyCase> {};

TEST_P(NpyRejects, WithOneLineNamingFileAndProblem) {
  const BadNpyCase& c = GetParam();
  try {
    parse_npy(c.bytes, "input.npy");
    FAIL() << "accepted " << c.label;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("input.npy: ", 0), 0u) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

std::vector<BadNpyCase> bad_npy_cases() {
  const std::string six = float_bytes({1, 2, 3, 4, 5, 6});
  const std::string good = npy_image(f4_dict("(2, 3)"), six);
  std::string absurd("\x93NUMPY\x02\x00", 8);
  absurd += std::string("\x00\x00\x20\x00", 4);  // 2 MiB header length
  absurd += f4_dict("(2, 3)");
  std::string beyond("\x93NUMPY\x01\x00", 8);
  beyond += std::string("\x00\x10", 2);  // 4096 bytes, the file is far shorter
  beyond += f4_dict("(1,)");
  return {
      {"empty file", "", "not a .npy file"},
      {"text file", "hello, world\n", "not a .npy file"},
      {"almost magic", std::string("\x93NUMPX\x01\x00", 8), "not a .npy file"},
      {"magic only", std::string("\x93NUMPY", 6), "truncated .npy header"},
      {"no header length", std::string("\x93NUMPY\x01\x00\x10", 9), "truncated .npy header"},
      {"version 4.0", npy_image(f4_dict("(2, 3)"), six, 4), "unsupported .npy format version 4.0"},
      {"header cut short", good.substr(0, 40), "truncated .npy header"},
      {"header length beyond the file", beyond, "truncated .npy header"},
      {"header length over 1 MiB", absurd, "absurd"},
      {"data cut short", good.substr(0, good.size() - 3), "truncated data"},
      {"no data at all", npy_image(f4_dict("(2, 3)"), ""), "truncated data"},
      {"trailing bytes", good + "xyz", "3 trailing bytes"},
      {"big-endian float32",
       npy_image("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", six), "big-endian"},
      {"big-endian float64",
       npy_image("{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", six), "big-endian"},
      {"fortran order",
       npy_image("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", six), "Fortran"},
      {"int32", npy_image("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", six),
       "unsupported dtype '<i4'"},
      {"float16", npy_image("{'descr': '<f2', 'fortran_order': False, 'shape': (6,), }", six),
       "unsupported dtype '<f2'"},
      {"no byte order", npy_image("{'descr': '|f4', 'fortran_order': False, 'shape': (6,), }", six),
       "unsupported dtype '|f4'"},
      {"control byte in dtype",  // escaped, so the message stays on one line
       npy_image("{'descr': '<f\n4', 'fortran_order': False, 'shape': (6,), }", six),
       "unsupported dtype '<f\\x0a4'"},
      {"structured dtype",
       npy_image("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", six),
       "structured"},
      {"negative dimension", npy_image(f4_dict("(-2, 3)"), six), "negative dimension"},
      {"huge shape", npy_image(f4_dict("(4611686018427387, 4611686018427387)"), six), "too large"},
      {"not a dict", npy_image("['descr', '<f4']", six), "malformed .npy header"},
      {"missing shape", npy_image("{'descr': '<f4', 'fortran_order': False, }", six), "no 'shape'"},
      {"missing descr", npy_image("{'fortran_order': False, 'shape': (2, 3), }", six),
       "no 'descr'"},
      {"unknown key",
       npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1, }", six),
       "unexpected key 'x'"},
      {"duplicate key",
       npy_image("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", six),
       "appears twice"},
      {"unterminated string", npy_image("{'descr: '<f4', 'fortran_order': False}", six),
       "malformed .npy header"},
      {"unclosed dict", npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", six),
       "malformed .npy header"},
      {"text after the dict", npy_image(f4_dict("(2, 3)") + " junk", six), "malformed .npy header"},
      {"shape is a string",
       npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': '2, 3', }", six),
       "'shape' must be a tuple"},
      {"shape holds a float", npy_image(f4_dict("(2.0, 3)"), six), "malformed .npy header"},
      {"fortran_order is a number",
       npy_image("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", six),
       "'fortran_order' must be True or False"},
      {"unknown word", npy_image("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2, 3), }", six),
       "unknown word 'Nope'"},
      {"missing colon", npy_image("{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}", six),
       "expected ':'"},
      {"empty header", npy_image("", six, 1, false), "malformed .npy header"},
      {"deep nesting", npy_image(f4_dict(std::string(100000, '(')), six, 2), "nesting too deep"},
  };
}

INSTANTIATE_TEST_SUITE_P(Cases, NpyRejects, ::testing::ValuesIn(bad_npy_cases()),
                         [](const ::testing::TestParamInfo<BadNpyCase>& info) {
                           std::string name;
                           for (char c : info.param.label) name += std::isalnum(c) ? c : '_';
                           return name;
                         });

TEST_F(NpyFiles, MissingFileNamesThePath) {
  try {
    read_npy(path("absent.npy"));
    FAIL() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read " + path("absent.npy")), std::string::npos)
        << e.what();
  }
}

TEST_F(NpyFiles, ErrorsFromDiskNameTheFile) {
  test::write_bytes(path("t.npy"), "not numpy");
  try {
    read_npy(path("t.npy"));
    FAIL() << "accepted a text file";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path("t.npy") + ": not a .npy file (no \\x93NUMPY magic at the start)");
  }
}

// ---------------------------------------------------------------------------
// Writing: whole files or nothing.

TEST_F(NpyFiles, WriteLeavesOnlyTheTargetBehind) {
  const std::vector<float> data{1, 2, 3};
  write_npy(path("out.npy"), {3}, data.data());
  EXPECT_EQ(listing(), (std::vector<std::string>{"out.npy"}));
}

TEST_F(NpyFiles, WriteReplacesAnExistingFileWhole) {
  const std::vector<float> big(1000, 1.0f), small{4, 5};
  write_npy(path("out.npy"), {1000}, big.data());
  write_npy(path("out.npy"), {2}, small.data());
  EXPECT_EQ(read_npy(path("out.npy")).data, small);
  EXPECT_EQ(listing().size(), 1u);
}

TEST_F(NpyFiles, UnwritablePathThrowsAndLeavesNothing) {
  const std::vector<float> data{1, 2, 3};
  const std::string target = path("missing_dir/out.npy");
  try {
    write_npy(target, {3}, data.data());
    FAIL() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write " + target + ": No such file or directory");
  }
  EXPECT_TRUE(listing().empty());
}

TEST_F(NpyFiles, FailedRenameRemovesTheTemporary) {
  // The target is a non-empty directory: the temporary is written, the
  // rename fails, and the temporary must go.
  fs::create_directories(path("taken.npy/inside"));
  const std::vector<float> data{1, 2, 3};
  try {
    write_npy(path("taken.npy"), {3}, data.data());
    FAIL() << "replaced a directory";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot write " + path("taken.npy") + ": ", 0), 0u)
        << e.what();
  }
  EXPECT_EQ(listing(), (std::vector<std::string>{"taken.npy"}));
}

TEST_F(NpyFiles, WriteFileAtomicallyWritesTheBytes) {
  write_file_atomically(path("b.bin"), std::string("a\0b", 3));
  EXPECT_EQ(read_file(path("b.bin")), std::string("a\0b", 3));
  EXPECT_EQ(listing(), (std::vector<std::string>{"b.bin"}));
}

TEST_F(NpyFiles, WriteRejectsNegativeDimensions) {
  const float x = 0.0f;
  EXPECT_THROW(write_npy(path("never.npy"), {-1, 2}, &x), Error);
  EXPECT_TRUE(listing().empty());
}

}  // namespace
}  // namespace ddpm
