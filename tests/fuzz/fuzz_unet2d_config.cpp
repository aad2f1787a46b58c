// UNet2DConfig::from_json on arbitrary text (a diffusers config.json): a
// config or ddpm::Error, never a crash; a config it returns has as many
// block types as channel counts, positive sizes, and attention heads that
// fit their channels; a text it accepts is refused with anything but
// whitespace after it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ddpm/error.h"
#include "ddpm/unet2d.h"
#include "whole_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const ddpm::UNet2DConfig c = ddpm::UNet2DConfig::from_json(text);
    ddpm::fuzz::require_whole_text_read(text, ddpm::UNet2DConfig::from_json);
    const std::size_t levels = c.block_out_channels.size();
    if (levels == 0 || c.down_block_types.size() != levels || c.up_block_types.size() != levels) __builtin_trap();
    for (int channels : c.block_out_channels) {
      if (channels < 1 || channels % c.norm_num_groups != 0) __builtin_trap();
    }
    if (c.in_channels < 1 || c.out_channels < 1 || c.layers_per_block < 1 || c.time_embed_dim() < 1) __builtin_trap();
    if (!(c.norm_eps > 0.0) || c.mid_block_scale_factor == 0.0) __builtin_trap();
    if ((c.sample_height == 0) != (c.sample_width == 0)) __builtin_trap();
  } catch (const ddpm::Error&) {
  }
  return 0;
}
