// The .npy reader and writer: round trips, the header forms NumPy writes, and
// every malformed file rejected with one line that names the file and the
// problem.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <functional>
#include <thread>
#include <type_traits>

#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <sstream>

#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "npy_bytes.h"
#include "scratch_dir.h"
#include "test_support.h"

namespace ddpm {
namespace {

namespace fs = std::filesystem;
using test::double_bytes;
using test::f4_dict;
using test::float_bytes;
using test::npy_image;

template <class T>
std::string int_bytes(const std::vector<T>& values) {
  return {reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)};
}

std::string dict_for(const std::string& descr, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
}

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
      {"complex64", npy_image("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", six),
       "unsupported dtype '<c8'"},
      {"big-endian int32",
       npy_image("{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }", six), "big-endian"},
      {"float64 beyond float32",
       npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                 double_bytes({1.0, -1e39})),
       "element 1 is -1e+39, outside the float32 range"},
      {"int64 not exact in float32",
       npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                 int_bytes<std::int64_t>({16777217})),
       "element 0 is 16777217, not exactly representable as float32"},
      {"zero extent beside a huge one",  // (0, 2^40, 2^40): no data, but the sizes overflow
       npy_image(f4_dict("(0, 1099511627776, 1099511627776)"), ""), "too large"},
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
// Integer data: step arrays are integers in NumPy more often than not.

struct IntegerDtypeCase {
  std::string descr;
  std::string bytes;  // the values 0, 1, 7, 100 (and -3 for signed types)
  std::vector<std::int64_t> values;
};
std::ostream& operator<<(std::ostream& os, const IntegerDtypeCase& c) { return os << c.descr; }

class NpyIntegerDtypes : public ::testing::TestWithParam<IntegerDtypeCase> {};

TEST_P(NpyIntegerDtypes, ReadExactlyByEveryReader) {
  const IntegerDtypeCase& c = GetParam();
  const std::string shape = "(" + std::to_string(c.values.size()) + ",)";
  const std::string image = npy_image(dict_for(c.descr, shape), c.bytes);
  EXPECT_EQ(parse_npy_int64(image, "t.npy").data, c.values);
  const std::vector<float> as_float(c.values.begin(), c.values.end());
  EXPECT_EQ(parse_npy(image, "t.npy").data, as_float);
  const std::vector<double> as_double(c.values.begin(), c.values.end());
  EXPECT_EQ(parse_npy_double(image, "t.npy").data, as_double);
}

template <class T>
IntegerDtypeCase integer_case(const std::string& descr) {
  std::vector<T> values{0, 1, 7, 100};
  if constexpr (std::is_signed_v<T>) values.push_back(static_cast<T>(-3));
  return {descr, int_bytes(values), std::vector<std::int64_t>(values.begin(), values.end())};
}

INSTANTIATE_TEST_SUITE_P(
    Dtypes, NpyIntegerDtypes,
    ::testing::Values(integer_case<std::int8_t>("|i1"), integer_case<std::int8_t>("<i1"),
                      integer_case<std::int16_t>("<i2"), integer_case<std::int32_t>("<i4"),
                      integer_case<std::int64_t>("<i8"), integer_case<std::uint8_t>("|u1"),
                      integer_case<std::uint8_t>("<u1"), integer_case<std::uint16_t>("<u2"),
                      integer_case<std::uint32_t>("<u4"), integer_case<std::uint64_t>("<u8")),
    [](const ::testing::TestParamInfo<IntegerDtypeCase>& info) {
      return std::string(info.param.descr[0] == '|' ? "bar_" : "lt_") + info.param.descr.substr(1);
    });

