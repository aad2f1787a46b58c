#pragma once
// The oracle the JSON harnesses share. A harness that only waits for a crash
// cannot see a reader that stops early: nlohmann-json ends the text at a NUL
// byte, so {...}\0garbage was accepted, and nothing crashed.
// Every text a reader accepts must therefore stop being accepted when a
// byte that is not whitespace follows it: the reader read all of it.
#include <string>
#include <string_view>

#include "ddpm/error.h"

namespace ddpm::fuzz {

// Traps when `read` accepts `text` followed by a NUL byte or by other text.
template <class Read>
void require_whole_text_read(const std::string& text, Read read) {
  using namespace std::literals;
  for (const std::string_view tail : {"\0"sv, "x"sv, "\0}"sv}) {
    const std::string longer = text + std::string(tail);
    try {
      read(longer);
    } catch (const ddpm::Error&) {
      continue;
    }
    __builtin_trap();
  }
}

}  // namespace ddpm::fuzz
