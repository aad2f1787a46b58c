#include "format.h"

#include <cmath>
#include <cstdio>

namespace ddpm::bench {
namespace {

std::string scaled(double value, const char* const* units, int unit_count, double step,
                   const char* separator) {
  int unit = 0;
  double v = value;
  while (std::fabs(v) >= step && unit + 1 < unit_count) {
    v /= step;
    ++unit;
  }
  char text[64];
  const int digits = std::fabs(v) >= 100 ? 0 : (std::fabs(v) >= 10 ? 1 : 2);
  std::snprintf(text, sizeof text, "%.*f%s%s", digits, v, separator, units[unit]);
  return text;
}

}  // namespace

std::string format_seconds(double seconds) {
  char text[64];
  if (seconds < 1e-6) {
    std::snprintf(text, sizeof text, "%.0f ns", seconds * 1e9);
  } else if (seconds < 1e-3) {
    std::snprintf(text, sizeof text, "%.2f us", seconds * 1e6);
  } else if (seconds < 1.0) {
    std::snprintf(text, sizeof text, "%.3f ms", seconds * 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.3f s", seconds);
  }
  return text;
}

std::string format_count(double value) {
  static const char* const units[] = {"", "k", "M", "G", "T"};
  return scaled(value, units, 5, 1000.0, " ");
}

std::string format_bytes(double bytes) {
  static const char* const units[] = {"B", "kB", "MB", "GB", "TB"};
  return scaled(bytes, units, 5, 1000.0, " ");
}

std::string format_fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

std::string format_elements(std::int64_t elements) {
  if (elements >= 1024 && (elements & (elements - 1)) == 0) {
    int log2 = 0;
    while ((std::int64_t{1} << log2) < elements) ++log2;
    return "2^" + std::to_string(log2);
  }
  const std::string digits = std::to_string(elements);
  std::string grouped;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && digits[i - 1] != '-' && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  return grouped;
}

std::string pad(const std::string& text, std::size_t width, bool right) {
  if (text.size() >= width) return text;
  const std::string fill(width - text.size(), ' ');
  return right ? fill + text : text + fill;
}

}  // namespace ddpm::bench
