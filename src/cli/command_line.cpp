#include "command_line.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <limits>

#include "ddpm/error.h"
#include "ddpm/backend.h"

namespace ddpm::cli {

const char* const kExitStatusHelp =
    "Exit status: 0 success; 1 the command failed (a file that cannot be read or written, a\n"
    "value the engine refuses, a result that is not finite); 2 usage error (unknown option,\n"
    "missing or malformed value). Ended by SIGINT, SIGTERM or SIGHUP: no output is replaced\n"
    "and no temporary file is left; the status is that of the signal (128 + its number).";

CLI::Validator parsed_by(std::function<void(const std::string&)> parse) {
  return CLI::Validator(
      [parse = std::move(parse)](std::string& text) -> std::string {
        try {
          parse(text);
          return {};
        } catch (const Error& e) {
          return e.what();
        }
      },
      "");
}

void refuse_non_finite_numbers(CLI::App& app) {
  const CLI::Validator finite(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (end == text.c_str()) return {};  // not a number: CLI11's own conversion says so
        if (!std::isfinite(value)) {  // "nan", "inf", or beyond double's range
          return "'" + text + "' is not a finite number";
        }
        return {};
      },
      "");
  for (CLI::Option* option : app.get_options()) {
    if (option->get_type_name().rfind("FLOAT", 0) == 0) option->check(finite);
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    refuse_non_finite_numbers(*sub);
  }
}

namespace {

// Plain decimal digits whose value fits in T; anything else (a sign, an
// exponent, hex, too many digits) is refused, naming `what` and the range.
template <class T>
void parse_whole_number(const std::string& text, const char* what) {
  T value = 0;
  const char* end = text.data() + text.size();
  const bool digits_only =
      !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (!digits_only || error != std::errc() || stop != end) {
    throw Error("'" + text + "' is not " + what + ": expected a whole number from 0 to " +
                std::to_string(std::numeric_limits<T>::max()));
  }
}

}  // namespace

CLI::Option* add_seed_option(CLI::App& command, std::uint64_t& seed) {
  return command
      .add_option("--seed", seed, "noise seed, a whole number in [0, 2^64)")
      ->check(parsed_by([](const std::string& text) {
        parse_whole_number<std::uint64_t>(text, "a seed");
      }))
      ->capture_default_str();
}

CLI::Option* add_first_sample_option(CLI::App& command, std::int64_t& first_sample) {
  return command
      .add_option("--first-sample", first_sample,
                  "global index of the first sample, for sharded runs")
      ->check(parsed_by([](const std::string& text) {
        parse_whole_number<std::int64_t>(text, "a sample index");
      }))
      ->capture_default_str();
}

void require_memory(std::int64_t count, const std::string& what) {
  const std::uint64_t memory = physical_memory_bytes();
  if (static_cast<std::uint64_t>(count) > memory / sizeof(float)) {
    throw Error(what + " needs " +
                describe_bytes(static_cast<double>(count) * sizeof(float)) +
                " of memory, more than this machine has (" + describe_bytes(memory) + ")");
  }
}

void warn(const std::string& message) {
  std::fprintf(stderr, "ddpm: warning: %s\n", message.c_str());
}

void report_error(const std::string& message) {
  std::string line = "ddpm: error: " + message + "\n";
  // Messages from the library are one line already; a stray newline from
  // elsewhere (a system message, a JSON parser) must not break that promise.
  std::replace_if(line.begin(), line.end() - 1, [](char c) { return c == '\n' || c == '\r'; }, ' ');
  std::fflush(stderr);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace ddpm::cli
