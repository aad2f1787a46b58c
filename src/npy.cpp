// NumPy .npy files (format versions 1.0, 2.0 and 3.0): float32/float64 in,
// C order and little-endian only; float32 out. Reading is strict on purpose:
// a file that is not exactly one array of the size its header claims is
// rejected with one line naming the file and the problem, so that a
// truncated download or a foreign file never turns into silent garbage.
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include "ddpm/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <variant>

#include "ddpm/error.h"

namespace ddpm {
namespace {

// The bytes are copied straight into floats; every platform we build for is
// little-endian, and a big-endian one would need byte swaps added here.
static_assert(std::endian::native == std::endian::little, "npy.cpp assumes a little-endian host");

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
// NumPy itself refuses headers over 10 KB unless told otherwise; 1 MiB leaves
// room for any real shape and still catches a corrupt length field.
constexpr std::uint64_t kMaxHeaderBytes = 1u << 20;
constexpr int kMaxNesting = 16;

// Header text quoted in a message: control bytes escaped (the message must
// stay one line) and long runs cut short.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7F) {
      out += static_cast<char>(byte);
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return out;
}

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw Error(name + ": " + problem);
}

// ---------------------------------------------------------------------------
// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// parsed by a small recursive-descent parser for the few literal kinds that
// can appear: strings, integers, True/False/None, tuples and lists.

struct PyValue;
using PySequence = std::vector<PyValue>;
struct PyValue {
  // monostate is None.
  std::variant<std::monostate, bool, std::int64_t, std::string, PySequence> value;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  std::map<std::string, PyValue> parse_dict() {
    std::map<std::string, PyValue> dict;
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      PyValue key = parse_value();
      auto* key_text = std::get_if<std::string>(&key.value);
      if (!key_text) malformed("dictionary keys must be strings");
      skip_space();
      expect(':');
      PyValue value = parse_value();
      if (!dict.emplace(*key_text, std::move(value)).second) {
        malformed("key '" + printable(*key_text) + "' appears twice");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') malformed("expected ',' or '}'");
    }
    ++pos_;  // '}'
    // NumPy pads the header with spaces and ends it with '\n'.
    skip_space();
    if (pos_ != text_.size()) malformed("unexpected text after the dictionary");
    return dict;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  void expect(char c) {
    if (peek() != c) malformed(std::string("expected '") + c + "'");
    ++pos_;
  }

  [[noreturn]] void malformed(const std::string& why) const {
    fail(name_, "malformed .npy header (" + why + " at offset " + std::to_string(pos_) + ")");
  }

  PyValue parse_value() {
    skip_space();
    const char c = peek();
    if (c == '\'' || c == '"') return {parse_string()};
    if (c == '(' || c == '[') return {parse_sequence(c == '(' ? ')' : ']')};
    if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) return {parse_int()};
    if (std::isalpha(static_cast<unsigned char>(c))) return parse_word();
    if (c == '\0') malformed("unexpected end of header");
    malformed("unexpected character '" + printable(std::string_view(&c, 1)) + "'");
  }

  std::string parse_string() {
    const char quote = text_[pos_++];
    std::string s;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      // Dtype strings never need escapes; refusing them keeps this parser small.
      if (text_[pos_] == '\\') malformed("escapes in strings are not supported");
      s += text_[pos_++];
    }
    if (pos_ == text_.size()) malformed("unterminated string");
    ++pos_;
    return s;
  }

  std::int64_t parse_int() {
    const std::size_t start = pos_;
    bool negative = false;
    if (peek() == '-' || peek() == '+') negative = text_[pos_++] == '-';
    if (!std::isdigit(static_cast<unsigned char>(peek()))) malformed("expected a digit");
    std::uint64_t magnitude = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      const int digit = text_[pos_++] - '0';
      if (magnitude > (std::uint64_t{1} << 62) / 10) {
        pos_ = start;
        malformed("integer too large");
      }
      magnitude = magnitude * 10 + static_cast<std::uint64_t>(digit);
    }
    if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 long literals, e.g. (3L, 4L)
    if (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '.') {
      malformed("expected an integer");
    }
    const auto value = static_cast<std::int64_t>(magnitude);
    return negative ? -value : value;
  }

  PyValue parse_word() {
    std::string word;
    while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_') word += text_[pos_++];
    if (word == "True") return {true};
    if (word == "False") return {false};
    if (word == "None") return {};
    malformed("unknown word '" + printable(word) + "'");
  }

  PySequence parse_sequence(char close) {
    // Real shapes are one level deep; a corrupt header of a million '('
    // must not recurse a million times.
    if (++depth_ > kMaxNesting) malformed("nesting too deep");
    ++pos_;  // '(' or '['
    PySequence items;
    while (true) {
      skip_space();
      if (peek() == close) break;
      items.push_back(parse_value());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != close) malformed(std::string("expected ',' or '") + close + "'");
    }
    ++pos_;
    --depth_;
    return items;
  }

  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------
// What the header says, checked against what we support.

