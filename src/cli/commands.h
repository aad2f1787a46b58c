#pragma once
// The subcommands of the ddpm program. Each adds itself to the top-level app
// with its flags and a callback that does the work and throws ddpm::Error on
// bad input; main() turns an exception into one line on stderr.
#include <CLI/CLI.hpp>

namespace ddpm::cli {

void add_forward_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_schedule_command(CLI::App& app);
void add_illustrate_command(CLI::App& app);
void add_unet_eval_command(CLI::App& app);

}  // namespace ddpm::cli
