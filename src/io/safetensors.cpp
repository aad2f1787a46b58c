#include "safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "strict_json.h"

static_assert(std::endian::native == std::endian::little,
              "the safetensors reader copies little-endian floats as they are");

namespace ddpm::detail {
namespace {

// Headers nest two levels ({"name": {"shape": [..]}}); deeper JSON is refused
// while it is parsed, before it can cost anything.
constexpr int kMaxJsonDepth = 4;

class ParseError {
 public:
  explicit ParseError(std::string file) : file_(std::move(file)) {}
  [[noreturn]] void operator()(const std::string& what) const { throw Error(file_ + ": " + what); }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

std::string printable(std::string_view name) {
  // Names come from the file: keep the message on one line and short.
  std::string out = "'";
  for (char c : name.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (name.size() > 80) out += "...";
  return out + "'";
}

std::uint64_t read_u64_le(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

nlohmann::json parse_header_json(std::string_view text, const ParseError& fail) {
  if (text.empty() || text.front() != '{') fail("safetensors header does not start with '{'");
  // JSON would let a later duplicate of a tensor's name replace the first.
  std::set<std::string> top_level_keys;
  const nlohmann::json::parser_callback_t check =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (depth > kMaxJsonDepth) fail("safetensors header nests deeper than a header can");
        if (event == nlohmann::json::parse_event_t::key && depth == 1 &&
            !top_level_keys.insert(parsed.get<std::string>()).second) {
          fail("safetensors header names " + printable(parsed.get<std::string>()) + " twice");
        }
        return true;
      };
  // The format pads the header with spaces (0x20) to align the data, and
  // with nothing else: a NUL, a newline or text after the object is refused.
  const std::string_view json = text.substr(0, text.find_last_not_of(' ') + 1);
  nlohmann::json header = parse_json(json, fail.file() + ": safetensors header", {.callback = check});
  if (json.back() != '}') {  // other JSON whitespace, which parse_json allows
    fail("safetensors header has byte " + std::to_string(static_cast<unsigned char>(json.back())) +
         " at offset " + std::to_string(json.size() - 1) +
         " after its JSON object; only spaces may pad the header");
  }
  return header;
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& j, const ParseError& fail) {
  if (!j.is_object()) fail("safetensors __metadata__ is not an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) fail("safetensors __metadata__ value " + printable(key) + " is not a string");
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

struct Entry {
  SafetensorsTensor tensor;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

Entry parse_entry(const std::string& name, const nlohmann::json& j, const ParseError& fail) {
  const std::string what = "tensor " + printable(name);
  if (!j.is_object()) fail(what + " is not an object");
  for (const auto& [key, value] : j.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      fail(what + " has an unknown field " + printable(key));
    }
  }
  if (!j.contains("dtype") || !j.contains("shape") || !j.contains("data_offsets")) {
    fail(what + " needs dtype, shape and data_offsets");
  }
  const nlohmann::json& dtype = j["dtype"];
  if (!dtype.is_string()) fail(what + " has a dtype that is not a string");
  Entry e;
  e.tensor.name = name;
  const std::string& dtype_name = dtype.get_ref<const std::string&>();
  if (dtype_name == "F32") {
    e.tensor.dtype = SafetensorsDtype::f32;
  } else if (dtype_name == "F16") {
    e.tensor.dtype = SafetensorsDtype::f16;
  } else if (dtype_name == "BF16") {
    e.tensor.dtype = SafetensorsDtype::bf16;
  } else {
    fail(what + " has dtype " + printable(dtype_name) + "; ddpm reads F32, F16 and BF16");
  }
  const std::uint64_t element_bytes = e.tensor.element_bytes();
  const nlohmann::json& shape = j["shape"];
  if (!shape.is_array()) fail(what + " has a shape that is not an array");
  std::uint64_t elements = 1;
  constexpr std::uint64_t kMaxElements = std::numeric_limits<std::int64_t>::max() / 4;
  for (const nlohmann::json& d : shape) {
    if (!d.is_number_unsigned()) fail(what + " has a shape entry that is not an integer >= 0");
    const std::uint64_t n = d.get<std::uint64_t>();
    if (n != 0 && elements > kMaxElements / n) fail(what + "'s shape overflows the element count");
    elements *= n;
    e.tensor.shape.push_back(static_cast<std::int64_t>(n));
  }
  const nlohmann::json& offsets = j["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    fail(what + " needs data_offsets [BEGIN, END] of integers >= 0");
  }
  e.begin = offsets[0].get<std::uint64_t>();
  e.end = offsets[1].get<std::uint64_t>();
  if (e.end < e.begin) fail(what + " has data_offsets that end before they begin");
  if (e.end - e.begin != elements * element_bytes) {
    fail(what + " of shape " + e.tensor.shape_text() + " needs " + std::to_string(elements * element_bytes) +
         " bytes but its data_offsets span " + std::to_string(e.end - e.begin));
  }
  e.tensor.elements = static_cast<std::int64_t>(elements);
  return e;
}

// The mapping of a file, unmapped when the last SafetensorsFile using it goes.
struct Mapping {
  void* data = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (data) munmap(data, size);
  }
};

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail_system(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

std::vector<float> SafetensorsTensor::to_floats() const {
  std::vector<float> out(static_cast<std::size_t>(elements));
  if (bytes.empty()) return out;
  if (dtype == SafetensorsDtype::f32) {
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }
  // Half widths widen exactly: bfloat16 is float32's top half; float16 by its fields.
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint16_t h = 0;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    out[i] = dtype == SafetensorsDtype::bf16 ? bfloat16_to_float(h) : float16_to_float(h);
  }
  return out;
}

float float16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const int exponent = (h >> 10) & 0x1f;
  const std::uint32_t mantissa = h & 0x3ffu;
  float magnitude = 0.0f;
  if (exponent == 0x1f) {
    magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // subnormal
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), exponent - 25);
  }
  std::uint32_t bits = 0;
  std::memcpy(&bits, &magnitude, 4);
  bits |= sign;
  float out = 0.0f;
  std::memcpy(&out, &bits, 4);
  return out;
}

float bfloat16_to_float(std::uint16_t h) {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float out = 0.0f;
  std::memcpy(&out, &bits, 4);
  return out;
}

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return out + "]";
}

std::string SafetensorsTensor::shape_text() const { return detail::shape_text(shape); }

void SafetensorsFile::release(const SafetensorsTensor& tensor) const {
  if (!storage_ || tensor.bytes.empty()) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(tensor.bytes.data());
  const std::uintptr_t first = (begin + page - 1) / page * page;
  const std::uintptr_t last = (begin + tensor.bytes.size()) / page * page;
  // Advice only: a failure changes nothing but the memory in use.
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view tensor_name) const {
  for (const SafetensorsTensor& t : tensors_) {
    if (t.name == tensor_name) return &t;
  }
  return nullptr;
}

const SafetensorsTensor& SafetensorsFile::at(std::string_view tensor_name) const {
  if (const SafetensorsTensor* t = find(tensor_name)) return *t;
  throw Error(name_ + ": no tensor " + printable(tensor_name));
}

SafetensorsFile parse_safetensors(std::span<const std::byte> bytes, std::string name) {
  const ParseError fail(name);
  if (bytes.size() < 8) {
    fail("not a safetensors file: " + std::to_string(bytes.size()) +
         " bytes, shorter than the 8-byte header length");
  }
  const std::uint64_t header_bytes = read_u64_le(bytes.data());
  const std::uint64_t available = bytes.size() - 8;
  if (header_bytes > kMaxHeaderBytes) {
    fail("not a safetensors file: header length " + std::to_string(header_bytes) +
         " exceeds the 100 MB limit");
  }
  if (header_bytes > available) {
    fail("truncated or not a safetensors file: header length " + std::to_string(header_bytes) +
         " but only " + std::to_string(available) + " bytes follow");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_bytes);
  const nlohmann::json header = parse_header_json(text, fail);
  if (!header.is_object()) fail("safetensors header is not a JSON object");

  SafetensorsFile file;
  file.name_ = std::move(name);
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      file.metadata_ = parse_metadata(value, fail);
    } else {
      entries.push_back(parse_entry(key, value, fail));
    }
  }
  // The data section must be tiled exactly: sorted by offset, each tensor
  // starts where the previous one ended and the last ends at the file's end.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const std::uint64_t data_bytes = available - header_bytes;
  const std::byte* data = bytes.data() + 8 + header_bytes;
  std::uint64_t expected = 0;
  for (Entry& e : entries) {
    const std::string what = "tensor " + printable(e.tensor.name);
    if (e.end > data_bytes) {
      fail("truncated: " + what + " ends at byte " + std::to_string(e.end) +
           " of a data section of " + std::to_string(data_bytes) + " bytes");
    }
    if (e.begin < expected) fail(what + " overlaps the tensor before it");
    if (e.begin > expected) {
      fail("bytes " + std::to_string(expected) + ".." + std::to_string(e.begin) +
           " of the data section belong to no tensor (before " + what + ")");
    }
    expected = e.end;
    e.tensor.bytes = std::span<const std::byte>(data + e.begin, e.end - e.begin);
    file.tensors_.push_back(std::move(e.tensor));
  }
  if (expected != data_bytes) {
    fail("the data section has " + std::to_string(data_bytes - expected) +
         " bytes after the last tensor (truncated header or trailing data)");
  }
  return file;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  // O_NONBLOCK: a FIFO without a writer is refused below instead of waited for.
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) fail_system(path, "cannot open");
  struct stat info {};
  if (fstat(fd.get(), &info) != 0) fail_system(path, "cannot stat");
  if (S_ISDIR(info.st_mode)) throw Error(path + ": is a directory, not a safetensors file");
  if (!S_ISREG(info.st_mode)) {
    throw Error(path + ": not a regular file (a safetensors model is mapped into memory, not "
                       "streamed: give a file, not a pipe, FIFO or device)");
  }
  auto mapping = std::make_shared<Mapping>();
  const auto size = static_cast<std::size_t>(info.st_size);
  if (size > 0) {
    void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) fail_system(path, "cannot map");
    mapping->data = p;
    mapping->size = size;
  }
  SafetensorsFile file = parse_safetensors(
      std::span<const std::byte>(static_cast<const std::byte*>(mapping->data), size), path);
  file.storage_ = std::move(mapping);
  return file;
}

}  // namespace ddpm::detail