struct Layout {
  std::vector<std::int64_t> shape;
  std::size_t item_size = 0;  // 4 (float32) or 8 (float64)
};

std::size_t item_size_of(const std::string& descr, const std::string& name) {
  if (descr == "<f4") return 4;
  if (descr == "<f8") return 8;
  if (descr == ">f4" || descr == ">f8") {
    fail(name, "big-endian data ('" + descr + "') is not supported; save it little-endian ('<" +
                   descr.substr(1) + "')");
  }
  fail(name, "unsupported dtype '" + printable(descr) +
                 "' (expected float32 '<f4' or float64 '<f8')");
}

Layout read_layout(std::string_view header, const std::string& name) {
  std::map<std::string, PyValue> dict = HeaderParser(header, name).parse_dict();
  for (const auto& [key, value] : dict) {
    if (key != "descr" && key != "fortran_order" && key != "shape") {
      fail(name, "malformed .npy header (unexpected key '" + printable(key) + "')");
    }
  }
  for (const char* key : {"descr", "fortran_order", "shape"}) {
    if (!dict.contains(key)) fail(name, std::string("malformed .npy header (no '") + key + "')");
  }

  Layout layout;
  const auto* descr = std::get_if<std::string>(&dict["descr"].value);
  if (!descr) fail(name, "unsupported dtype (structured arrays are not supported)");
  layout.item_size = item_size_of(*descr, name);

  const auto* fortran = std::get_if<bool>(&dict["fortran_order"].value);
  if (!fortran) fail(name, "malformed .npy header ('fortran_order' must be True or False)");
  if (*fortran) {
    fail(name,
         "Fortran-order arrays are not supported (save a C-order array, e.g. with "
         "np.ascontiguousarray)");
  }

  const auto* dims = std::get_if<PySequence>(&dict["shape"].value);
  if (!dims) fail(name, "malformed .npy header ('shape' must be a tuple of integers)");
  for (const PyValue& dim : *dims) {
    const auto* extent = std::get_if<std::int64_t>(&dim.value);
    if (!extent) fail(name, "malformed .npy header ('shape' must be a tuple of integers)");
    if (*extent < 0) fail(name, "shape has a negative dimension (" + std::to_string(*extent) + ")");
    layout.shape.push_back(*extent);
  }
  return layout;
}

std::string describe_shape(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

// The number of elements, or fail if it cannot be addressed in memory.
std::uint64_t element_count(const std::vector<std::int64_t>& shape, std::size_t item_size,
                            const std::string& name) {
  std::uint64_t count = 1;
  const std::uint64_t limit = std::numeric_limits<std::int64_t>::max() / item_size;
  for (std::int64_t dim : shape) {
    if (dim != 0 && count > limit / static_cast<std::uint64_t>(dim)) {
      fail(name, "shape " + describe_shape(shape) + " is too large");
    }
    count *= static_cast<std::uint64_t>(dim);
  }
  return count;
}

std::uint32_t read_little_endian(const std::string& bytes, std::size_t offset, int width) {
  std::uint32_t value = 0;
  for (int i = width - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[offset + static_cast<std::size_t>(i)]);
  }
  return value;
}

// ---------------------------------------------------------------------------
// Writing.

