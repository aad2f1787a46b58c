#include "text_parsing.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>

#include "ddpm/error.h"

namespace ddpm::cli {
namespace {

std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma - start));
    if (comma == std::string_view::npos) return parts;
    start = comma + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// "--shape '12,,3'" in messages, or "'12,,3'" where CLI11 names the flag.
std::string quoted(const std::string& flag, const std::string& text) {
  return (flag.empty() ? "" : flag + " ") + "'" + text + "'";
}

// from_chars rejects a leading '+', which people do type; accept it.
std::string_view skip_plus(std::string_view s) {
  return s.size() > 1 && s.front() == '+' ? s.substr(1) : s;
}

}  // namespace

std::vector<std::int64_t> parse_shape(const std::string& text, const std::string& flag) {
  const std::string problem = quoted(flag, text) + " is not a shape like 256,3072: ";
  if (trim(text).empty()) throw Error(problem + "it is empty");
  std::vector<std::int64_t> extents;
  std::int64_t elements = 1;
  for (std::string_view part : split_commas(text)) {
    part = skip_plus(trim(part));
    if (part.empty()) throw Error(problem + "an extent is missing");
    std::int64_t extent = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), extent);
    if (ec == std::errc::result_out_of_range) throw Error(problem + "an extent is too large");
    if (ec != std::errc() || end != part.data() + part.size()) {
      throw Error(problem + "'" + std::string(part) + "' is not an integer");
    }
    if (extent <= 0) throw Error(problem + "every extent must be positive");
    if (elements > std::numeric_limits<std::int64_t>::max() / extent) {
      throw Error(problem + "it has too many elements");
    }
    elements *= extent;
    extents.push_back(extent);
  }
  return extents;
}

ClipRange parse_clip_range(const std::string& text, const std::string& flag) {
  const std::string problem = quoted(flag, text) + " is not a range like -1,1: ";
  const std::vector<std::string_view> parts = split_commas(text);
  if (parts.size() != 2) throw Error(problem + "expected two numbers LO,HI");
  float bounds[2];
  for (int i = 0; i < 2; ++i) {
    const std::string_view part = skip_plus(trim(parts[static_cast<std::size_t>(i)]));
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), bounds[i]);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() ||
        !std::isfinite(bounds[i])) {
      throw Error(problem + "'" + std::string(part) + "' is not a finite number");
    }
  }
  if (!(bounds[0] < bounds[1])) throw Error(problem + "LO must be below HI");
  return {bounds[0], bounds[1]};
}

std::vector<double> parse_numbers(const std::string& text, const std::string& flag,
                                  std::size_t min_count, std::size_t max_count,
                                  const std::string& example) {
  const std::string problem = flag + " '" + text + "' is not like " + example + ": ";
  const std::vector<std::string_view> parts = split_commas(text);
  if (parts.size() < min_count || parts.size() > max_count) {
    throw Error(problem + "expected " + std::to_string(min_count) +
                (min_count == max_count ? "" : " to " + std::to_string(max_count)) + " numbers");
  }
  std::vector<double> values;
  for (std::string_view part : parts) {
    part = skip_plus(trim(part));
    double v = 0.0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || !std::isfinite(v)) {
      throw Error(problem + "'" + std::string(part) + "' is not a finite number");
    }
    values.push_back(v);
  }
  return values;
}

Shape batch_shape(const std::vector<std::int64_t>& extents) {
  Shape shape;
  shape.batch = extents.empty() ? 0 : extents.front();
  shape.dim = 1;
  for (std::size_t i = 1; i < extents.size(); ++i) shape.dim *= extents[i];
  return shape;
}

std::string format_shape(const std::vector<std::int64_t>& extents) {
  std::string text;
  for (std::size_t i = 0; i < extents.size(); ++i) {
    if (i > 0) text += 'x';
    text += std::to_string(extents[i]);
  }
  return extents.empty() ? "scalar" : text;
}

std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

}  // namespace ddpm::cli
