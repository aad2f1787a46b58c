#pragma once
// Builds safetensors files in memory for the tests: valid ones from tensors
// and metadata, and hostile ones from a raw header and data section.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace ddpm::test {

struct TensorBytes {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

// 8-byte little-endian length, the header as given, then the data.
inline std::vector<std::byte> safetensors_raw(const std::string& header,
                                              const std::vector<std::byte>& data = {}) {
  std::vector<std::byte> out(8);
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline std::vector<std::byte> float_bytes(const std::vector<float>& values) {
  std::vector<std::byte> out(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A valid file: tensors laid out in the order given, header padded with
// spaces to a multiple of 8 bytes as the safetensors writer does.
inline std::vector<std::byte> safetensors_bytes(const std::vector<TensorBytes>& tensors,
                                                const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<std::byte> data;
  for (const TensorBytes& t : tensors) {
    const std::vector<std::byte> bytes = float_bytes(t.values);
    header[t.name] = {{"dtype", "F32"},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data.insert(data.end(), bytes.begin(), bytes.end());
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text += ' ';
  return safetensors_raw(text, data);
}

// The tensors and metadata of a parsed file, to modify and write back.
inline std::vector<TensorBytes> tensors_of(const detail::SafetensorsFile& file) {
  std::vector<TensorBytes> out;
  for (const detail::SafetensorsTensor& t : file.tensors()) out.push_back({t.name, t.shape, t.to_floats()});
  return out;
}

inline void write_bytes(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace ddpm::test