std::string header_for(const std::vector<std::int64_t>& shape, const char* descr) {
  std::string dict = std::string("{'descr': '") + descr +
                     "', 'fortran_order': False, 'shape': " + describe_shape(shape) + ", }";
  // Version 1.0: magic, 2 version bytes, 2 length bytes, then the dict padded
  // with spaces and a final '\n' so that the data starts 64-byte aligned.
  constexpr std::size_t kPrefix = kMagicSize + 2 + 2;
  const std::size_t unpadded = kPrefix + dict.size() + 1;
  const std::size_t total = (unpadded + 63) / 64 * 64;
  dict.append(total - unpadded, ' ');
  dict += '\n';
  if (dict.size() > 0xFFFF) {
    throw Error("shape " + describe_shape(shape) + " has too many dimensions for a .npy header");
  }

  std::string header(kMagic, kMagicSize);
  header += '\x01';
  header += '\x00';
  header += static_cast<char>(dict.size() & 0xFF);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

// A name next to `path` that no other writer (thread or process) is using;
// the file is created exclusively so a clash is retried, never shared.
int create_temp_beside(const std::string& path, std::string* temp_path) {
  static std::atomic<unsigned> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::ostringstream name;
    name << path << ".tmp-" << ::getpid() << '-' << counter++ << '-' << std::hex << now;
    *temp_path = name.str();
    const int fd = ::open(temp_path->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

bool write_all(int fd, const char* data, std::size_t size) {
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

// Where the array's elements lie in a whole .npy image, after every check.
struct LocatedArray {
  Layout layout;
  const char* data = nullptr;
  std::uint64_t count = 0;
};

LocatedArray locate_array(const std::string& bytes, const std::string& name) {
  if (bytes.size() < kMagicSize || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    fail(name, "not a .npy file (no \\x93NUMPY magic at the start)");
  }
  if (bytes.size() < kMagicSize + 2) fail(name, "truncated .npy header (no version)");
  const int major = static_cast<unsigned char>(bytes[kMagicSize]);
  const int minor = static_cast<unsigned char>(bytes[kMagicSize + 1]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
  }
  // Version 1.0 stores the header length in 2 bytes, 2.0 and 3.0 in 4.
  const int length_width = major == 1 ? 2 : 4;
  const std::size_t length_offset = kMagicSize + 2;
  if (bytes.size() < length_offset + length_width) fail(name, "truncated .npy header (no length)");
  const std::uint64_t header_length = read_little_endian(bytes, length_offset, length_width);
  const std::size_t header_offset = length_offset + static_cast<std::size_t>(length_width);
  if (header_length > kMaxHeaderBytes) {
    fail(name, "header length " + std::to_string(header_length) + " is absurd (over 1 MiB)");
  }
  if (header_offset + header_length > bytes.size()) {
    fail(name, "truncated .npy header (length " + std::to_string(header_length) +
                   " runs past the " + std::to_string(bytes.size()) + "-byte file)");
  }

  LocatedArray located;
  located.layout = read_layout(std::string_view(bytes.data() + header_offset, header_length), name);
  const Layout& layout = located.layout;
  const std::size_t data_offset = header_offset + header_length;
  located.count = element_count(layout.shape, layout.item_size, name);
  const std::uint64_t expected = located.count * layout.item_size;
  const std::uint64_t present = bytes.size() - data_offset;
  if (present < expected) {
    fail(name, "truncated data: shape " + describe_shape(layout.shape) + " needs " +
                   std::to_string(expected) + " bytes, the file has " + std::to_string(present));
  }
  if (present > expected) {
    fail(name, std::to_string(present - expected) + " trailing bytes after the data of shape " +
                   describe_shape(layout.shape));
  }
  located.data = bytes.data() + data_offset;
  return located;
}

// Copies the elements out as T (float or double), converting if the file's
// precision differs. memcpy per element: the data need not be aligned.
template <class T>
std::vector<T> convert_elements(const LocatedArray& located) {
  std::vector<T> out(located.count);
  for (std::uint64_t i = 0; i < located.count; ++i) {
    const char* element = located.data + i * located.layout.item_size;
    if (located.layout.item_size == 4) {
      float value;
      std::memcpy(&value, element, 4);
      out[i] = static_cast<T>(value);
    } else {
      double value;
      std::memcpy(&value, element, 8);
      out[i] = static_cast<T>(value);
    }
  }
  return out;
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw Error("cannot read " + path + ": " + std::strerror(errno));
  return bytes.str();
}

// The pieces are written one after another, so that write_npy need not copy
// its data next to the header first.
void write_pieces_atomically(const std::string& path,
                             std::initializer_list<std::string_view> pieces) {
  std::string temp_path;
  const int fd = create_temp_beside(path, &temp_path);
  if (fd < 0) throw Error("cannot write " + path + ": " + std::strerror(errno));

  // Everything after this point either renames the complete file into place
  // or removes the temporary one, so no partial output is ever left behind.
  bool ok = true;
  for (std::string_view piece : pieces) ok = ok && write_all(fd, piece.data(), piece.size());
  ok = ok && ::fsync(fd) == 0;  // the data is on disk before the name points at it
  int saved_errno = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    saved_errno = errno;
  }
  if (ok && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    ok = false;
    saved_errno = errno;
  }
  if (!ok) {
    ::unlink(temp_path.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(saved_errno));
  }
}

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& name) {
  const LocatedArray located = locate_array(bytes, name);
  return {located.layout.shape, convert_elements<float>(located)};
}

NpyArrayDouble parse_npy_double(const std::string& bytes, const std::string& name) {
  const LocatedArray located = locate_array(bytes, name);
  return {located.layout.shape, convert_elements<double>(located)};
}

NpyArray read_npy(const std::string& path) { return parse_npy(read_whole_file(path), path); }

NpyArrayDouble read_npy_double(const std::string& path) {
  return parse_npy_double(read_whole_file(path), path);
}

namespace {

template <typename T>
void write_npy_as(const std::string& path, const std::vector<std::int64_t>& shape, const T* data,
                  const char* descr) {
  for (std::int64_t dim : shape) {
    if (dim < 0) {
      throw Error("cannot write " + path + ": shape " + describe_shape(shape) +
                  " has a negative dimension");
    }
  }
  const std::uint64_t count = element_count(shape, sizeof(T), path);
  if (count > 0 && data == nullptr) throw Error("cannot write " + path + ": no data");
  const std::string header = header_for(shape, descr);
  write_pieces_atomically(
      path, {header, std::string_view(reinterpret_cast<const char*>(data), count * sizeof(T))});
}

}  // namespace

void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const float* data) {
  write_npy_as(path, shape, data, "<f4");
}

void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const double* data) {
  write_npy_as(path, shape, data, "<f8");
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_pieces_atomically(path, {bytes});
}

}  // namespace ddpm
