#pragma once
// A reader of safetensors files (https://github.com/huggingface/safetensors):
//
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   the header: a JSON object {"NAME": {"dtype": "F32", "shape": [..],
//             "data_offsets": [BEGIN, END]}, ..., "__metadata__": {"k": "v", ..}}
//   the rest  the data: tensor NAME is bytes [BEGIN, END) of it
//
// Everything is validated as the reference implementation does, and a little
// more: the header fits the file and is at most kMaxHeaderBytes, it is a JSON
// object starting with '{' (space padding after it is fine), every tensor has
// exactly dtype, shape and data_offsets, the dtype is F32, F16 or BF16 (the
// ones ddpm reads; others are refused by name), the shape's element count does
// not overflow and equals (END - BEGIN) / its width, and the tensors tile the data section
// exactly (sorted by offset, each starts where the previous ended, the last
// ends at the end of the file: no holes, no overlaps, no trailing bytes).
// __metadata__ must map strings to strings. Every failure is a ddpm::Error
// whose one-line message starts with the file's name; nothing here can read
// outside the buffer.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ddpm::detail {

// The reference implementation's cap on the header (100 MB).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

enum class SafetensorsDtype { f32, f16, bf16 };

// IEEE half and bfloat16 bits as the float they are (exact).
float float16_to_float(std::uint16_t bits);
float bfloat16_to_float(std::uint16_t bits);

// "[256, 64]".
std::string shape_text(std::span<const std::int64_t> shape);

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::f32;
  std::vector<std::int64_t> shape;
  std::int64_t elements = 0;
  std::span<const std::byte> bytes;  // elements x element_bytes() little-endian bytes, unaligned

  int element_bytes() const { return dtype == SafetensorsDtype::f32 ? 4 : 2; }
  const char* dtype_name() const {
    return dtype == SafetensorsDtype::f32 ? "F32" : dtype == SafetensorsDtype::f16 ? "F16" : "BF16";
  }
  // The values as floats, half widths widened exactly (copied out: the bytes
  // need not be aligned).
  std::vector<float> to_floats() const;
  std::string shape_text() const;  // "[256, 64]"
};

class SafetensorsFile {
 public:
  // Memory-maps `path` read-only and parses it. A missing, unreadable or
  // non-regular file is an error naming the path and the system's reason.
  static SafetensorsFile open(const std::string& path);

  const std::string& name() const { return name_; }
  // Sorted by data offset (the order of the data section).
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view tensor_name) const;
  // Throws "<file>: no tensor '<name>'".
  const SafetensorsTensor& at(std::string_view tensor_name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tells the system that `tensor`'s bytes (of this file) will not be read
  // again: the whole pages inside them leave the process's memory (they are
  // read from the file again if they are touched). A reader that copies each
  // tensor out calls it after the copy, so that the file and its copy are
  // never both in memory. Does nothing for a file parsed from memory.
  void release(const SafetensorsTensor& tensor) const;

 private:
  friend SafetensorsFile parse_safetensors(std::span<const std::byte>, std::string);
  std::string name_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<const void> storage_;  // the mapping the tensors' bytes point into, if owned
};

// Parses a whole file held in memory; `name` appears in error messages. The
// tensors' bytes point into `bytes`, which must outlive the result. This is
// the entry point for a fuzzing harness (LLVMFuzzerTestOneInput can call it on
// its buffer and catch ddpm::Error).
SafetensorsFile parse_safetensors(std::span<const std::byte> bytes, std::string name);

}  // namespace ddpm::detail
