#pragma once
// --backend and --threads, shared by every subcommand.
#include <CLI/CLI.hpp>
#include <string>

#include "ddpm/sampler.h"

namespace ddpm::cli {

// More threads than this is a typing error, not a machine.
inline constexpr int kMaxThreads = 4096;

struct BackendOptions {
  std::string backend = "auto";
  int threads = 0;

  void add_to(CLI::App& command);
  // Sets the backend and thread count of `options`; throws ddpm::Error for an
  // unknown backend name.
  void apply_to(SamplerOptions& options) const;
};

}  // namespace ddpm::cli
