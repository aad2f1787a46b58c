// Input files as the ddpm program reads them: each exactly once, so that a
// FIFO, a pipe (/dev/stdin) or process substitution works for every file
// option; JSON strictly (nothing after the value, no NUL byte); a value a
// file gets wrong named with the file, its place and what was expected.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cli_fixture.h"
#include "npy_bytes.h"

namespace ddpm {
namespace {

using namespace test;

const std::string kConfig = R"({"_class_name": "DDIMScheduler", "beta_schedule": "scaled_linear",
  "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1, "clip_sample": false})";

const std::vector<std::string> kSampleWithConfig{"sample", "--shape", "3,4", "--inference-steps",
                                                 "5", "--seed", "2", "--backend", "cpu"};

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class CliInputs : public CliTest {
 protected:
  std::string command(const std::vector<std::string>& args) const {
    std::string line = shell_quote(DDPM_CLI_PATH);
    for (const std::string& arg : args) line += " " + quoted_arg(arg);
    return line;
  }
  // The reference: the config from a regular file.
  std::string from_regular_file() {
    test::write_bytes(path("config.json"), kConfig);
    const RunResult r = run(plus(kSampleWithConfig, {"--scheduler-config", "@config.json",
                                                     "--out", "@expected.npy"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_file(path("expected.npy"));
  }
};

TEST_F(CliInputs, SchedulerConfigThroughAFifoIsReadOnce) {
  const std::string expected = from_regular_file();
  ASSERT_EQ(::mkfifo(path("config.fifo").c_str(), 0600), 0);
  // A writer that writes the config once and closes: a second open of the
  // FIFO would wait forever (the time limit turns that into a failure).
  const RunResult r = run_shell("(printf '%s' " + shell_quote(kConfig) + " > " +
                                shell_quote(path("config.fifo")) + " &); timeout -s KILL 60 " +
                                command(plus(kSampleWithConfig, {"--scheduler-config",
                                                                 "@config.fifo", "--out",
                                                                 "@out.npy"})));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(path("out.npy")) == expected);
}

TEST_F(CliInputs, SchedulerConfigFromStdinAndProcessSubstitution) {
  const std::string expected = from_regular_file();
  RunResult r = run_shell("printf '%s' " + shell_quote(kConfig) + " | timeout -s KILL 60 " +
                          command(plus(kSampleWithConfig, {"--scheduler-config", "/dev/stdin",
                                                           "--out", "@stdin.npy"})));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(path("stdin.npy")) == expected);
  r = run_shell("bash -c " +
                shell_quote("timeout -s KILL 60 " +
                            command(plus(kSampleWithConfig, {"--scheduler-config"})) +
                            " <(printf '%s' " + shell_quote(kConfig) + ") --out " +
                            shell_quote(path("substituted.npy"))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(path("substituted.npy")) == expected);
}

// diffusers saves DPMSolverMultistepScheduler's config with Python's json,
// which writes "lambda_min_clipped": -Infinity.
TEST_F(CliInputs, PythonsInfinityInASchedulerConfigIsRead) {
  test::write_bytes(path("dpm.json"),
                    R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,
                        "note": "NaN and Infinity in strings stay text"})");
  const RunResult r = run(plus(kSampleWithConfig, {"--scheduler-config", "@dpm.json", "--out",
                                                   "@out.npy"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Any other value of lambda_min_clipped is refused (ddpm does not clip).
  test::write_bytes(path("nan.json"),
                    R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": NaN})");
  const RunResult nan = run(plus(kSampleWithConfig, {"--scheduler-config", "@nan.json", "--out",
                                                     "@nan.npy"}));
  EXPECT_EQ(nan.exit_code, 1);
  EXPECT_NE(nan.err.find("lambda_min_clipped"), std::string::npos) << nan.err;
}

// NaN or Infinity where a finite number belongs is refused naming the file
// and the key (they once reached the schedule as "beta range [nan, 0.02]").
TEST_F(CliInputs, NonFiniteSchedulerConfigValuesNameTheFileAndKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"beta_start", "NaN"}, {"beta_end", "Infinity"}, {"num_train_timesteps", "NaN"},
           {"sample_max_value", "-Infinity"}}) {
    test::write_bytes(path("bad.json"), R"({"_class_name": "DDPMScheduler", ")" + key + "\": " + value + "}");
    const RunResult r = run(plus(kSampleWithConfig, {"--scheduler-config", "@bad.json", "--out",
                                                     "@out.npy"}));
    EXPECT_EQ(r.exit_code, 1) << key;
    const std::string expected = "bad.json: scheduler config key \"" + key + "\" is " + value +
                                 "; expected a finite number";
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"bad.json"});
}

TEST_F(CliInputs, JsonAfterANulByteIsRefusedWithTheFileAndOffset) {
  using namespace std::literals;
  test::write_bytes(path("config.json"), std::string(R"({"_class_name": "DDIMScheduler"})"
                                                     "\0 garbage"sv));
  RunResult r = run(plus(kSampleWithConfig, {"--scheduler-config", "@config.json", "--out",
                                             "@out.npy"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("config.json: scheduler config is not valid JSON at byte 32: a NUL byte"),
            std::string::npos)
      << r.err;
  test::write_bytes(path("gmm.json"),
                    std::string(R"({"weights": [1], "means": [[0]], "stds": [1]})"
                                "\0garbage"sv));
  r = run({"sample", "--predictor", "gmm", "--gmm", "@gmm.json", "--shape", "2,1", "--steps", "20",
           "--out", "@out.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("gmm.json: GMM spec is not valid JSON at byte 45: a NUL byte"),
            std::string::npos)
      << r.err;
  test::write_bytes(path("gmm.json"), R"({"weights": [1], "means": [[0]], "stds": [1]} [])");
  r = run({"sample", "--predictor", "gmm", "--gmm", "@gmm.json", "--shape", "2,1", "--steps", "20",
           "--out", "@out.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("gmm.json: GMM spec is not valid JSON at byte 46: "), std::string::npos)
      << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(path("out.npy")));
}

TEST_F(CliInputs, ANonFinitePerElementPriorNamesTheFileIndexAndExpectation) {
  std::vector<float> means{0.0f, 0.5f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  write_array("means.npy", {4}, means);
  RunResult r = run({"sample", "--shape", "2,4", "--steps", "20", "--mean-npy", "@means.npy",
                     "--out", "@out.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--mean-npy " + path("means.npy") +
                       ": element 2 is nan; expected a finite number with magnitude <= 1e30"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("json"), std::string::npos) << r.err;
  std::vector<float> stds{1.0f, std::numeric_limits<float>::infinity(), 1.0f, 1.0f};
  write_array("stds.npy", {4}, stds);
  r = run({"sample", "--shape", "2,4", "--steps", "20", "--std-npy", "@stds.npy", "--out",
           "@out.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--std-npy " + path("stds.npy") +
                       ": element 1 is inf; expected a finite number >= 0 and <= 1e15"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(path("out.npy")));
}

// A model is mapped, not streamed: a FIFO (even one nobody writes) is
// refused at once in one line, not waited for.
TEST_F(CliInputs, AModelNeedsARegularFileAndSaysSo) {
  ASSERT_EQ(::mkfifo(path("model.fifo").c_str(), 0600), 0);
  const RunResult r = run({"sample", "--model", "@model.fifo", "--shape", "2,64", "--out",
                           "@out.npy"},
                          60);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("model.fifo: not a regular file (a safetensors model is mapped into "
                       "memory, not streamed"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace ddpm
