// NumPy .npy files (format versions 1.0, 2.0 and 3.0): float32, float64 and
// integer arrays in (C order, little-endian), float32 out. Reading is strict
// on purpose: a file that is not exactly one array of the size its header
// claims is rejected with one line naming the file and the problem, so that a
// truncated download or a foreign file never turns into silent garbage, and
// a value that would change on conversion (1e39 into float32, 2.5 into an
// integer) is refused rather than rounded. The header decides how much is
// read: a file or stream that goes on past it is refused, not read to the end.
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include "ddpm/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>

#include "ddpm/error.h"
#include "ddpm/shard.h"
#include "file_input.h"
#include "file_output.h"
#include "npy_image.h"
#include "npy_input.h"

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

// The element types read: little-endian floats and integers.
enum class Dtype { f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 };

struct Layout {
  std::vector<std::int64_t> shape;
  Dtype dtype = Dtype::f4;
  std::size_t item_size = 0;
};

struct KnownDtype {
  const char* descr;
  Dtype dtype;
  std::size_t item_size;
};
// NumPy writes '|' for one-byte types; '<' is accepted for them too.
constexpr KnownDtype kDtypes[] = {
    {"<f4", Dtype::f4, 4}, {"<f8", Dtype::f8, 8}, {"<i1", Dtype::i1, 1}, {"|i1", Dtype::i1, 1},
    {"<i2", Dtype::i2, 2}, {"<i4", Dtype::i4, 4}, {"<i8", Dtype::i8, 8}, {"<u1", Dtype::u1, 1},
    {"|u1", Dtype::u1, 1}, {"<u2", Dtype::u2, 2}, {"<u4", Dtype::u4, 4}, {"<u8", Dtype::u8, 8},
};

void set_dtype(const std::string& descr, const std::string& name, Layout& layout) {
  for (const KnownDtype& known : kDtypes) {
    if (descr == known.descr) {
      layout.dtype = known.dtype;
      layout.item_size = known.item_size;
      return;
    }
  }
  for (const KnownDtype& known : kDtypes) {
    if (descr.size() == 3 && descr[0] == '>' && descr.substr(1) == std::string(known.descr + 1)) {
      fail(name, "big-endian data ('" + descr + "') is not supported; save it little-endian ('<" +
                     descr.substr(1) + "')");
    }
  }
  fail(name, "unsupported dtype '" + printable(descr) +
                 "' (expected float32 '<f4', float64 '<f8' or an integer type such as '<i8')");
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
  set_dtype(*descr, name, layout);

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

// The number of elements, or fail if the bytes cannot be addressed. Every
// non-zero extent counts, also when another is 0, so that the product of any
// subset of the extents (a sample's size, say) fits in int64 as well.
std::uint64_t element_count(const std::vector<std::int64_t>& shape, std::size_t item_size,
                            const std::string& name) {
  std::uint64_t product = 1;
  bool empty = false;
  const std::uint64_t limit = std::numeric_limits<std::int64_t>::max() / item_size;
  for (std::int64_t dim : shape) {
    if (dim == 0) {
      empty = true;
      continue;
    }
    if (product > limit / static_cast<std::uint64_t>(dim)) {
      fail(name, "shape " + describe_shape(shape) + " is too large");
    }
    product *= static_cast<std::uint64_t>(dim);
  }
  return empty ? 0 : product;
}

std::uint32_t read_little_endian(const std::string& bytes, std::size_t offset, int width) {
  std::uint32_t value = 0;
  for (int i = width - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[offset + static_cast<std::size_t>(i)]);
  }
  return value;
}

// ---------------------------------------------------------------------------
// Reading: the header first, then exactly the bytes it declares.

struct Header {
  Layout layout;
  std::uint64_t count = 0;        // elements
  std::uint64_t data_bytes = 0;   // count * item size
  std::uint64_t data_offset = 0;  // where the data starts
};

