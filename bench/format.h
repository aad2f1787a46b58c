#pragma once
// Numbers as people read them: decimal units (1 GB = 1e9 bytes, as GB/s is).
#include <cstdint>
#include <string>

namespace ddpm::bench {

std::string format_seconds(double seconds);  // "4.10 us", "1.23 ms", "2.35 s"
std::string format_count(double value);      // "3.00 G", "512 M", "12.3 k"
std::string format_bytes(double bytes);      // "147.5 kB", "3.22 GB"
std::string format_fixed(double value, int digits);
std::string format_elements(std::int64_t elements);  // "12,288", "2^20"
// `text` padded with spaces to `width`, on the left when `right` (right-aligned).
std::string pad(const std::string& text, std::size_t width, bool right = false);

}  // namespace ddpm::bench
