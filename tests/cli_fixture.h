#pragma once
// Running the built ddpm program in tests: a scratch directory per test,
// arguments that name files in it, and the exit code, stdout and stderr.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "ddpm/npy.h"
#include "scratch_dir.h"

#ifndef DDPM_CLI_PATH
#error "DDPM_CLI_PATH must name the built ddpm program"
#endif

namespace ddpm::test {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

inline std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

inline int count_lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// A scratch directory per test: `work/` holds the inputs and outputs (its
// listing shows stray files), `io/` the captured stdout and stderr.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = scratch_.path();
    fs::create_directories(base_ / "work");
    fs::create_directories(base_ / "io");
  }

  std::string path(const std::string& name) const { return (base_ / "work" / name).string(); }

  // Arguments starting with '@' name files in the work directory. With a
  // time limit, a run that would hang is killed (and its exit code is 137).
  RunResult run(const std::vector<std::string>& args, int time_limit_seconds = 0) const {
    std::string command = shell_quote(DDPM_CLI_PATH);
    if (time_limit_seconds > 0) {
      command = "timeout -s KILL " + std::to_string(time_limit_seconds) + " " + command;
    }
    for (const std::string& arg : args) command += " " + quoted_arg(arg);
    return run_shell(command);
  }

  // An argument as a shell word; '@' names a file in the work directory.
  std::string quoted_arg(const std::string& arg) const {
    return shell_quote(!arg.empty() && arg[0] == '@' ? path(arg.substr(1)) : arg);
  }

  // Runs a shell command line (words quoted by the caller), capturing stdout and stderr.
  RunResult run_shell(std::string command) const {
    const fs::path out = base_ / "io" / "stdout", err = base_ / "io" / "stderr";
    command += " >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string());
    const int status = std::system(command.c_str());
    RunResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_file(out);
    result.err = read_file(err);
    return result;
  }

  // Starts the program without waiting for it (stdout and stderr go to io/),
  // with SIGINT, SIGTERM and SIGHUP at their defaults: for signal tests.
  pid_t spawn(const std::vector<std::string>& args) const {
    std::vector<std::string> words{DDPM_CLI_PATH};
    words.insert(words.end(), args.begin(), args.end());
    return spawn_program(std::move(words));
  }

  // The same for any program: words[0] is its path, '@' names work files.
  pid_t spawn_program(std::vector<std::string> words) const {
    for (std::string& word : words) {
      if (!word.empty() && word[0] == '@') word = path(word.substr(1));
    }
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    const std::string out = (base_ / "io" / "stdout").string();
    const std::string err = (base_ / "io" / "stderr").string();
    const pid_t pid = ::fork();
    if (pid == 0) {  // only async-signal-safe calls until exec
      ::dup2(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), STDOUT_FILENO);
      ::dup2(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), STDERR_FILENO);
      for (int signo : {SIGINT, SIGTERM, SIGHUP}) ::signal(signo, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }

  // Runs and expects success with a one-line summary on stdout and nothing on stderr.
  void run_ok(const std::vector<std::string>& args) const {
    const RunResult r = run(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(count_lines(r.out), 1) << r.out;
    EXPECT_EQ(r.out.rfind("wrote ", 0), 0u) << r.out;
  }

  std::vector<std::string> listing() const { return ScratchDir::listing_of(base_ / "work"); }

  void write_array(const std::string& name, const std::vector<std::int64_t>& shape,
                   const std::vector<float>& data) const {
    write_npy(path(name), shape, data.data());
  }

  ScratchDir scratch_;
  fs::path base_;
};

// What a PNG's IHDR chunk says (zeros when the bytes are not a PNG).
struct PngHeader {
  std::uint32_t width = 0, height = 0;
  int bit_depth = 0, colour_type = 0;  // colour type 2: RGB
};
inline PngHeader png_header(const std::string& png) {
  if (png.size() < 33 || png.substr(0, 8) != std::string("\x89PNG\r\n\x1a\n", 8) ||
      png.substr(12, 4) != "IHDR") {
    return {};
  }
  const auto big_endian = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(png[at + i]);
    return v;
  };
  return {big_endian(16), big_endian(20), png[24], png[25]};
}

// Bad input: one line on stderr naming the problem, a non-zero exit, no file.
// A usage error (the command line cannot be understood) exits 2 and adds a
// hint to --help; a failed run exits 1 with its one line.
inline constexpr int kFailed = 1;
inline constexpr int kUsage = 2;

struct ErrorCase {
  std::string label;
  std::vector<std::string> args;
  std::string expected;  // a piece of the message that names the problem
  int exit_code = kFailed;
};
inline std::ostream& operator<<(std::ostream& os, const ErrorCase& c) {
  os << c.label << ": ddpm";
  for (const auto& a : c.args) os << ' ' << a;
  return os << "  (expecting '" << c.expected << "', exit " << c.exit_code << ")";
}

// The run failed as `c` says: its status, nothing on stdout, one line
// "ddpm: error: ..." holding c.expected (and, for a usage error, the hint).
inline void expect_error(const RunResult& r, const ErrorCase& c) {
  EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.back(), '\n') << r.err;
  EXPECT_EQ(r.err.rfind("ddpm: error: ", 0), 0u) << r.err;
  const std::string first_line = r.err.substr(0, r.err.find('\n'));
  EXPECT_NE(first_line.find(c.expected), std::string::npos) << r.err;
  if (c.exit_code == kUsage) {
    // The parser's line, then: Run 'ddpm <subcommand> --help' for more information.
    EXPECT_EQ(count_lines(r.err), 2) << r.err;
    const std::string hint = r.err.substr(first_line.size() + 1);
    EXPECT_EQ(hint.rfind("Run 'ddpm", 0), 0u) << r.err;
    EXPECT_NE(hint.find(" --help' for more information.\n"), std::string::npos) << r.err;
  } else {
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
}

// Deterministic values in [lo, hi).
inline std::vector<float> values(std::size_t n, std::uint32_t seed, float lo = -1.5f,
                                 float hi = 1.5f) {
  std::vector<float> v(n);
  std::uint32_t state = seed * 2654435761u + 1u;
  for (float& x : v) {
    state = state * 1664525u + 1013904223u;
    x = lo + (hi - lo) * static_cast<float>(state >> 8) / static_cast<float>(1u << 24);
  }
  return v;
}

}  // namespace ddpm::test
