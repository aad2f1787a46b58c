// The ddpm program's outputs: standard output and pipes, several outputs
// all or nothing, and no temporary left behind when SIGINT, SIGTERM or
// SIGHUP ends a run at any moment, the write included.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "cli_fixture.h"
#include "ddpm/npy.h"
#include "npy_bytes.h"
#include "test_support.h"

namespace ddpm {
namespace {

using namespace test;  // the CLI fixture and its helpers (cli_fixture.h)

// Polls `ready` every few milliseconds for up to 20 s.
bool wait_for(const std::function<bool()>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

class CliOutputs : public CliTest {
 protected:
  bool has_temporary() const {
    for (const std::string& name : listing()) {
      if (name.find(".tmp-") != std::string::npos || name.find(".old-") != std::string::npos) {
        return true;
      }
    }
    return false;
  }
};

TEST_F(CliOutputs, StandardOutputGetsTheArrayAndStderrTheSummary) {
  const std::vector<std::string> sample{"sample", "--shape", "4,3", "--steps", "20",
                                        "--seed", "5",       "--backend", "cpu"};
  auto with = [&](const std::string& out) {
    std::vector<std::string> args = sample;
    args.insert(args.end(), {"--out", out});
    return args;
  };
  run_ok(with("@file.npy"));
  for (const char* out : {"-", "/dev/stdout"}) {
    const RunResult r = run(with(out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, read_file(path("file.npy"))) << out;
    EXPECT_EQ(r.err.rfind(std::string("wrote ") + out + ": 4x3 float32", 0), 0u) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
  EXPECT_EQ(listing(), (std::vector<std::string>{"file.npy"}));
}

TEST_F(CliOutputs, InheritedDescriptorsAreWrittenThroughNotReplaced) {
  // /dev/stderr and /dev/fd/N are the descriptors the shell opened, here
  // for appending to a log: the array goes after what is there. Replacing
  // the file the path resolves to would lose the log.
  run_ok({"sample", "--shape", "4,3", "--steps", "20", "--backend", "cpu", "--out", "@want.npy"});
  const std::string array = read_file(path("want.npy"));
  for (const char* out : {"/dev/stderr", "/dev/fd/3", "/proc/self/fd/3"}) {
    test::write_bytes(path("log"), "earlier lines\n");
    const std::string command =
        test::shell_quote(DDPM_CLI_PATH) +
        " sample --shape 4,3 --steps 20 --backend cpu --out " + out + " 3>>" +
        test::shell_quote(path("log")) + " 2>>" + test::shell_quote(path("log")) + " >/dev/null";
    EXPECT_EQ(std::system(command.c_str()), 0) << out;
    EXPECT_EQ(read_file(path("log")), "earlier lines\n" + array) << out;
  }
  const RunResult closed = run({"sample", "--shape", "4,3", "--steps", "20", "--out", "/dev/fd/9"});
  EXPECT_EQ(closed.exit_code, 1);
  EXPECT_EQ(closed.err, "ddpm: error: cannot write /dev/fd/9: Bad file descriptor\n");
}

TEST_F(CliOutputs, ForwardIsAllOrNothingWhenALaterOutputFails) {
  // Before: out.npy and eps.npy were renamed into place one by one, and the
  // failure of the third output then deleted them, old content and all.
  write_array("x0.npy", {4, 3}, values(12, 1));
  test::write_bytes(path("out.npy"), "old out");
  test::write_bytes(path("eps.npy"), "old eps");
  ::chmod(path("eps.npy").c_str(), 0600);
  const RunResult r = run({"forward", "--x0", "@x0.npy", "--t", "5", "--steps", "50", "--backend",
                           "cpu", "--out", "@out.npy", "--noise-out", "@eps.npy", "--velocity-out",
                           "/dev/full"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "ddpm: error: cannot write /dev/full: No space left on device\n");
  EXPECT_EQ(read_file(path("out.npy")), "old out");
  EXPECT_EQ(read_file(path("eps.npy")), "old eps");
  struct stat st {};
  ASSERT_EQ(::stat(path("eps.npy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(listing(), (std::vector<std::string>{"eps.npy", "out.npy", "x0.npy"}));
}

TEST_F(CliOutputs, OutputsThatAreOneFileAreRefusedBeforeTheRun) {
  write_array("x0.npy", {4, 3}, values(12, 1));
  test::write_bytes(path("a.npy"), "old");
  ASSERT_EQ(::link(path("a.npy").c_str(), path("hard.npy").c_str()), 0);
  ASSERT_EQ(::symlink("a.npy", path("soft.npy").c_str()), 0);
  const std::vector<std::string> forward{"forward", "--x0", "@x0.npy", "--t", "5", "--steps",
                                         "50", "--backend", "cpu", "--out"};
  for (const auto& [first, second] : std::vector<std::pair<std::string, std::string>>{
           {"@a.npy", "@hard.npy"}, {"@a.npy", "@soft.npy"}, {"-", "/dev/stdout"}}) {
    std::vector<std::string> args = forward;
    args.insert(args.end(), {first, "--noise-out", second});
    const RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 1) << first << " " << second;
    EXPECT_NE(r.err.find("--out and --noise-out name the same file"), std::string::npos) << r.err;
  }
  EXPECT_EQ(read_file(path("a.npy")), "old");
}

TEST_F(CliOutputs, AClosedPipeIsAnErrorAndLeavesNoTemporary) {
  // 256 KiB of x_t fill the pipe; head has gone after one byte.
  write_array("x0.npy", {64, 1024}, values(64 * 1024, 2));
  const std::string command =
      "set -o pipefail; " + test::shell_quote(DDPM_CLI_PATH) + " forward --x0 " +
      test::shell_quote(path("x0.npy")) + " --t 5 --steps 50 --backend cpu --out - --noise-out " +
      test::shell_quote(path("eps.npy")) + " 2>" + test::shell_quote(path("err")) +
      " | head -c 1 >/dev/null";
  const int status = std::system(("bash -c " + test::shell_quote(command)).c_str());
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(read_file(path("err")), "ddpm: error: cannot write -: Broken pipe\n");
  EXPECT_EQ(listing(), (std::vector<std::string>{"err", "x0.npy"}));
}

// ---------------------------------------------------------------------------
// Every file flag against the paths a hostile user tries: each run ends
// quickly with one line naming the problem (or succeeds where the path is
// legitimate), with exit status 1, and leaves the directory as it was.

struct HostileCase {
  std::string flag;
  std::string path;
  std::string expected;  // a piece of the error, or "" for success
};

TEST_F(CliOutputs, EveryFileFlagSurvivesHostilePaths) {
  write_array("x0.npy", {4, 3}, values(12, 1));
  write_array("eps.npy", {4, 3}, values(12, 2));
  test::write_bytes(path("empty"), "");
  std::ofstream(path("gmm.json")) << R"({"weights": [1], "means": [[0, 0, 0]], "stds": [1]})";
  const std::vector<std::string> inputs = listing();
  const std::string missing = path("missing");
  const std::string directory = path("");

  // A working command for each flag, without the flag itself.
  const std::vector<std::string> forward{"forward", "--backend", "cpu", "--x0", "@x0.npy"};
  const std::vector<std::string> sample{"sample", "--steps", "20", "--backend", "cpu"};
  auto with = [](std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  const std::map<std::string, std::vector<std::string>> command_for{
      {"--x0", {"forward", "--backend", "cpu", "--t", "3", "--steps", "20", "--out", "@out.npy"}},
      {"--noise", with(forward, {"--t", "3", "--steps", "20", "--out", "@out.npy"})},
      {"--noise-out", with(forward, {"--t", "3", "--steps", "20", "--out", "@out.npy"})},
      {"--velocity-out", with(forward, {"--t", "3", "--steps", "20", "--out", "@out.npy"})},
      {"--t-per-sample", with(forward, {"--steps", "20", "--out", "@out.npy"})},
      {"--betas", with(forward, {"--t", "3", "--out", "@out.npy"})},
      {"--out", with(forward, {"--t", "3", "--steps", "20"})},
      {"--initial", with(sample, {"--out", "@out.npy"})},
      {"--mean-npy", with(sample, {"--shape", "4,3", "--out", "@out.npy"})},
      {"--std-npy", with(sample, {"--shape", "4,3", "--out", "@out.npy"})},
      {"--gmm", with(sample, {"--predictor", "gmm", "--shape", "4,3", "--out", "@out.npy"})},
      {"sample --out", with(sample, {"--shape", "4,3"})},
      {"--uncond-gmm", with(sample, {"--predictor", "gmm", "--gmm", "@gmm.json", "--shape", "4,3",
                                     "--guidance-scale", "2", "--out", "@out.npy"})},
      {"--model", with(sample, {"--shape", "4,64", "--out", "@out.npy"})},
      {"--png", {"sample", "--model", test::source_file("models/digits.safetensors"), "--shape",
                 "4,64", "--inference-steps", "5", "--backend", "cpu", "--out", "@out.npy"}},
      {"demo --out", {"demo", "--size", "8", "--steps", "5", "--backend", "cpu"}},
  };

  std::vector<HostileCase> cases;
  for (const std::string flag : {"--x0", "--noise", "--t-per-sample", "--betas", "--initial",
                                 "--mean-npy", "--std-npy"}) {
    // Arrays of values may also be images (PNG, JPEG); steps and betas may not.
    const bool image = std::string(flag) != "--t-per-sample" && std::string(flag) != "--betas";
    const std::string foreign = image ? "not a .npy, PNG or JPEG file" : "not a .npy file";
    const std::string empty = image ? "the file is empty" : "not a .npy file";
    cases.push_back({flag, "/dev/zero", foreign});
    cases.push_back({flag, "/dev/urandom", foreign});
    cases.push_back({flag, "/dev/null", empty});
    cases.push_back({flag, directory, "Is a directory"});
    cases.push_back({flag, missing, "No such file or directory"});
    cases.push_back({flag, path("empty"), empty});
  }
  cases.push_back({"--gmm", "/dev/zero", "larger than the 64 MiB limit"});
  cases.push_back({"--gmm", "/dev/null", "not valid JSON"});
  cases.push_back({"--gmm", directory, "Is a directory"});
  cases.push_back({"--gmm", missing, "No such file or directory"});
  cases.push_back({"--uncond-gmm", "/dev/null", "not valid JSON"});
  cases.push_back({"--uncond-gmm", directory, "Is a directory"});
  // The model is memory-mapped: only a regular file will do.
  cases.push_back({"--model", "/dev/zero", "not a regular file"});
  cases.push_back({"--model", "/dev/null", "not a regular file"});
  // A folder is read as a diffusers model folder.
  cases.push_back({"--model", directory, "no config.json"});
  cases.push_back({"--model", missing, "No such file or directory"});
  cases.push_back({"--model", path("empty"), "not a safetensors file"});
  for (const std::string flag :
       {"--out", "--noise-out", "--velocity-out", "sample --out", "demo --out", "--png"}) {
    cases.push_back({flag, "/dev/full", "No space left on device"});
    cases.push_back({flag, directory, "Is a directory"});
    cases.push_back({flag, "/", "Is a directory"});
    cases.push_back({flag, path("missing/out"), "No such file or directory"});
    cases.push_back({flag, "/dev/null", ""});
  }

  for (const HostileCase& c : cases) {
    std::vector<std::string> args = command_for.at(c.flag);
    const std::string flag = c.flag.substr(c.flag.find(' ') + 1);  // "sample --out" -> "--out"
    args.insert(args.end(), {flag, c.path});
    const RunResult r = run(args, 120);
    const std::string label = c.flag + " " + c.path;
    if (c.expected.empty()) {
      EXPECT_EQ(r.exit_code, 0) << label << ": " << r.err;
      fs::remove(path("out.npy"));  // the other output of a run that wrote /dev/null
    } else {
      EXPECT_EQ(r.exit_code, 1) << label << ": " << r.err;
      EXPECT_EQ(count_lines(r.err), 1) << label << ": " << r.err;
      EXPECT_EQ(r.err.rfind("ddpm: error: ", 0), 0u) << label << ": " << r.err;
      EXPECT_NE(r.err.find(c.expected), std::string::npos) << label << ": " << r.err;
    }
    EXPECT_EQ(listing(), inputs) << label;
  }
}

// ---------------------------------------------------------------------------
// Signals: the run ends as the signal says, and leaves no temporary.

class CliSignals : public CliOutputs, public ::testing::WithParamInterface<int> {
 protected:
  // Sends the signal and expects the program to die of it.
  void interrupt(pid_t pid) const {
    ASSERT_EQ(::kill(pid, GetParam()), 0);
    const int status = wait_status(pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status) << ": "
                                     << read_file(base_ / "io" / "stderr");
    EXPECT_EQ(WTERMSIG(status), GetParam());
  }
};

TEST_P(CliSignals, WhileWaitingForAFifoReader) {
  write_array("x0.npy", {4, 3}, values(12, 1));
  test::write_bytes(path("eps.npy"), "old eps");
  ASSERT_EQ(::mkfifo(path("out.fifo").c_str(), 0600), 0);
  // eps.npy is written to its temporary first; then the FIFO's open waits
  // for a reader that never comes.
  const pid_t pid = spawn({"forward", "--x0", "@x0.npy", "--t", "5", "--steps", "50", "--backend",
                           "cpu", "--out", "@out.fifo", "--noise-out", "@eps.npy"});
  ASSERT_TRUE(wait_for([&] { return has_temporary(); })) << "no temporary appeared";
  interrupt(pid);
  EXPECT_EQ(listing(), (std::vector<std::string>{"eps.npy", "out.fifo", "x0.npy"}));
  EXPECT_EQ(read_file(path("eps.npy")), "old eps");
}

TEST_P(CliSignals, InTheMiddleOfWritingAStream) {
  write_array("x0.npy", {64, 1024}, values(64 * 1024, 3));
  ASSERT_EQ(::mkfifo(path("out.fifo").c_str(), 0600), 0);
  // A reader that never reads: 256 KiB do not fit in the pipe, so the write
  // blocks part way once the first bytes are in.
  const int reader = ::open(path("out.fifo").c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  const pid_t pid = spawn({"forward", "--x0", "@x0.npy", "--t", "5", "--steps", "50", "--backend",
                           "cpu", "--out", "@out.fifo", "--noise-out", "@eps.npy"});
  ASSERT_TRUE(wait_for([&] {
    pollfd p{reader, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
  })) << "the stream never started";
  EXPECT_TRUE(has_temporary());
  interrupt(pid);
  ::close(reader);
  EXPECT_EQ(listing(), (std::vector<std::string>{"out.fifo", "x0.npy"}));
}

TEST_P(CliSignals, DuringTheComputation) {
  test::write_bytes(path("s.npy"), "old");
  const pid_t pid = spawn({"sample", "--shape", "2000,3072", "--steps", "1000", "--backend", "cpu",
                           "--out", "@s.npy"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  interrupt(pid);
  EXPECT_EQ(listing(), (std::vector<std::string>{"s.npy"}));
  EXPECT_EQ(read_file(path("s.npy")), "old");
}

TEST_P(CliSignals, AtAnyMomentTheOutputsAreAllOldOrAllNewWithNoTemporary) {
  // 3 outputs of 8 MiB each. One run undisturbed measures how long a run
  // takes; then the signal comes at 0, 1/16, 2/16, ... 20/16 of that time:
  // before, during and after the writes and renames.
  write_array("x0.npy", {2048, 1024}, values(2048 * 1024, 4));
  const std::vector<std::string> outputs{"a.npy", "b.npy", "c.npy"};
  const std::vector<std::string> forward{
      "forward", "--x0",  "@x0.npy", "--t",         "5",      "--steps",        "50",
      "--backend", "cpu", "--out",   "@a.npy", "--noise-out", "@b.npy", "--velocity-out", "@c.npy"};
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(WEXITSTATUS(wait_status(spawn(forward))), 0);
  const auto run_time = std::chrono::steady_clock::now() - start;
  int finished = 0, interrupted = 0;
  for (int sixteenths = 0; sixteenths <= 20; ++sixteenths) {
    const auto delay = run_time * sixteenths / 16;
    for (const std::string& name : outputs) test::write_bytes(path(name), "old");
    const pid_t pid = spawn(forward);
    std::this_thread::sleep_for(delay);
    ::kill(pid, GetParam());
    const int status = wait_status(pid);
    int old_files = 0;
    for (const std::string& name : outputs) old_files += read_file(path(name)) == "old";
    if (WIFSIGNALED(status)) {
      ++interrupted;
      EXPECT_EQ(WTERMSIG(status), GetParam());
    } else {
      ++finished;
      EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    // A signal during the renames waits for them: all old or all new.
    EXPECT_TRUE(old_files == 0 || old_files == 3)
        << old_files << " old files after " << sixteenths << "/16 of a run";
    EXPECT_FALSE(has_temporary()) << "after " << sixteenths << "/16 of a run";
  }
  EXPECT_GT(interrupted, 0);
  RecordProperty("finished_before_the_signal", finished);
  RecordProperty("interrupted", interrupted);
}

INSTANTIATE_TEST_SUITE_P(Signals, CliSignals, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sigabbrev_np(info.param));
                         });

}  // namespace
}  // namespace ddpm
