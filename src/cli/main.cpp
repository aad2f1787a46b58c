// The ddpm command-line program: wires the subcommands together and turns
// every failure into one line on stderr and exit status 1 (scripts grep it).
#include <CLI/CLI.hpp>
#include <csignal>
#include <exception>
#include <new>
#include <stdexcept>
#include <iostream>
#include <string>

#include "commands.h"
#include "file_output.h"

namespace {

// Messages from the library are one line already; a stray newline from
// elsewhere (a system message, a JSON parser) must not break that promise.
std::string one_line(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return message;
}

void report(const std::string& message) {
  std::cerr << "ddpm: error: " << one_line(message) << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts: SIGINT, SIGTERM and SIGHUP remove the
  // temporaries of unfinished outputs, and a closed pipe is a write error
  // (EPIPE, reported and cleaned up like any other) instead of a silent death.
  ddpm::detail::remove_temporaries_on_signals();
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"ddpm: DDPM forward noising and sampling on the CPU or a CUDA device", "ddpm"};
  app.require_subcommand(1);
  // CLI11's own messages (unknown flag, missing value), in the same one-line form.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "ddpm: error: " + one_line(e.what()) + " (see --help)\n";
  });
  ddpm::cli::add_forward_command(app);
  ddpm::cli::add_sample_command(app);
  ddpm::cli::add_demo_command(app);

  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // --help prints and exits 0; a usage error exits non-zero
  } catch (const std::bad_alloc&) {
    report("out of memory: the arrays do not fit; use a smaller batch, or split it into runs "
           "with --first-sample");
    return 1;
  } catch (const std::length_error&) {
    report("the arrays are too large to allocate; use a smaller batch");
    return 1;
  } catch (const std::exception& e) {
    report(e.what());
    return 1;
  }
  return 0;
}