TEST(NpyReadInt64, KeepsTheFullRange) {
  const std::vector<std::int64_t> extremes{std::numeric_limits<std::int64_t>::min(),
                                           std::numeric_limits<std::int64_t>::max()};
  EXPECT_EQ(parse_npy_int64(npy_image(dict_for("<i8", "(2,)"), int_bytes(extremes)), "e.npy").data,
            extremes);
  const std::vector<std::uint64_t> too_big{std::uint64_t{1} << 63};
  try {
    parse_npy_int64(npy_image(dict_for("<u8", "(1,)"), int_bytes(too_big)), "u.npy");
    FAIL() << "accepted 2^63 as int64";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "u.npy: element 0 is 9223372036854775808, beyond the int64 range");
  }
}

TEST(NpyReadInt64, AcceptsWholeFloatsAndNamesTheFirstThatIsNot) {
  EXPECT_EQ(parse_npy_int64(npy_image(f4_dict("(3,)"), float_bytes({0.0f, 999.0f, -4.0f})), "f.npy")
                .data,
            (std::vector<std::int64_t>{0, 999, -4}));
  EXPECT_EQ(parse_npy_int64(npy_image(dict_for("<f8", "(1,)"), double_bytes({1e15})), "d.npy").data,
            (std::vector<std::int64_t>{1000000000000000}));
  const std::vector<std::pair<std::string, std::string>> refused{
      {float_bytes({1.0f, 2.5f, 3.5f}), "element 1 is 2.5, not a whole number"},
      {float_bytes({1.0f, std::nanf(""), 3.0f}), "element 1 is nan, not a whole number"},
      {float_bytes({std::numeric_limits<float>::infinity(), 1.0f, 2.0f}), "element 0 is inf"},
      {float_bytes({1e19f, 1.0f, 2.0f}), "element 0 is 9.99999998e+18, not a whole number in the "
                                         "int64 range"},
  };
  for (const auto& [data, expected] : refused) {
    try {
      parse_npy_int64(npy_image(f4_dict("(3,)"), data), "steps.npy");
      FAIL() << "accepted " << expected;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("steps.npy: " + expected), std::string::npos)
          << e.what();
    }
  }
}

TEST(NpyRead, IntegersBeyondTheFloatSignificandMustBeExact) {
  // 2^24 + 1 has no float32, 2^53 + 1 no float64; 2^40 is exact in both.
  const std::string odd24 = npy_image(dict_for("<i8", "(1,)"), int_bytes<std::int64_t>({16777217}));
  EXPECT_THROW(parse_npy(odd24, "a.npy"), Error);
  EXPECT_EQ(parse_npy_double(odd24, "a.npy").data, (std::vector<double>{16777217.0}));
  const std::string odd53 =
      npy_image(dict_for("<u8", "(1,)"), int_bytes<std::uint64_t>({(std::uint64_t{1} << 53) + 1}));
  EXPECT_THROW(parse_npy_double(odd53, "b.npy"), Error);
  const std::string power =
      npy_image(dict_for("<i8", "(1,)"), int_bytes<std::int64_t>({-(std::int64_t{1} << 40)}));
  EXPECT_EQ(parse_npy(power, "c.npy").data, (std::vector<float>{-1099511627776.0f}));
}

// ---------------------------------------------------------------------------
// What a path is: a directory, a missing file, a device or a stream.

using test::message_of;

TEST_F(NpyFiles, ADirectoryIsNamedAsOne) {
  EXPECT_EQ(message_of([&] { read_npy(dir_.path()); }),
            "cannot read " + dir_.path().string() + ": Is a directory");
}

TEST_F(NpyFiles, AMissingFileIsNamedAsOne) {
  EXPECT_EQ(message_of([&] { read_npy(path("absent.npy")); }),
            "cannot read " + path("absent.npy") + ": No such file or directory");
}

TEST_F(NpyFiles, AnUnreadableFileIsNamedAsOne) {
  test::write_bytes(path("secret.npy"), npy_image(f4_dict("(1,)"), float_bytes({1.0f})));
  fs::permissions(path("secret.npy"), fs::perms::none);
  fs::permissions(dir_.path(), fs::perms::all);  // others may enter, not read the file
  EXPECT_EQ(test::message_as_unprivileged([&] { read_npy(path("secret.npy")); }),
            "cannot read " + path("secret.npy") + ": Permission denied");
}

