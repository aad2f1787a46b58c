// The ddpm program end to end: each test runs the built binary on small
// inputs in a fresh directory and checks the files it writes, its one-line
// summary, and, for every kind of bad input, one line on stderr, a non-zero
// exit and no output file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <ostream>

#include "cli_fixture.h"
#include "ddpm/npy.h"
#include "ddpm/schedule.h"
#include "npy_bytes.h"

namespace ddpm {
namespace {

using namespace test;  // the CLI fixture and its helpers (cli_fixture.h)

// |actual - (a x0 + b eps)| <= 1e-6 (|a x0| + |b eps|) for every element: the
// float32 engine against the closed form in double.
::testing::AssertionResult matches_forward(const std::vector<float>& actual,
                                           const std::vector<float>& x0,
                                           const std::vector<float>& eps,
                                           const std::vector<int>& row_steps, std::size_t dim,
                                           const Schedule& schedule, bool velocity = false) {
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const int t = row_steps[i / dim];
    const double a = schedule.sqrt_alpha_bar()[t], b = schedule.sqrt_one_minus_alpha_bar()[t];
    const double first = velocity ? a * eps[i] : a * x0[i];
    const double second = velocity ? -b * x0[i] : b * eps[i];
    const double expected = first + second;
    const double bound = 1e-6 * (std::abs(first) + std::abs(second));
    if (!(std::abs(actual[i] - expected) <= bound)) {
      return ::testing::AssertionFailure() << "element " << i << " (t = " << t << "): got "
                                           << actual[i] << ", expected " << expected;
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// forward

TEST_F(CliTest, ForwardWithGivenNoiseMatchesClosedForm) {
  const std::vector<std::int64_t> shape{6, 2, 5};
  const auto x0 = values(60, 1), eps = values(60, 2, -3.0f, 3.0f);
  write_array("x0.npy", shape, x0);
  write_array("eps.npy", shape, eps);
  run_ok({"forward", "--x0", "@x0.npy", "--t", "17", "--noise", "@eps.npy", "--out", "@xt.npy",
          "--noise-out", "@eps_out.npy", "--velocity-out", "@v.npy", "--steps", "50", "--backend",
          "cpu"});

  const Schedule schedule = Schedule::linear(50);
  const NpyArray x_t = read_npy(path("xt.npy"));
  EXPECT_EQ(x_t.shape, shape);
  EXPECT_TRUE(matches_forward(x_t.data, x0, eps, std::vector<int>(6, 17), 10, schedule));
  EXPECT_EQ(read_npy(path("eps_out.npy")).data, eps);
  EXPECT_TRUE(matches_forward(read_npy(path("v.npy")).data, x0, eps, std::vector<int>(6, 17), 10,
                              schedule, /*velocity=*/true));
}

TEST_F(CliTest, ForwardWithStepPerSample) {
  const auto x0 = values(24, 3), eps = values(24, 4);
  write_array("x0.npy", {4, 6}, x0);
  write_array("eps.npy", {4, 6}, eps);
  write_array("t.npy", {4}, {0, 49, 10, 3});
  run_ok({"forward", "--x0", "@x0.npy", "--t-per-sample", "@t.npy", "--noise", "@eps.npy", "--out",
          "@xt.npy", "--steps", "50", "--schedule", "cosine", "--backend", "cpu"});
  EXPECT_TRUE(matches_forward(read_npy(path("xt.npy")).data, x0, eps, {0, 49, 10, 3}, 6,
                              Schedule::cosine(50)));
}

TEST_F(CliTest, ForwardTakesIntegerStepsPerSample) {
  // NumPy's np.array([0, 49, 10, 3]) is int64; uint8 works as well.
  const auto x0 = values(24, 3), eps = values(24, 4);
  write_array("x0.npy", {4, 6}, x0);
  write_array("eps.npy", {4, 6}, eps);
  const std::vector<std::int64_t> steps{0, 49, 10, 3};
  test::write_bytes(path("t64.npy"),
                    test::npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }",
                                    std::string(reinterpret_cast<const char*>(steps.data()), 32)));
  test::write_bytes(path("t8.npy"),
                    test::npy_image("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }",
                                    std::string("\x00\x31\x0a\x03", 4)));
  for (const char* file : {"@t64.npy", "@t8.npy"}) {
    run_ok({"forward", "--x0", "@x0.npy", "--t-per-sample", file, "--noise", "@eps.npy", "--out",
            "@xt.npy", "--steps", "50", "--backend", "cpu"});
    EXPECT_TRUE(matches_forward(read_npy(path("xt.npy")).data, x0, eps, {0, 49, 10, 3}, 6,
                                Schedule::linear(50)))
        << file;
  }
}

TEST_F(CliTest, ForwardDrawsReproducibleNoiseFromTheSeed) {
  const auto x0 = values(40, 5);
  write_array("x0.npy", {8, 5}, x0);
  const std::vector<std::string> common{"forward", "--x0", "@x0.npy",   "--t", "30",
                                        "--steps", "50",   "--backend", "cpu"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  run_ok(with({"--seed", "9", "--out", "@a.npy", "--noise-out", "@eps.npy"}));
  run_ok(with({"--seed", "9", "--out", "@b.npy"}));
  run_ok(with({"--seed", "10", "--out", "@c.npy"}));

  const std::vector<float> eps = read_npy(path("eps.npy")).data;
  EXPECT_TRUE(matches_forward(read_npy(path("a.npy")).data, x0, eps, std::vector<int>(8, 30), 5,
                              Schedule::linear(50)));
  EXPECT_EQ(read_file(path("a.npy")), read_file(path("b.npy")));
  EXPECT_NE(read_file(path("a.npy")), read_file(path("c.npy")));
}

TEST_F(CliTest, BetasFileDefinesACustomSchedule) {
  const std::vector<float> betas{0.01f, 0.05f, 0.2f, 0.4f};
  const auto x0 = values(12, 7), eps = values(12, 8);
  write_array("betas.npy", {4}, betas);
  write_array("x0.npy", {3, 4}, x0);
  write_array("eps.npy", {3, 4}, eps);
  run_ok({"forward", "--x0", "@x0.npy", "--t", "3", "--noise", "@eps.npy", "--betas",
          "@betas.npy", "--out", "@xt.npy", "--backend", "cpu"});
  const Schedule schedule = Schedule::from_betas({betas.begin(), betas.end()});
  EXPECT_TRUE(matches_forward(read_npy(path("xt.npy")).data, x0, eps, {3, 3, 3}, 4, schedule));
}

// ---------------------------------------------------------------------------
// sample

TEST_F(CliTest, SampleWritesTheFullShapeWithThePriorMean) {
  // 100 steps up to beta 0.2 bring alpha_bar_T to 3e-5, so that starting
  // from N(0, I) is right (the default betas need T = 1000 for that).
  run_ok({"sample", "--predictor", "gaussian", "--mean", "0.5", "--std", "0.3", "--shape", "64,3,4",
          "--seed", "1", "--steps", "100", "--beta-end", "0.2", "--out", "@s.npy", "--backend",
          "cpu"});
  const NpyArray s = read_npy(path("s.npy"));
  EXPECT_EQ(s.shape, (std::vector<std::int64_t>{64, 3, 4}));
  double sum = 0.0, squares = 0.0;
  for (float v : s.data) sum += v;
  const double mean = sum / s.data.size();
  for (float v : s.data) squares += (v - mean) * (v - mean);
  const double std = std::sqrt(squares / s.data.size());
  // 768 draws of N(0.5, 0.3^2): the sample mean's sd is 0.3 / sqrt(768) = 0.011,
  // so 0.05 is over 4 sd; the sd itself is checked loosely (finite T).
  EXPECT_NEAR(mean, 0.5, 0.05);
  EXPECT_NEAR(std, 0.3, 0.05);
}

TEST_F(CliTest, SampleShardsConcatenateBitForBit) {
  const std::vector<std::string> common{"sample", "--mean",  "-0.2", "--std",     "0.7", "--seed",
                                        "42",     "--steps", "60",   "--backend", "cpu"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  run_ok(with({"--shape", "10,7", "--out", "@all.npy"}));
  run_ok(with({"--shape", "4,7", "--out", "@first.npy"}));
  run_ok(with({"--shape", "6,7", "--first-sample", "4", "--out", "@rest.npy"}));

  const NpyArray all = read_npy(path("all.npy"));
  std::vector<float> joined = read_npy(path("first.npy")).data;
  const std::vector<float> rest = read_npy(path("rest.npy")).data;
  joined.insert(joined.end(), rest.begin(), rest.end());
  ASSERT_EQ(joined.size(), all.data.size());
  EXPECT_EQ(std::memcmp(joined.data(), all.data.data(), joined.size() * sizeof(float)), 0);
}

TEST_F(CliTest, SampleWithPerElementOraclePriorReturnsTheMeans) {
  write_array("means.npy", {3}, {-1.0f, 0.25f, 2.0f});
  write_array("stds.npy", {3}, {0.0f, 0.0f, 0.0f});
  run_ok({"sample", "--mean-npy", "@means.npy", "--std-npy", "@stds.npy", "--shape", "5,3",
          "--steps", "50", "--out", "@s.npy", "--backend", "cpu"});
  const NpyArray s = read_npy(path("s.npy"));
  for (std::size_t i = 0; i < s.data.size(); ++i) {
    EXPECT_NEAR(s.data[i], (std::vector<float>{-1.0f, 0.25f, 2.0f})[i % 3], 1e-4) << i;
  }
}

TEST_F(CliTest, SampleFromGivenInitialAndStartStep) {
  // One reverse step at t = 0 with the oracle prior lands exactly on the mean.
  write_array("x_t.npy", {3, 4}, values(12, 6));
  run_ok({"sample", "--initial", "@x_t.npy", "--start-step", "0", "--mean", "0.7", "--std", "0",
          "--steps", "50", "--out", "@s.npy", "--backend", "cpu"});
  const NpyArray s = read_npy(path("s.npy"));
  EXPECT_EQ(s.shape, (std::vector<std::int64_t>{3, 4}));
  for (float v : s.data) EXPECT_NEAR(v, 0.7f, 1e-5);
}

TEST_F(CliTest, SampleInTwoPiecesWithEndStepEqualsOneRun) {
  const std::vector<std::string> common{"--mean", "0.3", "--std", "0.5", "--shape", "3,9",
                                        "--steps", "60", "--seed", "8", "--backend", "cpu"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"sample"};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  run_ok(with({"--out", "@whole.npy"}));
  run_ok(with({"--end-step", "25", "--out", "@half.npy"}));
  run_ok(with({"--initial", "@half.npy", "--start-step", "24", "--out", "@rest.npy"}));
  const NpyArray whole = read_npy(path("whole.npy"));
  const NpyArray rest = read_npy(path("rest.npy"));
  ASSERT_EQ(whole.data.size(), rest.data.size());
  EXPECT_EQ(std::memcmp(whole.data.data(), rest.data.data(), whole.data.size() * sizeof(float)), 0);
}

TEST_F(CliTest, SampleFromGaussianMixture) {
  std::ofstream(path("gmm.json"))
      << R"({"weights": [0.25, 0.75], "means": [[-3, 0], [3, 1]], "stds": [0.3, 0.3]})";
  run_ok({"sample", "--predictor", "gmm", "--gmm", "@gmm.json", "--shape", "400,2", "--seed", "3",
          "--steps", "100", "--beta-end", "0.2", "--out", "@s.npy", "--backend", "cpu"});
  const NpyArray s = read_npy(path("s.npy"));
  ASSERT_EQ(s.shape, (std::vector<std::int64_t>{400, 2}));
  int left = 0;
  for (int i = 0; i < 400; ++i) left += s.data[2 * i] < 0.0f;
  // Binomial(400, 0.25): sd 8.7, so +-35 is 4 sd.
  EXPECT_NEAR(left, 100, 35);
}

// ---------------------------------------------------------------------------
// demo and help

TEST_F(CliTest, DemoWritesAValidPng) {
  const RunResult r =
      run({"demo", "--out", "@demo.png", "--size", "16", "--steps", "20", "--backend", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "wrote " + path("demo.png") + "\n");
  EXPECT_EQ(listing(), (std::vector<std::string>{"demo.png"}));

  // 16-pixel pictures drawn 8x (128 px) in 6 columns with 4 px gaps; text is
  // 14 px high (the 5x7 font, 2x) on 20 px lines: a title line and 4 px, then
  // per row a row title, the pictures, 2 px, a caption line (t) and 4 px.
  const PngHeader png = png_header(read_file(path("demo.png")));
  EXPECT_EQ(png.width, 6u * 128u + 7u * 4u);
  EXPECT_EQ(png.height, 4u + 24u + 3u * (20u + 128u + 2u + 20u + 4u));
  EXPECT_EQ(png.bit_depth, 8);
  EXPECT_EQ(png.colour_type, 2);  // RGB
}

TEST_F(CliTest, SolversRunEveryStepByDefault) {
  // No --inference-steps: T-1 to 0, as for the other rules (diffusers'
  // spacings would repeat timesteps at n = T, and the run failed).
  for (const std::vector<std::string> extra :
       {std::vector<std::string>{"--sampler", "dpmpp_2m"}, {"--sampler", "dpmpp_2m_sde"},
        {"--sampler", "dpmpp_2m", "--karras-sigmas"}}) {
    std::vector<std::string> args{"sample", "--shape", "4,3", "--steps", "60", "--beta-end", "0.2",
                                  "--backend", "cpu", "--out", "@x.npy"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = run(args);
    ASSERT_EQ(r.exit_code, 0) << extra[1] << ": " << r.err;
    EXPECT_NE(r.out.find("60 of T=60 steps"), std::string::npos) << r.out;
  }
}

TEST_F(CliTest, AnEmptyTimestepListIsRefused) {
  test::write_bytes(path("empty.npy"),
                    test::npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }", ""));
  const RunResult r = run({"sample", "--shape", "4,3", "--timesteps", "@empty.npy", "--backend",
                           "cpu", "--out", "@x.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("empty.npy holds no timesteps: give at least one"), std::string::npos)
      << r.err;
  EXPECT_EQ(listing(), (std::vector<std::string>{"empty.npy"}));
}

TEST_F(CliTest, DemoWithZeroTerminalSnrRuns) {
  // Its exact prior answers in v, which the zero-SNR last step needs.
  const RunResult r = run({"demo", "--out", "@demo.png", "--size", "8", "--steps", "20",
                           "--rescale-zero-snr", "--backend", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(listing(), (std::vector<std::string>{"demo.png"}));
}

TEST_F(CliTest, EverySubcommandHasHelp) {
  for (const char* command : {"forward", "sample", "demo"}) {
    const RunResult r = run({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << command;
    EXPECT_NE(r.out.find("--steps"), std::string::npos) << command;
  }
}

TEST_F(CliTest, VersionPrintsTheProjectVersion) {
  const RunResult r = run({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "ddpm " DDPM_EXPECTED_VERSION "\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, BareDdpmPrintsTheHelpWithTheUsageStatus) {
  // Like git, the help; like tar, status 2: nothing was done.
  const RunResult r = run({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("Usage: ddpm [OPTIONS] SUBCOMMAND"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, HelpDocumentsTheExitStatus) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"forward", "--help"}, {"sample", "--help"}, {"demo", "--help"}}) {
    const RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Exit status: 0 success; 1 the command failed"), std::string::npos)
        << args[0];
    EXPECT_NE(r.out.find("2 usage error"), std::string::npos) << args[0];
  }
}

TEST_F(CliTest, BetaStartAboveBetaEndIsWarnedAboutAndRuns) {
  const RunResult r = run({"sample", "--shape", "2,3", "--steps", "20", "--beta-start", "0.02",
                           "--beta-end", "0.0001", "--backend", "cpu", "--out", "@s.npy"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err,
            "ddpm: warning: --beta-start 0.02 is above --beta-end 0.0001: noise decreases over "
            "the steps (swapped?)\n");
  EXPECT_EQ(r.out.rfind("wrote ", 0), 0u);
}

TEST_F(CliTest, TheLargestSeedIsASeed) {
  run_ok({"sample", "--shape", "2,3", "--steps", "20", "--seed", "18446744073709551615",
          "--backend", "cpu", "--out", "@s.npy"});
}

TEST_F(CliTest, NoRunWritesNonFiniteValues) {
  // Inputs whose float32 arithmetic overflowed somewhere in the run: each
  // either fails with one line and writes nothing, or writes finite values.
  std::ofstream(path("far.json"))
      << R"({"weights": [0.5, 0.5], "means": [[1e20], [-1e20]], "stds": [1, 1]})";
  const std::vector<std::string> sample{"sample", "--shape", "4,1", "--steps", "50",
                                        "--backend", "cpu", "--out", "@out.npy"};
  auto with = [](std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  const std::vector<std::vector<std::string>> runs{
      with(sample, {"--mean", "3e38", "--std", "0"}),
      with(sample, {"--beta-start", "1e-300", "--beta-end", "1e-300"}),
      with(sample, {"--predictor", "gmm", "--gmm", "@far.json"}),
      {"demo", "--out", "@out.png", "--size", "8", "--steps", "10", "--beta-start", "1e-20",
       "--beta-end", "1e-20", "--backend", "cpu"},
  };
  for (const std::vector<std::string>& args : runs) {
    const RunResult r = run(args);
    if (r.exit_code == 0 && args[0] == "sample") {
      for (float v : read_npy(path("out.npy")).data) ASSERT_TRUE(std::isfinite(v)) << args[1];
      fs::remove(path("out.npy"));
    } else if (r.exit_code == 0) {
      fs::remove(path("out.png"));  // the PNG's pixels were checked before encoding
    } else {
      EXPECT_EQ(r.exit_code, 1) << args[1];
      EXPECT_EQ(count_lines(r.err), 1) << r.err;
      EXPECT_EQ(r.err.rfind("ddpm: error: ", 0), 0u) << r.err;
    }
    EXPECT_EQ(listing(), (std::vector<std::string>{"far.json"})) << args[0] << " " << args[1];
  }
}

// ---------------------------------------------------------------------------
// Bad input: one line on stderr naming the problem, a non-zero exit, no file.

class CliErrors : public CliTest, public ::testing::WithParamInterface<ErrorCase> {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const std::string six = test::float_bytes({1, 2, 3, 4, 5, 6});
    write_array("x0.npy", {4, 3}, values(12, 1));
    write_array("noise_3x4.npy", {3, 4}, values(12, 2));
    write_array("betas_ge1.npy", {3}, {0.1f, 1.0f, 0.2f});
    write_array("t_short.npy", {2}, {1.0f, 2.0f});
    write_array("t_fraction.npy", {4}, {1.0f, 2.0f, 2.5f, 3.0f});
    write_array("t_beyond.npy", {4}, {1.0f, 2.0f, 3.0f, 50.0f});
    write_array("means_4.npy", {4}, {1, 2, 3, 4});
    write_array("huge.npy", {4, 3}, {0, 0, 3e38f, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    std::vector<float> with_nan = values(12, 3);
    with_nan[7] = std::nanf("");
    write_array("nan.npy", {4, 3}, with_nan);
    const std::string good = test::npy_image(test::f4_dict("(2, 3)"), six);
    test::write_bytes(path("truncated.npy"), good.substr(0, good.size() - 5));
    test::write_bytes(path("text.npy"), "x,y\n1,2\n");
    test::write_bytes(
        path("big_endian.npy"),
        test::npy_image("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", six));
    test::write_bytes(
        path("fortran.npy"),
        test::npy_image("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", six));
    test::write_bytes(
        path("complex.npy"),
        test::npy_image("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", six));
    std::ofstream(path("broken.json")) << R"({"weights": [0.5, 0.5], "means": [[0, 0], )";
    std::ofstream(path("weights.json"))
        << R"({"weights": [0.5, 0.6], "means": [[0, 0], [1, 1]], "stds": [1, 1]})";
    std::ofstream(path("three_d.json"))
        << R"({"weights": [0.5, 0.5], "means": [[0, 0, 0], [1, 1, 1]], "stds": [1, 1]})";
    const std::vector<std::int64_t> timesteps{40, 20, 1};
    test::write_bytes(path("timesteps.npy"),
                      test::npy_image("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                                      std::string(reinterpret_cast<const char*>(timesteps.data()),
                                                  timesteps.size() * sizeof(std::int64_t))));
    // DDIM clips x0 by default (clip_sample true).
    std::ofstream(path("ddim.json")) << R"({"_class_name": "DDIMScheduler"})";
    std::ofstream(path("ancestral_sample.json"))
        << R"({"_class_name": "EulerAncestralDiscreteScheduler", "prediction_type": "sample"})";
    inputs_ = listing();
  }

  std::vector<std::string> inputs_;
};

TEST_P(CliErrors, OneLineNoOutput) {
  expect_error(run(GetParam().args), GetParam());
  // Neither the output nor a temporary was left behind.
  EXPECT_EQ(listing(), inputs_);
}

// Small and fast: every case uses --steps 50 (or fails before sampling).
std::vector<ErrorCase> error_cases() {
  // Each case adds the flag under test (--t, --backend, ...) to one of these.
  const std::vector<std::string> forward_no_t{"forward",   "--x0", "@x0.npy", "--steps", "50",
                                              "--backend", "cpu",  "--out",   "@out.npy"};
  const std::vector<std::string> sample_any_backend{"sample", "--steps", "50", "--out", "@out.npy"};
  auto plus = [](std::vector<std::string> base, std::vector<std::string> extra) {
    base.insert(base.end(), extra.begin(), extra.end());
    return base;
  };
  const std::vector<std::string> forward = plus(forward_no_t, {"--t", "5"});
  const std::vector<std::string> sample = plus(sample_any_backend, {"--backend", "cpu"});
  // forward with --x0 replaced.
  auto forward_x0 = [&](const std::string& file) {
    return std::vector<std::string>{"forward", "--x0",      file,  "--t",   "5",       "--steps",
                                    "50",      "--backend", "cpu", "--out", "@out.npy"};
  };
  return {
      {"steps_zero", {"sample", "--shape", "4,3", "--steps", "0", "--out", "@out.npy"}, "T > 0"},
      {"betas_not_below_one",
       {"sample", "--shape", "4,3", "--betas", "@betas_ge1.npy", "--out", "@out.npy"},
       "outside (0, 1)"},
      {"t_equals_T", plus(forward_no_t, {"--t", "50"}), "step t = 50 is outside [0, 50)"},
      {"t_negative", plus(forward_no_t, {"--t", "-1"}), "step t = -1 is outside"},
      {"t_and_t_per_sample", plus(forward, {"--t-per-sample", "@t_short.npy"}),
       "give the step either as --t", kUsage},
      {"t_per_sample_length", plus(forward_no_t, {"--t-per-sample", "@t_short.npy"}),
       "has 2 steps but the batch has 4 samples"},
      {"t_per_sample_fraction", plus(forward_no_t, {"--t-per-sample", "@t_fraction.npy"}),
       "element 2 is 2.5, not a whole number"},
      {"t_per_sample_out_of_range", plus(forward_no_t, {"--t-per-sample", "@t_beyond.npy"}),
       "entry 3: step t = 50 is outside [0, 50)"},
      {"noise_shape", plus(forward, {"--noise", "@noise_3x4.npy"}), "shape mismatch"},
      {"truncated_npy", forward_x0("@truncated.npy"), "truncated data"},
      {"not_npy", forward_x0("@text.npy"), "not a .npy, PNG or JPEG file"},
      {"big_endian", forward_x0("@big_endian.npy"), "big-endian"},
      {"fortran_order", forward_x0("@fortran.npy"), "Fortran"},
      {"complex_dtype", forward_x0("@complex.npy"), "unsupported dtype '<c8'"},
      {"nan_in_x0", forward_x0("@nan.npy"), "non-finite"},
      {"missing_x0", forward_x0("@absent.npy"), "cannot read"},
      {"shape_zero", plus(sample, {"--shape", "0,3"}), "positive", kUsage},
      {"shape_letters", plus(sample, {"--shape", "a,b"}), "'a' is not an integer", kUsage},
      {"shape_missing_extent", plus(sample, {"--shape", "12,,3"}), "missing", kUsage},
      {"shape_empty", plus(sample, {"--shape", ""}), "empty", kUsage},
      {"negative_std", plus(sample, {"--shape", "4,3", "--std", "-0.3"}), "std"},
      // Every number option refuses NaN and Inf up front, naming itself.
      {"nan_mean", plus(sample, {"--shape", "4,3", "--mean", "nan"}),
       "--mean: 'nan' is not a finite number", kUsage},
      {"inf_std", plus(sample, {"--shape", "4,3", "--std", "inf"}),
       "--std: 'inf' is not a finite number", kUsage},
      {"overflowing_beta_end", plus(sample, {"--shape", "4,3", "--beta-end", "1e999"}),
       "--beta-end: '1e999' is not a finite number", kUsage},
      {"nan_eta", plus(sample, {"--shape", "4,3", "--sampler", "ddim", "--eta", "nan"}),
       "--eta: 'nan' is not a finite number", kUsage},
      {"nan_progress_interval", plus(sample, {"--shape", "4,3", "--progress-interval", "nan"}),
       "--progress-interval: 'nan' is not a finite number", kUsage},
      {"nan_uncond_std",
       plus(sample, {"--shape", "4,3", "--uncond-std", "-nan", "--guidance-scale", "2"}),
       "--uncond-std: '-nan' is not a finite number", kUsage},
      {"per_element_mean_size", plus(sample, {"--shape", "4,3", "--mean-npy", "@means_4.npy"}),
       "shape mismatch"},
      {"gmm_broken_json",
       plus(sample, {"--shape", "4,2", "--predictor", "gmm", "--gmm", "@broken.json"}),
       "not valid JSON"},
      {"gmm_weights",
       plus(sample, {"--shape", "4,2", "--predictor", "gmm", "--gmm", "@weights.json"}), "sum to"},
      {"gmm_dim", plus(sample, {"--shape", "4,2", "--predictor", "gmm", "--gmm", "@three_d.json"}),
       "dimension mismatch"},
      {"gmm_missing_spec", plus(sample, {"--shape", "4,2", "--predictor", "gmm"}), "--gmm", kUsage},
      {"unknown_predictor", plus(sample, {"--shape", "4,2", "--predictor", "vae"}),
       "--predictor: vae not in {gaussian,gmm}", kUsage},
      {"unknown_schedule", plus(sample, {"--shape", "4,2", "--schedule", "fancy"}),
       "unknown schedule 'fancy'", kUsage},
      {"unknown_variance", plus(sample, {"--shape", "4,2", "--variance", "wide"}),
       "--variance: unknown variance 'wide'", kUsage},
      {"clip_reversed", plus(sample, {"--shape", "4,2", "--clip-x0", "1,-1"}),
       "LO must be below HI", kUsage},
      {"unknown_backend", plus(sample_any_backend, {"--shape", "4,2", "--backend", "tpu"}),
       "unknown backend 'tpu'", kUsage},
      {"unwritable_output",
       {"sample", "--shape", "4,2", "--steps", "50", "--backend", "cpu", "--out",
        "/nonexistent/dir/x.npy"},
       "cannot write /nonexistent/dir/x.npy"},
      {"unwritable_second_output", plus(forward, {"--noise-out", "/nonexistent/dir/eps.npy"}),
       "cannot write /nonexistent/dir/eps.npy"},
      {"same_output_twice", plus(forward, {"--noise-out", "@./out.npy"}), "name the same file"},
      {"unwritable_demo",
       {"demo", "--out", "/nonexistent/dir/d.png", "--size", "8", "--steps", "5", "--backend",
        "cpu"},
       "cannot write /nonexistent/dir/d.png"},
      {"demo_size", {"demo", "--out", "@d.png", "--size", "2"},
       "--size: Value 2 not in range 4 to 1024", kUsage},
      // CLI11's own errors, in the same one-line form.
      {"unknown_flag", plus(sample, {"--shape", "4,2", "--bogus"}), "--bogus", kUsage},
      {"missing_out", {"sample", "--shape", "4,2"}, "--out is required", kUsage},
      {"betas_with_steps",
       {"sample", "--shape", "4,2", "--betas", "@betas_ge1.npy", "--steps", "3", "--out",
        "@out.npy"},
       "excludes", kUsage},
      {"no_such_subcommand", {"train"},
       "unknown command 'train' (the commands: forward, sample, demo, schedule, illustrate, unet-eval)", kUsage},
      {"steps_not_a_number", {"sample", "--shape", "4,2", "--steps", "abc", "--out", "@out.npy"},
       "Could not convert: --steps = abc", kUsage},
      {"seed_negative", plus(sample, {"--shape", "4,2", "--seed", "-1"}),
       "--seed: '-1' is not a seed: expected a whole number from 0 to 18446744073709551615",
       kUsage},
      {"seed_two_to_the_64", plus(sample, {"--shape", "4,2", "--seed", "18446744073709551616"}),
       "is not a seed", kUsage},
      {"seed_exponent", plus(forward, {"--seed", "1e3"}), "'1e3' is not a seed", kUsage},
      {"seed_hex", {"demo", "--out", "@d.png", "--seed", "0x10"}, "'0x10' is not a seed", kUsage},
      {"seed_fraction", plus(sample, {"--shape", "4,2", "--seed", "1.5"}), "is not a seed", kUsage},
      {"first_sample_negative", plus(forward, {"--first-sample", "-1"}),
       "--first-sample: '-1' is not a sample index", kUsage},
      {"first_sample_overflow", plus(forward, {"--first-sample", "9223372036854775807"}),
       "first sample 9223372036854775807 + batch 4 overflows the 64-bit sample index"},
      {"shape_beyond_memory", plus(sample, {"--shape", "100000000,100000000"}),
       "--shape 100000000,100000000 needs 35.5 PiB of memory, more than this machine has"},
      {"x0_beyond_half_the_float_maximum", forward_x0("@huge.npy"),
       "x0 has 3e+38 at index 2 beyond +-1.70141e+38 (half the float32 maximum)"},
      {"threads_absurd", plus(sample, {"--shape", "4,2", "--threads", "100000"}),
       "--threads: Value 100000 not in range 0 to 4096", kUsage},
      // Options that exclude each other, from the command line: usage errors,
      // found before any work (a config's own conflict is the file's: 1).
      {"karras_with_timestep_list",
       plus(sample, {"--shape", "4,2", "--sampler", "dpmpp_2m", "--karras-sigmas", "--timesteps",
                     "@timesteps.npy"}),
       "an explicit timestep list and Karras sigmas exclude each other", kUsage},
      {"karras_with_timestep_list_chunked",
       plus(sample, {"--shape", "4,2", "--sampler", "dpmpp_2m", "--karras-sigmas", "--timesteps",
                     "@timesteps.npy", "--chunk-rows", "2"}),
       "an explicit timestep list and Karras sigmas exclude each other", kUsage},
      {"euler_karras_with_timestep_list",
       plus(sample, {"--shape", "4,2", "--sampler", "euler", "--karras-sigmas", "--timesteps",
                     "@timesteps.npy"}),
       "an explicit timestep list and Karras sigmas exclude each other", kUsage},
      {"clipping_for_dpmpp",
       plus(sample, {"--shape", "4,2", "--sampler", "dpmpp_2m", "--clip-x0", "-1,1"}),
       "the dpmpp_2m sampler has no x0 clipping in diffusers", kUsage},
      {"clipping_for_euler", plus(sample, {"--shape", "4,2", "--sampler", "euler", "--clip-x0", "-1,1"}),
       "the euler sampler has no x0 clipping in diffusers", kUsage},
      {"thresholding_for_euler_ancestral",
       plus(sample, {"--shape", "4,2", "--sampler", "euler_ancestral", "--thresholding", "0.99"}),
       "the euler_ancestral sampler has no dynamic thresholding in diffusers", kUsage},
      {"sample_prediction_for_euler_ancestral",
       plus(sample, {"--shape", "4,2", "--sampler", "euler_ancestral", "--prediction-type", "sample"}),
       "the euler_ancestral sampler does not take prediction type sample", kUsage},
      {"thresholding_ratio_above_one", plus(sample, {"--shape", "4,2", "--thresholding", "1.5"}),
       "dynamic thresholding ratio 1.5 is outside (0, 1]", kUsage},
      {"eta_for_ddpm", plus(sample, {"--shape", "4,2", "--sampler", "ddpm", "--eta", "0.5"}),
       "--eta applies only to --sampler ddim", kUsage},
      // A DDIM config's own clip_sample is dropped for euler (as diffusers'
      // from_config of another class); clipping asked for by flag is refused.
      {"clipping_flag_for_euler_from_a_ddim_config",
       plus(sample, {"--shape", "4,2", "--scheduler-config", "@ddim.json", "--sampler", "euler", "--clip-x0",
                     "-1,1"}),
       "the euler sampler has no x0 clipping in diffusers", kUsage},
      {"config_conflict_of_its_own",
       plus(sample, {"--shape", "4,2", "--scheduler-config", "@ancestral_sample.json"}),
       "ancestral_sample.json: the euler_ancestral sampler does not take prediction type sample"},
      {"karras_and_timesteps_for_schedule",
       {"schedule", "--sampler", "euler", "--karras-sigmas", "--timesteps", "@timesteps.npy"},
       "an explicit timestep list and Karras sigmas exclude each other", kUsage},
      {"gaussian_flag_for_gmm",
       plus(sample, {"--shape", "4,2", "--predictor", "gmm", "--gmm", "@weights.json", "--mean",
                     "1"}),
       "--mean applies only to --predictor gaussian", kUsage},
  };
}

INSTANTIATE_TEST_SUITE_P(BadInput, CliErrors, ::testing::ValuesIn(error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) {
                           return info.param.label;
                         });

}  // namespace
}  // namespace ddpm