Header read_header(detail::InputSource& in) {
  const std::string& name = in.name();
  const std::string start = detail::read_up_to(in, kMagicSize + 2);
  if (start.size() < kMagicSize || start.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    fail(name, "not a .npy file (no \\x93NUMPY magic at the start)");
  }
  if (start.size() < kMagicSize + 2) fail(name, "truncated .npy header (no version)");
  const int major = static_cast<unsigned char>(start[kMagicSize]);
  const int minor = static_cast<unsigned char>(start[kMagicSize + 1]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
  }
  // Version 1.0 stores the header length in 2 bytes, 2.0 and 3.0 in 4.
  const int length_width = major == 1 ? 2 : 4;
  const std::string length_bytes = detail::read_up_to(in, static_cast<std::size_t>(length_width));
  if (length_bytes.size() < static_cast<std::size_t>(length_width)) {
    fail(name, "truncated .npy header (no length)");
  }
  const std::uint64_t header_length = read_little_endian(length_bytes, 0, length_width);
  const std::uint64_t header_offset = kMagicSize + 2 + static_cast<std::uint64_t>(length_width);
  if (header_length > kMaxHeaderBytes) {
    fail(name, "header length " + std::to_string(header_length) + " is absurd (over 1 MiB)");
  }
  const std::string text = detail::read_up_to(in, static_cast<std::size_t>(header_length));
  if (text.size() < header_length) {
    const std::uint64_t total = in.size().value_or(header_offset + text.size());
    fail(name, "truncated .npy header (length " + std::to_string(header_length) +
                   " runs past the " + std::to_string(total) + "-byte file)");
  }

  Header header;
  header.layout = read_layout(text, name);
  header.count = element_count(header.layout.shape, header.layout.item_size, name);
  header.data_bytes = header.count * header.layout.item_size;
  header.data_offset = header_offset + header_length;
  return header;
}

// ---------------------------------------------------------------------------
// Converting elements: exact or refused, never silently changed.

std::string element_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

[[noreturn]] void bad_element(const std::string& name, std::uint64_t index,
                              const std::string& value, const std::string& why) {
  fail(name, "element " + std::to_string(index) + " is " + value + ", " + why);
}

// Whether the integer `value` is exact in a float type with `digits`
// significand bits: its odd part must fit.
template <class I>
bool exact_in_float(I value, int digits) {
  std::uint64_t magnitude = static_cast<std::uint64_t>(value);
  if constexpr (std::is_signed_v<I>) {
    if (value < 0) magnitude = 0 - magnitude;  // |INT64_MIN| too, in unsigned arithmetic
  }
  if (magnitude == 0) return true;
  magnitude >>= std::countr_zero(magnitude);
  return static_cast<int>(std::bit_width(magnitude)) <= digits;
}

template <class T, class S>
T convert_one(S value, const std::string& name, std::uint64_t index) {
  if constexpr (std::is_floating_point_v<S>) {
    if constexpr (std::is_same_v<T, std::int64_t>) {
      // -2^63 <= value < 2^63, written so that NaN fails too.
      constexpr double kTwo63 = 9223372036854775808.0;
      if (!(std::trunc(value) == value && value >= -kTwo63 && value < kTwo63)) {
        bad_element(name, index, element_text(value), "not a whole number in the int64 range");
      }
      return static_cast<std::int64_t>(value);
    } else {
      const T converted = static_cast<T>(value);
      if (std::isinf(converted) && !std::isinf(value)) {
        bad_element(name, index, element_text(value), "outside the float32 range (+-3.4e38)");
      }
      return converted;  // NaN and infinities stay what they are; callers refuse them
    }
  } else {
    if constexpr (std::is_same_v<T, std::int64_t>) {
      if (std::is_unsigned_v<S> &&
          static_cast<std::uint64_t>(value) >
              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        bad_element(name, index, std::to_string(value), "beyond the int64 range");
      }
      return static_cast<std::int64_t>(value);
    } else {
      if (!exact_in_float(value, std::numeric_limits<T>::digits)) {
        bad_element(name, index, std::to_string(value),
                    std::string("not exactly representable as ") +
                        (sizeof(T) == 4 ? "float32" : "float64"));
      }
      return static_cast<T>(value);
    }
  }
}