TEST(NpyStreams, AnEndlessDeviceIsRefusedAtOnce) {
  // Before the reader looked at the header first, these read until memory ran out.
  EXPECT_EQ(message_of([] { read_npy("/dev/zero"); }),
            "/dev/zero: not a .npy file (no \\x93NUMPY magic at the start)");
  EXPECT_NE(message_of([] { read_npy_double("/dev/urandom"); }).find("not a .npy file"),
            std::string::npos);
}

// Feeds `bytes` into a FIFO from a thread, then (when `endless`) keeps
// writing until the reader goes away.
class FifoWriter {
 public:
  FifoWriter(const std::string& path, std::string bytes, bool endless) {
    ::mkfifo(path.c_str(), 0600);
    thread_ = std::thread([path, bytes = std::move(bytes), endless] {
      std::signal(SIGPIPE, SIG_IGN);  // the reader closes early on purpose
      const int fd = ::open(path.c_str(), O_WRONLY);
      if (fd < 0) return;
      auto put = [fd](const std::string& b) {
        for (std::size_t at = 0; at < b.size();) {
          const ssize_t n = ::write(fd, b.data() + at, b.size() - at);
          if (n <= 0) return false;
          at += static_cast<std::size_t>(n);
        }
        return true;
      };
      if (put(bytes) && endless) {
        const std::string more(1 << 16, 'x');
        while (put(more)) {
        }
      }
      ::close(fd);
    });
  }
  ~FifoWriter() { thread_.join(); }

 private:
  std::thread thread_;
};

TEST_F(NpyFiles, ReadsAnArrayFromAFifo) {
  const std::vector<float> values{1.5f, -2.0f, 3.25f, 0.0f};
  FifoWriter writer(path("pipe.npy"), npy_image(f4_dict("(2, 2)"), float_bytes(values)), false);
  const NpyArray a = read_npy(path("pipe.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(a.data, values);
}

TEST_F(NpyFiles, AStreamThatGoesOnPastItsHeaderIsRefused) {
  FifoWriter writer(path("endless.npy"), npy_image(f4_dict("(2,)"), float_bytes({1, 2})), true);
  EXPECT_EQ(message_of([&] { read_npy(path("endless.npy")); }),
            path("endless.npy") +
                ": trailing bytes after the data of shape (2,) (the input goes on past the 8 "
                "bytes its header declares)");
}

TEST_F(NpyFiles, AStreamDeclaringMoreThanMemoryIsRefusedBeforeReading) {
  FifoWriter writer(path("huge.npy"), npy_image(f4_dict("(1000000000000000,)"), ""), true);
  EXPECT_NE(message_of([&] { read_npy(path("huge.npy")); })
                .find("more than fit in this machine's memory"),
            std::string::npos);
}

TEST_F(NpyFiles, AStreamCutShortIsTruncated) {
  FifoWriter writer(path("short.npy"), npy_image(f4_dict("(4,)"), float_bytes({1, 2})), false);
  EXPECT_EQ(message_of([&] { read_npy(path("short.npy")); }),
            path("short.npy") + ": truncated data: shape (4,) needs 16 bytes, the input has 8");
}

TEST_F(NpyFiles, AFileDeclaringMoreThanItHoldsIsRefusedBeforeReading) {
  // 2^40 floats declared, 8 bytes present: decided from the sizes alone.
  test::write_bytes(path("liar.npy"), npy_image(f4_dict("(1099511627776,)"), float_bytes({1, 2})));
  EXPECT_EQ(message_of([&] { read_npy(path("liar.npy")); }),
            path("liar.npy") +
                ": truncated data: shape (1099511627776,) needs 4398046511104 bytes, the file "
                "has 8");
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
