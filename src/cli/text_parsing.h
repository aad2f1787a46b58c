#pragma once
// Strict parsing of the CLI's small text values ("256,3072", "-1,1", "500"):
// the whole text must be consumed, so "12,,3" or "1.5x" is an error rather
// than a silently truncated number.
#include <cstdint>
#include <string>
#include <vector>

#include "ddpm/types.h"

namespace ddpm::cli {

// "256,3072" or "16,3,64,64": every extent a positive integer. `flag` names
// the option in errors (empty: the caller adds it, as CLI11's checks do).
std::vector<std::int64_t> parse_shape(const std::string& text, const std::string& flag);

// "LO,HI" with finite LO < HI.
ClipRange parse_clip_range(const std::string& text, const std::string& flag);

// One to max_count comma-separated finite numbers ("0.995,1.5"); `example`
// shows the expected form in errors.
std::vector<double> parse_numbers(const std::string& text, const std::string& flag,
                                  std::size_t min_count, std::size_t max_count,
                                  const std::string& example);

// The first axis is the batch, the rest flattened into one sample.
Shape batch_shape(const std::vector<std::int64_t>& extents);

// "256x3072", as the summaries print shapes.
std::string format_shape(const std::vector<std::int64_t>& extents);

// "0.02", "1e-04": a number as a person wrote it, in messages.
std::string format_number(double value);

}  // namespace ddpm::cli
