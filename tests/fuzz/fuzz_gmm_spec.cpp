// GmmSpec::from_json on arbitrary text: a valid spec or ddpm::Error, and a
// spec it returns passes its own validation; a text it accepts is refused
// with anything but whitespace after it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "whole_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const ddpm::GmmSpec spec = ddpm::GmmSpec::from_json(text);
    ddpm::fuzz::require_whole_text_read(text, ddpm::GmmSpec::from_json);
    spec.validate();
    if (spec.dim() <= 0 || spec.components() <= 0) __builtin_trap();
  } catch (const ddpm::Error&) {
  }
  return 0;
}
