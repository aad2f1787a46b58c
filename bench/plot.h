#pragma once
// A small PNG for people: achieved GB/s against elements (log2 axis) for each
// GPU kernel of the size ladder, the D2D copy as a dashed line.
#include <string>

#include "report.h"

namespace ddpm::bench {

// `path` usually the JSON's name with .png. Without GPU rows the image says
// why and gives the CPU figure. Throws ddpm::Error when it cannot be written.
void write_plot(const Report& report, const std::string& path);

// "bench.json" -> "bench.png"; "out" -> "out.png".
std::string plot_path_for(const std::string& json_path);

}  // namespace ddpm::bench
