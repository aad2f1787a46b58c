// MlpModelCard::from_json on arbitrary text: a card or ddpm::Error, never a
// crash; a card it returns has the sizes and the normalization it promises
// (float32-finite, pixel_min and pixel_max apart), and a text it accepts is
// refused with anything but whitespace after it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "whole_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const ddpm::MlpModelCard card = ddpm::MlpModelCard::from_json(text);
    ddpm::fuzz::require_whole_text_read(text, ddpm::MlpModelCard::from_json);
    if (card.data_dim < 1 || card.hidden_dim < 1) __builtin_trap();
    std::int64_t product = 1;
    for (const std::int64_t d : card.data_shape) product *= d;
    if (product != card.data_dim) __builtin_trap();
    const ddpm::DataNormalization& n = card.normalization;
    const float low = n.from_pixel(n.pixel_min), high = n.from_pixel(n.pixel_max);
    if (!std::isfinite(low) || !std::isfinite(high) || low == high) __builtin_trap();
    card.recommended_config();  // a card's own sampler settings are usable or refused
  } catch (const ddpm::Error&) {
  }
  return 0;
}