template <class T, class S>
void convert_run(const char* bytes, std::uint64_t n, T* out, const std::string& name,
                 std::uint64_t first_index) {
  for (std::uint64_t i = 0; i < n; ++i) {
    S value;
    std::memcpy(&value, bytes + i * sizeof(S), sizeof(S));  // the data need not be aligned
    out[i] = convert_one<T>(value, name, first_index + i);
  }
}

template <class T>
void convert(Dtype dtype, const char* bytes, std::uint64_t n, T* out, const std::string& name,
             std::uint64_t first_index) {
  switch (dtype) {
    case Dtype::f4: return convert_run<T, float>(bytes, n, out, name, first_index);
    case Dtype::f8: return convert_run<T, double>(bytes, n, out, name, first_index);
    case Dtype::i1: return convert_run<T, std::int8_t>(bytes, n, out, name, first_index);
    case Dtype::i2: return convert_run<T, std::int16_t>(bytes, n, out, name, first_index);
    case Dtype::i4: return convert_run<T, std::int32_t>(bytes, n, out, name, first_index);
    case Dtype::i8: return convert_run<T, std::int64_t>(bytes, n, out, name, first_index);
    case Dtype::u1: return convert_run<T, std::uint8_t>(bytes, n, out, name, first_index);
    case Dtype::u2: return convert_run<T, std::uint16_t>(bytes, n, out, name, first_index);
    case Dtype::u4: return convert_run<T, std::uint32_t>(bytes, n, out, name, first_index);
    case Dtype::u8: return convert_run<T, std::uint64_t>(bytes, n, out, name, first_index);
  }
}

// The whole array as T: the size the header declares is checked against a
// file's size and the machine's memory before anything is read, then the
// data is read in chunks, converted as it arrives, and must end where the
// header says.
// A file of `size` bytes must hold exactly the data its header declares.
void check_file_size(const Header& header, std::uint64_t size, const std::string& name) {
  const std::string shape_text = describe_shape(header.layout.shape);
  const std::uint64_t present = size > header.data_offset ? size - header.data_offset : 0;
  if (present < header.data_bytes) {
    fail(name, "truncated data: shape " + shape_text + " needs " +
                   std::to_string(header.data_bytes) + " bytes, the file has " +
                   std::to_string(present));
  }
  if (present > header.data_bytes) {
    fail(name, std::to_string(present - header.data_bytes) +
                   " trailing bytes after the data of shape " + shape_text);
  }
}

template <class T>
std::pair<std::vector<std::int64_t>, std::vector<T>> read_array(detail::InputSource& in) {
  const std::string& name = in.name();
  const Header header = read_header(in);
  const std::string shape_text = describe_shape(header.layout.shape);
  if (const auto size = in.size()) check_file_size(header, *size, name);
  const std::uint64_t memory = detail::physical_memory_bytes();
  if (header.count > memory / sizeof(T)) {
    fail(name, "shape " + shape_text + " has " + std::to_string(header.count) +
                   " elements, more than fit in this machine's memory (" +
                   detail::describe_bytes(memory) + ")");
  }

  std::vector<T> out(static_cast<std::size_t>(header.count));
  constexpr std::uint64_t kChunkBytes = 1u << 20;
  const std::uint64_t chunk_items = kChunkBytes / header.layout.item_size;
  std::vector<char> chunk(static_cast<std::size_t>(
      std::min(header.count, chunk_items) * header.layout.item_size));
  for (std::uint64_t done = 0; done < header.count;) {
    const std::uint64_t n = std::min(header.count - done, chunk_items);
    const std::size_t bytes = static_cast<std::size_t>(n * header.layout.item_size);
    const std::size_t got = in.read(chunk.data(), bytes);
    if (got < bytes) {
      fail(name, "truncated data: shape " + shape_text + " needs " +
                     std::to_string(header.data_bytes) + " bytes, the input has " +
                     std::to_string(done * header.layout.item_size + got));
    }
    convert(header.layout.dtype, chunk.data(), n, out.data() + done, name, done);
    done += n;
  }
  if (detail::has_more(in)) {
    fail(name, "trailing bytes after the data of shape " + shape_text +
                   " (the input goes on past the " + std::to_string(header.data_bytes) +
                   " bytes its header declares)");
  }
  return {header.layout.shape, std::move(out)};
}

