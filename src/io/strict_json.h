#pragma once
// The one way ddpm parses JSON text from a file or a caller: RFC 8259, with
// the whole text consumed. nlohmann-json alone stops at a NUL byte as if the
// text ended there ({...}\0garbage parses), so every reader calls this
// instead of json::parse:
//
// - a NUL byte anywhere is refused (JSON has none; "\u0000" in a string is fine);
// - after the value only whitespace (space, tab, CR, LF) may follow;
// - errors are one line: "<name> is not valid JSON at byte <offset>: <reason>",
//   the offset counted from 0 in the text given.
//
// Python's json module writes Infinity, -Infinity and NaN for non-finite
// floats, and diffusers saves scheduler configs with it
// ("lambda_min_clipped": -Infinity); JsonOptions::python_nonfinite accepts
// those three tokens (outside strings, where a value may stand) as the
// double values they name. Only the scheduler-config readers ask for it.
#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ddpm::detail {

struct JsonOptions {
  bool python_nonfinite = false;
  // Called as nlohmann's parser callback is (e.g. to refuse duplicate keys
  // or deep nesting while parsing); may throw.
  nlohmann::json::parser_callback_t callback = nullptr;
};

// The value `text` holds; throws ddpm::Error naming `name` (a path, or what
// the text is: "scheduler config") and the byte offset of the first error.
nlohmann::json parse_json(std::string_view text, std::string_view name,
                          const JsonOptions& options = {});

}  // namespace ddpm::detail
