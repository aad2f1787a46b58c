// The ddpm command-line program: wires the subcommands together and turns
// every failure into one line on stderr and an exit status that says what
// kind of failure it was (see command_line.h): 1 for a failed run, 2 for a
// command line that cannot be understood.
#include <algorithm>
#include <CLI/CLI.hpp>
#include <csignal>
#include <exception>
#include <iostream>
#include <new>
#include <stdexcept>
#include <string>

#include "command_line.h"
#include "commands.h"
#include "ddpm/files.h"

#ifndef DDPM_VERSION
#error "DDPM_VERSION must be the project version (set by src/cli/CMakeLists.txt)"
#endif

namespace {

constexpr int kFailure = 1;
constexpr int kUsage = 2;

void report(const std::string& message) { ddpm::cli::report_error(message); }

// The parser's message, then where to read more: the subcommand's --help
// when one was named.
int usage_error(const CLI::App& app, const std::string& message) {
  report(message);
  std::string command = "ddpm";
  for (const CLI::App* sub : app.get_subcommands()) command += " " + sub->get_name();
  std::cerr << "Run '" << command << " --help' for more information.\n";
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts: SIGINT, SIGTERM and SIGHUP remove the
  // temporaries of unfinished outputs, and a closed pipe is a write error
  // (EPIPE, reported and cleaned up like any other) instead of a silent death.
  ddpm::remove_temporaries_on_signals();
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"ddpm: DDPM forward noising and sampling on the CPU or a CUDA device", "ddpm"};
  app.set_version_flag("--version", "ddpm " DDPM_VERSION);
  app.require_subcommand(1);
  ddpm::cli::add_forward_command(app);
  ddpm::cli::add_sample_command(app);
  ddpm::cli::add_demo_command(app);
  ddpm::cli::add_schedule_command(app);
  ddpm::cli::add_illustrate_command(app);
  ddpm::cli::add_unet_eval_command(app);
  ddpm::cli::refuse_non_finite_numbers(app);
  app.footer(ddpm::cli::kExitStatusHelp);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    sub->footer(ddpm::cli::kExitStatusHelp);
  }

  // No command at all: the help, as git does, with the usage status (like
  // tar's), since nothing was done: a script that lost its subcommand fails.
  if (argc <= 1) {
    std::cout << app.help();
    return kUsage;
  }
  // A first word that is no option and no command: name it (CLI11 would say
  // only that a subcommand is required).
  if (const std::string first = argv[1]; !first.empty() && first[0] != '-') {
    const auto commands = app.get_subcommands([](CLI::App*) { return true; });
    const bool known = std::any_of(commands.begin(), commands.end(),
                                   [&](const CLI::App* c) { return c->check_name(first); });
    if (!known) {
      std::string names;
      for (const CLI::App* c : commands) names += (names.empty() ? "" : ", ") + c->get_name();
      return usage_error(app, "unknown command '" + first + "' (the commands: " + names + ")");
    }
  }
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0; anything else is a usage error.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    return usage_error(app, e.what());
  } catch (const ddpm::cli::UsageError& e) {
    return usage_error(app, e.what());
  } catch (const std::bad_alloc&) {
    report("out of memory: the arrays do not fit; use a smaller batch, or split it into runs "
           "with --first-sample");
    return kFailure;
  } catch (const std::length_error&) {
    report("the arrays are too large to allocate; use a smaller batch");
    return kFailure;
  } catch (const std::exception& e) {
    report(e.what());
    return kFailure;
  }
  return 0;
}
