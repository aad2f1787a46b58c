#pragma once
// The conventions every subcommand follows.
//
// Exit status: 0 success; 1 the command was understood but failed (a file
// that cannot be read or written, a value the engine refuses, a result that
// is not finite); 2 a usage error: the command line cannot be understood
// (an unknown subcommand or option, a missing option or value, a value that
// is not of the option's form or outside its fixed range, options that
// exclude each other). A usage error is found while the command line is
// read, before any work: CLI11 reports it, with a hint to --help.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "ddpm/error.h"

namespace ddpm::cli {

// The exit statuses, for the end of --help.
extern const char* const kExitStatusHelp;

// A usage error found after parsing, where CLI11 cannot express the rule
// (options that go together or exclude each other depending on a value).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A CLI11 check that runs `parse` on the option's text: when it throws
// ddpm::Error, the message becomes a usage error ("--flag: <message>").
CLI::Validator parsed_by(std::function<void(const std::string&)> parse);

// Every floating-point option of `app` and its subcommands (CLI11 type name
// FLOAT) refuses "nan", "inf" and values out of double's range as usage
// errors naming the option: no NaN reaches a prior, a schedule or a timer.
void refuse_non_finite_numbers(CLI::App& app);

// --seed: a plain decimal integer in [0, 2^64); "-1", "1e3", "0x10" and
// 2^64 are usage errors, never wrapped or rounded.
CLI::Option* add_seed_option(CLI::App& command, std::uint64_t& seed);
// --first-sample: a global sample index >= 0.
CLI::Option* add_first_sample_option(CLI::App& command, std::int64_t& first_sample);

// Throws ddpm::Error when `count` floats for `what` ("--shape 1000000,100000")
// cannot fit in this machine's memory: refused up front with the sizes,
// instead of an allocation that fails or swaps.
void require_memory(std::int64_t count, const std::string& what);

// "ddpm: warning: <message>" on stderr: legal but suspicious input; the run goes on.
void warn(const std::string& message);

// "ddpm: error: <message>" on stderr, as one line (newlines in the message
// become spaces) written at once, so that the lines of several processes
// sharing a stderr (mpirun) do not interleave.
void report_error(const std::string& message);

}  // namespace ddpm::cli
