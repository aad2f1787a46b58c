#include "strict_json.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ddpm/error.h"

namespace ddpm::detail {
namespace {

bool is_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A Python non-finite token replaced by the number 0 padded with spaces to
// its length (so byte offsets stay those of the caller's text), and the
// value it stands for, keyed by the token's place among the text's numbers.
struct NonFinite {
  std::size_t number_index = 0;
  double value = 0.0;
};

// Walks `text` outside string literals, replacing Infinity, -Infinity and
// NaN where a value may begin (after '[', ',', ':' or at the start), and
// counting the number tokens before each. Anything else is left for the
// parser to judge.
std::vector<NonFinite> replace_python_nonfinite(std::string& text) {
  std::vector<NonFinite> found;
  std::size_t numbers = 0;
  char previous = '\0';  // the last character outside whitespace and strings
  const auto value_may_begin = [&] {
    return previous == '\0' || previous == '[' || previous == ',' || previous == ':';
  };
  const auto replace = [&](std::size_t at, std::size_t length, double value) {
    text.replace(at, length, "0" + std::string(length - 1, ' '));
    found.push_back({numbers++, value});
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
      previous = '"';
    } else if (is_whitespace(c)) {
      ++i;
    } else if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      if (c == '-' && text.compare(i + 1, 8, "Infinity") == 0 && value_may_begin()) {
        replace(i, 9, -std::numeric_limits<double>::infinity());
        i += 9;
      } else {
        ++numbers;
        for (++i; i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) ||
                                      std::string_view("+-.eE").find(text[i]) != std::string_view::npos);
             ++i) {
        }
      }
      previous = '0';
    } else if (std::isalpha(static_cast<unsigned char>(c))) {
      std::size_t end = i;
      while (end < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) {
        ++end;
      }
      const std::string_view word(text.data() + i, end - i);
      if (value_may_begin() && word == "Infinity") {
        replace(i, end - i, std::numeric_limits<double>::infinity());
      } else if (value_may_begin() && word == "NaN") {
        replace(i, end - i, std::numeric_limits<double>::quiet_NaN());
      }
      i = end;
      previous = 'a';
    } else {
      previous = c;
      ++i;
    }
  }
  return found;
}

// "syntax error while parsing value - invalid literal; last read: 'x'" out
// of nlohmann's "[json.exception.parse_error.101] parse error at line 1,
// column 2: ...".
std::string reason_of(const nlohmann::json::exception& e) {
  const std::string what = e.what();
  const std::size_t at = what.find("parse error");
  if (at != std::string::npos) {
    const std::size_t colon = what.find(": ", at);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  const std::size_t bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

}  // namespace

nlohmann::json parse_json(std::string_view text, std::string_view name, const JsonOptions& options) {
  const auto fail = [&](std::size_t offset, const std::string& reason) -> Error {
    return Error(std::string(name) + " is not valid JSON at byte " + std::to_string(offset) + ": " +
                 reason);
  };
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    throw fail(nul, "a NUL byte (JSON text has none; nothing may follow the value but whitespace)");
  }
  std::string copy;
  std::vector<NonFinite> nonfinite;
  if (options.python_nonfinite) {
    copy.assign(text);
    nonfinite = replace_python_nonfinite(copy);
    text = copy;
  }
  nlohmann::json::parser_callback_t callback = options.callback;
  if (!nonfinite.empty()) {
    // The parser reports values in the order of the text, so the n-th
    // number it reports is the n-th number token counted above.
    callback = [&, numbers = std::size_t{0}, next = std::size_t{0}](
                   int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) mutable {
      if (event == nlohmann::json::parse_event_t::value && parsed.is_number()) {
        if (next < nonfinite.size() && nonfinite[next].number_index == numbers) {
          parsed = nonfinite[next++].value;
        }
        ++numbers;
      }
      return options.callback ? options.callback(depth, event, parsed) : true;
    };
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts from 1 the character the parser stopped at.
    throw fail(e.byte > 0 ? e.byte - 1 : 0, reason_of(e));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string(name) + " is not valid JSON: " + reason_of(e));
  }
}

}  // namespace ddpm::detail