template <class Array>
Array parse_as(const std::string& bytes, const std::string& name) {
  detail::MemorySource in(bytes, name);
  auto [shape, data] = read_array<typename decltype(Array::data)::value_type>(in);
  return {std::move(shape), std::move(data)};
}

template <class Array>
Array read_as(const std::string& path) {
  detail::FileSource in(path);
  auto [shape, data] = read_array<typename decltype(Array::data)::value_type>(in);
  return {std::move(shape), std::move(data)};
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

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& name) {
  return parse_as<NpyArray>(bytes, name);
}

NpyArrayDouble parse_npy_double(const std::string& bytes, const std::string& name) {
  return parse_as<NpyArrayDouble>(bytes, name);
}

NpyArrayInt64 parse_npy_int64(const std::string& bytes, const std::string& name) {
  return parse_as<NpyArrayInt64>(bytes, name);
}

NpyArray read_npy(const std::string& path) { return read_as<NpyArray>(path); }

NpyArrayDouble read_npy_double(const std::string& path) { return read_as<NpyArrayDouble>(path); }

NpyArrayInt64 read_npy_int64(const std::string& path) { return read_as<NpyArrayInt64>(path); }

NpyArray detail::read_npy(InputSource& in) {
  auto [shape, data] = read_array<float>(in);
  return {std::move(shape), std::move(data)};
}

namespace {

template <typename T>
detail::NpyImage npy_image_as(const std::string& path, const std::vector<std::int64_t>& shape,
                              const T* data, const char* descr) {
  for (std::int64_t dim : shape) {
    if (dim < 0) {
      throw Error("cannot write " + path + ": shape " + describe_shape(shape) +
                  " has a negative dimension");
    }
  }
  const std::uint64_t count = element_count(shape, sizeof(T), path);
  if (count > 0 && data == nullptr) throw Error("cannot write " + path + ": no data");
  return {header_for(shape, descr),
          std::string_view(reinterpret_cast<const char*>(data), count * sizeof(T))};
}

template <typename T>
void write_npy_as(const std::string& path, const std::vector<std::int64_t>& shape, const T* data,
                  const char* descr) {
  detail::NpyImage image = npy_image_as(path, shape, data, descr);
  detail::OutputSet output;
  output.add(path, std::move(image.header), image.data);
  output.commit();
}

}  // namespace

NpyImage npy_image(const std::string& path, const std::vector<std::int64_t>& shape,
                   const float* data) {
  return npy_image_as(path, shape, data, "<f4");
}

std::string npy_header(const std::string& path, const std::vector<std::int64_t>& shape) {
  static const float kNothing = 0.0f;  // npy_image_as wants data for a non-empty shape
  NpyImage image = npy_image_as(path, shape, &kNothing, "<f4");
  return std::move(image.header);
}


void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const float* data) {
  write_npy_as(path, shape, data, "<f4");
}

void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const double* data) {
  write_npy_as(path, shape, data, "<f8");
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  detail::OutputSet output;
  output.add(path, {}, bytes);
  output.commit();
}

// ---------------------------------------------------------------------------
// Rows read at their offsets (NpyRowReader, npy.h).

namespace {

// A regular file read from its start with pread, so that the descriptor's
// offset never matters: the header is parsed through it.
class DescriptorSource final : public detail::InputSource {
 public:
  DescriptorSource(int fd, std::uint64_t size, const std::string& name)
      : InputSource(name), fd_(fd), size_(size) {}
  std::size_t read(char* out, std::size_t n) override {
    const std::size_t got = read_at(fd_, name(), position_, out, n);
    position_ += got;
    return got;
  }
  std::optional<std::uint64_t> size() const override { return size_; }

