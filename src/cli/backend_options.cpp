#include "backend_options.h"

#include "command_line.h"

namespace ddpm::cli {

void BackendOptions::add_to(CLI::App& command) {
  command.add_option("--backend", backend, "auto (CUDA when a device is usable), cpu or cuda")
      ->check(parsed_by([](const std::string& name) { parse_backend(name); }))
      ->capture_default_str();
  command.add_option("--threads", threads, "CPU worker threads (0: all hardware threads)")
      ->check(CLI::Range(0, kMaxThreads))
      ->capture_default_str();
}

void BackendOptions::apply_to(SamplerOptions& options) const {
  options.backend = parse_backend(backend);
  options.threads = threads;
}

}  // namespace ddpm::cli