  // Up to n bytes at `offset`; fewer only at the end of the file.
  static std::size_t read_at(int fd, const std::string& name, std::uint64_t offset, char* out,
                             std::size_t n) {
    std::size_t total = 0;
    while (total < n) {
      const ssize_t got = ::pread(fd, out + total, n - total, static_cast<off_t>(offset + total));
      if (got < 0) {
        if (errno == EINTR) continue;
        throw Error("cannot read " + name + ": " + std::strerror(errno));
      }
      if (got == 0) break;
      total += static_cast<std::size_t>(got);
    }
    return total;
  }

 private:
  int fd_;
  std::uint64_t size_;
  std::uint64_t position_ = 0;
};

}  // namespace

NpyRowReader::NpyRowReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd_ < 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw Error("cannot read " + path + ": " + std::strerror(EISDIR));
    if (!S_ISREG(st.st_mode)) {
      fail(path, "rows are read at their offsets, which needs a regular file (this is a pipe, "
                 "FIFO or device)");
    }
    DescriptorSource in(fd_, static_cast<std::uint64_t>(st.st_size), path);
    const Header header = read_header(in);
    check_file_size(header, static_cast<std::uint64_t>(st.st_size), path);
    shape_ = header.layout.shape;
    for (std::size_t i = 1; i < shape_.size(); ++i) row_size_ *= shape_[i];
    dtype_ = static_cast<int>(header.layout.dtype);
    item_size_ = header.layout.item_size;
    data_offset_ = header.data_offset;
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

NpyRowReader::NpyRowReader(NpyRowReader&& other) noexcept { *this = std::move(other); }

NpyRowReader& NpyRowReader::operator=(NpyRowReader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    shape_ = std::move(other.shape_);
    row_size_ = other.row_size_;
    dtype_ = other.dtype_;
    item_size_ = other.item_size_;
    data_offset_ = other.data_offset_;
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

NpyRowReader::~NpyRowReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::int64_t NpyRowReader::rows() const { return shape_.empty() ? 1 : shape_.front(); }

template <class T>
void NpyRowReader::read_as(std::int64_t first_row, std::span<T> out) const {
  const auto count = static_cast<std::int64_t>(out.size());
  const std::int64_t row_count = row_size_ == 0 ? 0 : count / row_size_;
  if (first_row < 0 || (row_size_ == 0 ? count != 0 : count % row_size_ != 0) ||
      row_count > rows() - first_row) {
    throw Error(path_ + ": cannot read " + std::to_string(count) + " elements from row " +
                std::to_string(first_row) + " of an array of " + std::to_string(rows()) +
                " rows of " + std::to_string(row_size_));
  }
  constexpr std::uint64_t kChunkBytes = 1u << 20;
  const std::uint64_t chunk_items = kChunkBytes / item_size_;
  std::vector<char> chunk(
      static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), chunk_items) * item_size_));
  const std::uint64_t first = static_cast<std::uint64_t>(first_row * row_size_);
  for (std::uint64_t done = 0; done < out.size();) {
    const std::uint64_t n = std::min<std::uint64_t>(out.size() - done, chunk_items);
    const std::size_t bytes = static_cast<std::size_t>(n * item_size_);
    const std::uint64_t offset = data_offset_ + (first + done) * item_size_;
    if (DescriptorSource::read_at(fd_, path_, offset, chunk.data(), bytes) < bytes) {
      fail(path_, "truncated data: the file became shorter while it was read");
    }
    convert(static_cast<Dtype>(dtype_), chunk.data(), n, out.data() + done, path_, first + done);
    done += n;
  }
}

void NpyRowReader::read_rows(std::int64_t first_row, std::span<float> out) const {
  read_as(first_row, out);
}

void NpyRowReader::read_rows(std::int64_t first_row, std::span<std::int64_t> out) const {
  read_as(first_row, out);
}

}  // namespace ddpm
